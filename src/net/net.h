/*
 * net.h - connections, line reading, timers, listeners, TLS contexts and
 * the thread pool.  The only folder that includes libevent or OpenSSL:
 * protocol sessions see a struct conn and events, never sockets or TLS.
 */
#ifndef MAILFORT_NET_H
#define MAILFORT_NET_H

#include <sys/socket.h>

#include "core/config.h"

struct event_base;
struct conn;
struct tls_ctx;
struct pool;

/* ---- TLS contexts (loaded by the master, inherited by workers) ---- */
/*
 * Builds the server contexts from cfg: one per certificate pair, the
 * first unnamed pair the default, others picked by SNI (exact name, then
 * "*.rest" wildcard match of the certificate name).  TLS 1.2+ only;
 * profile intermediate (Mozilla's list) or modern (1.3 only).
 * Returns NULL and *error_r (static or in errbuf) on failure.
 */
struct tls_ctx *tls_ctx_load(const struct config *cfg, char *errbuf,
    size_t errlen);
void tls_ctx_free(struct tls_ctx **ctx);

/* ---- connections ---- */
enum line_res { LINE_OK, LINE_NEED_MORE, LINE_TOO_LONG };

struct conn_ops {
	/* The connection is ready for the greeting: after the PROXY header
	 * (when expected) and the implicit TLS handshake (when TLS). */
	void (*on_ready)(void *ctx);
	/* Input arrived. */
	void (*on_read)(void *ctx);
	/* The peer closed, timed out, errored or TLS failed; the session
	 * must call conn_free() (here or later). why is static text. */
	void (*on_close)(void *ctx, const char *why);
	/* No input for the idle timeout: the session may write a last reply
	 * and close after it drains (writes get 10 more seconds). */
	void (*on_timeout)(void *ctx);
	/* Output fully written (only after conn_notify_drained()). */
	void (*on_drained)(void *ctx);
	/* STARTTLS handshake done (see conn_starttls()). */
	void (*on_tls)(void *ctx);
};

/*
 * Takes ownership of fd.  With tls non-NULL the connection starts TLS at
 * once (implicit TLS) - unless expect_proxy, then the PROXY header is read
 * first, in plaintext, before anything else.  peer is the socket's peer.
 */
struct conn *conn_new(struct event_base *base, int fd,
    const struct sockaddr *peer, socklen_t peer_len, struct tls_ctx *tls,
    bool expect_proxy, const struct conn_ops *ops, void *ctx);
/* Call right after conn_new() once the session holds c: plaintext
 * connections without PROXY get on_ready() from here. */
void conn_start(struct conn *c);
/* Closes the socket now (unsent output is dropped). */
void conn_free(struct conn **c);

/* Client address as seen after PROXY (or the socket's peer). */
const struct sockaddr *conn_peer(const struct conn *c);
/* Numeric address text of conn_peer(). */
const char *conn_peer_addr(const struct conn *c);
/* Our local address and port as the client reached them. */
const char *conn_local_addr(const struct conn *c);
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3" and cipher name; NULL before TLS. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
int conn_tls_bits(const struct conn *c);
/* The SNI name the client sent, or NULL. */
const char *conn_tls_sni(const struct conn *c);

/*
 * Reads one line ending in LF (CR before it is stripped) of at most max
 * bytes excluding the line end into out (NUL-terminated, out_size > max).
 * TOO_LONG: the line was discarded up to and including its LF (or, if
 * no LF yet, the connection discards until the next LF by itself).
 * *bare_lf_r tells whether the line ended in LF without CR.
 */
enum line_res conn_read_line(struct conn *c, char *out, size_t out_size,
    size_t max, size_t *len_r, bool *bare_lf_r);
/* The first contiguous run of buffered input (no copy); *len_r 0 when
 * empty.  Valid until the next read or drain. */
