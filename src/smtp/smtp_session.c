/*
 * smtp_session.c - SMTP session plumbing: the per-worker server, the
 * session table (sessions are found again by id after pool work), state
 * changes, the reply functions and the input loop.  Commands live in
 * smtp_cmd.c (dispatch and policy), smtp_txn.c (MAIL/RCPT/DATA/BDAT) and
 * smtp_auth.c (SASL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp/smtp_private.h"

static const char *const smtp_state_names[] = {
	"connected", "helo", "ready", "mail", "rcpt", "data", "bdat",
	"bdat-wait", "auth", "busy", "tls", "closing",
};

static void smtp_on_ready(void *ctx);
static void smtp_on_read(void *ctx);
static void smtp_on_close(void *ctx, const char *why);
static void smtp_on_drained(void *ctx);
static void smtp_on_timeout(void *ctx);
static void smtp_on_tls(void *ctx);

static const struct conn_ops smtp_conn_ops = {
	.on_ready = smtp_on_ready,
	.on_read = smtp_on_read,
	.on_close = smtp_on_close,
	.on_drained = smtp_on_drained,
	.on_timeout = smtp_on_timeout,
	.on_tls = smtp_on_tls,
};

struct smtp_server *
smtp_server_new(struct event_base *base, const struct config *cfg,
    struct tls_ctx *tls, struct accounts *acc, struct lockout *lockout,
    struct queue_committer *qc, struct pool *pool)
{
	struct smtp_server *srv = xmalloc(sizeof(*srv));

	srv->base = base;
	srv->cfg = cfg;
	srv->tls = tls;
	srv->acc = acc;
	srv->lockout = lockout;
	srv->qc = qc;
	srv->pool = pool;
	srv->next_id = 1;
	srv->sessions = id_table_new();
	return srv;
}

static void smtp_session_free(struct smtp_session *s);

void
smtp_server_free(struct smtp_server **srvp)
{
	struct smtp_server *srv = *srvp;
	struct smtp_session *s;

	if (srv == NULL)
		return;
	while ((s = id_table_any(srv->sessions)) != NULL)
		smtp_session_free(s);
	id_table_free(&srv->sessions);
	free(srv);
	*srvp = NULL;
}

size_t
smtp_server_sessions(const struct smtp_server *srv)
{
	return id_table_count(srv->sessions);
}

struct smtp_session *
smtp_session_by_id(struct smtp_server *srv, uint64_t id)
{
	return id_table_get(srv->sessions, id);
}

bool
smtp_is_submission(const struct smtp_session *s)
{
	return s->kind == LISTENER_SUBMISSION ||
	    s->kind == LISTENER_SUBMISSIONS;
}

void
smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("%s smtp state %s -> %s", s->sid,
	    smtp_state_names[s->state], smtp_state_names[st]);
	s->state = st;
	if (st == SMTP_ST_CLOSING)
		conn_set_timeout(s->conn, 10);
	else if (st == SMTP_ST_DATA || st == SMTP_ST_BDAT ||
	    st == SMTP_ST_BDAT_WAIT)
		conn_set_timeout(s->conn, (unsigned)s->srv->cfg->data_timeout);
	else
		conn_set_timeout(s->conn, (unsigned)s->srv->cfg->timeout);
}

static void
smtp_vreply(struct smtp_session *s, const char *fmt, va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		panic("smtp reply too long");
	conn_write(s->conn, line, (size_t)n);
	conn_write(s->conn, "\r\n", 2);
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vreply(s, fmt, ap);
	va_end(ap);
}

void
smtp_close_after_reply(struct smtp_session *s)
{
	smtp_set_state(s, SMTP_ST_CLOSING);
	conn_pause_read(s->conn);
	conn_finish(s->conn);
}

void
smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	char esc[LOG_ESCAPE_BUF];
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", line);
	log_info("%s smtp reject client=%s reply=\"%s\"", s->sid,
	    conn_peer_addr(s->conn), log_escape(line, strlen(line), esc));
	if (++s->errors >= s->srv->cfg->max_errors &&
	    s->state != SMTP_ST_CLOSING) {
		smtp_reply(s, "421 4.7.0 %s Too many errors, closing",
		    s->srv->cfg->hostname);
		log_info("%s smtp too-many-errors client=%s", s->sid,
		    conn_peer_addr(s->conn));
		smtp_close_after_reply(s);
	}
}

void
smtp_reset_transaction(struct smtp_session *s)
{
	for (size_t i = 0; i < s->target_count; i++)
		free(s->rcpts[i]);
	x_free(&s->rcpts);
	x_free(&s->rcpt_local);
	s->target_count = 0;
	s->rcpt_count = 0;
	memset(&s->mail, 0, sizeof(s->mail));
	spool_msg_abort(&s->msg);
	if (s->data_active) {
		smtp_data_free(&s->data);
		s->data_active = false;
	}
	s->bdat_left = 0;
	s->bdat_last = false;
	s->bdat_failed = false;
}

static void
smtp_session_free(struct smtp_session *s)
{
	smtp_reset_transaction(s);
	id_table_del(s->srv->sessions, s->id);
	conn_free(&s->conn);
	if (s->auth_login_user != NULL)
		x_wipe(s->auth_login_user, strlen(s->auth_login_user));
	free(s->auth_login_user);
	free(s->auth_user);
	x_wipe(s->line, sizeof(s->line));
	free(s);
}

void
smtp_accept(struct smtp_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len)
{
	struct smtp_session *s = xmalloc(sizeof(*s));
	const struct config *cfg = srv->cfg;
	bool proxy = cfg->listen[kind].proxy_protocol;

	if (proxy && !cidr_list_match(&cfg->proxy_trusted, peer)) {
		/* A PROXY listener serves only its proxies: anyone else could
		 * claim any address. */
		char addr[64] = "?";
		struct conn *tmp = conn_new(srv->base, fd, peer, peer_len,
		    NULL, false, &smtp_conn_ops, NULL);
		if (tmp != NULL) {
			str_lcpy(addr, conn_peer_addr(tmp), sizeof(addr));
			conn_free(&tmp);
		}
		log_warnx("smtp refused client=%s listener=%s reason=\"not a "
		    "trusted proxy\"", addr, listener_names[kind]);
		free(s);
		return;
	}
	s->srv = srv;
	s->kind = kind;
	s->id = srv->next_id++;
	snprintf(s->sid, sizeof(s->sid), "%d.%llu", (int)getpid(),
	    (unsigned long long)s->id);
	s->conn = conn_new(srv->base, fd, peer, peer_len,
	    kind == LISTENER_SUBMISSIONS ? srv->tls : NULL, proxy,
	    &smtp_conn_ops, s);
	if (s->conn == NULL) {
		log_warnx("smtp cannot set up connection on %s",
		    listener_names[kind]);
		free(s);
		return;
	}
	id_table_add(srv->sessions, s->id, s);
	conn_set_timeout(s->conn, (unsigned)cfg->timeout);
	conn_start(s->conn);
}

