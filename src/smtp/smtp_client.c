/*
 * smtp_client.c - the outbound SMTP client (smtp.h): one connection to
 * one MX or relay as an explicit state machine over a struct conn.  This
 * file: connecting, greeting, EHLO (HELO when refused), STARTTLS (RFC
 * 3207), AUTH PLAIN or LOGIN (RFC 4954), reading and dispatching replies,
 * closing; smtp_client_txn.c sends the transactions (MAIL, RCPT, DATA or
 * BDAT, RFC 5321, 1870, 6152, 6531, 3030, pipelined when the peer offers
 * it, RFC 2920) and QUIT.  Only smtpc_set_state() assigns the state;
 * every state has its RFC 5321 §4.5.3.2 timeout.  The caller's callbacks
 * always run from a deferred net_timer, never from inside conn callbacks
 * or our own functions, so it may free the client in any of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_client_private.h"

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

/* ---- replies ---- */

void
smtpc_reply_free(struct smtpc_reply *r)
{
	x_free(&r->text);
	r->code = 0;
	r->status[0] = '\0';
}

void
smtpc_reply_copy(struct smtpc_reply *dst, const struct smtpc_reply *src)
{
	smtpc_reply_free(dst);
	dst->code = src->code;
	str_lcpy(dst->status, src->status, sizeof(dst->status));
	dst->text = xstrdup(src->text != NULL ? src->text : "");
}

/* A reply we make up: text "<code> <status> <message>". */
void
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

/* ---- state, callbacks, closing ---- */

/* The state's RFC 5321 timeout, or the caller's for commands (300 s in
 * the table) and for the final reply (600 s). */
static unsigned
smtpc_state_timeout(const struct smtpc *c, enum smtpc_state st)
{
	unsigned t = smtpc_states[st].timeout;

	if (st == SMTPC_ST_DOT && c->data_done_timeout != 0)
		return c->data_done_timeout;
	if (t == 300 && c->command_timeout != 0)
		return c->command_timeout;
	return t;
}

void
smtpc_set_state(struct smtpc *c, enum smtpc_state st)
{
	if (c->state == st)
		return;
	log_debug("smtpc %s state %s -> %s", c->peer,
	    smtpc_states[c->state].name, smtpc_states[st].name);
	c->state = st;
	if (c->conn != NULL && smtpc_states[st].timeout != 0)
		conn_set_timeout(c->conn, smtpc_state_timeout(c, st));
}

const char *
smtpc_doing(const struct smtpc *c)
{
	return smtpc_states[c->state].doing;
}

void
smtpc_notify(struct smtpc *c, enum smtpc_notify what)
{
	c->notify |= what;
	net_timer_add(c->notify_timer, 0);
}

/* Runs one callback per turn: the caller may free us inside it. */
static void
smtpc_on_notify(void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_txn *t;

	if (c->notify & SMTPC_N_READY) {
		c->notify &= ~(unsigned)SMTPC_N_READY;
		if (c->notify != 0)
			net_timer_add(c->notify_timer, 0);
		c->ops->on_ready(c->arg);
	} else if (c->notify & SMTPC_N_TXN) {
		c->notify &= ~(unsigned)SMTPC_N_TXN;
		t = c->txn;
		c->txn = NULL;
		c->txn_done = false;
		if (c->notify != 0)
			net_timer_add(c->notify_timer, 0);
		c->ops->on_txn_done(c->arg, t);
	} else if (c->notify & SMTPC_N_CLOSE) {
		c->notify = 0;
		c->close_told = true;
		conn_free(&c->conn);
		c->ops->on_close(c->arg, &c->why, c->tls_failed);
	}
}

/*
 * The end of the connection: a transaction in progress gets txn_r for
 * every recipient without a result (on_txn_done first), then on_close
 * gets why.
 */
void
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

void
smtpc_fail(struct smtpc *c, const struct smtpc_reply *r, bool tls_failed)
{
	smtpc_close(c, r, r, tls_failed);
}

void
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

void
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
	c->command_timeout = p->command_timeout;
	c->data_done_timeout = p->data_done_timeout;
	buf_init(&c->rtext, 0);
	c->notify_timer = net_timer_new(base, smtpc_on_notify, c);
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
smtpc_free(struct smtpc **cp)
{
	struct smtpc *c = *cp;

	if (c == NULL)
		return;
	conn_free(&c->conn);
	net_timer_free(&c->notify_timer);
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
