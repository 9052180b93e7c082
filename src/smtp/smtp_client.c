/*
 * smtp_client.c - the outbound SMTP client (smtp.h): one connection to
 * one MX or relay as an explicit state machine over a struct conn.
 * Greeting, EHLO (HELO when refused), STARTTLS (RFC 3207), AUTH PLAIN or
 * LOGIN (RFC 4954), then transactions: MAIL, RCPT, DATA or BDAT (RFC
 * 5321, 1870, 6152, 6531, 3030), pipelined when the peer offers it (RFC
 * 2920), then QUIT.  Only smtpc_set_state() assigns the state; every
 * state has its RFC 5321 §4.5.3.2 timeout.  The caller's callbacks always
 * run from a deferred event, never from inside conn callbacks or our own
 * functions, so it may free the client in any of them.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "smtp/smtp.h"

#define SMTPC_CHUNK (64 * 1024)		/* spool file read and BDAT size */
#define SMTPC_OUT_HIGH (256 * 1024)	/* unsent output before we wait */
#define SMTPC_TEXT_MAX 2048		/* reply text kept for logs, DSNs */
#define SMTPC_CMD_MAX 2048		/* one command line we send */
#define SMTPC_PATH_MAX 1000		/* sender or recipient we pass on */

/* XXX: net.h has no deferred-call API, so this file holds a libevent
 * event for its callbacks (the only libevent use outside net/ here). */

enum smtpc_state {
	SMTPC_ST_CONNECT,
	SMTPC_ST_GREETING,
	SMTPC_ST_EHLO,
	SMTPC_ST_HELO,
	SMTPC_ST_STARTTLS,
	SMTPC_ST_TLS,
	SMTPC_ST_AUTH,		/* waiting for 235 */
	SMTPC_ST_AUTH_USER,	/* LOGIN: waiting for the user prompt */
	SMTPC_ST_AUTH_PASS,	/* LOGIN: waiting for the password prompt */
	SMTPC_ST_READY,
	SMTPC_ST_MAIL,
	SMTPC_ST_RCPT,
	SMTPC_ST_DATA,
	SMTPC_ST_BODY,
	SMTPC_ST_BDAT,
	SMTPC_ST_DOT,
	SMTPC_ST_RSET,
	SMTPC_ST_QUIT,
	SMTPC_ST_CLOSED,
};

struct smtpc_state_row {
	const char *name;
	const char *doing;	/* "... while <doing>" in made-up replies */
	unsigned timeout;	/* seconds; RFC 5321 §4.5.3.2 */
};

static const struct smtpc_state_row smtpc_states[] = {
	[SMTPC_ST_CONNECT] = { "connect", "connecting", 0 },
	[SMTPC_ST_GREETING] = { "greeting",
	    "receiving the initial server greeting", 300 },
	[SMTPC_ST_EHLO] = { "ehlo", "performing the EHLO handshake", 300 },
	[SMTPC_ST_HELO] = { "helo", "performing the HELO handshake", 300 },
	[SMTPC_ST_STARTTLS] = { "starttls", "sending STARTTLS", 300 },
	[SMTPC_ST_TLS] = { "tls", "performing the TLS handshake", 300 },
	[SMTPC_ST_AUTH] = { "auth", "authenticating", 300 },
	[SMTPC_ST_AUTH_USER] = { "auth-user", "authenticating", 300 },
	[SMTPC_ST_AUTH_PASS] = { "auth-pass", "authenticating", 300 },
	[SMTPC_ST_READY] = { "ready", "idle", 300 },
	[SMTPC_ST_MAIL] = { "mail", "sending MAIL FROM", 300 },
	[SMTPC_ST_RCPT] = { "rcpt", "sending RCPT TO", 300 },
	[SMTPC_ST_DATA] = { "data", "sending DATA", 120 },
	[SMTPC_ST_BODY] = { "body", "sending message body", 180 },
	[SMTPC_ST_BDAT] = { "bdat", "sending message body", 180 },
	[SMTPC_ST_DOT] = { "dot", "sending end of data -- message may be "
	    "sent more than once", 600 },
	[SMTPC_ST_RSET] = { "rset", "sending RSET", 300 },
	[SMTPC_ST_QUIT] = { "quit", "sending QUIT", 10 },
	[SMTPC_ST_CLOSED] = { "closed", "closing", 0 },
};

/* What the peer's EHLO reply offered (RFC 5321 §4.1.1.1). */
struct smtpc_ext {
	bool pipelining, size, eightbit, smtputf8, starttls, chunking;
	bool binarymime, enhanced, auth, auth_plain, auth_login;
	uint64_t size_max;	/* 0: no limit given */
};

enum smtpc_notify {
	SMTPC_N_READY = 1,
	SMTPC_N_TXN = 2,
	SMTPC_N_CLOSE = 4,
};

struct smtpc {
	struct conn *conn;
	const struct smtpc_ops *ops;
	void *arg;
	enum smtpc_state state;
	/* parameters (copies) */
	char *helo, *peer_name, *auth_user, *auth_password;
	enum smtpc_tls tls_mode;
	struct tls_ctx *tls_ctx;
	bool verify;
	char *peer;		/* "name[addr]" for made-up replies */
	char *addr;
	/* TLS, recorded when it comes up */
	bool tls_on, tls_verified, starttls_refused;
	char tls_version[32], tls_cipher[64];
	struct smtpc_ext ext, ext_new;
	/* the reply being read */
	char line[SMTPC_LINE_MAX + 1];
	int rcode;
	size_t rlines;
	struct buf rtext;
	char rstatus[16];
	/* the transaction */
	struct smtpc_txn *txn;
	bool txn_done;		/* results complete, on_txn_done pending */
	size_t *sent;		/* recipient indexes in RCPT order */
	size_t nsent, nreplied, naccepted;
	bool *accepted;
	bool pipelined, bdat, mail_failed, discard, prefix_done, bol;
	uint64_t off, body_len;
	char tail[2];
	char *chunk;
	/* callbacks */
	struct event *notify_ev;
	unsigned notify;
	struct smtpc_reply why;
	bool tls_failed, close_told;
};

