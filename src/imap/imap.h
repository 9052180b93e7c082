/*
 * imap.h - the IMAP server side (issue #4): one imap_server per worker
 * process, one session per connection on the imap (STARTTLS required
 * before login) and imaps (implicit TLS) listeners.
 */
#ifndef MAILFORT_IMAP_H
#define MAILFORT_IMAP_H

#include <sys/socket.h>

#include "core/config.h"

struct event_base;
struct tls_ctx;
struct accounts;
struct lockout;
struct pool;
struct imap_server;

/* Everything borrowed lives as long as the imap_server. */
struct imap_server *imap_server_new(struct event_base *base,
    const struct config *cfg, struct tls_ctx *tls, struct accounts *acc,
    struct lockout *lockout, struct pool *pool);
/* Before pool_free(): later store work runs on the calling thread. */
void imap_server_detach_pool(struct imap_server *srv);
void imap_server_free(struct imap_server **srv);

/* A new connection on LISTENER_IMAP or LISTENER_IMAPS (owns fd). */
void imap_accept(struct imap_server *srv, enum listener_kind kind, int fd,
    const struct sockaddr *peer, socklen_t peer_len);
/* The mailboxes of account changed (master fan-out): sessions on it
 * look for news (IDLE wake-up). */
void imap_server_changed(struct imap_server *srv, const char *account);
/* Graceful stop: idle sessions get BYE now, busy ones when done. */
void imap_server_shutdown(struct imap_server *srv);
size_t imap_server_sessions(const struct imap_server *srv);

#endif