const char *conn_peek(struct conn *c, size_t max, size_t *len_r);
/* Drops n bytes of buffered input (after conn_peek). */
void conn_drain(struct conn *c, size_t n);
/* Bytes waiting in the input buffer. */
size_t conn_input_len(const struct conn *c);
/* Moves up to max bytes of input to out; returns the count. */
size_t conn_read(struct conn *c, void *out, size_t max);
/* Discards all buffered input (STARTTLS, RFC 3207 §4.1 / CVE-2011-0411). */
void conn_discard_input(struct conn *c);

void conn_write(struct conn *c, const void *data, size_t len);
void conn_printf(struct conn *c, const char *fmt, ...) MF_PRINTF(2, 3);
/* Output waiting to be sent (capped by sessions: slow readers). */
size_t conn_output_len(const struct conn *c);
/* Call on_drained once all current output is sent. */
void conn_notify_drained(struct conn *c);
/* Like conn_notify_drained(), and under TLS sends close_notify first:
 * for the last reply of a session. */
void conn_finish(struct conn *c);

void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);
/* Idle timeout: on_close(ctx, "timeout") after secs without input. */
void conn_set_timeout(struct conn *c, unsigned secs);

/*
 * Starts TLS on a plaintext connection: everything already buffered from
 * the peer is discarded first, the output written so far (the 220 reply)
 * goes out in plaintext ahead of the handshake.  on_tls() follows.
 * Returns -1 if TLS is not configured.
 */
int conn_starttls(struct conn *c, struct tls_ctx *tls) MF_WUR;

/* ---- listeners ---- */
/*
 * Binds addr:port (numeric, IPv4 or IPv6) with SO_REUSEADDR, listen
 * backlog 512, non-blocking.  Returns the fd or -1 with errno.
 */
int listener_bind(const char *host, const char *port);

/* ---- thread pool: blocking work off the event loop ---- */
/*
 * work(arg) runs on a pool thread; done(arg) then runs on the loop thread
 * of base.  Jobs must own copies of what they use, never session objects.
 */
struct pool *pool_new(struct event_base *base, unsigned threads);
/* Waits for queued jobs to finish, then frees the pool. */
void pool_free(struct pool **p);
void pool_submit(struct pool *p, void (*work)(void *arg),
    void (*done)(void *arg), void *arg);
/* Any thread: run done(arg) on the loop thread soon. */
void pool_complete(struct pool *p, void (*done)(void *arg), void *arg);

/* ---- IPC between the children and the master (DESIGN.md §2) ---- */
/*
 * Small typed messages over a SOCK_SEQPACKET socketpair per child.  A
 * child announces "the mailboxes of account X changed" (delivery, expunge,
 * flag change); the master fans it out to every worker so IMAP IDLE
 * sessions and the like wake up at once.  Best effort: a full socket drops
 * the message (the receivers poll as a fallback).
 */
enum ipc_type {
	IPC_MAILBOX_CHANGED = 1,	/* data: account, NUL-terminated */
};
#define IPC_DATA_MAX 512

struct ipc_msg {
	uint32_t type;
	uint32_t len;			/* of data */
	char data[IPC_DATA_MAX];
};

/* In a child: the socket to the master (-1: none, e.g. CLI tools). */
void ipc_child_set_fd(int fd);
int ipc_child_fd(void);
/* In a child: tell the master that account's mailboxes changed. */
void ipc_notify_changed(const char *account);
/* Sends one message on fd (non-blocking); -1 when it could not go. */
int ipc_send(int fd, enum ipc_type type, const void *data, size_t len);
/* Receives one message; 1 got one, 0 none waiting, -1 peer gone/error.
 * Malformed messages from a peer are errors. */
int ipc_recv(int fd, struct ipc_msg *msg_r);

/* In a worker: run fn(account, ctx) for each change notification. */
typedef void ipc_changed_fn(const char *account, void *ctx);
struct ipc_listener;
struct ipc_listener *ipc_listen(struct event_base *base, int fd,
    ipc_changed_fn *fn, void *ctx);
void ipc_listener_free(struct ipc_listener **l);

#endif
