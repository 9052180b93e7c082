/*
 * imap_session.c - IMAP session plumbing: the per-worker server, the
 * session table (sessions are found again by id after pool work), state
 * changes, replies and the input loop feeding the command reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap/imap_private.h"
#include "store/store.h"

static const char *const imap_state_names[] = {
	"greeting", "notauth", "auth", "selected", "logout",
};

static void imap_on_ready(void *ctx);
static void imap_on_read(void *ctx);
static void imap_on_close(void *ctx, const char *why);
static void imap_on_drained(void *ctx);
static void imap_on_timeout(void *ctx);
static void imap_on_tls(void *ctx);

static const struct conn_ops imap_conn_ops = {
	.on_ready = imap_on_ready,
	.on_read = imap_on_read,
	.on_close = imap_on_close,
	.on_drained = imap_on_drained,
	.on_timeout = imap_on_timeout,
	.on_tls = imap_on_tls,
};

struct imap_server *
imap_server_new(struct event_base *base, const struct config *cfg,
    struct tls_ctx *tls, struct accounts *acc, struct lockout *lockout,
    struct pool *pool)
{
	struct imap_server *srv = xmalloc(sizeof(*srv));

	srv->base = base;
	srv->cfg = cfg;
	srv->tls = tls;
	srv->acc = acc;
	srv->lockout = lockout;
	srv->pool = pool;
	srv->next_id = 1;
	srv->sessions = id_table_new();
	return srv;
}

void
imap_server_detach_pool(struct imap_server *srv)
{
	srv->pool = NULL;
}

static void imap_session_free(struct imap_session *s);

void
imap_server_free(struct imap_server **srvp)
{
	struct imap_server *srv = *srvp;
	struct imap_session *s;

	if (srv == NULL)
		return;
	while ((s = id_table_any(srv->sessions)) != NULL)
		imap_session_free(s);
	id_table_free(&srv->sessions);
	free(srv);
	*srvp = NULL;
}

size_t
imap_server_sessions(const struct imap_server *srv)
{
	return id_table_count(srv->sessions);
}

struct imap_session *
imap_session_by_id(struct imap_server *srv, uint64_t id)
{
	return id_table_get(srv->sessions, id);
}

bool
imap_tls_required(const struct imap_session *s)
{
	return s->kind == LISTENER_IMAP && !conn_is_tls(s->conn);
}

static void
imap_apply_timeout(struct imap_session *s)
{
	conn_set_timeout(s->conn, s->state == IMAP_ST_AUTH ||
	    s->state == IMAP_ST_SELECTED ? IMAP_TIMEOUT_AUTH :
	    s->state == IMAP_ST_LOGOUT ? 10 : IMAP_TIMEOUT_PREAUTH);
}

void
imap_set_state(struct imap_session *s, enum imap_state st)
{
	if (s->state == st)
		return;
	log_debug("%s imap state %s -> %s", s->sid,
	    imap_state_names[s->state], imap_state_names[st]);
	s->state = st;
	imap_apply_timeout(s);
}

void
imap_set_wait(struct imap_session *s, enum imap_wait w)
{
	s->wait = w;
}

void
imap_write(struct imap_session *s, const void *data, size_t len)
{
	conn_write(s->conn, data, len);
}

void
imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, 0);
	buf_adds(&b, "* ");
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_adds(&b, "\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
}

void
imap_close_after_reply(struct imap_session *s)
{
	imap_set_state(s, IMAP_ST_LOGOUT);
	conn_pause_read(s->conn);
	conn_finish(s->conn);
}

void
imap_tagged(struct imap_session *s, const char *tag, const char *status,
    const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	char esc[LOG_ESCAPE_BUF];

	buf_init(&b, 0);
	buf_printf(&b, "%s %s ", tag, status);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (strcmp(status, "OK") != 0)
		log_debug("%s imap %s", s->sid, log_escape(b.data, b.len, esc));
	buf_adds(&b, "\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_free(&b);
	if (strcmp(status, "BAD") == 0 && ++s->errors >= IMAP_MAX_ERRORS &&
	    s->state != IMAP_ST_LOGOUT) {
		imap_untagged(s, "BYE Too many invalid commands");
		log_info("%s imap too-many-errors client=%s", s->sid,
		    conn_peer_addr(s->conn));
		imap_close_after_reply(s);
	}
}

static void
imap_session_free(struct imap_session *s)
{
	imap_mailbox_free(&s->mbox);
	imap_append_abort(s);		/* needs s->store */
	store_close(&s->store);
	id_table_del(s->srv->sessions, s->id);
	imap_parser_free(&s->parser);
	conn_free(&s->conn);
	free(s->user);
	if (s->line != NULL)
		x_wipe(s->line, IMAP_SASL_LINE_MAX + 1);
	free(s->line);
	free(s);
}

