/*
 * pop3_session.c - POP3 session plumbing: the per-worker server, the
 * session table (sessions are found again by id after pool work), the
 * one place that changes state, the reply functions and the input loop.
 * Commands live in pop3_cmd.c (table, dispatcher, policy), pop3_auth.c
 * (USER/PASS, SASL) and pop3_txn.c (the maildrop).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pop3/pop3_private.h"

static const char *const pop3_state_names[POP3_ST_COUNT] = {
	"connected", "authorization", "sasl", "login", "transaction",
	"sending", "update", "tls", "closing",
};

static void pop3_on_ready(void *ctx);
static void pop3_on_read(void *ctx);
static void pop3_on_close(void *ctx, const char *why);
static void pop3_on_drained(void *ctx);
static void pop3_on_timeout(void *ctx);
static void pop3_on_tls(void *ctx);

static const struct conn_ops pop3_conn_ops = {
	.on_ready = pop3_on_ready,
	.on_read = pop3_on_read,
	.on_close = pop3_on_close,
	.on_drained = pop3_on_drained,
	.on_timeout = pop3_on_timeout,
	.on_tls = pop3_on_tls,
};

struct pop3_server *
pop3_server_new(struct event_base *base, const struct config *cfg,
    struct tls_ctx *tls, struct accounts *acc, struct lockout *lockout,
    struct pool *pool)
{
	struct pop3_server *srv = xmalloc(sizeof(*srv));

	srv->base = base;
	srv->cfg = cfg;
	srv->tls = tls;
	srv->acc = acc;
	srv->lockout = lockout;
	srv->pool = pool;
	srv->next_id = 1;
	srv->sessions = id_table_new();
	srv->chunk = xmalloc(POP3_READ_CHUNK);
	/* Stuffing at most doubles a chunk; the end adds 5 bytes. */
	buf_init(&srv->out, 2 * POP3_READ_CHUNK + 8);
	return srv;
}

static void pop3_session_free(struct pop3_session *s);

void
pop3_server_detach_pool(struct pop3_server *srv)
{
	srv->pool = NULL;
}

void
pop3_server_free(struct pop3_server **srvp)
{
	struct pop3_server *srv = *srvp;
	struct pop3_session *s;

	if (srv == NULL)
		return;
	srv->pool = NULL;	/* the worker freed it: release here */
	while ((s = id_table_any(srv->sessions)) != NULL)
		pop3_session_free(s);
	id_table_free(&srv->sessions);
	buf_free(&srv->out);
	free(srv->chunk);
	free(srv);
	*srvp = NULL;
}

size_t
pop3_server_sessions(const struct pop3_server *srv)
{
	return id_table_count(srv->sessions);
}

struct pop3_session *
pop3_session_by_id(struct pop3_server *srv, uint64_t id)
{
	return id_table_get(srv->sessions, id);
}

const char *
pop3_state_name(enum pop3_state st)
{
	return st < POP3_ST_COUNT ? pop3_state_names[st] : "?";
}

void
pop3_set_state(struct pop3_session *s, enum pop3_state st)
{
	if (s->state == st)
		return;
	log_debug("%s pop3 state %s -> %s", s->sid,
	    pop3_state_names[s->state], pop3_state_names[st]);
	s->state = st;
	switch (st) {
	case POP3_ST_CLOSING:
		conn_set_timeout(s->conn, POP3_TIMEOUT_CLOSING);
		break;
	case POP3_ST_TRANSACTION:
	case POP3_ST_SENDING:
	case POP3_ST_UPDATE:
		conn_set_timeout(s->conn, POP3_TIMEOUT_TRANSACTION);
		break;
	default:
		conn_set_timeout(s->conn, POP3_TIMEOUT_AUTH);
		break;
	}
}

static void pop3_vreply(struct pop3_session *s, const char *fmt, va_list ap)
    MF_PRINTF(2, 0);

static void
pop3_vreply(struct pop3_session *s, const char *fmt, va_list ap)
{
	char line[POP3_REPLY_MAX];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		panic("pop3 reply too long");
	conn_write(s->conn, line, (size_t)n);
	conn_write(s->conn, "\r\n", 2);
}

void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, fmt, ap);
	va_end(ap);
}

void
pop3_close_after_reply(struct pop3_session *s)
{
	pop3_set_state(s, POP3_ST_CLOSING);
	conn_pause_read(s->conn);
	conn_finish(s->conn);
}

