/*
 * master.c - the master process: reads the configuration, binds every
 * listener and loads TLS keys (as root if need be), then forks and
 * supervises the workers and the queue runner.  It never parses network
 * input.  SIGHUP: reload configuration, accounts and certificates by
 * starting a new generation of children and letting the old one finish
 * its sessions.  SIGTERM/SIGINT: stop everything gracefully.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/auth.h"
#include "net/net.h"
#include "queue/queue_private.h"
#include "server/server.h"

#define MASTER_MAX_CHILDREN 128
#define MASTER_STOP_SECONDS 40		/* then SIGKILL */
#define MASTER_RESPAWN_DELAY_MS 1000	/* after a crash */

enum child_role { CHILD_WORKER, CHILD_RUNNER };

struct child {
	pid_t pid;
	enum child_role role;
	unsigned index;
	unsigned generation;
	uint64_t started_ms;
	int ipc_fd;			/* master's end, -1 when none */
	struct event *ipc_ev;
};

struct master {
	struct config cfg;
	struct tls_ctx *tls;
	struct lockout *lockout;
	int listen_fds[LISTENER_COUNT][CONFIG_MAX_ADDRS];
	int wake_pipe[2];
	struct event_base *base;
	struct child children[MASTER_MAX_CHILDREN];
	unsigned generation;
	unsigned nworkers;
	bool stopping;
	uint64_t stop_deadline;
	struct event *respawn_timer;
};

static struct master *master_self;
static volatile int runner_stop;

static void
master_report(const char *file, int line, const char *key, const char *msg,
    void *ctx)
{
	if (line > 0)
		log_warnx("config %s:%d: %s: %s", file, line, key, msg);
	else
		log_warnx("config %s: %s: %s", file, key, msg);
}

static void
master_close_listeners(int fds[LISTENER_COUNT][CONFIG_MAX_ADDRS])
{
	for (int k = 0; k < LISTENER_COUNT; k++)
		for (int i = 0; i < CONFIG_MAX_ADDRS; i++)
			if (fds[k][i] >= 0) {
				close(fds[k][i]);
				fds[k][i] = -1;
			}
}

/* Binds the listeners this build serves; -1 (all closed) on failure. */
static int
master_bind(const struct config *cfg, int fds[LISTENER_COUNT][CONFIG_MAX_ADDRS])
{
	for (int k = 0; k < LISTENER_COUNT; k++)
		for (int i = 0; i < CONFIG_MAX_ADDRS; i++)
			fds[k][i] = -1;
	for (int k = 0; k < LISTENER_COUNT; k++) {
		const struct listen_cfg *lc = &cfg->listen[k];
		if (lc->count == 0)
			continue;
		for (size_t i = 0; i < lc->count; i++) {
			fds[k][i] = listener_bind(lc->addrs[i].host,
			    lc->addrs[i].port);
			if (fds[k][i] < 0) {
				log_warn("cannot listen on %s:%s (%s)",
				    lc->addrs[i].host, lc->addrs[i].port,
				    listener_names[k]);
				master_close_listeners(fds);
				return -1;
			}
			log_info("listening on %s:%s (%s%s)",
			    lc->addrs[i].host, lc->addrs[i].port,
			    listener_names[k], lc->proxy_protocol ?
			    ", PROXY protocol" : "");
		}
	}
	return 0;
}