static void smtpc_on_conn_ready(void *arg);
static void smtpc_on_read(void *arg);
static void smtpc_on_conn_close(void *arg, const char *why);
static void smtpc_on_drained(void *arg);
static void smtpc_on_tls(void *arg);

static const struct conn_ops smtpc_conn_ops = {
	.on_ready = smtpc_on_conn_ready,
	.on_read = smtpc_on_read,
	.on_close = smtpc_on_conn_close,
	.on_drained = smtpc_on_drained,
	.on_tls = smtpc_on_tls,
};

static void smtpc_after_hello(struct smtpc *c);
static void smtpc_body_pump(struct smtpc *c);

/* ---- replies ---- */

static void
smtpc_reply_free(struct smtpc_reply *r)
{
	x_free(&r->text);
	r->code = 0;
	r->status[0] = '\0';
}

static void
smtpc_reply_copy(struct smtpc_reply *dst, const struct smtpc_reply *src)
{
	smtpc_reply_free(dst);
	dst->code = src->code;
	str_lcpy(dst->status, src->status, sizeof(dst->status));
	dst->text = xstrdup(src->text != NULL ? src->text : "");
}

/* A reply we make up: text "<code> <status> <message>". */
static void MF_PRINTF(4, 5)
smtpc_reply_make(struct smtpc_reply *r, int code, const char *status,
    const char *fmt, ...)
{
	char msg[SMTPC_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);	/* cut is fine */
	va_end(ap);
	smtpc_reply_free(r);
	r->code = code;
	str_lcpy(r->status, status, sizeof(r->status));
	r->text = xasprintf("%d %s %s", code, status, msg);
}

void
smtpc_txn_clear(struct smtpc_txn *t)
{
	if (t->results != NULL)
		for (size_t i = 0; i < t->nrcpts; i++)
			smtpc_reply_free(&t->results[i]);
	x_free(&t->results);
}

/* ---- state, callbacks, closing ---- */

static void
smtpc_set_state(struct smtpc *c, enum smtpc_state st)
{
	if (c->state == st)
		return;
	log_debug("smtpc %s state %s -> %s", c->peer,
	    smtpc_states[c->state].name, smtpc_states[st].name);
	c->state = st;
	if (c->conn != NULL && smtpc_states[st].timeout != 0)
		conn_set_timeout(c->conn, smtpc_states[st].timeout);
}

static void
smtpc_notify(struct smtpc *c, enum smtpc_notify what)
{
	c->notify |= what;
	event_active(c->notify_ev, EV_TIMEOUT, 0);
}

/* Runs one callback per turn: the caller may free us inside it. */
static void
smtpc_on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_txn *t;

	if (c->notify & SMTPC_N_READY) {
		c->notify &= ~(unsigned)SMTPC_N_READY;
		if (c->notify != 0)
			event_active(c->notify_ev, EV_TIMEOUT, 0);
		c->ops->on_ready(c->arg);
	} else if (c->notify & SMTPC_N_TXN) {
		c->notify &= ~(unsigned)SMTPC_N_TXN;
		t = c->txn;
		c->txn = NULL;
		c->txn_done = false;
		if (c->notify != 0)
			event_active(c->notify_ev, EV_TIMEOUT, 0);
		c->ops->on_txn_done(c->arg, t);
	} else if (c->notify & SMTPC_N_CLOSE) {
		c->notify = 0;
		c->close_told = true;
		conn_free(&c->conn);
		c->ops->on_close(c->arg, &c->why, c->tls_failed);
	}
}

/* The transaction's internals; results stay with the caller. */
static void
smtpc_txn_reset(struct smtpc *c)
{
	x_free(&c->sent);
	x_free(&c->accepted);
	x_free(&c->chunk);
	c->nsent = c->nreplied = c->naccepted = 0;
	c->mail_failed = c->discard = c->pipelined = c->bdat = false;
}

/* Every recipient without a result yet gets r. */
static void
smtpc_txn_fill(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->txn->nrcpts; i++)
		if (c->txn->results[i].code == 0)
			smtpc_reply_copy(&c->txn->results[i], r);
}

/* Recipients the peer accepted get the reply to the data. */
static void
smtpc_txn_fill_accepted(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->txn->nrcpts; i++)
		if (c->accepted[i] && c->txn->results[i].code == 0)
			smtpc_reply_copy(&c->txn->results[i], r);
}

static void
smtpc_txn_done(struct smtpc *c)
{
	smtpc_txn_reset(c);
	c->txn_done = true;
	if (c->state != SMTPC_ST_CLOSED)
		smtpc_set_state(c, SMTPC_ST_READY);
	smtpc_notify(c, SMTPC_N_TXN);
}

/*
 * The end of the connection: a transaction in progress gets txn_r for
 * every recipient without a result (on_txn_done first), then on_close
 * gets why.
 */
static void
smtpc_close(struct smtpc *c, const struct smtpc_reply *why,
    const struct smtpc_reply *txn_r, bool tls_failed)
{
	if (c->state == SMTPC_ST_CLOSED)
		return;
	log_debug("smtpc %s closing: %s", c->peer, why->text);
	smtpc_set_state(c, SMTPC_ST_CLOSED);
	if (c->txn != NULL && !c->txn_done) {
		smtpc_txn_fill(c, txn_r);
		smtpc_txn_done(c);
	}
	smtpc_reply_copy(&c->why, why);
	c->tls_failed = tls_failed;
	if (c->conn != NULL)
		conn_pause_read(c->conn);
	smtpc_notify(c, SMTPC_N_CLOSE);
}

