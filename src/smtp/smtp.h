/*
 * smtp.h - the SMTP server side: one smtp_server per worker process, one
 * session per connection on the smtp, submissions and submission
 * listeners (DESIGN.md §1).
 */
#ifndef MAILFORT_SMTP_H
#define MAILFORT_SMTP_H

#include <sys/socket.h>

#include "core/config.h"

struct event_base;
struct tls_ctx;
struct accounts;
struct lockout;
struct queue_committer;
struct pool;
struct smtp_server;

/* Everything borrowed lives as long as the smtp_server. */
struct smtp_server *smtp_server_new(struct event_base *base,
    const struct config *cfg, struct tls_ctx *tls, struct accounts *acc,
    struct lockout *lockout, struct queue_committer *qc, struct pool *pool);
void smtp_server_free(struct smtp_server **srv);

/* A new connection on listener kind (takes ownership of fd). */
void smtp_accept(struct smtp_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len);

/* Graceful stop: idle sessions get 421 and close now, busy ones when
 * their transaction ends.  New connections are refused by the caller. */
void smtp_server_shutdown(struct smtp_server *srv);
/* Sessions still open. */
size_t smtp_server_sessions(const struct smtp_server *srv);

/* ---- the SMTP client: outbound delivery (smtp_client*.c) ---- */
/*
 * One connection to one MX or relay host, driven by the queue runner:
 * greeting, EHLO (HELO when EHLO is refused), STARTTLS, AUTH, then any
 * number of transactions (connection reuse), then QUIT.  Timeouts per
 * RFC 5321 §4.5.3.2: greeting, MAIL and RCPT 5 min, DATA 2 min, each data
 * block 3 min, the final "." 10 min; EHLO, STARTTLS, AUTH, RSET, QUIT
 * 5 min.  Reply lines are bounded (SMTPC_LINE_MAX) and so are multi-line
 * replies (SMTPC_REPLY_LINES_MAX); anything else is a protocol error that
 * closes the connection with a temporary failure.
 */
struct smtpc;

#define SMTPC_LINE_MAX 4096		/* one reply line, RFC 5321 §4.5.3.1.5
					 * says 512: we take more */
#define SMTPC_REPLY_LINES_MAX 128	/* lines of one multi-line reply */

enum smtpc_tls {
	SMTPC_TLS_MAY,		/* STARTTLS when offered (port 25, Postfix's
				 * "may"); a refused STARTTLS goes on in
				 * plaintext, a failed handshake closes with
				 * tls_failed (retry with SMTPC_TLS_NONE) */
	SMTPC_TLS_NONE,		/* plaintext: the retry after a failed
				 * handshake */
	SMTPC_TLS_STARTTLS,	/* STARTTLS required: never plaintext */
	SMTPC_TLS_IMPLICIT,	/* TLS from the first byte (port 465) */
};

struct smtpc_params {
	const char *helo;	/* our hostname */
	const char *peer_name;	/* MX or relay host: SNI, verification,
				 * logs */
	enum smtpc_tls tls;
	struct tls_ctx *tls_ctx;	/* from tls_client_ctx_new() */
	bool verify;		/* certificate must verify (relay) */
	const char *auth_user;	/* AUTH PLAIN (else LOGIN) once TLS is up;
				 * NULL: no AUTH */
	const char *auth_password;
	unsigned connect_timeout;	/* seconds */
	/* 0: RFC 5321 §4.5.3.2's 300 s for the greeting and each command,
	 * 600 s for the reply to the final "." */
	unsigned command_timeout;
	unsigned data_done_timeout;
};

/* A reply of the peer, or one we make up for local failures. */
struct smtpc_reply {
	int code;		/* 250, 451, 550, ... */
	char status[16];	/* enhanced status code ("5.1.1"); from
				 * the reply or derived from code */
	char *text;		/* the whole reply, lines joined by " ",
				 * e.g. "550 5.1.1 <a@b>: User unknown" */
};

struct smtpc_txn {
	/* in: borrowed until on_txn_done() */
	const char *sender;		/* "" for <> */
	const char *const *rcpts;
	size_t nrcpts;
	int fd;				/* spool file (CRLF lines), read
					 * from offset 0 */
	uint64_t size;			/* prefix + file, for SIZE= */
	const char *prefix;		/* header fields sent first
					 * (DKIM-Signature), or NULL */
	size_t prefix_len;
	int body;			/* 0 7BIT, 1 8BITMIME, 2 BINARYMIME */
	bool smtputf8;			/* needs SMTPUTF8: refused (550
					 * 5.6.7) when the peer lacks it */
	/* out: one reply per recipient - its RCPT reply when that failed,
	 * else the final reply after the data (or MAIL's when MAIL failed,
	 * or a made-up one: 552 5.3.4 over the peer's SIZE, 550 5.6.7 no
	 * SMTPUTF8, 451 4.4.2 connection lost); allocated by smtpc_send() */
	struct smtpc_reply *results;
};
/* Frees t->results. */
void smtpc_txn_clear(struct smtpc_txn *t);

struct smtpc_ops {
	/* Greeting, EHLO, TLS and AUTH are done: smtpc_send() now. */
	void (*on_ready)(void *arg);
	/* t->results are all set; the connection is idle again (after RSET
	 * where needed) and takes smtpc_send() or smtpc_quit(). */
	void (*on_txn_done)(void *arg, struct smtpc_txn *t);
	/* The connection is gone: why says why (for QUIT: 221).  A
	 * transaction in progress got its on_txn_done() first, with
	 * temporary failures.  tls_failed: the handshake failed (with
	 * SMTPC_TLS_MAY the caller retries the host in plaintext).  The
	 * caller calls smtpc_free() (here or later). */
	void (*on_close)(void *arg, const struct smtpc_reply *why,
	    bool tls_failed);
};

struct smtpc *smtpc_connect(struct event_base *base,
    const struct sockaddr *addr, socklen_t addr_len,
    const struct smtpc_params *p, const struct smtpc_ops *ops, void *arg);
/* Starts a transaction; only between on_ready/on_txn_done and the next. */
void smtpc_send(struct smtpc *c, struct smtpc_txn *t);
/* Sends QUIT; on_close() follows (after 221 or a timeout). */
void smtpc_quit(struct smtpc *c);
/* Closes at once, without callbacks. */
void smtpc_free(struct smtpc **c);

/* For logs: "TLSv1.3"/cipher or NULL in plaintext; the peer's address. */
const char *smtpc_tls_version(const struct smtpc *c);
const char *smtpc_tls_cipher(const struct smtpc *c);
bool smtpc_tls_verified(const struct smtpc *c);
const char *smtpc_peer_addr(const struct smtpc *c);
/* The peer's EHLO SIZE limit (0: none given). */
uint64_t smtpc_peer_size(const struct smtpc *c);

/* ---- reply parsing (smtp_client_parse.c; fuzzed) ---- */
/*
 * One reply line "ddd[- ]text" (CR LF already stripped): *code_r, *last_r
 * (space or end after the code, not '-'), *text_r (after the separator).
 * -1 when the line is no valid reply line.
 */
int smtpc_parse_line(const char *line, size_t len, int *code_r,
    bool *last_r, const char **text_r) MF_WUR;
/* Enhanced status code at the start of text ("5.1.1 ...", RFC 3463)
 * matching code's class; copied into out (16 bytes); false if none. */
bool smtpc_parse_status(int code, const char *text, char out[16]);

#endif