static int
master_chown_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	struct passwd *pw = getpwnam(master_self->cfg.user);

	if (pw != NULL && (st->st_uid != pw->pw_uid || st->st_gid != pw->pw_gid)
	    && lchown(path, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("chown %s", path);
	return 0;
}

/* The schema is created once here, before children race for it. */
static int
master_prepare_queue(struct master *m)
{
	const char *err;
	sqlite3 *db;

	if (queue_db_open(m->cfg.data_dir, &db, &err) < 0) {
		log_warnx("%s: %s", m->cfg.data_dir, err);
		return -1;
	}
	sqlite3_close(db);
	return 0;
}

/* The data directory belongs to the unprivileged user. */
static int
master_prepare_data_dir(struct master *m)
{
	const char *err;
	char *p;

	if (queue_dirs_create(m->cfg.data_dir, &err) < 0) {
		log_warn("%s: %s", m->cfg.data_dir, err);
		return -1;
	}
	if (master_prepare_queue(m) < 0)
		return -1;
	/* Before the chown: opening the queue may create its WAL files. */
	queue_clean_tmp(m->cfg.data_dir);
	queue_clean_orphans(m->cfg.data_dir);
	if (getuid() == 0 && strcmp(m->cfg.user, "root") != 0) {
		if (getpwnam(m->cfg.user) == NULL) {
			log_warnx("user %s does not exist", m->cfg.user);
			return -1;
		}
		master_chown_cb(m->cfg.data_dir, &(struct stat){0}, 0, NULL);
		p = xasprintf("%s/spool", m->cfg.data_dir);
		nftw(p, master_chown_cb, 16, FTW_PHYS);
		free(p);
		p = xasprintf("%s/queue", m->cfg.data_dir);
		nftw(p, master_chown_cb, 16, FTW_PHYS);
		free(p);
		p = xasprintf("%s/mail", m->cfg.data_dir);
		master_chown_cb(p, &(struct stat){0}, 0, NULL);
		free(p);
	}
	return 0;
}



static struct child *
master_slot(struct master *m)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid == 0)
			return &m->children[i];
	return NULL;
}

static void
runner_on_signal(int sig)
{
	runner_stop = 1;
}

static void
master_runner_main(struct master *m)
{
	struct sigaction sa = { .sa_handler = runner_on_signal };

	log_set_proc("queue");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	master_close_listeners(m->listen_fds);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	server_drop_privileges(&m->cfg);
	queue_runner_run(&m->cfg, m->wake_pipe[0], &runner_stop);
	exit(0);
}

/* A child said an account changed: every worker hears it. */
static void
master_on_ipc(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = master_self;
	struct child *from = arg;
	struct ipc_msg msg;
	int rc;

	while ((rc = ipc_recv(fd, &msg)) == 1) {
		if (msg.type != IPC_MAILBOX_CHANGED)
			continue;
		for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
			struct child *c = &m->children[i];
			if (c->pid > 0 && c->role == CHILD_WORKER &&
			    c->ipc_fd >= 0)
				(void)ipc_send(c->ipc_fd, IPC_MAILBOX_CHANGED,
				    msg.data, msg.len);
		}
	}
	if (rc < 0 && from->ipc_ev != NULL) {
		/* the child is gone or misbehaves: stop listening to it */
		event_del(from->ipc_ev);
	}
}

static void
master_child_ipc_close(struct child *c)
{
	if (c->ipc_ev != NULL)
		event_free(c->ipc_ev);
	c->ipc_ev = NULL;
	if (c->ipc_fd >= 0)
		close(c->ipc_fd);
	c->ipc_fd = -1;
}

static void
master_spawn(struct master *m, enum child_role role, unsigned index)
{
	struct child *c = master_slot(m);
	struct worker_args wa;
	pid_t pid;

	if (c == NULL) {
		log_warnx("too many children");
		return;
	}
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sp) < 0) {
		log_warn("socketpair");
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("fork");
		close(sp[0]);
		close(sp[1]);
		return;
	}
	if (pid == 0) {
		/* Give the master's event base its own backend, then drop it
		 * (before closing the master's fds it watches): the child
		 * builds its own loop. */
		if (event_reinit(m->base) == 0)
			event_base_free(m->base);
		m->base = NULL;
		/* Only our own end of our own channel stays open. */
		close(sp[0]);
		for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
			if (m->children[i].ipc_fd >= 0)
				close(m->children[i].ipc_fd);
		ipc_child_set_fd(sp[1]);
		/* The master's libevent signal handlers must not fire here. */
		signal(SIGCHLD, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		if (role == CHILD_RUNNER)
			master_runner_main(m);
		log_set_proc("worker");
		memset(&wa, 0, sizeof(wa));
		wa.cfg = &m->cfg;
		wa.tls = m->tls;
		wa.lockout = m->lockout;
		memcpy(wa.listen_fds, m->listen_fds, sizeof(wa.listen_fds));
		wa.wake_fd = m->wake_pipe[1];
		wa.index = index;
		close(m->wake_pipe[0]);
		worker_main(&wa);
	}
	close(sp[1]);
	c->ipc_fd = sp[0];
	c->ipc_ev = event_new(m->base, sp[0], EV_READ | EV_PERSIST,
	    master_on_ipc, c);
	if (c->ipc_ev == NULL)
		fatalx("event_new failed");
	event_add(c->ipc_ev, NULL);
	c->pid = pid;
	c->role = role;
	c->index = index;
	c->generation = m->generation;
	c->started_ms = time_mono_ms();
}