static void
smtpc_fail(struct smtpc *c, const struct smtpc_reply *r, bool tls_failed)
{
	smtpc_close(c, r, r, tls_failed);
}

static void MF_PRINTF(4, 5)
smtpc_fail_make(struct smtpc *c, int code, const char *status,
    const char *fmt, ...)
{
	struct smtpc_reply r = { 0 };
	char msg[SMTPC_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	smtpc_reply_make(&r, code, status, "%s", msg);
	smtpc_fail(c, &r, false);
	smtpc_reply_free(&r);
}

static void
smtpc_protocol_error(struct smtpc *c, const char *what)
{
	smtpc_fail_make(c, 451, "4.5.0", "protocol error from %s while %s: "
	    "%s", c->peer, smtpc_states[c->state].doing, what);
}

/* ---- sending ---- */

static void MF_PRINTF(2, 3)
smtpc_cmd(struct smtpc *c, const char *fmt, ...)
{
	char line[SMTPC_CMD_MAX], esc[LOG_ESCAPE_BUF];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		panic("smtpc command too long");
	log_debug("smtpc %s > %s", c->peer, log_escape(line, (size_t)n, esc));
	line[n++] = '\r';
	line[n++] = '\n';
	conn_write(c->conn, line, (size_t)n);
}

/* A path we may put in MAIL or RCPT: bounded, no control characters
 * (CR LF would smuggle commands). */
static bool
smtpc_path_ok(const char *s)
{
	size_t len = strlen(s);

	if (len > SMTPC_PATH_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ---- greeting, EHLO, STARTTLS, AUTH ---- */

/* One EHLO keyword line (RFC 5321 §4.1.1.1) into e. */
static void
smtpc_ehlo_line(struct smtpc_ext *e, const char *text)
{
	char kw[SMTPC_LINE_MAX + 1], *arg, *tok, *save;

	str_lcpy(kw, text, sizeof(kw));
	arg = kw + strcspn(kw, " =");
	if (*arg != '\0')
		*arg++ = '\0';
	if (str_case_eq(kw, "PIPELINING"))
		e->pipelining = true;
	else if (str_case_eq(kw, "8BITMIME"))
		e->eightbit = true;
	else if (str_case_eq(kw, "SMTPUTF8"))
		e->smtputf8 = true;
	else if (str_case_eq(kw, "STARTTLS"))
		e->starttls = true;
	else if (str_case_eq(kw, "CHUNKING"))
		e->chunking = true;
	else if (str_case_eq(kw, "BINARYMIME"))
		e->binarymime = true;
	else if (str_case_eq(kw, "ENHANCEDSTATUSCODES"))
		e->enhanced = true;
	else if (str_case_eq(kw, "SIZE")) {
		/* RFC 1870 §4: no number or 0 means no fixed limit */
		e->size = true;
		if (str_to_u64(str_trim(arg), 0, UINT64_MAX, &e->size_max) < 0)
			e->size_max = 0;
	} else if (str_case_eq(kw, "AUTH")) {
		/* "AUTH=PLAIN LOGIN" is the pre-RFC 2554 form, same list */
		e->auth = true;
		for (tok = strtok_r(arg, " ", &save); tok != NULL;
		    tok = strtok_r(NULL, " ", &save)) {
			if (str_case_eq(tok, "PLAIN"))
				e->auth_plain = true;
			else if (str_case_eq(tok, "LOGIN"))
				e->auth_login = true;
		}
	}
}

static void
smtpc_ehlo(struct smtpc *c)
{
	memset(&c->ext_new, 0, sizeof(c->ext_new));
	smtpc_cmd(c, "EHLO %s", c->helo);
	smtpc_set_state(c, SMTPC_ST_EHLO);
}

static void
smtpc_ready(struct smtpc *c)
{
	smtpc_set_state(c, SMTPC_ST_READY);
	smtpc_notify(c, SMTPC_N_READY);
}

static void
smtpc_on_greeting(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 220)
		smtpc_ehlo(c);
	else if (r->code >= 400)
		smtpc_fail(c, r, false);
	else
		smtpc_protocol_error(c, "greeting is not 220");
}

static void
smtpc_on_ehlo(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		if (c->state == SMTPC_ST_EHLO)
			c->ext = c->ext_new;
		else
			memset(&c->ext, 0, sizeof(c->ext));
		smtpc_after_hello(c);
	} else if (c->state == SMTPC_ST_EHLO && r->code / 100 == 5) {
		/* RFC 5321 §3.2: an old server; no extensions then */
		smtpc_cmd(c, "HELO %s", c->helo);
		smtpc_set_state(c, SMTPC_ST_HELO);
	} else {
		smtpc_fail(c, r, false);
	}
}

/* Starts STARTTLS when the mode wants it; true when it did (or the
 * connection failed because TLS is required). */
static bool
smtpc_want_tls(struct smtpc *c)
{
	switch (c->tls_mode) {
	case SMTPC_TLS_NONE:
	case SMTPC_TLS_IMPLICIT:
		return false;
	case SMTPC_TLS_MAY:
		if (!c->ext.starttls || c->tls_ctx == NULL ||
		    c->starttls_refused)
			return false;
		break;
	case SMTPC_TLS_STARTTLS:
		if (!c->ext.starttls) {
			smtpc_fail_make(c, 451, "4.7.4", "STARTTLS required "
			    "but not offered by peer %s", c->peer);
			return true;
		}
		if (c->tls_ctx == NULL) {
			smtpc_fail_make(c, 451, "4.7.5", "STARTTLS required "
			    "but no TLS client context");
			return true;
		}
		break;
	}
	smtpc_cmd(c, "STARTTLS");
	smtpc_set_state(c, SMTPC_ST_STARTTLS);
	return true;
}

static void
smtpc_on_starttls(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		if (conn_starttls_client(c->conn, c->tls_ctx, c->peer_name,
		    c->verify) < 0) {
			struct smtpc_reply f = { 0 };
			smtpc_reply_make(&f, 451, "4.7.5", "TLS setup for %s "
			    "failed", c->peer);
			smtpc_fail(c, &f, true);
			smtpc_reply_free(&f);
			return;
		}
		smtpc_set_state(c, SMTPC_ST_TLS);
	} else if (c->tls_mode == SMTPC_TLS_MAY) {
		/* opportunistic: go on in plaintext */
		c->starttls_refused = true;
		smtpc_after_hello(c);
	} else {
		smtpc_fail_make(c, 451, "4.7.4", "STARTTLS required but "
		    "refused by peer %s: %s", c->peer, r->text);
	}
}

