/*
 * pop3.h - the POP3 server side (RFC 1939, RFC 2449, RFC 5034, RFC 2595):
 * one pop3_server per worker process, one session per connection on the
 * pop3 (STLS required before login) and pop3s (implicit TLS) listeners
 * (DESIGN.md §1), serving the INBOX of the account's store.
 */
#ifndef MAILFORT_POP3_H
#define MAILFORT_POP3_H

#include <sys/socket.h>

#include "core/config.h"

struct event_base;
struct tls_ctx;
struct accounts;
struct lockout;
struct pool;
struct pop3_server;

/* Everything borrowed lives as long as the pop3_server.  Password checks
 * and store work run on pool; failed logins count in lockout, the table
 * SMTP uses too. */
struct pop3_server *pop3_server_new(struct event_base *base,
    const struct config *cfg, struct tls_ctx *tls, struct accounts *acc,
    struct lockout *lockout, struct pool *pool);
/* Before pool_free(): from here on store work runs on the calling thread
 * and new logins are refused (the loop has ended). */
void pop3_server_detach_pool(struct pop3_server *srv);
/* After pool_free(): stores still open are closed on the calling
 * thread. */
void pop3_server_free(struct pop3_server **srv);

/* A new connection on listener kind LISTENER_POP3 or LISTENER_POP3S
 * (takes ownership of fd). */
void pop3_accept(struct pop3_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len);

/* Graceful stop: sessions waiting for a command close now (nothing is
 * deleted without QUIT, RFC 1939 §6), a response being sent or an UPDATE
 * in progress finishes first.  New connections are refused by the
 * caller. */
void pop3_server_shutdown(struct pop3_server *srv);
/* Sessions still open. */
size_t pop3_server_sessions(const struct pop3_server *srv);

#endif
