/*
 * conn.c - one connection: a libevent bufferevent, optionally under an
 * OpenSSL filter, optionally preceded by a PROXY header.  Accepted ones
 * (conn_new) serve clients; outbound ones (conn_connect) are the queue
 * runner's SMTP client: a non-blocking connect with its own timeout, then
 * TLS as the client, then the same read/write API.  Sessions use the
 * functions in net.h and never see the socket, libevent or OpenSSL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "net/net_private.h"
#include "net/proxy.h"

#define CONN_PROXY_TIMEOUT 10	/* seconds to send the PROXY header */
#define CONN_TLS_TIMEOUT 30	/* seconds to finish a TLS handshake */
#define CONN_LAST_WRITE_TIMEOUT 10	/* to flush a last reply */
#define CONN_CONNECT_TIMEOUT 30	/* when conn_connect() is given 0 */

enum conn_phase {
	CONN_PH_PROXY,
	CONN_PH_HANDSHAKE,
	CONN_PH_OPEN,
	CONN_PH_CONNECTING,		/* outbound: TCP connect under way */
};

struct conn {
	struct event_base *base;
	struct bufferevent *bev;	/* top of the stack (TLS filter or socket) */
	struct tls_ctx *tls;		/* for implicit TLS after PROXY */
	const struct conn_ops *ops;
	void *ctx;
	enum conn_phase phase;
	bool is_tls;
	bool ready_sent;
	bool skipping;			/* discarding an over-long line */
	bool want_drained;
	bool closed;
	bool timed_out;
	unsigned cur_timeout;		/* seconds, as armed */
	struct event *idle_ev;
	bool finishing;			/* send close_notify before drained */
	bool wait_under;		/* drained above, waiting below */
	struct event *drain_ev;		/* deferred on_drained (TLS) */
	unsigned timeout;
	bool client;			/* conn_connect(): we are the client */
	bool verify;			/* client: certificate must verify */
	bool name_checked;		/* client: a peer name was checked */
	int connect_err;		/* client: errno of connect(), reported
					 * from the idle timer */
	char *sni;			/* client: peer name for implicit TLS */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char peer_addr[INET6_ADDRSTRLEN];
	char local_addr[INET6_ADDRSTRLEN + 8];
};

static void conn_bev_read(struct bufferevent *bev, void *arg);
static void conn_bev_write(struct bufferevent *bev, void *arg);
static void conn_bev_event(struct bufferevent *bev, short what, void *arg);
static void conn_under_out_cb(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg);
static void conn_client_event(struct conn *c, short what, int err);
static void conn_client_tls_failed(struct conn *c, short what);

static void
conn_addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, out,
			    (socklen_t)len);
			return;
		}
		a = &s6->sin6_addr;
	} else if (sa->sa_family == AF_INET) {
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else {
		str_lcpy(out, "unknown", len);
		return;
	}
	if (inet_ntop(sa->sa_family, a, out, (socklen_t)len) == NULL)
		str_lcpy(out, "unknown", len);
}

static void
conn_set_peer(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
	if (len > sizeof(c->peer))
		len = sizeof(c->peer);
	memcpy(&c->peer, sa, len);
	c->peer_len = len;
	conn_addr_text(sa, c->peer_addr, sizeof(c->peer_addr));
}

/*
 * Our own idle timer, re-armed on every read and every drained write:
 * libevent's bufferevent timeouts are not re-armed reliably under an
 * OpenSSL filter.
 */
static void
conn_apply_timeout(struct conn *c, unsigned secs)
{
	struct timeval tv = { .tv_sec = secs };

	c->cur_timeout = secs;
	evtimer_add(c->idle_ev, &tv);
}

static void
conn_touch(struct conn *c)
{
	if (!c->closed)
		conn_apply_timeout(c, c->cur_timeout);
}

static const char *conn_connect_error(int err);
static void conn_closed(struct conn *c, const char *why);

static void
conn_on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->phase == CONN_PH_CONNECTING && c->connect_err != 0) {
		conn_closed(c, conn_connect_error(c->connect_err));
		return;
	}
	conn_bev_event(c->bev, BEV_EVENT_TIMEOUT, c);
}

