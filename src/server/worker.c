/*
 * worker.c - a worker process: one libevent loop serving SMTP, POP3 and
 * IMAP sessions on the inherited listeners, a thread pool for password checks
 * and store work, and a committer thread for the spool.  SIGTERM/SIGQUIT:
 * stop accepting, let running transactions finish (at most
 * WORKER_DRAIN_SECONDS), exit.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "auth/auth.h"
#include "net/net.h"
#include "imap/imap.h"
#include "pop3/pop3.h"
#include "queue/queue.h"
#include "server/server.h"
#include "smtp/smtp.h"

#define WORKER_DRAIN_SECONDS 30
#define WORKER_POOL_THREADS 2

struct worker_listener {
	struct evconnlistener *lev;
	enum listener_kind kind;
	int fd;
	struct worker *w;
};

struct worker {
	const struct worker_args *wa;
	struct event_base *base;
	struct smtp_server *smtp;
	struct pop3_server *pop3;
	struct imap_server *imap;
	struct worker_listener listeners[LISTENER_COUNT * CONFIG_MAX_ADDRS];
	size_t nlisteners;
	struct event *sig_term, *sig_quit, *drain_timer;
	uint64_t drain_deadline;
	bool draining;
};

void
server_drop_privileges(const struct config *cfg)
{
	struct passwd *pw;

	if (getuid() != 0)
		return;
	if (strcmp(cfg->user, "root") == 0) {
		log_warnx("server.user is root: children keep root privileges");
		return;
	}
	pw = getpwnam(cfg->user);
	if (pw == NULL)
		fatalx("user %s does not exist", cfg->user);
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		fatal("cannot drop privileges to %s", cfg->user);
	if (setuid(0) == 0)
		fatalx("privileges could be regained");
}

static void
worker_on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct worker_listener *wl = arg;

	if (wl->w->draining) {
		close(fd);
		return;
	}
	if (wl->kind == LISTENER_POP3 || wl->kind == LISTENER_POP3S)
		pop3_accept(wl->w->pop3, wl->kind, fd, sa, (socklen_t)len);
	else if (wl->kind == LISTENER_IMAP || wl->kind == LISTENER_IMAPS)
		imap_accept(wl->w->imap, wl->kind, fd, sa, (socklen_t)len);
	else
		smtp_accept(wl->w->smtp, wl->kind, fd, sa, (socklen_t)len);
}

static void
worker_on_accept_error(struct evconnlistener *lev, void *arg)
{
	/* EMFILE and friends: keep going, the listener retries. */
	log_warn("accept");
}

/* The master relays "account changed" from any child (DESIGN.md §2). */
static void
worker_on_changed(const char *account, void *ctx)
{
	char esc[LOG_ESCAPE_BUF];

	struct worker *w = ctx;

	log_debug("mailbox change account=%s",
	    log_escape(account, strlen(account), esc));
	imap_server_changed(w->imap, account);
}

static void
worker_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if ((smtp_server_sessions(w->smtp) == 0 &&
	    pop3_server_sessions(w->pop3) == 0 &&
	    imap_server_sessions(w->imap) == 0) ||
	    time_mono_ms() >= w->drain_deadline)
		event_base_loopexit(w->base, NULL);
}

static void
worker_on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = { .tv_usec = 100000 };

	if (w->draining)
		return;
	w->draining = true;
	log_info("worker %u stopping (%zu sessions)", w->wa->index,
	    smtp_server_sessions(w->smtp) + pop3_server_sessions(w->pop3) +
	    imap_server_sessions(w->imap));
	for (size_t i = 0; i < w->nlisteners; i++) {
		evconnlistener_free(w->listeners[i].lev);
		close(w->listeners[i].fd);	/* free the port for a restart */
	}
	w->nlisteners = 0;
	smtp_server_shutdown(w->smtp);
	pop3_server_shutdown(w->pop3);
	imap_server_shutdown(w->imap);
	w->drain_deadline = time_mono_ms() + WORKER_DRAIN_SECONDS * 1000;
	w->drain_timer = event_new(w->base, -1, EV_PERSIST,
	    worker_drain_check, w);
	event_add(w->drain_timer, &tv);
}

static void
worker_listen(struct worker *w)
{
	for (int k = 0; k < LISTENER_COUNT; k++) {
		for (size_t i = 0; i < CONFIG_MAX_ADDRS; i++) {
			int fd = w->wa->listen_fds[k][i];
			struct worker_listener *wl;
			if (fd < 0)
				continue;
			wl = &w->listeners[w->nlisteners++];
			wl->kind = (enum listener_kind)k;
			wl->fd = fd;
			wl->w = w;
			wl->lev = evconnlistener_new(w->base, worker_on_accept,
			    wl, LEV_OPT_CLOSE_ON_EXEC, -1, fd);
			if (wl->lev == NULL)
				fatalx("evconnlistener_new failed");
			evconnlistener_set_error_cb(wl->lev,
			    worker_on_accept_error);
		}
	}
}

void
worker_main(const struct worker_args *wa)
{
	struct worker w = { .wa = wa };
	struct accounts *acc;
	struct pool *pool;
	struct queue_committer *qc;
	struct ipc_listener *ipc = NULL;
	const char *err;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	server_drop_privileges(wa->cfg);
	if (evthread_use_pthreads() < 0)
		fatalx("evthread_use_pthreads failed");
	w.base = event_base_new();
	if (w.base == NULL)
		fatalx("event_base_new failed");
	acc = accounts_open(wa->cfg->users_file, wa->cfg->aliases_file);
	pool = pool_new(w.base, WORKER_POOL_THREADS);
	qc = queue_committer_new(wa->cfg->data_dir, pool, wa->wake_fd, &err);
	if (qc == NULL)
		fatalx("worker: %s", err);
	w.smtp = smtp_server_new(w.base, wa->cfg, wa->tls, acc, wa->lockout,
	    qc, pool);
	w.pop3 = pop3_server_new(w.base, wa->cfg, wa->tls, acc, wa->lockout,
	    pool);
	w.imap = imap_server_new(w.base, wa->cfg, wa->tls, acc, wa->lockout,
	    pool);
	worker_listen(&w);
	if (ipc_child_fd() >= 0)
		ipc = ipc_listen(w.base, ipc_child_fd(), worker_on_changed,
		    &w);
	w.sig_term = evsignal_new(w.base, SIGTERM, worker_on_stop, &w);
	w.sig_quit = evsignal_new(w.base, SIGQUIT, worker_on_stop, &w);
	evsignal_add(w.sig_term, NULL);
	evsignal_add(w.sig_quit, NULL);
	log_info("worker %u started (%zu accounts)", wa->index,
	    accounts_count(acc));
	event_base_dispatch(w.base);
	/* Commits in flight finish before the process goes. */
	queue_committer_free(&qc);
	event_base_loop(w.base, EVLOOP_NONBLOCK);
	pop3_server_detach_pool(w.pop3);
	imap_server_detach_pool(w.imap);
	pool_free(&pool);
	smtp_server_free(&w.smtp);
	pop3_server_free(&w.pop3);
	imap_server_free(&w.imap);
	for (size_t i = 0; i < w.nlisteners; i++)
		evconnlistener_free(w.listeners[i].lev);
	if (w.drain_timer != NULL)
		event_free(w.drain_timer);
	ipc_listener_free(&ipc);
	event_free(w.sig_term);
	event_free(w.sig_quit);
	accounts_free(&acc);
	event_base_free(w.base);
	log_info("worker %u exited", wa->index);
	exit(0);
}
