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

#endif