void
pop3_reply_error(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;
	char esc[LOG_ESCAPE_BUF];
	char line[POP3_REPLY_MAX];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pop3_reply(s, "%s", line);
	log_info("%s pop3 reject client=%s reply=\"%s\"", s->sid,
	    conn_peer_addr(s->conn), log_escape(line, strlen(line), esc));
	if (++s->errors >= POP3_ERRORS_MAX && s->state != POP3_ST_CLOSING) {
		pop3_reply(s, "-ERR Too many errors, closing");
		log_info("%s pop3 too-many-errors client=%s", s->sid,
		    conn_peer_addr(s->conn));
		pop3_close_after_reply(s);
	}
}

static void
pop3_session_free(struct pop3_session *s)
{
	pop3_txn_release(s);
	id_table_del(s->srv->sessions, s->id);
	conn_free(&s->conn);
	free(s->user);
	x_wipe(s->line, sizeof(s->line));
	free(s);
}

/* A PROXY listener serves only its proxies: anyone else could claim any
 * address.  Also refuses pop3s without TLS keys: never plaintext there. */
static bool
pop3_may_accept(struct pop3_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len)
{
	const struct config *cfg = srv->cfg;
	const char *why = NULL;
	char addr[64] = "?";
	struct conn *tmp;

	if (cfg->listen[kind].proxy_protocol &&
	    !cidr_list_match(&cfg->proxy_trusted, peer))
		why = "not a trusted proxy";
	else if (kind == LISTENER_POP3S && srv->tls == NULL)
		why = "no TLS certificate configured";
	if (why == NULL)
		return true;
	tmp = conn_new(srv->base, fd, peer, peer_len, NULL, false,
	    &pop3_conn_ops, NULL);
	if (tmp != NULL) {
		str_lcpy(addr, conn_peer_addr(tmp), sizeof(addr));
		conn_free(&tmp);
	}
	log_warnx("pop3 refused client=%s listener=%s reason=\"%s\"", addr,
	    listener_names[kind], why);
	return false;
}

void
pop3_accept(struct pop3_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len)
{
	struct pop3_session *s;

	xassert(kind == LISTENER_POP3 || kind == LISTENER_POP3S);
	if (!pop3_may_accept(srv, kind, fd, peer, peer_len))
		return;
	s = xmalloc(sizeof(*s));
	s->srv = srv;
	s->kind = kind;
	s->send_fd = -1;
	s->id = srv->next_id++;
	snprintf(s->sid, sizeof(s->sid), "%d.%llu", (int)getpid(),
	    (unsigned long long)s->id);
	s->conn = conn_new(srv->base, fd, peer, peer_len,
	    kind == LISTENER_POP3S ? srv->tls : NULL,
	    srv->cfg->listen[kind].proxy_protocol, &pop3_conn_ops, s);
	if (s->conn == NULL) {
		log_warnx("pop3 cannot set up connection on %s",
		    listener_names[kind]);
		free(s);
		return;
	}
	id_table_add(srv->sessions, s->id, s);
	conn_set_timeout(s->conn, POP3_TIMEOUT_AUTH);
	conn_start(s->conn);
}

static void
pop3_on_ready(void *ctx)
{
	struct pop3_session *s = ctx;

	log_info("%s pop3 connect client=%s listener=%s local=%s%s%s",
	    s->sid, conn_peer_addr(s->conn), listener_names[s->kind],
	    conn_local_addr(s->conn), conn_is_tls(s->conn) ? " tls=" : "",
	    conn_is_tls(s->conn) ? conn_tls_version(s->conn) : "");
	if (s->srv->shutting_down) {
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3_close_after_reply(s);
		return;
	}
	pop3_greet(s);
}

static void
pop3_on_tls(void *ctx)
{
	struct pop3_session *s = ctx;

	log_info("%s pop3 stls client=%s version=%s cipher=%s", s->sid,
	    conn_peer_addr(s->conn), conn_tls_version(s->conn),
	    conn_tls_cipher(s->conn));
	/* RFC 2595 §4: the session starts over; no new greeting. */
	x_free(&s->user);
	pop3_set_state(s, POP3_ST_AUTHORIZATION);
	pop3_process_input(s);
}