void
imap_accept(struct imap_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len)
{
	struct imap_session *s;
	const struct config *cfg = srv->cfg;
	bool proxy = cfg->listen[kind].proxy_protocol;

	if (proxy && !cidr_list_match(&cfg->proxy_trusted, peer)) {
		/* anyone else could claim any address */
		log_warnx("imap refused listener=%s reason=\"not a trusted "
		    "proxy\"", listener_names[kind]);
		close(fd);
		return;
	}
	s = xmalloc(sizeof(*s));
	s->srv = srv;
	s->kind = kind;
	s->id = srv->next_id++;
	snprintf(s->sid, sizeof(s->sid), "%d.%llu", (int)getpid(),
	    (unsigned long long)s->id);
	s->parser = imap_parser_new();
	s->conn = conn_new(srv->base, fd, peer, peer_len,
	    kind == LISTENER_IMAPS ? srv->tls : NULL, proxy, &imap_conn_ops,
	    s);
	if (s->conn == NULL) {
		imap_parser_free(&s->parser);
		free(s);
		return;
	}
	id_table_add(srv->sessions, s->id, s);
	conn_set_timeout(s->conn, IMAP_TIMEOUT_PREAUTH);
	conn_start(s->conn);
}

static void
imap_on_ready(void *ctx)
{
	struct imap_session *s = ctx;

	log_info("%s imap connect client=%s listener=%s local=%s%s%s", s->sid,
	    conn_peer_addr(s->conn), listener_names[s->kind],
	    conn_local_addr(s->conn), conn_is_tls(s->conn) ? " tls=" : "",
	    conn_is_tls(s->conn) ? conn_tls_version(s->conn) : "");
	if (s->srv->shutting_down) {
		imap_untagged(s, "BYE Server shutting down");
		imap_close_after_reply(s);
		return;
	}
	imap_greet(s);
}

static void
imap_on_tls(void *ctx)
{
	struct imap_session *s = ctx;

	log_info("%s imap starttls client=%s version=%s cipher=%s", s->sid,
	    conn_peer_addr(s->conn), conn_tls_version(s->conn),
	    conn_tls_cipher(s->conn));
	imap_set_wait(s, IMAP_WAIT_NONE);
	imap_resume(s);
}

static void
imap_on_close(void *ctx, const char *why)
{
	struct imap_session *s = ctx;

	log_info("%s imap disconnect client=%s reason=\"%s\" state=%s%s%s",
	    s->sid, conn_peer_addr(s->conn), why,
	    imap_state_names[s->state], s->user ? " user=" : "",
	    s->user ? s->user : "");
	imap_session_free(s);
}

static void
imap_on_timeout(void *ctx)
{
	struct imap_session *s = ctx;

	log_info("%s imap timeout client=%s state=%s", s->sid,
	    conn_peer_addr(s->conn), imap_state_names[s->state]);
	imap_untagged(s, "BYE Autologout; idle for too long");
	imap_close_after_reply(s);
}

static void
imap_on_drained(void *ctx)
{
	struct imap_session *s = ctx;

	if (s->state == IMAP_ST_LOGOUT) {
		log_info("%s imap disconnect client=%s reason=\"closed by "
		    "server\"%s%s", s->sid, conn_peer_addr(s->conn),
		    s->user ? " user=" : "", s->user ? s->user : "");
		imap_session_free(s);
		return;
	}
	if (s->drained != NULL) {
		void (*fn)(struct imap_session *) = s->drained;

		s->drained = NULL;
		fn(s);
		return;
	}
	conn_resume_read(s->conn);
}

void
imap_submit(struct imap_session *s, void (*work)(void *),
    void (*done)(void *), void *arg)
{
	imap_set_wait(s, IMAP_WAIT_BUSY);
	conn_pause_read(s->conn);
	if (s->srv->pool != NULL) {
		pool_submit(s->srv->pool, work, done, arg);
		return;
	}
	work(arg);
	done(arg);
}

void
imap_resume(struct imap_session *s)
{
	if (s->state == IMAP_ST_LOGOUT)
		return;
	if (s->wait == IMAP_WAIT_BUSY)
		imap_set_wait(s, IMAP_WAIT_NONE);
	/* Between commands a session holds no database pages: a thousand
	 * idle clients must stay cheap; the OS page cache keeps them warm. */
	if (conn_input_len(s->conn) == 0)
		store_release_memory(s->store);
	conn_resume_read(s->conn);
}

/* A whole IDLE or AUTHENTICATE line; false when none is complete. */
static bool
imap_read_raw_line(struct imap_session *s)
{
	size_t len = 0;
	bool bare_lf = false;

	if (s->line == NULL)
		s->line = xmalloc(IMAP_SASL_LINE_MAX + 1);
	switch (conn_read_line(s->conn, s->line, IMAP_SASL_LINE_MAX + 1,
	    IMAP_SASL_LINE_MAX, &len, &bare_lf)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_TOO_LONG:
		len = 0;
		s->line[0] = '\0';
		bare_lf = true;		/* treated as garbage below */
		break;
	case LINE_OK:
		break;
	}
	if (s->wait == IMAP_WAIT_SASL) {
		imap_sasl_line(s, bare_lf ? "" : s->line, bare_lf ? 0 : len);
		x_wipe(s->line, IMAP_SASL_LINE_MAX + 1);
		x_free(&s->line);
		return true;
	}
	/* RFC 2177 §3: only DONE ends IDLE. */
	if (!bare_lf && len == 4 && strncasecmp(s->line, "DONE", 4) == 0) {
		x_free(&s->line);
		imap_set_wait(s, IMAP_WAIT_NONE);
		imap_idle_done(s);
	} else {
		imap_untagged(s, "BAD Expected DONE");
		if (++s->errors >= IMAP_MAX_ERRORS) {
			imap_untagged(s, "BYE Too many invalid commands");
			imap_close_after_reply(s);
		}
	}
	return true;
}