static void
smtp_on_ready(void *ctx)
{
	struct smtp_session *s = ctx;
	const struct config *cfg = s->srv->cfg;

	s->trusted = cidr_list_match(&cfg->trusted, conn_peer(s->conn));
	log_info("%s smtp connect client=%s listener=%s local=%s%s%s%s",
	    s->sid, conn_peer_addr(s->conn), listener_names[s->kind],
	    conn_local_addr(s->conn), s->trusted ? " trusted=yes" : "",
	    conn_is_tls(s->conn) ? " tls=" : "",
	    conn_is_tls(s->conn) ? conn_tls_version(s->conn) : "");
	if (s->srv->shutting_down) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down",
		    cfg->hostname);
		smtp_close_after_reply(s);
		return;
	}
	smtp_greet(s);
}

static void
smtp_on_tls(void *ctx)
{
	struct smtp_session *s = ctx;

	log_info("%s smtp starttls client=%s version=%s cipher=%s", s->sid,
	    conn_peer_addr(s->conn), conn_tls_version(s->conn),
	    conn_tls_cipher(s->conn));
	/* RFC 3207 §4.2: forget everything learned before TLS. */
	smtp_reset_transaction(s);
	s->esmtp = false;
	s->helo[0] = '\0';
	smtp_set_state(s, SMTP_ST_HELO);
	smtp_process_input(s);
}