static void
conn_closed(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	evtimer_del(c->idle_ev);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->ops->on_close(c->ctx, why);
}

static void
conn_install(struct conn *c, struct bufferevent *bev)
{
	c->bev = bev;
	bufferevent_setcb(bev, conn_bev_read, conn_bev_write, conn_bev_event,
	    c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Puts the OpenSSL filter over the socket; takes ownership of ssl. */
static int
conn_start_ssl(struct conn *c, SSL *ssl)
{
	struct bufferevent *f;

	if (ssl == NULL)
		return -1;
	f = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    c->client ? BUFFEREVENT_SSL_CONNECTING : BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
	evbuffer_add_cb(bufferevent_get_output(c->bev), conn_under_out_cb, c);
	c->phase = CONN_PH_HANDSHAKE;
	conn_install(c, f);
	conn_apply_timeout(c, CONN_TLS_TIMEOUT);
	return 0;
}

static int
conn_start_tls(struct conn *c, struct tls_ctx *tls)
{
	return conn_start_ssl(c, tls_ctx_new_ssl(tls));
}

static int
conn_start_tls_client(struct conn *c, struct tls_ctx *tls, const char *sni,
    bool verify)
{
	c->verify = verify;
	return conn_start_ssl(c, tls_client_new_ssl(tls, sni, verify,
	    &c->name_checked));
}

static void
conn_ready(struct conn *c)
{
	c->phase = CONN_PH_OPEN;
	conn_apply_timeout(c, c->timeout);
	if (!c->ready_sent) {
		c->ready_sent = true;
		c->ops->on_ready(c->ctx);
	} else {
		c->ops->on_tls(c->ctx);
	}
	/* Input that came with the end of the handshake (or after the
	 * PROXY header) is not announced again by libevent. */
	if (!c->closed && evbuffer_get_length(bufferevent_get_input(c->bev)))
		c->ops->on_read(c->ctx);
}

static void
conn_read_proxy(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), consumed = 0;
	struct proxy_info info;
	const uint8_t *data;
	int rc;

	if (len > PROXY_V2_MAX_LEN)
		len = PROXY_V2_MAX_LEN;
	data = evbuffer_pullup(in, (ssize_t)len);
	rc = proxy_parse(data, len, &info, &consumed);
	if (rc == 0 && len < PROXY_V2_MAX_LEN)
		return;
	if (rc <= 0) {
		conn_closed(c, "bad PROXY header");
		return;
	}
	evbuffer_drain(in, consumed);
	if (!info.local)
		conn_set_peer(c, (struct sockaddr *)&info.src, info.src_len);
	if (c->tls != NULL) {
		if (conn_start_tls(c, c->tls) < 0)
			conn_closed(c, "TLS setup failed");
		return;
	}
	conn_ready(c);
}

static void
conn_bev_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closed)
		return;
	conn_touch(c);
	if (c->phase == CONN_PH_PROXY) {
		conn_read_proxy(c);
		return;
	}
	if (c->phase == CONN_PH_OPEN)
		c->ops->on_read(c->ctx);
}

static struct bufferevent *
conn_socket_bev(const struct conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);

	return under != NULL ? under : c->bev;
}

static void
conn_fire_drained(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closed || !c->want_drained)
		return;
	c->want_drained = false;
	c->wait_under = false;
	c->ops->on_drained(c->ctx);
}

/* Under TLS the filter's output drains into the socket's buffer first;
 * "drained" means the socket's buffer is empty too. */
static void
conn_under_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn *c = arg;

	if (c->wait_under && evbuffer_get_length(buf) == 0)
		event_active(c->drain_ev, EV_WRITE, 0);
}

static void
conn_bev_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closed)
		return;
	conn_touch(c);
	if (!c->want_drained)
		return;
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->is_tls) {
		if (c->finishing) {
			c->finishing = false;
			/* close_notify goes into the socket buffer */
			(void)SSL_shutdown(bufferevent_openssl_get_ssl(bev));
		}
		if (evbuffer_get_length(bufferevent_get_output(
		    conn_socket_bev(c))) != 0) {
			c->wait_under = true;
			return;
		}
	}
	conn_fire_drained(-1, 0, c);
}