static void
imap_literal(struct imap_session *s)
{
	struct imap_literal lit;

	imap_parser_literal(s->parser, &lit);
	/* APPEND streams its message; everything else is small. */
	if (imap_append_literal(s, &lit))
		return;
	if (lit.size > lit.room) {
		imap_parser_literal_reject(s->parser,
		    IMAP_ERR_LITERAL_TOO_BIG);
		return;
	}
	if (imap_parser_literal_accept(s->parser, IMAP_LIT_BUFFER) < 0)
		return;
	if (lit.sync)
		conn_write(s->conn, "+ Ready\r\n", 9);
}

static void
imap_parse_error(struct imap_session *s)
{
	const char *tag = NULL;
	bool fatal = false;
	enum imap_err err = imap_parser_error(s->parser, &tag, &fatal);

	if (fatal) {
		imap_untagged(s, "BYE %s", imap_err_text(err));
		imap_close_after_reply(s);
		return;
	}
	if (tag != NULL)
		imap_tagged(s, tag, "BAD", "%s", imap_err_text(err));
	else {
		imap_untagged(s, "BAD %s", imap_err_text(err));
		if (++s->errors >= IMAP_MAX_ERRORS) {
			imap_untagged(s, "BYE Too many invalid commands");
			imap_close_after_reply(s);
		}
	}
}

/* One parser step; false when waiting for input. */
static bool
imap_step(struct imap_session *s)
{
	size_t len = 0, used = 0;
	const char *p = conn_peek(s->conn, IMAP_READ_CHUNK, &len);
	enum imap_parse_res res = imap_parser_feed(s->parser, p, len, &used);

	/* A streamed chunk borrows from the input: used before the drain. */
	if (res == IMAP_PARSE_LITERAL_DATA)
		imap_append_chunk(s);
	conn_drain(s->conn, used);
	switch (res) {
	case IMAP_PARSE_NEED_MORE:
		return used > 0;
	case IMAP_PARSE_COMMAND:
		imap_dispatch(s, imap_parser_command(s->parser));
		return true;
	case IMAP_PARSE_LITERAL:
		imap_literal(s);
		return true;
	case IMAP_PARSE_LITERAL_DATA:
		return true;
	case IMAP_PARSE_ERROR:
		if (!imap_append_parse_error(s))
			imap_parse_error(s);
		return true;
	}
	return false;
}

static void
imap_process_input(struct imap_session *s)
{
	while (s->state != IMAP_ST_LOGOUT && s->state != IMAP_ST_GREETING) {
		if (conn_output_len(s->conn) > IMAP_OUTPUT_MAX) {
			/* the client does not read its responses */
			conn_pause_read(s->conn);
			conn_notify_drained(s->conn);
			return;
		}
		if (s->wait == IMAP_WAIT_BUSY || s->wait == IMAP_WAIT_TLS)
			return;
		if (s->wait == IMAP_WAIT_SASL || s->wait == IMAP_WAIT_IDLE) {
			if (!imap_read_raw_line(s))
				return;
			continue;
		}
		if (s->srv->shutting_down && !imap_parser_pending(s->parser)) {
			imap_untagged(s, "BYE Server shutting down");
			imap_close_after_reply(s);
			return;
		}
		if (!imap_step(s))
			return;
	}
}

static void
imap_on_read(void *ctx)
{
	imap_process_input(ctx);
}

static void
imap_changed_one(void *item, void *ctx)
{
	struct imap_session *s = item;
	const char *account = ctx;

	if (s->user != NULL && strcmp(s->user, account) == 0) {
		s->changed = true;
		imap_selected_changed(s);
	}
}

void
imap_server_changed(struct imap_server *srv, const char *account)
{
	id_table_foreach(srv->sessions, imap_changed_one, (void *)account);
}

/* Idle sessions get BYE now; busy ones when their command is done. */
static void
imap_shutdown_one(void *item, void *ctx)
{
	struct imap_session *s = item;

	if (s->state != IMAP_ST_LOGOUT && s->wait != IMAP_WAIT_BUSY &&
	    !imap_parser_pending(s->parser)) {
		imap_untagged(s, "BYE Server shutting down");
		imap_close_after_reply(s);
	}
}

void
imap_server_shutdown(struct imap_server *srv)
{
	srv->shutting_down = true;
	id_table_foreach(srv->sessions, imap_shutdown_one, NULL);
}