static void
smtp_on_close(void *ctx, const char *why)
{
	struct smtp_session *s = ctx;

	log_info("%s smtp disconnect client=%s reason=\"%s\" state=%s "
	    "errors=%u", s->sid, conn_peer_addr(s->conn), why,
	    smtp_state_names[s->state], s->errors);
	smtp_session_free(s);
}

static void
smtp_on_timeout(void *ctx)
{
	struct smtp_session *s = ctx;

	/* RFC 5321 §4.5.3.2: tell the client before closing. */
	log_info("%s smtp timeout client=%s state=%s", s->sid,
	    conn_peer_addr(s->conn), smtp_state_names[s->state]);
	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    s->srv->cfg->hostname);
	smtp_close_after_reply(s);
}

static void
smtp_on_drained(void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->state == SMTP_ST_CLOSING) {
		log_info("%s smtp disconnect client=%s reason=\"closed by "
		    "server\" errors=%u", s->sid, conn_peer_addr(s->conn),
		    s->errors);
		smtp_session_free(s);
		return;
	}
	/* Output had backed up: go on reading. */
	conn_resume_read(s->conn);
}

static bool
smtp_accepts_commands(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_ST_HELO:
	case SMTP_ST_READY:
	case SMTP_ST_MAIL:
	case SMTP_ST_RCPT:
	case SMTP_ST_BDAT_WAIT:
	case SMTP_ST_AUTH:
		return true;
	default:
		return false;
	}
}

/* One command or SASL line; false when no complete line is there. */
static bool
smtp_read_command(struct smtp_session *s)
{
	size_t max = s->state == SMTP_ST_AUTH ? SMTP_AUTH_LINE_MAX :
	    SMTP_LINE_MAX;
	size_t len = 0;
	bool bare_lf = false;

	switch (conn_read_line(s->conn, s->line, sizeof(s->line), max, &len,
	    &bare_lf)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_TOO_LONG:
		if (s->state == SMTP_ST_AUTH)
			smtp_set_state(s, SMTP_ST_READY);
		smtp_reply_error(s, "500 5.5.2 Line too long");
		return true;
	case LINE_OK:
		break;
	}
	if (s->state == SMTP_ST_AUTH)
		smtp_auth_line(s, s->line, len);
	else
		smtp_dispatch(s, s->line, len);
	return true;
}

void
smtp_process_input(struct smtp_session *s)
{
	for (;;) {
		if (conn_output_len(s->conn) > SMTP_OUTPUT_MAX) {
			/* The client does not read its replies. */
			conn_pause_read(s->conn);
			conn_notify_drained(s->conn);
			return;
		}
		if (s->state == SMTP_ST_DATA || s->state == SMTP_ST_BDAT) {
			if (!smtp_data_input(s))
				return;
			continue;
		}
		if (!smtp_accepts_commands(s))
			return;
		if (s->srv->shutting_down && (s->state == SMTP_ST_HELO ||
		    s->state == SMTP_ST_READY)) {
			smtp_reply(s, "421 4.3.2 %s Service shutting down",
			    s->srv->cfg->hostname);
			smtp_close_after_reply(s);
			return;
		}
		if (!smtp_read_command(s))
			return;
	}
}

static void
smtp_on_read(void *ctx)
{
	smtp_process_input(ctx);
}

/* Idle sessions get 421 now; busy ones when their transaction ends. */
static void
smtp_shutdown_one(void *item, void *ctx)
{
	struct smtp_session *s = item;

	if (s->state == SMTP_ST_HELO || s->state == SMTP_ST_READY ||
	    s->state == SMTP_ST_CONNECTED) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down",
		    s->srv->cfg->hostname);
		smtp_close_after_reply(s);
	}
}

void
smtp_server_shutdown(struct smtp_server *srv)
{
	srv->shutting_down = true;
	id_table_foreach(srv->sessions, smtp_shutdown_one, NULL);
}