/* The outcome of a non-blocking connect(). */
static void
conn_client_event(struct conn *c, short what, int err)
{
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);

	if (what & BEV_EVENT_TIMEOUT) {
		conn_closed(c, "timeout");
		return;
	}
	if (!(what & BEV_EVENT_CONNECTED)) {
		conn_closed(c, conn_connect_error(err != 0 ? err : EIO));
		return;
	}
	if (getsockname(bufferevent_getfd(c->bev), (struct sockaddr *)&local,
	    &local_len) == 0)
		conn_addr_text((struct sockaddr *)&local, c->local_addr,
		    sizeof(c->local_addr));
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (c->tls != NULL) {
		if (conn_start_tls_client(c, c->tls, c->sni, c->verify) < 0)
			conn_closed(c, "tls: setup failed");
		return;
	}
	conn_ready(c);
}

/* A client handshake that ended without CONNECTED. */
static void
conn_client_tls_failed(struct conn *c, short what)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char detail[256] = "";

	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	log_debug("tls client handshake with %s failed: %s", c->peer_addr,
	    detail);
	if (what & BEV_EVENT_TIMEOUT)
		conn_closed(c, "tls: handshake timeout");
	else if (c->verify && ssl != NULL &&
	    SSL_get_verify_result(ssl) != X509_V_OK)
		conn_closed(c, "tls: certificate verify failed");
	else
		conn_closed(c, "tls: handshake failed");
}

static void
conn_bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (c->closed)
		return;
	if (c->phase == CONN_PH_CONNECTING) {
		conn_client_event(c, what, err);
		return;
	}
	if (c->client && c->phase == CONN_PH_HANDSHAKE &&
	    !(what & BEV_EVENT_CONNECTED)) {
		conn_client_tls_failed(c, what);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		c->is_tls = true;
		conn_ready(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->phase == CONN_PH_OPEN &&
	    !c->timed_out && c->ops->on_timeout != NULL) {
		c->timed_out = true;
		bufferevent_disable(bev, EV_READ);
		conn_apply_timeout(c, CONN_LAST_WRITE_TIMEOUT);
		bufferevent_enable(bev, EV_WRITE);
		c->ops->on_timeout(c->ctx);
	} else if (what & BEV_EVENT_TIMEOUT)
		conn_closed(c, c->phase == CONN_PH_OPEN ? "timeout" :
		    "handshake timeout");
	else if (what & BEV_EVENT_EOF)
		conn_closed(c, "disconnected");
	else if (what & BEV_EVENT_ERROR)
		conn_closed(c, c->phase == CONN_PH_HANDSHAKE ?
		    "TLS handshake failed" : "connection error");
}

static struct conn *
conn_alloc(struct event_base *base, const struct sockaddr *peer,
    socklen_t peer_len, const struct conn_ops *ops, void *ctx)
{
	struct conn *c = xmalloc(sizeof(*c));

	c->base = base;
	c->ops = ops;
	c->ctx = ctx;
	c->timeout = 300;
	c->drain_ev = event_new(base, -1, 0, conn_fire_drained, c);
	c->idle_ev = evtimer_new(base, conn_on_idle, c);
	if (c->drain_ev == NULL || c->idle_ev == NULL)
		fatalx("event_new failed");
	conn_set_peer(c, peer, peer_len);
	return c;
}