/* AUTH PLAIN with initial response (RFC 4616, RFC 4954 §4). */
static void
smtpc_auth_plain(struct smtpc *c)
{
	size_t ulen = strlen(c->auth_user), plen = strlen(c->auth_password);
	size_t rlen = ulen + plen + 2;
	char *raw = xmalloc(rlen), *b64 = xmalloc(4 * ((rlen + 2) / 3) + 1);
	size_t blen;

	memcpy(raw + 1, c->auth_user, ulen);
	memcpy(raw + 2 + ulen, c->auth_password, plen);
	blen = base64_encode(raw, rlen, b64);
	log_debug("smtpc %s > AUTH PLAIN (credentials)", c->peer);
	conn_write(c->conn, "AUTH PLAIN ", 11);
	conn_write(c->conn, b64, blen);
	conn_write(c->conn, "\r\n", 2);
	x_wipe(raw, rlen);
	x_wipe(b64, blen);
	free(raw);
	free(b64);
	smtpc_set_state(c, SMTPC_ST_AUTH);
}

/* One base64 line of a LOGIN exchange. */
static void
smtpc_auth_login_line(struct smtpc *c, const char *s)
{
	size_t len = strlen(s);
	char *b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	size_t blen = base64_encode(s, len, b64);

	log_debug("smtpc %s > (credentials)", c->peer);
	conn_write(c->conn, b64, blen);
	conn_write(c->conn, "\r\n", 2);
	x_wipe(b64, blen);
	free(b64);
}

static void
smtpc_auth(struct smtpc *c)
{
	if (!c->tls_on)
		smtpc_fail_make(c, 451, "4.7.0", "not sending AUTH "
		    "credentials to %s without TLS", c->peer);
	else if (!c->ext.auth)
		smtpc_fail_make(c, 451, "4.7.0", "relay offers no AUTH (%s)",
		    c->peer);
	else if (c->ext.auth_plain)
		smtpc_auth_plain(c);
	else if (c->ext.auth_login) {
		smtpc_cmd(c, "AUTH LOGIN");
		smtpc_set_state(c, SMTPC_ST_AUTH_USER);
	} else
		smtpc_fail_make(c, 451, "4.7.0", "relay offers no AUTH "
		    "mechanism we support (PLAIN, LOGIN) (%s)", c->peer);
}

static void
smtpc_on_auth(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_ready(c);
	} else if (r->code == 334 && c->state == SMTPC_ST_AUTH_USER) {
		smtpc_auth_login_line(c, c->auth_user);
		smtpc_set_state(c, SMTPC_ST_AUTH_PASS);
	} else if (r->code == 334 && c->state == SMTPC_ST_AUTH_PASS) {
		smtpc_auth_login_line(c, c->auth_password);
		smtpc_set_state(c, SMTPC_ST_AUTH);
	} else if (r->code / 100 == 3) {
		smtpc_protocol_error(c, "unexpected AUTH challenge");
	} else {
		smtpc_fail(c, r, false);
	}
}

static void
smtpc_after_hello(struct smtpc *c)
{
	if (!c->tls_on && smtpc_want_tls(c))
		return;
	if (c->auth_user != NULL)
		smtpc_auth(c);
	else
		smtpc_ready(c);
}

/* ---- transactions ---- */

static void
smtpc_rset(struct smtpc *c)
{
	struct smtpc_reply r = { 0 };

	/* every recipient has its result by now; be sure */
	smtpc_reply_make(&r, 451, "4.5.0", "no reply from %s", c->peer);
	smtpc_txn_fill(c, &r);
	smtpc_reply_free(&r);
	smtpc_cmd(c, "RSET");
	smtpc_set_state(c, SMTPC_ST_RSET);
}

static void
smtpc_send_rcpt(struct smtpc *c, size_t k)
{
	smtpc_cmd(c, "RCPT TO:<%s>", c->txn->rcpts[c->sent[k]]);
}

static void
smtpc_send_mail(struct smtpc *c)
{
	const struct smtpc_txn *t = c->txn;
	char size[32] = "";
	const char *body = "";

	if (c->ext.size)
		snprintf(size, sizeof(size), " SIZE=%llu",
		    (unsigned long long)t->size);
	if (c->bdat)
		body = " BODY=BINARYMIME";
	else if (t->body != 0 && c->ext.eightbit)
		body = " BODY=8BITMIME";
	smtpc_cmd(c, "MAIL FROM:<%s>%s%s%s", t->sender, size, body,
	    t->smtputf8 ? " SMTPUTF8" : "");
	smtpc_set_state(c, SMTPC_ST_MAIL);
	if (!c->pipelined)
		return;
	/* RFC 2920 §3.1: MAIL, the RCPTs and DATA in one group */
	for (size_t k = 0; k < c->nsent; k++)
		smtpc_send_rcpt(c, k);
	if (!c->bdat)
		smtpc_cmd(c, "DATA");
}

