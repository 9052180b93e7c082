/*
 * server.h - the process model of DESIGN.md §2: a master that binds the
 * listeners and loads keys (as root when needed), worker processes that
 * run the sessions as the unprivileged user, and the queue runner.
 */
#ifndef MAILFORT_SERVER_H
#define MAILFORT_SERVER_H

#include "core/config.h"

struct tls_ctx;
struct lockout;

/* `mailfort serve -c FILE`: runs in the foreground until SIGTERM/SIGINT.
 * Returns the process exit status. */
int server_main(const char *config_path);

/* What a worker process gets from the master. */
struct worker_args {
	const struct config *cfg;
	struct tls_ctx *tls;
	struct lockout *lockout;
	int listen_fds[LISTENER_COUNT][CONFIG_MAX_ADDRS];
	int wake_fd;		/* queue runner wake-up pipe, write end */
	unsigned index;
};

/* Worker process body (after fork); never returns. */
void worker_main(const struct worker_args *wa) __attribute__((noreturn));
/* Drops to cfg->user when running as root; fatal on failure. */
void server_drop_privileges(const struct config *cfg);

#endif
