/*
 * pop3_auth.c - logging in: USER/PASS (RFC 1939 §7) and AUTH PLAIN
 * (RFC 5034, RFC 4616), only over TLS (the dispatcher enforces it).  The
 * password check runs on the thread pool; the session waits in
 * POP3_ST_LOGIN and is found again by id.  Failures count per client
 * address in the lockout table SMTP uses too; failure replies carry the
 * response codes of RFC 3206 ([AUTH], [SYS/TEMP]).  APOP is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pop3/pop3_private.h"

#define POP3_MECH_MAX 20	/* RFC 4422 §3.1: mechanism names */

static const char pop3_reply_auth_failed[] =
	"-ERR [AUTH] Authentication failed";

struct pop3_auth_job {
	struct pop3_server *srv;
	uint64_t id;
	struct auth_check chk;
};

static void
pop3_auth_work(void *arg)
{
	struct pop3_auth_job *j = arg;

	auth_check_run(&j->chk);
}

static void
pop3_auth_job_free(struct pop3_auth_job *j)
{
	auth_check_clear(&j->chk);
	free(j);
}

static void
pop3_auth_done(void *arg)
{
	struct pop3_auth_job *j = arg;
	struct pop3_session *s = pop3_session_by_id(j->srv, j->id);
	char esc[LOG_ESCAPE_BUF];

	if (s == NULL) {
		pop3_auth_job_free(j);
		return;
	}
	if (j->chk.ok) {
		lockout_success(s->srv->lockout, conn_peer(s->conn));
		log_info("%s pop3 auth client=%s user=%s result=ok", s->sid,
		    conn_peer_addr(s->conn), j->chk.user);
		free(s->user);
		s->user = xstrdup(j->chk.user);
		pop3_auth_job_free(j);
		pop3_txn_open(s);	/* stays in LOGIN until it is open */
		return;
	}
	unsigned n = lockout_fail(s->srv->lockout, conn_peer(s->conn),
	    time(NULL));
	log_info("%s pop3 auth client=%s user=%s result=failed failures=%u",
	    s->sid, conn_peer_addr(s->conn),
	    log_escape(j->chk.user, strlen(j->chk.user), esc), n);
	pop3_auth_job_free(j);
	/* RFC 1939 §7: after a failed PASS, USER starts over. */
	x_free(&s->user);
	pop3_set_state(s, POP3_ST_AUTHORIZATION);
	pop3_reply_error(s, pop3_reply_auth_failed);
	pop3_resume(s);
}

/* Starts the check of user/password; the session answers later. */
static void
pop3_auth_check(struct pop3_session *s, const char *user,
    const char *password)
{
	struct pop3_auth_job *j = xmalloc(sizeof(*j));

	if (auth_check_init(&j->chk, s->srv->acc, user, password) < 0) {
		free(j);
		pop3_set_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply_error(s, pop3_reply_auth_failed);
		return;
	}
	j->srv = s->srv;
	j->id = s->id;
	pop3_set_state(s, POP3_ST_LOGIN);
	if (!pop3_submit(s, pop3_auth_work, pop3_auth_done, j)) {
		pop3_auth_job_free(j);
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3_close_after_reply(s);
	}
}

/* A locked-out address gets no password check at all. */
static bool
pop3_locked_out(struct pop3_session *s)
{
	if (!lockout_is_locked(s->srv->lockout, conn_peer(s->conn),
	    time(NULL)))
		return false;
	log_info("%s pop3 auth client=%s result=locked-out", s->sid,
	    conn_peer_addr(s->conn));
	/* RFC 3206 §4: temporary, the credentials may well be right. */
	pop3_set_state(s, POP3_ST_AUTHORIZATION);
	pop3_reply_error(s, "-ERR [SYS/TEMP] Too many failed logins, try "
	    "again later");
	return true;
}

void
pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (strlen(cmd->args) > AUTH_ADDR_MAX) {
		pop3_reply_error(s, "-ERR [AUTH] User name too long");
		return;
	}
	free(s->user);
	s->user = xstrdup(cmd->args);
	/* Same answer for every name: no account harvesting. */
	pop3_reply(s, "+OK Send PASS");
}

void
pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char *user;

	if (s->user == NULL) {
		pop3_reply_error(s, "-ERR USER first");
		return;
	}
	if (pop3_locked_out(s)) {
		x_wipe(s->line, sizeof(s->line));
		return;
	}
	user = s->user;
	s->user = NULL;
	pop3_auth_check(s, user, cmd->args);
	free(user);
	/* The password must not linger in the line buffer. */
	x_wipe(s->line, sizeof(s->line));
}

void
pop3_cmd_apop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	/* APOP needs the clear-text password on the server (RFC 1939 §7)
	 * and MD5; not offered (no timestamp in the greeting). */
	pop3_reply_error(s, "-ERR [AUTH] APOP not supported");
}

/* PLAIN message: [authzid] NUL authcid NUL passwd (RFC 4616 §2). */
static void
pop3_auth_plain(struct pop3_session *s, const char *b64, size_t len)
{
	unsigned char *raw = xmalloc(len / 4 * 3 + 1);
	ssize_t n = base64_decode(b64, len, raw);
	const char *authz, *authc, *pass;

	if (n < 0) {
		free(raw);
		pop3_set_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply_error(s, "-ERR Cannot decode response");
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
		pop3_set_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply_error(s, pop3_reply_auth_failed);
		return;
	}
	pop3_auth_check(s, authc, pass);
	x_wipe(raw, (size_t)n);
	free(raw);
}

void
pop3_sasl_line(struct pop3_session *s, const char *line, size_t len)
{
	/* RFC 5034 §4: "*" cancels. */
	if (len == 1 && line[0] == '*') {
		pop3_set_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply_error(s, "-ERR Authentication cancelled");
		return;
	}
	if (!pop3_locked_out(s))
		pop3_auth_plain(s, line, len);
	x_wipe(s->line, sizeof(s->line));
}

void
pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char mech[POP3_MECH_MAX + 1];
	const char *initial;
	size_t mlen = strcspn(cmd->args, " ");

	if (mlen == 0) {
		/* The pre-RFC 5034 listing some clients still probe with. */
		pop3_reply(s, "+OK Mechanisms follow");
		pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return;
	}
	if (mlen > POP3_MECH_MAX) {
		pop3_reply_error(s, "-ERR Syntax: AUTH mechanism");
		return;
	}
	memcpy(mech, cmd->args, mlen);
	mech[mlen] = '\0';
	if (strcasecmp(mech, "PLAIN") != 0) {
		pop3_reply_error(s, "-ERR Unsupported authentication "
		    "mechanism");
		return;
	}
	if (pop3_locked_out(s))
		return;
	initial = cmd->args[mlen] == ' ' ? cmd->args + mlen + 1 : NULL;
	if (initial == NULL) {
		/* RFC 5034 §4: an empty challenge is "+ " */
		pop3_set_state(s, POP3_ST_SASL);
		pop3_reply(s, "+ ");
		return;
	}
	if (strcmp(initial, "=") == 0)	/* RFC 5034 §4: empty response */
		initial = "";
	pop3_auth_plain(s, initial, strlen(initial));
	x_wipe(s->line, sizeof(s->line));
}