/* Refusals before anything is sent; true when the txn is done. */
static bool
smtpc_txn_refuse(struct smtpc *c)
{
	const struct smtpc_txn *t = c->txn;
	struct smtpc_reply r = { 0 };

	if (t->smtputf8 && !c->ext.smtputf8)
		smtpc_reply_make(&r, 550, "5.6.7", "%s does not support "
		    "SMTPUTF8 (RFC 6531)", c->peer);
	else if (c->ext.size_max != 0 && t->size > c->ext.size_max)
		smtpc_reply_make(&r, 552, "5.3.4", "message size %llu "
		    "exceeds the size limit %llu of %s",
		    (unsigned long long)t->size,
		    (unsigned long long)c->ext.size_max, c->peer);
	else if (!smtpc_path_ok(t->sender))
		smtpc_reply_make(&r, 550, "5.1.7", "bad sender address");
	else
		return false;
	smtpc_txn_fill(c, &r);
	smtpc_reply_free(&r);
	smtpc_txn_done(c);
	return true;
}

void
smtpc_send(struct smtpc *c, struct smtpc_txn *t)
{
	struct smtpc_reply r = { 0 };

	xassert(c->txn == NULL && !c->close_told && t->nrcpts > 0);
	xassert(c->state == SMTPC_ST_READY || c->state == SMTPC_ST_CLOSED);
	c->txn = t;
	t->results = xcalloc(t->nrcpts, sizeof(*t->results));
	smtpc_txn_reset(c);
	if (c->state == SMTPC_ST_CLOSED) {
		/* lost before the caller heard of it */
		smtpc_txn_fill(c, &c->why);
		smtpc_txn_done(c);
		return;
	}
	if (smtpc_txn_refuse(c))
		return;
	c->sent = xcalloc(t->nrcpts, sizeof(*c->sent));
	c->accepted = xcalloc(t->nrcpts, sizeof(*c->accepted));
	smtpc_reply_make(&r, 550, "5.1.3", "bad recipient address");
	for (size_t i = 0; i < t->nrcpts; i++) {
		if (smtpc_path_ok(t->rcpts[i]))
			c->sent[c->nsent++] = i;
		else
			smtpc_reply_copy(&t->results[i], &r);
	}
	smtpc_reply_free(&r);
	if (c->nsent == 0) {
		smtpc_txn_done(c);
		return;
	}
	c->bdat = t->body == 2 && c->ext.binarymime && c->ext.chunking;
	c->pipelined = c->ext.pipelining;
	smtpc_send_mail(c);
}

static void
smtpc_on_mail(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_set_state(c, SMTPC_ST_RCPT);
		if (!c->pipelined)
			smtpc_send_rcpt(c, 0);
		return;
	}
	c->mail_failed = true;
	smtpc_txn_fill(c, r);
	if (c->pipelined)
		smtpc_set_state(c, SMTPC_ST_RCPT);	/* replies still due */
	else
		smtpc_rset(c);
}

static void smtpc_bdat_next(struct smtpc *c);

static void
smtpc_body_start(struct smtpc *c)
{
	c->off = c->body_len = 0;
	c->bol = true;
	c->tail[0] = c->tail[1] = '\0';
	c->prefix_done = c->txn->prefix == NULL || c->txn->prefix_len == 0;
	c->chunk = xmalloc(SMTPC_CHUNK);
	if (c->bdat) {
		smtpc_set_state(c, SMTPC_ST_BDAT);
		smtpc_bdat_next(c);
	} else {
		smtpc_set_state(c, SMTPC_ST_BODY);
		smtpc_body_pump(c);
	}
}

static void
smtpc_on_rcpt(struct smtpc *c, const struct smtpc_reply *r)
{
	size_t i = c->sent[c->nreplied++];

	if (!c->mail_failed) {
		if (r->code / 100 == 2) {
			c->accepted[i] = true;
			c->naccepted++;
		} else {
			smtpc_reply_copy(&c->txn->results[i], r);
		}
	}
	if (c->nreplied < c->nsent) {
		if (!c->pipelined)
			smtpc_send_rcpt(c, c->nreplied);
	} else if (c->pipelined && !c->bdat) {
		smtpc_set_state(c, SMTPC_ST_DATA);	/* DATA was sent */
	} else if (c->mail_failed || c->naccepted == 0) {
		smtpc_rset(c);
	} else if (c->bdat) {
		smtpc_body_start(c);
	} else {
		smtpc_cmd(c, "DATA");
		smtpc_set_state(c, SMTPC_ST_DATA);
	}
}

static void
smtpc_on_data(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 354 && (c->mail_failed || c->naccepted == 0)) {
		/* RFC 2920 §3.1: DATA accepted without recipients: an
		 * empty message, whose reply does not count */
		c->discard = true;
		conn_write(c->conn, ".\r\n", 3);
		smtpc_set_state(c, SMTPC_ST_DOT);
	} else if (r->code == 354) {
		smtpc_body_start(c);
	} else {
		if (!c->mail_failed)
			smtpc_txn_fill_accepted(c, r);
		smtpc_rset(c);
	}
}

/* The final reply (after "." or BDAT LAST) goes to every accepted
 * recipient. */