static void
pop3_on_close(void *ctx, const char *why)
{
	struct pop3_session *s = ctx;

	log_info("%s pop3 disconnect client=%s reason=\"%s\" state=%s "
	    "errors=%u", s->sid, conn_peer_addr(s->conn), why,
	    pop3_state_names[s->state], s->errors);
	pop3_session_free(s);
}

static void
pop3_on_timeout(void *ctx)
{
	struct pop3_session *s = ctx;

	/* RFC 1939 §3: the autologout timer closes without a response and
	 * without entering UPDATE, so nothing is deleted. */
	log_info("%s pop3 timeout client=%s state=%s", s->sid,
	    conn_peer_addr(s->conn), pop3_state_names[s->state]);
	pop3_close_after_reply(s);
}

static bool
pop3_accepts_commands(const struct pop3_session *s)
{
	return s->state == POP3_ST_AUTHORIZATION ||
	    s->state == POP3_ST_SASL || s->state == POP3_ST_TRANSACTION;
}

bool
pop3_submit(struct pop3_session *s, void (*work)(void *arg),
    void (*done)(void *arg), void *arg)
{
	if (s->srv->pool == NULL)
		return false;
	conn_pause_read(s->conn);
	pool_submit(s->srv->pool, work, done, arg);
	return true;
}

void
pop3_resume(struct pop3_session *s)
{
	if (!pop3_accepts_commands(s))
		return;
	/* Draining: done once nothing is left to answer. */
	if (s->srv->shutting_down && conn_input_len(s->conn) == 0) {
		pop3_close_after_reply(s);
		return;
	}
	/* Runs what the client pipelined meanwhile (conn calls on_read). */
	conn_resume_read(s->conn);
}

static void
pop3_on_drained(void *ctx)
{
	struct pop3_session *s = ctx;

	if (s->state == POP3_ST_CLOSING) {
		log_info("%s pop3 disconnect client=%s reason=\"closed by "
		    "server\" errors=%u", s->sid, conn_peer_addr(s->conn),
		    s->errors);
		pop3_session_free(s);
		return;
	}
	if (s->state == POP3_ST_SENDING) {
		pop3_txn_send_more(s);
		return;
	}
	/* Output had backed up: go on reading. */
	pop3_resume(s);
}

/* One command or SASL line; false when no complete line is there. */
static bool
pop3_read_command(struct pop3_session *s)
{
	size_t max = s->state == POP3_ST_SASL ? POP3_AUTH_LINE_MAX :
	    POP3_LINE_MAX;
	size_t len = 0;
	bool bare_lf = false;

	switch (conn_read_line(s->conn, s->line, sizeof(s->line), max, &len,
	    &bare_lf)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_TOO_LONG:
		if (s->state == POP3_ST_SASL)
			pop3_set_state(s, POP3_ST_AUTHORIZATION);
		pop3_reply_error(s, "-ERR Line too long");
		return true;
	case LINE_OK:
		break;
	}
	/* RFC 1939 §3 ends lines in CRLF; a bare LF is tolerated as most
	 * servers do: commands are single lines, nothing is smuggled. */
	if (s->state == POP3_ST_SASL)
		pop3_sasl_line(s, s->line, len);
	else
		pop3_dispatch(s, s->line, len);
	return true;
}

void
pop3_process_input(struct pop3_session *s)
{
	for (;;) {
		if (conn_output_len(s->conn) > POP3_OUTPUT_MAX) {
			/* The client does not read its responses. */
			conn_pause_read(s->conn);
			conn_notify_drained(s->conn);
			return;
		}
		if (!pop3_accepts_commands(s))
			return;
		if (!pop3_read_command(s)) {
			/* Draining: every complete command got its answer. */
			if (s->srv->shutting_down)
				pop3_close_after_reply(s);
			return;
		}
	}
}

static void
pop3_on_read(void *ctx)
{
	pop3_process_input(ctx);
}

/* Waiting for a command: POP3 has no unsolicited responses, so just
 * close (nothing is deleted); pipelined input still gets its answer. */
static void
pop3_shutdown_one(void *item, void *ctx)
{
	struct pop3_session *s = item;

	if (s->state == POP3_ST_CONNECTED)
		pop3_close_after_reply(s);
	else if (pop3_accepts_commands(s))
		pop3_process_input(s);
}

void
pop3_server_shutdown(struct pop3_server *srv)
{
	srv->shutting_down = true;
	id_table_foreach(srv->sessions, pop3_shutdown_one, NULL);
}
