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

/* ---- timers: one-shot callbacks on the loop ---- */
/*
 * A timer calls fn(arg) on base's loop thread when it fires, and
 * never from inside a net_timer_*() call.  fn may add the timer again
 * (a ticker re-arms itself first thing) or free it.  Loop thread only.
 */
struct net_timer;

/* Unarmed.  Lives until net_timer_free(). */
struct net_timer *net_timer_new(struct event_base *base, void (*fn)(void *arg),
    void *arg);
/*
 * Arms t to fire once, ms milliseconds from now (give or take the few ms
 * of libevent's coarse clock).  0 means "run soon": as soon as the loop
 * is back in control, after the callbacks already due.  Re-arming an
 * armed timer replaces the time set before: fn still runs once.
 */
void net_timer_add(struct net_timer *t, unsigned ms);
/* Disarms t; fn will not run until the next net_timer_add(). */
void net_timer_cancel(struct net_timer *t);
/* Armed and not yet fired (false inside fn unless fn re-armed it). */
bool net_timer_pending(const struct net_timer *t);
/* Disarms and frees; *t becomes NULL; NULL is ignored. */
void net_timer_free(struct net_timer **t);

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

/* ---- outbound client connections (the queue runner) ---- */
/*
 * A client TLS context: TLS 1.2+; peers that must be verified chain to
 * ca_file (PEM) or, when ca_file is NULL or "", to the system's CA store
 * (Debian's ca-certificates).  NULL and *error_r on failure.
 */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, const char **error_r);

/*
 * Connects to addr without blocking.  ops->on_ready(ctx) once connected
 * (with tls non-NULL: implicit TLS, after the handshake); on failure or
 * after timeout_secs, ops->on_close(ctx, why) instead (why is static text
 * such as "connect: Connection refused", "timeout", "tls: handshake
 * failed").  sni (or NULL) is sent in the ClientHello; with verify set the
 * peer's certificate must chain to the CA store and match sni, or the
 * handshake fails.  Then the connection works like a server one: reads,
 * writes, conn_set_timeout(), conn_free().  conn_peer_addr() is addr.
 */
struct conn *conn_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t addr_len, unsigned timeout_secs, struct tls_ctx *tls,
    const char *sni, bool verify, const struct conn_ops *ops, void *ctx);
/*
 * STARTTLS as the client, after the peer's 220: ops->on_tls(ctx) when the
 * handshake is done, ops->on_close(ctx, "tls: ...") when it fails.
 * Buffered input is discarded first (RFC 3207 §4.1 on the client side).
 */
int conn_starttls_client(struct conn *c, struct tls_ctx *tls, const char *sni,
    bool verify) MF_WUR;
/* Whether the peer certificate verified (chain and name); false before
 * TLS or when verification was not asked for and failed. */
bool conn_tls_verified(const struct conn *c);

/* ---- DNS: libunbound, asynchronous on the event loop, DNSSEC on ---- */
/*
 * One resolver per process, on base: [dns] resolver (ADDR:PORT, a
 * forwarder; empty: /etc/resolv.conf's and /etc/hosts) and trust_anchor
 * (a file of DS or DNSKEY records; empty: /usr/share/dns/root.key from
 * dns-root-data).  Answers that fail validation (bogus) are temporary
 * failures: mail waits rather than go to a forged MX.  libunbound keeps
 * a resolver thread of its own: call dns_new() after fork(), never
 * before.  Each dns_resolve_*() ends within 30 seconds (then TEMPFAIL).
 */
struct dns;
struct dns_query;

enum dns_status {
	DNS_OK,
	DNS_NULL_MX,		/* RFC 7505: the domain takes no mail */
	DNS_NOT_FOUND,		/* NXDOMAIN, or no MX and no address */
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, bogus: retry later */
};

struct dns_addr {
	struct sockaddr_storage ss;	/* port already set */
	socklen_t len;
};

struct dns_host {
	char *name;		/* lower-case, no trailing dot */
	unsigned pref;		/* MX preference; 0 for implicit MX */
	struct dns_addr *addrs;	/* IPv6 first (when wanted), then IPv4;
				 * at most 8 of each family */
	size_t naddrs;		/* > 0: hosts without addresses are dropped */
	bool tempfail;		/* a lookup of it failed temporarily: some
				 * addresses may be missing */
};

struct dns_mx {
	enum dns_status status;
	char *error;		/* for logs and DSNs; set iff status != OK */
	bool secure;		/* DNSSEC: the MX answer validated; implicit
				 * MX and hosts: every address answer did */
	bool implicit;		/* no MX RRset: the domain itself (RFC 5321
				 * §5.1) */
	struct dns_host *hosts;	/* by preference, ties shuffled; at most 16;
				 * none unless status is OK */
	size_t nhosts;
};

/* cb gets ownership of res (dns_mx_free()).  It may call any dns_*()
 * function, dns_free() included; its query pointer is dead by then. */
typedef void dns_mx_cb(void *arg, struct dns_mx *res);

struct dns *dns_new(struct event_base *base, const struct config *cfg,
    const char **error_r);
/* Cancels what is outstanding (no callbacks) and frees. */
void dns_free(struct dns **d);
/*
 * Mail destinations of domain (A-label or U-label, no trailing dot), every
 * address with port set: MX records in preference order, then each host's
 * AAAA (when cfg's outbound.ipv6) and A records; no MX RRset: the domain's
 * own addresses (implicit MX); a single "." MX: DNS_NULL_MX.  MX hosts
 * without addresses are dropped; none left: DNS_TEMPFAIL when any lookup
 * failed temporarily, else DNS_NOT_FOUND.  An address literal
 * "[192.0.2.1]" or "[IPv6:2001:db8::1]" answers at once (host name: the
 * bare address).  Names must be LDH (A-labels): anything else, U-labels
 * included, is DNS_NOT_FOUND with the reason.  cb runs on the loop
 * later, never from inside this call.
 */
struct dns_query *dns_resolve_mx(struct dns *d, const char *domain,
    uint16_t port, dns_mx_cb *cb, void *arg);
/* The addresses of one host name (or address literal, or bare numeric
 * address) as a one-host dns_mx: the relay host. */
struct dns_query *dns_resolve_host(struct dns *d, const char *host,
    uint16_t port, dns_mx_cb *cb, void *arg);
/* Cancels a query whose callback has not run; *q becomes NULL. */
void dns_cancel(struct dns_query **q);
void dns_mx_free(struct dns_mx **res);

/* ---- the DNS parsers, public for tests and fuzzing ---- */
#define DNS_NAME_TEXT_MAX 253
/* One MX RR's rdata (preference, uncompressed exchange name as
 * libunbound hands it over): 1 and a lower-case host name in name_r, 0
 * for the null MX exchange ".", -1 when malformed. */
int dns_mx_rdata_parse(const void *rdata, size_t len, unsigned *pref_r,
    char name_r[DNS_NAME_TEXT_MAX + 1]);
/* A mail domain as given (ASCII or U-labels, optional trailing dot) in
 * its lower-case A-label form; NULL, or what is wrong with it. */
const char *dns_name_normalize(const char *name,
    char out[DNS_NAME_TEXT_MAX + 1]);

#endif