static void
smtpc_on_dot(struct smtpc *c, const struct smtpc_reply *r)
{
	if (!c->discard)
		smtpc_txn_fill_accepted(c, r);
	if (r->code / 100 == 2 && !c->discard)
		smtpc_txn_done(c);
	else
		smtpc_rset(c);
}

static void
smtpc_on_rset(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_txn_done(c);
		return;
	}
	/* A peer that refuses RSET is in no state for more mail. */
	smtpc_fail(c, r, false);
}

/* on_close gets 221 after QUIT whatever the peer said: we are done. */
static void
smtpc_on_quit(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_reply q = { 0 };

	if (r->code == 221) {
		smtpc_fail(c, r, false);
		return;
	}
	smtpc_reply_make(&q, 221, "2.0.0", "QUIT answered with: %s", r->text);
	smtpc_fail(c, &q, false);
	smtpc_reply_free(&q);
}

/* ---- the message body ---- */

static void
smtpc_read_error(struct smtpc *c, int err)
{
	/* Mid-DATA there is no clean way out: "." would send a cut
	 * message.  Close instead. */
	log_warnx("smtpc %s: reading the spool file: %s", c->peer,
	    strerror(err));
	smtpc_fail_make(c, 451, "4.3.0", "error reading the queued message "
	    "(%s)", strerror(err));
}

/* Reads the next chunk at c->off; -1 on error (handled). */
static ssize_t
smtpc_read_chunk(struct smtpc *c)
{
	ssize_t n;

	do {
		n = pread(c->txn->fd, c->chunk, SMTPC_CHUNK, (off_t)c->off);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		smtpc_read_error(c, errno);
	return n;
}

/* RFC 5321 §4.5.2: a line starting with "." gets one more; line starts
 * are tracked across chunks. */
static void
smtpc_stuff(struct smtpc *c, const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (c->bol && p[i] == '.') {
			conn_write(c->conn, p + start, i - start);
			conn_write(c->conn, ".", 1);
			start = i;
		}
		c->bol = p[i] == '\n';
	}
	conn_write(c->conn, p + start, n - start);
	if (n >= 2) {
		c->tail[0] = p[n - 2];
		c->tail[1] = p[n - 1];
	} else if (n == 1) {
		c->tail[0] = c->tail[1];
		c->tail[1] = p[0];
	}
	c->body_len += n;
}

static void
smtpc_body_end(struct smtpc *c)
{
	/* the data must end in CRLF before the terminator */
	if (c->body_len > 0 && (c->tail[0] != '\r' || c->tail[1] != '\n'))
		conn_write(c->conn, "\r\n", 2);
	conn_write(c->conn, ".\r\n", 3);
	log_debug("smtpc %s > (%llu bytes) .", c->peer,
	    (unsigned long long)c->body_len);
	smtpc_set_state(c, SMTPC_ST_DOT);
}

/* Writes while the output is below SMTPC_OUT_HIGH, then waits for it
 * to drain (on_drained calls again). */
static void
smtpc_body_pump(struct smtpc *c)
{
	ssize_t n;

	while (c->state == SMTPC_ST_BODY &&
	    conn_output_len(c->conn) < SMTPC_OUT_HIGH) {
		if (!c->prefix_done) {
			smtpc_stuff(c, c->txn->prefix, c->txn->prefix_len);
			c->prefix_done = true;
			continue;
		}
		if ((n = smtpc_read_chunk(c)) < 0)
			return;
		if (n == 0) {
			smtpc_body_end(c);
			return;
		}
		smtpc_stuff(c, c->chunk, (size_t)n);
		c->off += (uint64_t)n;
	}
	if (c->state == SMTPC_ST_BODY)
		conn_notify_drained(c->conn);
}

/* RFC 3030 §2: one BDAT chunk per reply, the last one marked LAST. */
static void
smtpc_bdat_next(struct smtpc *c)
{
	ssize_t n;
	bool last;

	if (!c->prefix_done) {
		c->prefix_done = true;
		smtpc_cmd(c, "BDAT %zu", c->txn->prefix_len);
		conn_write(c->conn, c->txn->prefix, c->txn->prefix_len);
		return;
	}
	if ((n = smtpc_read_chunk(c)) < 0)
		return;
	/* a short read of a regular file is its end */
	last = (size_t)n < SMTPC_CHUNK;
	smtpc_cmd(c, "BDAT %zd%s", n, last ? " LAST" : "");
	conn_write(c->conn, c->chunk, (size_t)n);
	c->off += (uint64_t)n;
	c->body_len += (uint64_t)n;
	if (last)
		smtpc_set_state(c, SMTPC_ST_DOT);
}

static void
smtpc_on_bdat(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_bdat_next(c);
		return;
	}
	smtpc_txn_fill_accepted(c, r);
	smtpc_rset(c);
}

/* ---- reading replies ---- */

/* Whether a 3xx reply is an answer in this state. */
static bool
smtpc_takes_3xx(enum smtpc_state st)
{
	return st == SMTPC_ST_DATA || st == SMTPC_ST_AUTH ||
	    st == SMTPC_ST_AUTH_USER || st == SMTPC_ST_AUTH_PASS;
}