static bool
master_runner_alive(const struct master *m)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid > 0 &&
		    m->children[i].role == CHILD_RUNNER)
			return true;
	return false;
}

static void
master_spawn_all(struct master *m)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	m->nworkers = m->cfg.workers > 0 ? (unsigned)m->cfg.workers :
	    (unsigned)(ncpu > 0 ? ncpu : 1);
	for (unsigned i = 0; i < m->nworkers; i++)
		master_spawn(m, CHILD_WORKER, i);
	/* One queue runner at a time, whatever its generation: two would
	 * both take the same due recipients and send them twice.  After a
	 * reload the new one starts when the old one has finished its
	 * transactions and exited (master_on_child). */
	if (!master_runner_alive(m))
		master_spawn(m, CHILD_RUNNER, 0);
}

static void
master_signal_generation(struct master *m, unsigned gen, int sig)
{
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid > 0 && m->children[i].generation == gen)
			kill(m->children[i].pid, sig);
}

static unsigned
master_count_children(const struct master *m)
{
	unsigned n = 0;

	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		n += m->children[i].pid > 0;
	return n;
}

static void
master_respawn(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	bool have[MASTER_MAX_CHILDREN] = { false };

	if (m->stopping)
		return;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
		const struct child *c = &m->children[i];
		if (c->pid <= 0 || c->generation != m->generation)
			continue;
		if (c->role == CHILD_RUNNER)
			continue;
		if (c->index < MASTER_MAX_CHILDREN)
			have[c->index] = true;
	}
	for (unsigned i = 0; i < m->nworkers; i++)
		if (!have[i])
			master_spawn(m, CHILD_WORKER, i);
	if (!master_runner_alive(m))
		master_spawn(m, CHILD_RUNNER, 0);
}

static void
master_on_child(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	bool respawn = false;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
			struct child *c = &m->children[i];
			if (c->pid != pid)
				continue;
			const char *role = c->role == CHILD_RUNNER ?
			    "queue runner" : "worker";
			bool crashed = WIFSIGNALED(status) ||
			    (WIFEXITED(status) && WEXITSTATUS(status) != 0);
			if (crashed && !m->stopping &&
			    c->generation == m->generation) {
				log_warnx("%s %u (pid %d) died (%s %d); "
				    "restarting", role, c->index, (int)pid,
				    WIFSIGNALED(status) ? "signal" : "exit",
				    WIFSIGNALED(status) ? WTERMSIG(status) :
				    WEXITSTATUS(status));
				respawn = true;
			} else {
				log_info("%s %u (pid %d) exited", role,
				    c->index, (int)pid);
				/* an old generation's runner made way for
				 * the new one */
				if (c->role == CHILD_RUNNER && !m->stopping &&
				    c->generation != m->generation)
					respawn = true;
			}
			master_child_ipc_close(c);
			c->pid = 0;
		}
	}
	if (respawn) {
		struct timeval tv = { .tv_usec = MASTER_RESPAWN_DELAY_MS *
		    1000 / 4 };
		evtimer_add(m->respawn_timer, &tv);
	}
	if (m->stopping && master_count_children(m) == 0)
		event_base_loopexit(m->base, NULL);
}