static void
conn_nodelay(int fd)
{
	int one = 1;

	/* Replies go out as soon as they are written: without this, a
	 * response split over two writes waits for the client's delayed
	 * ACK (Nagle), 40 ms per command. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 &&
	    errno != EOPNOTSUPP)
		log_debug("TCP_NODELAY: %s", strerror(errno));
}

struct conn *
conn_new(struct event_base *base, int fd, const struct sockaddr *peer,
    socklen_t peer_len, struct tls_ctx *tls, bool expect_proxy,
    const struct conn_ops *ops, void *ctx)
{
	struct conn *c = conn_alloc(base, peer, peer_len, ops, ctx);
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);
	struct bufferevent *bev;
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0) {
		conn_addr_text((struct sockaddr *)&local, host, sizeof(host));
		snprintf(c->local_addr, sizeof(c->local_addr), "%s", host);
	}
	conn_nodelay(fd);
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("bufferevent_socket_new failed");
	conn_install(c, bev);
	if (expect_proxy) {
		c->tls = tls;
		c->phase = CONN_PH_PROXY;
		conn_apply_timeout(c, CONN_PROXY_TIMEOUT);
	} else if (tls != NULL) {
		if (conn_start_tls(c, tls) < 0) {
			bufferevent_free(c->bev);
			event_free(c->drain_ev);
			event_free(c->idle_ev);
			free(c);
			return NULL;
		}
	} else {
		c->phase = CONN_PH_OPEN;
		conn_apply_timeout(c, c->timeout);
	}
	return c;
}

/* Runs on_ready for plaintext connections once the caller holds c. */
void
conn_start(struct conn *c)
{
	if (c->phase == CONN_PH_OPEN && !c->ready_sent)
		conn_ready(c);
}

void
conn_free(struct conn **cp)
{
	struct conn *c = *cp;

	if (c == NULL)
		return;
	if (c->is_tls || bufferevent_get_underlying(c->bev) != NULL)
		evbuffer_remove_cb(bufferevent_get_output(conn_socket_bev(c)),
		    conn_under_out_cb, c);
	bufferevent_free(c->bev);
	event_free(c->drain_ev);
	event_free(c->idle_ev);
	free(c->sni);
	free(c);
	*cp = NULL;
}

const struct sockaddr *
conn_peer(const struct conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->peer_addr;
}

const char *
conn_local_addr(const struct conn *c)
{
	return c->local_addr;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->is_tls;
}

static SSL *
conn_ssl(const struct conn *c)
{
	return c->is_tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
}

const char *
conn_tls_version(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl != NULL ? SSL_get_version(ssl) : NULL;
}

const char *
conn_tls_cipher(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
}

int
conn_tls_bits(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl != NULL ? SSL_get_cipher_bits(ssl, NULL) : 0;
}

const char *
conn_tls_sni(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl != NULL ?
	    SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

enum line_res
conn_read_line(struct conn *c, char *out, size_t out_size, size_t max,
    size_t *len_r, bool *bare_lf_r)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr pos;
	size_t len;

	xassert(out_size > max);
	for (;;) {
		pos = evbuffer_search(in, "\n", 1, NULL);
		if (!c->skipping)
			break;
		if (pos.pos < 0) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return LINE_NEED_MORE;
		}
		evbuffer_drain(in, (size_t)pos.pos + 1);
		c->skipping = false;
	}
	if (pos.pos < 0) {
		if (evbuffer_get_length(in) <= max + 1)
			return LINE_NEED_MORE;
		evbuffer_drain(in, evbuffer_get_length(in));
		c->skipping = true;
		return LINE_TOO_LONG;
	}
	len = (size_t)pos.pos;
	if (len > max + 1) {	/* +1: the CR is not part of the line */
		evbuffer_drain(in, len + 1);
		return LINE_TOO_LONG;
	}
	evbuffer_remove(in, out, len + 1);
	*bare_lf_r = true;
	if (len > 0 && out[len - 1] == '\r') {
		len--;
		*bare_lf_r = false;
	}
	if (len > max)
		return LINE_TOO_LONG;
	out[len] = '\0';
	*len_r = len;
	return LINE_OK;
}

const char *
conn_peek(struct conn *c, size_t max, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v;

	*len_r = 0;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return NULL;
	*len_r = v.iov_len < max ? v.iov_len : max;
	return v.iov_base;
}

void
conn_drain(struct conn *c, size_t n)
{
	evbuffer_drain(bufferevent_get_input(c->bev), n);
}

size_t
conn_input_len(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

size_t
conn_read(struct conn *c, void *out, size_t max)
{
	int n = evbuffer_remove(bufferevent_get_input(c->bev), out, max);

	return n > 0 ? (size_t)n : 0;
}

void
conn_discard_input(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	c->skipping = false;
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	if (!c->closed)
		bufferevent_write(c->bev, data, len);
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->closed)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

size_t
conn_output_len(const struct conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));

	if (c->bev != conn_socket_bev(c))
		n += evbuffer_get_length(bufferevent_get_output(
		    conn_socket_bev(c)));
	return n;
}