static void
smtpc_dispatch(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 421 && c->state != SMTPC_ST_QUIT) {
		/* RFC 5321 §3.8: the peer is closing */
		smtpc_fail(c, r, false);
		return;
	}
	if (r->code / 100 == 3 && !smtpc_takes_3xx(c->state)) {
		smtpc_protocol_error(c, "unexpected 3xx reply");
		return;
	}
	switch (c->state) {
	case SMTPC_ST_GREETING:
		smtpc_on_greeting(c, r);
		break;
	case SMTPC_ST_EHLO:
	case SMTPC_ST_HELO:
		smtpc_on_ehlo(c, r);
		break;
	case SMTPC_ST_STARTTLS:
		smtpc_on_starttls(c, r);
		break;
	case SMTPC_ST_AUTH:
	case SMTPC_ST_AUTH_USER:
	case SMTPC_ST_AUTH_PASS:
		smtpc_on_auth(c, r);
		break;
	case SMTPC_ST_MAIL:
		smtpc_on_mail(c, r);
		break;
	case SMTPC_ST_RCPT:
		smtpc_on_rcpt(c, r);
		break;
	case SMTPC_ST_DATA:
		smtpc_on_data(c, r);
		break;
	case SMTPC_ST_BDAT:
		smtpc_on_bdat(c, r);
		break;
	case SMTPC_ST_DOT:
		smtpc_on_dot(c, r);
		break;
	case SMTPC_ST_RSET:
		smtpc_on_rset(c, r);
		break;
	case SMTPC_ST_QUIT:
		smtpc_on_quit(c, r);
		break;
	default:
		/* READY, BODY: nothing was asked */
		if (r->code >= 400)
			smtpc_fail(c, r, false);
		else
			smtpc_protocol_error(c, "reply without a command");
		break;
	}
}

/*
 * One reply line into the reply being read: 1 when the reply is
 * complete, 0 when more lines follow, -1 on a protocol error (*err_r).
 */
static int
smtpc_take_line(struct smtpc *c, size_t len, const char **err_r)
{
	char esc[LOG_ESCAPE_BUF];
	const char *text;
	size_t room;
	bool last;
	int code;

	log_debug("smtpc %s < %s", c->peer, log_escape(c->line, len, esc));
	if (smtpc_parse_line(c->line, len, &code, &last, &text) < 0) {
		*err_r = "malformed reply line";
		return -1;
	}
	if (c->rlines == 0) {
		c->rcode = code;
		buf_reset(&c->rtext);
		if (!smtpc_parse_status(code, text, c->rstatus))
			snprintf(c->rstatus, sizeof(c->rstatus), "%d.0.0",
			    code / 100);
	} else if (code != c->rcode) {
		*err_r = "inconsistent codes in a multi-line reply";
		return -1;
	}
	if (++c->rlines > SMTPC_REPLY_LINES_MAX) {
		*err_r = "too many lines in a reply";
		return -1;
	}
	if (c->state == SMTPC_ST_EHLO && code == 250 && c->rlines > 1)
		smtpc_ehlo_line(&c->ext_new, text);
	room = SMTPC_TEXT_MAX - c->rtext.len;
	if (c->rtext.len > 0 && room > 1) {
		buf_addc(&c->rtext, ' ');
		room--;
	}
	buf_add(&c->rtext, c->line, len < room ? len : room);
	if (!last)
		return 0;
	c->rlines = 0;
	return 1;
}

static bool
smtpc_reading(const struct smtpc *c)
{
	return c->state != SMTPC_ST_CONNECT && c->state != SMTPC_ST_TLS &&
	    c->state != SMTPC_ST_CLOSED;
}

static void
smtpc_on_read(void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_reply r;
	const char *err;
	size_t len;
	bool bare;
	int rc;

	while (smtpc_reading(c)) {
		switch (conn_read_line(c->conn, c->line, sizeof(c->line),
		    SMTPC_LINE_MAX, &len, &bare)) {
		case LINE_NEED_MORE:
			return;
		case LINE_TOO_LONG:
			smtpc_protocol_error(c, "reply line too long");
			return;
		case LINE_OK:
			break;
		}
		if ((rc = smtpc_take_line(c, len, &err)) < 0) {
			smtpc_protocol_error(c, err);
			return;
		}
		if (rc == 0)
			continue;
		r.code = c->rcode;
		str_lcpy(r.status, c->rstatus, sizeof(r.status));
		r.text = c->rtext.data;
		smtpc_dispatch(c, &r);
	}
}

/* ---- conn callbacks ---- */

static void
smtpc_record_tls(struct smtpc *c)
{
	const char *v = conn_tls_version(c->conn);
	const char *ci = conn_tls_cipher(c->conn);

	c->tls_on = true;
	c->tls_verified = conn_tls_verified(c->conn);
	str_lcpy(c->tls_version, v != NULL ? v : "TLS", sizeof(c->tls_version));
	str_lcpy(c->tls_cipher, ci != NULL ? ci : "", sizeof(c->tls_cipher));
	log_debug("smtpc %s tls %s %s%s", c->peer, c->tls_version,
	    c->tls_cipher, c->tls_verified ? " verified" : " unverified");
}

static void
smtpc_on_conn_ready(void *arg)
{
	struct smtpc *c = arg;

	if (c->state != SMTPC_ST_CONNECT)
		return;
	if (conn_is_tls(c->conn))
		smtpc_record_tls(c);
	smtpc_set_state(c, SMTPC_ST_GREETING);
}

static void
smtpc_on_tls(void *arg)
{
	struct smtpc *c = arg;

	if (c->state != SMTPC_ST_TLS)
		return;
	smtpc_record_tls(c);
	/* RFC 3207 §4.2: forget what we knew, ask again */
	memset(&c->ext, 0, sizeof(c->ext));
	smtpc_ehlo(c);
}

static void
smtpc_on_drained(void *arg)
{
	struct smtpc *c = arg;

	if (c->state == SMTPC_ST_BODY)
		smtpc_body_pump(c);
}