static void
master_reload(struct master *m)
{
	struct config ncfg;
	struct tls_ctx *ntls = NULL;
	int nfds[LISTENER_COUNT][CONFIG_MAX_ADDRS];
	char err[512];
	unsigned old = m->generation;

	log_info("reloading %s", m->cfg.path ? m->cfg.path : "(defaults)");
	if (config_load(m->cfg.path, &ncfg, master_report, NULL) < 0) {
		log_warnx("reload: configuration has errors; keeping the "
		    "running one");
		return;
	}
	if (ncfg.cert_count > 0 &&
	    (ntls = tls_ctx_load(&ncfg, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s; keeping the running configuration",
		    err);
		config_free(&ncfg);
		return;
	}
	/* Rebind only when the listener set changed. */
	if (memcmp(ncfg.listen, m->cfg.listen, sizeof(ncfg.listen)) != 0) {
		master_close_listeners(m->listen_fds);
		if (master_bind(&ncfg, nfds) < 0) {
			log_warnx("reload: cannot bind the new listeners; "
			    "restoring the old ones");
			if (master_bind(&m->cfg, m->listen_fds) < 0)
				fatalx("cannot restore listeners");
			tls_ctx_free(&ntls);
			config_free(&ncfg);
			return;
		}
		memcpy(m->listen_fds, nfds, sizeof(nfds));
	}
	tls_ctx_free(&m->tls);
	m->tls = ntls;
	config_free(&m->cfg);
	m->cfg = ncfg;
	lockout_configure(m->lockout, (unsigned)m->cfg.lockout_failures,
	    (unsigned)m->cfg.lockout_seconds);
	m->generation++;
	master_spawn_all(m);
	/* The old generation finishes its sessions, then exits. */
	master_signal_generation(m, old, SIGQUIT);
	log_info("reload done (generation %u)", m->generation);
}

static void
master_stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	if (master_count_children(m) == 0) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	if (time_mono_ms() >= m->stop_deadline) {
		log_warnx("children did not stop in time; killing them");
		for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
			if (m->children[i].pid > 0)
				kill(m->children[i].pid, SIGKILL);
	}
}

static void
master_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;
	static struct event *check;
	struct timeval tv = { .tv_usec = 200000 };

	if (sig == SIGHUP) {
		if (!m->stopping)
			master_reload(m);
		return;
	}
	if (m->stopping)
		return;
	log_info("stopping on signal %d", (int)sig);
	m->stopping = true;
	m->stop_deadline = time_mono_ms() + MASTER_STOP_SECONDS * 1000;
	master_close_listeners(m->listen_fds);
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		if (m->children[i].pid > 0)
			kill(m->children[i].pid, SIGTERM);
	check = event_new(m->base, -1, EV_PERSIST, master_stop_check, m);
	event_add(check, &tv);
}

int
server_main(const char *config_path)
{
	static struct master m;
	struct event *sigs[4];
	static const int signums[4] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
	char err[512];

	master_self = &m;
	for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
		m.children[i].ipc_fd = -1;
	if (config_load(config_path, &m.cfg, master_report, NULL) < 0) {
		log_warnx("configuration has errors; not starting");
		return 1;
	}
	log_init("master", m.cfg.log_syslog, m.cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	if (m.cfg.cert_count > 0 &&
	    (m.tls = tls_ctx_load(&m.cfg, err, sizeof(err))) == NULL) {
		log_warnx("TLS: %s", err);
		return 1;
	}
	if (master_prepare_data_dir(&m) < 0)
		return 1;
	if (master_bind(&m.cfg, m.listen_fds) < 0)
		return 1;
	m.lockout = lockout_create((unsigned)m.cfg.lockout_failures,
	    (unsigned)m.cfg.lockout_seconds);
	if (pipe2(m.wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		fatal("pipe");
	m.base = event_base_new();
	if (m.base == NULL)
		fatalx("event_base_new failed");
	m.respawn_timer = evtimer_new(m.base, master_respawn, &m);
	for (int i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(m.base, signums[i], i == 0 ?
		    master_on_child : master_on_signal, &m);
		evsignal_add(sigs[i], NULL);
	}
	log_info("mailfort starting: hostname=%s domains=%zu",
	    m.cfg.hostname, m.cfg.domain_count);
	master_spawn_all(&m);
	event_base_dispatch(m.base);
	for (int i = 0; i < 4; i++)
		event_free(sigs[i]);
	event_free(m.respawn_timer);
	event_base_free(m.base);
	tls_ctx_free(&m.tls);
	lockout_destroy(&m.lockout);
	config_free(&m.cfg);
	log_info("stopped");
	return 0;
}
