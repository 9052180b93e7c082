/*
 * smtp_auth.c - AUTH PLAIN (RFC 4616) and LOGIN on the submission
 * listeners, only over TLS (RFC 4954).  The password check runs on the
 * thread pool; the session waits in SMTP_ST_BUSY and is found again by id.
 * Failures count per client address in the shared lockout table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/smtp_private.h"

struct smtp_auth_job {
	struct smtp_server *srv;
	uint64_t id;
	struct auth_check chk;
};

static void
smtp_auth_work(void *arg)
{
	struct smtp_auth_job *j = arg;

	auth_check_run(&j->chk);
}

static void
smtp_auth_job_free(struct smtp_auth_job *j)
{
	auth_check_clear(&j->chk);
	free(j);
}

static void
smtp_auth_done(void *arg)
{
	struct smtp_auth_job *j = arg;
	struct smtp_session *s = smtp_session_by_id(j->srv, j->id);

	if (s == NULL) {
		smtp_auth_job_free(j);
		return;
	}
	smtp_set_state(s, SMTP_ST_READY);
	if (j->chk.ok) {
		lockout_success(s->srv->lockout, conn_peer(s->conn));
		s->auth_user = xstrdup(j->chk.user);
		log_info("%s smtp auth client=%s user=%s result=ok", s->sid,
		    conn_peer_addr(s->conn), j->chk.user);
		smtp_reply(s, "235 2.7.0 Authentication successful");
	} else {
		unsigned n = lockout_fail(s->srv->lockout, conn_peer(s->conn),
		    time(NULL));
		char esc[LOG_ESCAPE_BUF];
		log_info("%s smtp auth client=%s user=%s result=failed "
		    "failures=%u", s->sid, conn_peer_addr(s->conn),
		    log_escape(j->chk.user, strlen(j->chk.user), esc), n);
		smtp_reply_error(s, "535 5.7.8 Authentication credentials "
		    "invalid");
	}
	smtp_auth_job_free(j);
	if (s->state != SMTP_ST_CLOSING)
		conn_resume_read(s->conn);
}

static void
smtp_auth_check(struct smtp_session *s, const char *user,
    const char *password)
{
	struct smtp_auth_job *j = xmalloc(sizeof(*j));

	if (auth_check_init(&j->chk, s->srv->acc, user, password) < 0) {
		free(j);
		smtp_set_state(s, SMTP_ST_READY);
		smtp_reply_error(s, "535 5.7.8 Authentication credentials "
		    "invalid");
		return;
	}
	j->srv = s->srv;
	j->id = s->id;
	smtp_set_state(s, SMTP_ST_BUSY);
	conn_pause_read(s->conn);
	pool_submit(s->srv->pool, smtp_auth_work, smtp_auth_done, j);
}

/* PLAIN message: [authzid] NUL authcid NUL passwd (RFC 4616 §2). */
static void
smtp_auth_plain(struct smtp_session *s, const char *b64, size_t len)
{
	unsigned char *raw = xmalloc(len / 4 * 3 + 1);
	ssize_t n = base64_decode(b64, len, raw);
	const char *authz, *authc, *pass;

	if (n < 0) {
		free(raw);
		smtp_set_state(s, SMTP_ST_READY);
		smtp_reply_error(s, "501 5.5.2 Cannot decode response");
		return;
	}
	authz = (const char *)raw;
	authc = memchr(raw, '\0', (size_t)n) ?
	    authz + strlen(authz) + 1 : NULL;
	if (authc == NULL || authc >= (const char *)raw + n ||
	    (pass = authc + strlen(authc) + 1) > (const char *)raw + n ||
	    (*authz != '\0' && strcasecmp(authz, authc) != 0)) {
		x_wipe(raw, (size_t)n);
		free(raw);
		smtp_set_state(s, SMTP_ST_READY);
		smtp_reply_error(s, "535 5.7.8 Authentication credentials "
		    "invalid");
		return;
	}
	smtp_auth_check(s, authc, pass);
	x_wipe(raw, (size_t)n);
	free(raw);
}

static void
smtp_auth_login(struct smtp_session *s, const char *b64, size_t len)
{
	unsigned char *raw = xmalloc(len / 4 * 3 + 1);
	ssize_t n = base64_decode(b64, len, raw);

	if (n < 0 || memchr(raw, '\0', (size_t)n) != NULL) {
		free(raw);
		smtp_set_state(s, SMTP_ST_READY);
		smtp_reply_error(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth_step == SMTP_AUTH_LOGIN_USER) {
		free(s->auth_login_user);
		s->auth_login_user = (char *)raw;
		s->auth_step = SMTP_AUTH_LOGIN_PASS;
		smtp_reply(s, "334 UGFzc3dvcmQ6");	/* "Password:" */
		smtp_set_state(s, SMTP_ST_AUTH);
		return;
	}
	smtp_auth_check(s, s->auth_login_user, (char *)raw);
	x_wipe(raw, (size_t)n);
	free(raw);
	x_free(&s->auth_login_user);
}

void
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		smtp_set_state(s, SMTP_ST_READY);
		x_free(&s->auth_login_user);
		smtp_reply_error(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	if (s->auth_step == SMTP_AUTH_PLAIN)
		smtp_auth_plain(s, line, len);
	else
		smtp_auth_login(s, line, len);
}

void
smtp_cmd_auth(struct smtp_session *s, const char *args)
{
	char mech[32];
	const char *initial;
	size_t mlen;

	if (!smtp_is_submission(s) || !conn_is_tls(s->conn)) {
		/* Never on port 25, never in clear text (DESIGN.md §1). */
		smtp_reply_error(s, "503 5.5.1 Error: authentication not "
		    "enabled");
		return;
	}
	if (s->auth_user != NULL) {
		smtp_reply_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->state != SMTP_ST_READY) {
		smtp_reply_error(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
		return;
	}
	if (lockout_is_locked(s->srv->lockout, conn_peer(s->conn),
	    time(NULL))) {
		log_info("%s smtp auth client=%s result=locked-out", s->sid,
		    conn_peer_addr(s->conn));
		smtp_reply_error(s, "454 4.7.0 Too many failed logins, try "
		    "again later");
		return;
	}
	mlen = strcspn(args, " ");
	if (mlen == 0 || mlen >= sizeof(mech)) {
		smtp_reply_error(s, "501 5.5.4 Syntax: AUTH mechanism");
		return;
	}
	memcpy(mech, args, mlen);
	mech[mlen] = '\0';
	initial = args[mlen] == ' ' ? args + mlen + 1 : NULL;
	if (strcasecmp(mech, "PLAIN") == 0) {
		s->auth_step = SMTP_AUTH_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->auth_step = SMTP_AUTH_LOGIN_USER;
	} else {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication "
		    "type");
		return;
	}
	if (initial == NULL) {
		smtp_set_state(s, SMTP_ST_AUTH);
		smtp_reply(s, s->auth_step == SMTP_AUTH_PLAIN ? "334 " :
		    "334 VXNlcm5hbWU6");	/* "Username:" */
		return;
	}
	if (strcmp(initial, "=") == 0)	/* RFC 4954 §4: empty response */
		initial = "";
	smtp_set_state(s, SMTP_ST_AUTH);
	smtp_auth_line(s, initial, strlen(initial));
}