static void
smtpc_on_conn_close(void *arg, const char *why)
{
	struct smtpc *c = arg;
	struct smtpc_reply r = { 0 };
	bool tls = false;

	switch (c->state) {
	case SMTPC_ST_CLOSED:
		return;
	case SMTPC_ST_CONNECT:
		if ((tls = strncmp(why, "tls:", 4) == 0))
			smtpc_reply_make(&r, 451, "4.7.5", "TLS handshake with "
			    "%s failed: %s", c->peer,
			    why + 4 + (why[4] == ' '));
		else
			smtpc_reply_make(&r, 451, "4.4.1", "connect to %s: %s",
			    c->peer, strncmp(why, "connect: ", 9) == 0 ?
			    why + 9 : why);
		break;
	case SMTPC_ST_TLS:
		tls = true;
		smtpc_reply_make(&r, 451, "4.7.5", "TLS handshake with %s "
		    "failed: %s", c->peer, strncmp(why, "tls: ", 5) == 0 ?
		    why + 5 : why);
		break;
	case SMTPC_ST_QUIT:
		smtpc_reply_make(&r, 221, "2.0.0", "%s closed the connection "
		    "after QUIT", c->peer);
		break;
	default:
		if (strcmp(why, "timeout") == 0)
			smtpc_reply_make(&r, 451, "4.4.2", "conversation with "
			    "%s timed out while %s", c->peer,
			    smtpc_states[c->state].doing);
		else
			smtpc_reply_make(&r, 451, "4.4.2", "lost connection "
			    "with %s while %s", c->peer,
			    smtpc_states[c->state].doing);
		break;
	}
	smtpc_fail(c, &r, tls);
	smtpc_reply_free(&r);
}

/* ---- the public functions ---- */

/* "name[addr]" for made-up replies (logs, DSNs): the name comes from
 * DNS, so anything but printable ASCII becomes '?'. */
static char *
smtpc_peer_text(const char *name, const char *addr)
{
	char *s = xasprintf("%s[%s]", name, addr);

	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return s;
}

struct smtpc *
smtpc_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t addr_len, const struct smtpc_params *p,
    const struct smtpc_ops *ops, void *arg)
{
	struct smtpc *c = xmalloc(sizeof(*c));
	bool implicit = p->tls == SMTPC_TLS_IMPLICIT;

	c->ops = ops;
	c->arg = arg;
	c->helo = xstrdup(p->helo);
	c->peer_name = xstrdup(p->peer_name != NULL ? p->peer_name : "?");
	if (p->auth_user != NULL) {
		c->auth_user = xstrdup(p->auth_user);
		c->auth_password = xstrdup(p->auth_password != NULL ?
		    p->auth_password : "");
	}
	c->tls_mode = p->tls;
	c->tls_ctx = p->tls_ctx;
	c->verify = p->verify;
	buf_init(&c->rtext, 0);
	c->notify_ev = event_new(base, -1, 0, smtpc_on_notify, c);
	if (c->notify_ev == NULL)
		fatalx("event_new failed");
	c->state = SMTPC_ST_CONNECT;
	if (implicit && c->tls_ctx == NULL) {
		c->addr = xstrdup("?");
		c->peer = smtpc_peer_text(c->peer_name, "?");
		smtpc_fail_make(c, 451, "4.7.5", "implicit TLS without a TLS "
		    "client context");
		return c;
	}
	c->conn = conn_connect(base, addr, addr_len, p->connect_timeout,
	    implicit ? c->tls_ctx : NULL, c->peer_name, c->verify,
	    &smtpc_conn_ops, c);
	c->addr = xstrdup(conn_peer_addr(c->conn));
	c->peer = smtpc_peer_text(c->peer_name, c->addr);
	return c;
}

void
smtpc_quit(struct smtpc *c)
{
	struct smtpc_reply why = { 0 }, txn = { 0 };

	if (c->state == SMTPC_ST_CLOSED || c->state == SMTPC_ST_QUIT)
		return;
	if (c->state == SMTPC_ST_READY) {
		smtpc_cmd(c, "QUIT");
		smtpc_set_state(c, SMTPC_ST_QUIT);
		return;
	}
	/* not idle: no QUIT to send, just go */
	smtpc_reply_make(&txn, 451, "4.4.2", "connection with %s closed "
	    "while %s", c->peer, smtpc_states[c->state].doing);
	smtpc_reply_make(&why, 221, "2.0.0", "closed without QUIT while %s",
	    smtpc_states[c->state].doing);
	smtpc_close(c, &why, &txn, false);
	smtpc_reply_free(&why);
	smtpc_reply_free(&txn);
}

void
smtpc_free(struct smtpc **cp)
{
	struct smtpc *c = *cp;

	if (c == NULL)
		return;
	conn_free(&c->conn);
	event_free(c->notify_ev);
	smtpc_txn_reset(c);
	if (c->auth_password != NULL)
		x_wipe(c->auth_password, strlen(c->auth_password));
	free(c->auth_password);
	free(c->auth_user);
	free(c->helo);
	free(c->peer_name);
	free(c->peer);
	free(c->addr);
	buf_free(&c->rtext);
	smtpc_reply_free(&c->why);
	x_wipe(c->line, sizeof(c->line));
	free(c);
	*cp = NULL;
}

const char *
smtpc_tls_version(const struct smtpc *c)
{
	return c->tls_on ? c->tls_version : NULL;
}

const char *
smtpc_tls_cipher(const struct smtpc *c)
{
	return c->tls_on ? c->tls_cipher : NULL;
}

bool
smtpc_tls_verified(const struct smtpc *c)
{
	return c->tls_on && c->tls_verified;
}

const char *
smtpc_peer_addr(const struct smtpc *c)
{
	return c->addr;
}

uint64_t
smtpc_peer_size(const struct smtpc *c)
{
	return c->ext.size_max;
}
