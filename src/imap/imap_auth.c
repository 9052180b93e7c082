/*
 * imap_auth.c - LOGIN (RFC 9051 §6.2.3) and AUTHENTICATE PLAIN with
 * SASL-IR (RFC 4959, RFC 4616), never before TLS on 143.  The password
 * check and then the opening of the account's store run on the pool; the
 * session waits (BUSY) and is found again by id.  Failures count per
 * client address in the lockout table shared with SMTP and POP3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_private.h"
#include "store/store.h"

struct imap_auth_job {
	struct imap_server *srv;
	uint64_t id;
	struct auth_check chk;
	char *data_dir;
	struct store *store;
	char error[128];
};

static void
imap_auth_work(void *arg)
{
	struct imap_auth_job *j = arg;
	const char *err = NULL;

	auth_check_run(&j->chk);
	if (j->chk.ok && store_open(j->data_dir, j->chk.user, &j->store, &err) < 0) {
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
		j->chk.ok = false;
		j->store = NULL;
	}
}

static void
imap_auth_job_free(struct imap_auth_job *j)
{
	auth_check_clear(&j->chk);
	free(j->data_dir);
	store_close(&j->store);
	free(j);
}

static void
imap_auth_done(void *arg)
{
	struct imap_auth_job *j = arg;
	struct imap_session *s = imap_session_by_id(j->srv, j->id);
	char esc[LOG_ESCAPE_BUF];
	struct buf caps;

	if (s == NULL) {
		imap_auth_job_free(j);
		return;
	}
	if (j->chk.ok) {
		lockout_success(s->srv->lockout, conn_peer(s->conn));
		s->user = xstrdup(j->chk.user);
		s->store = j->store;
		j->store = NULL;
		imap_set_state(s, IMAP_ST_AUTH);
		log_info("%s imap auth client=%s user=%s result=ok", s->sid,
		    conn_peer_addr(s->conn), s->user);
		buf_init(&caps, 0);
		imap_capabilities(s, &caps);
		imap_tagged(s, s->tag, "OK", "[CAPABILITY %s] Logged in",
		    caps.data);
		buf_free(&caps);
	} else if (j->error[0] != '\0') {
		log_warnx("%s imap cannot open store of %s: %s", s->sid,
		    j->chk.user, j->error);
		imap_tagged(s, s->tag, "NO", "[UNAVAILABLE] Mailbox not "
		    "available, try again later");
	} else {
		unsigned n = lockout_fail(s->srv->lockout, conn_peer(s->conn),
		    time(NULL));
		log_info("%s imap auth client=%s user=%s result=failed "
		    "failures=%u", s->sid, conn_peer_addr(s->conn),
		    log_escape(j->chk.user, strlen(j->chk.user), esc), n);
		imap_tagged(s, s->tag, "NO", "[AUTHENTICATIONFAILED] "
		    "Authentication failed");
	}
	imap_auth_job_free(j);
	imap_resume(s);
}

static void
imap_auth_check(struct imap_session *s, const char *user,
    const char *password)
{
	struct imap_auth_job *j = xmalloc(sizeof(*j));

	if (auth_check_init(&j->chk, s->srv->acc, user, password) < 0) {
		free(j);
		imap_tagged(s, s->tag, "NO", "[AUTHENTICATIONFAILED] "
		    "Authentication failed");
		return;
	}
	j->srv = s->srv;
	j->id = s->id;
	j->data_dir = xstrdup(s->srv->cfg->data_dir);
	imap_submit(s, imap_auth_work, imap_auth_done, j);
}

static bool
imap_auth_locked(struct imap_session *s, const char *tag)
{
	if (!lockout_is_locked(s->srv->lockout, conn_peer(s->conn),
	    time(NULL)))
		return false;
	log_info("%s imap auth client=%s result=locked-out", s->sid,
	    conn_peer_addr(s->conn));
	imap_tagged(s, tag, "NO", "[UNAVAILABLE] Too many failed logins, "
	    "try again later");
	return true;
}

void
imap_cmd_login(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	const char *user, *pass;

	if (cmd->count != 2 ||
	    (user = imap_arg_astring(cmd->args)) == NULL ||
	    (pass = imap_arg_astring(cmd->args->next)) == NULL) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (imap_auth_locked(s, cmd->tag))
		return;
	imap_auth_check(s, user, pass);
}

/* PLAIN message: [authzid] NUL authcid NUL passwd (RFC 4616 §2). */
static void
imap_auth_plain(struct imap_session *s, const char *b64, size_t len)
{
	unsigned char *raw = xmalloc(len / 4 * 3 + 1);
	ssize_t n = base64_decode(b64, len, raw);
	const char *authz = (const char *)raw, *authc, *pass;

	if (n < 0) {
		free(raw);
		imap_tagged(s, s->tag, "BAD", "Cannot decode response");
		return;
	}
	authc = memchr(raw, '\0', (size_t)n) ? authz + strlen(authz) + 1 :
	    NULL;
	if (authc == NULL || authc >= (const char *)raw + n ||
	    (pass = authc + strlen(authc) + 1) > (const char *)raw + n ||
	    (*authz != '\0' && strcasecmp(authz, authc) != 0))
		imap_tagged(s, s->tag, "NO", "[AUTHENTICATIONFAILED] "
		    "Authentication failed");
	else
		imap_auth_check(s, authc, pass);
	x_wipe(raw, (size_t)n);
	free(raw);
}

void
imap_sasl_line(struct imap_session *s, const char *line, size_t len)
{
	imap_set_wait(s, IMAP_WAIT_NONE);
	if (len == 1 && line[0] == '*') {
		imap_tagged(s, s->tag, "BAD", "Authentication cancelled");
		return;
	}
	imap_auth_plain(s, line, len);
}

void
imap_cmd_authenticate(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	const struct imap_arg *mech = cmd->args, *ir;

	if (cmd->count < 1 || cmd->count > 2 ||
	    mech->type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: AUTHENTICATE "
		    "mechanism [initial-response]");
		return;
	}
	if (strcasecmp(mech->str, "PLAIN") != 0) {
		imap_tagged(s, cmd->tag, "NO", "Unsupported authentication "
		    "mechanism");
		return;
	}
	if (imap_auth_locked(s, cmd->tag))
		return;
	ir = mech->next;
	if (ir == NULL) {
		/* RFC 9051 §6.2.2: an empty challenge */
		imap_write(s, "+ \r\n", 4);
		imap_set_wait(s, IMAP_WAIT_SASL);
		return;
	}
	if (ir->type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", "Bad initial response");
		return;
	}
	/* RFC 4959 §3: "=" is an empty initial response */
	imap_auth_plain(s, strcmp(ir->str, "=") == 0 ? "" : ir->str,
	    strcmp(ir->str, "=") == 0 ? 0 : ir->len);
}