void
conn_finish(struct conn *c)
{
	c->finishing = true;
	conn_notify_drained(c);
}

void
conn_notify_drained(struct conn *c)
{
	c->want_drained = true;
	/* Never call back synchronously: the caller may be deep in a
	 * session that would be freed under it. */
	if (conn_output_len(c) == 0)
		bufferevent_trigger(c->bev, EV_WRITE,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void
conn_pause_read(struct conn *c)
{
	bufferevent_disable(c->bev, EV_READ);
}

void
conn_resume_read(struct conn *c)
{
	if (c->closed)
		return;
	bufferevent_enable(c->bev, EV_READ);
	/* Input that arrived while paused is not announced again. */
	if (conn_input_len(c) > 0)
		c->ops->on_read(c->ctx);
}

void
conn_set_timeout(struct conn *c, unsigned secs)
{
	c->timeout = secs;
	if (c->phase == CONN_PH_OPEN)
		conn_apply_timeout(c, secs);
}

int
conn_starttls(struct conn *c, struct tls_ctx *tls)
{
	if (tls == NULL || c->is_tls)
		return -1;
	conn_discard_input(c);
	return conn_start_tls(c, tls);
}

/* ---- outbound client connections ---- */

/* Static text for the usual connect() errors (on_close's why must
 * outlive the connection). */
static const char *
conn_connect_error(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connect: Connection refused";
	case ETIMEDOUT:
		return "connect: Connection timed out";
	case ENETUNREACH:
		return "connect: Network is unreachable";
	case EHOSTUNREACH:
		return "connect: No route to host";
	case ECONNRESET:
		return "connect: Connection reset by peer";
	case EADDRNOTAVAIL:
		return "connect: Cannot assign requested address";
	case EAFNOSUPPORT:
		return "connect: Address family not supported";
	case EMFILE:
	case ENFILE:
		return "connect: Too many open files";
	case EACCES:
	case EPERM:
		return "connect: Permission denied";
	default:
		return "connect: failed";
	}
}

/*
 * Our own socket and connect(): libevent's bufferevent_socket_connect()
 * may report an immediate failure from inside the call, before the
 * caller holds the connection.  Failures here are reported from the
 * idle timer instead, on the next loop turn.
 */
struct conn *
conn_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t addr_len, unsigned timeout_secs, struct tls_ctx *tls,
    const char *sni, bool verify, const struct conn_ops *ops, void *ctx)
{
	struct conn *c = conn_alloc(base, addr, addr_len, ops, ctx);
	int fd;

	c->client = true;
	c->phase = CONN_PH_CONNECTING;
	c->tls = tls;
	c->verify = verify;
	c->sni = sni != NULL ? xstrdup(sni) : NULL;
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0)
		c->connect_err = errno;
	else if (connect(fd, addr, addr_len) < 0 && errno != EINPROGRESS)
		c->connect_err = errno;
	if (fd >= 0 && c->connect_err != 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		conn_nodelay(fd);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setcb(c->bev, conn_bev_read, conn_bev_write,
	    conn_bev_event, c);
	/* fd already connecting: libevent waits for it to be writable */
	if (fd >= 0 && bufferevent_socket_connect(c->bev, NULL, 0) < 0)
		c->connect_err = EIO;
	conn_apply_timeout(c, c->connect_err != 0 ? 0 :
	    timeout_secs != 0 ? timeout_secs : CONN_CONNECT_TIMEOUT);
	return c;
}

int
conn_starttls_client(struct conn *c, struct tls_ctx *tls, const char *sni,
    bool verify)
{
	if (tls == NULL || c->is_tls || !c->client || c->closed)
		return -1;
	conn_discard_input(c);
	return conn_start_tls_client(c, tls, sni, verify);
}

bool
conn_tls_verified(const struct conn *c)
{
	SSL *ssl = conn_ssl(c);

	return ssl != NULL && c->name_checked &&
	    SSL_get0_peer_certificate(ssl) != NULL &&
	    SSL_get_verify_result(ssl) == X509_V_OK;
}
