/*
 * runner.c - the queue runner's local delivery: takes due local
 * recipients from the queue and hands each spooled file to the
 * recipient's store.  Delivery is idempotent (the store keys it on
 * "<queue id>/<recipient>"), so a crash between the store's commit and
 * ours delivers nothing twice.  Remote recipients are the outbound
 * thread's (outbound.c), started from here.  A message leaves the spool
 * when no recipient is pending any more.
 *
 * Quotas: a message that would take a mailbox past its quota is not
 * stored; the recipient stays queued and is retried (deferred, logged
 * with reason=over-quota) like a failed delivery - Postfix does the
 * same when Dovecot's LMTP answers 452 4.2.2.  It leaves the queue when
 * it fits or when the queue gives up on it (queue.max_lifetime): then
 * it becomes status 3 with the reason in last_error, and the outbound
 * thread sends the sender a DSN - never silently.  SMTP already refuses RCPTs to full mailboxes (smtp_txn.c);
 * this catches messages bigger than the room left.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "queue/queue_private.h"
#include "net/net.h"
#include "store/store.h"

#define RUNNER_BATCH 500	/* recipients per pass */
#define RUNNER_TICK_MS 1000	/* wake up at least this often */
#define RUNNER_GATHER_MS 10	/* after a wake-up, let a batch gather */

#define RUNNER_STORE_CACHE 32	/* stores kept open during a pass */

struct runner_store {
	char *account;
	struct store *store;
};

struct runner {
	const struct config *cfg;
	struct runner_store cache[RUNNER_STORE_CACHE];
	size_t ncache;
	sqlite3 *db;
	sqlite3_stmt *due, *mark, *fail, *expire, *left, *del;
};

static int
runner_open(struct runner *r, const struct config *cfg)
{
	const char *err;

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	if (queue_db_open(cfg->data_dir, &r->db, &err) < 0) {
		log_warnx("queue runner: %s", err);
		return -1;
	}
	if (sqlite3_prepare_v2(r->db, "SELECT msg_id, addr FROM recipient "
	    "WHERE status = 0 AND local = 1 AND next_try <= ? "
	    "ORDER BY addr, msg_id LIMIT ?", -1, &r->due, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "UPDATE recipient SET status = 1 "
	    "WHERE msg_id = ? AND addr = ?", -1, &r->mark, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "UPDATE recipient SET attempts = "
	    "attempts + 1, next_try = ?, last_error = ? WHERE msg_id = ? AND "
	    "addr = ?", -1, &r->fail, NULL) != SQLITE_OK ||
	    /* given up: the outbound thread bounces status 3 with the
	     * status and text of last_error (see outbound.c) */
	    sqlite3_prepare_v2(r->db, "UPDATE recipient SET status = 3, "
	    "local = 0, next_try = 0, attempts = attempts + 1, last_error = ? "
	    "WHERE msg_id = ? AND addr = ? AND (SELECT created FROM message "
	    "WHERE id = msg_id) <= ?", -1, &r->expire, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT count(*) FROM recipient WHERE "
	    "msg_id = ? AND status IN (0, 3)", -1, &r->left, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "DELETE FROM message WHERE id = ?", -1,
	    &r->del, NULL) != SQLITE_OK) {
		log_warnx("queue runner: %s", sqlite3_errmsg(r->db));
		return -1;
	}
	return 0;
}

static void
runner_close(struct runner *r)
{
	sqlite3_finalize(r->due);
	sqlite3_finalize(r->mark);
	sqlite3_finalize(r->fail);
	sqlite3_finalize(r->expire);
	sqlite3_finalize(r->left);
	sqlite3_finalize(r->del);
	sqlite3_close(r->db);
}

/* Leftovers of crashed APPENDs; the store keeps this rare. */
static void
runner_sweep(struct store *st, const char *account)
{
	uint64_t removed = 0;
	const char *err;

	if (store_sweep_tmp(st, &removed, &err) < 0)
		log_warnx("queue runner: sweep %s: %s", account, err);
	else if (removed > 0)
		log_info("queue runner: sweep %s removed=%llu", account,
		    (unsigned long long)removed);
}

/* An open store for account, from the pass cache; NULL and *err_r. */
static struct store *
runner_store(struct runner *r, const char *account, const char **err_r)
{
	struct store *st = NULL;

	for (size_t i = 0; i < r->ncache; i++)
		if (strcmp(r->cache[i].account, account) == 0)
			return r->cache[i].store;
	if (store_open(r->cfg->data_dir, account, &st, err_r) < 0)
		return NULL;
	runner_sweep(st, account);
	if (r->ncache == RUNNER_STORE_CACHE) {
		store_close(&r->cache[0].store);
		free(r->cache[0].account);
		memmove(&r->cache[0], &r->cache[1],
		    (RUNNER_STORE_CACHE - 1) * sizeof(r->cache[0]));
		r->ncache--;
	}
	r->cache[r->ncache].account = xstrdup(account);
	r->cache[r->ncache].store = st;
	r->ncache++;
	return st;
}

static void
runner_close_stores(struct runner *r)
{
	for (size_t i = 0; i < r->ncache; i++) {
		store_close(&r->cache[i].store);
		free(r->cache[i].account);
	}
	r->ncache = 0;
}

/* The outcome of one delivery, recorded after all of a pass are done. */
struct runner_result {
	int rc;			/* store_deliver(): 1, 0 or -1 */
	char *error;
};

/*
 * Would storing the spool file path for rcpt exceed rcpt's quota?  1 yes
 * (why: "quota=... used=... size=..."), 0 no, -1 error with *err_r.  A
 * delivery stored already (a retry after a crash) adds nothing.  Inside a
 * store batch the usage includes the batch's earlier deliveries: same
 * connection, same transaction.
 */
static int
runner_over_quota(struct runner *r, struct store *st, const char *path,
    const char *did, const char *rcpt, char *why, size_t whysize,
    const char **err_r)
{
	uint64_t limit = quota_get(r->cfg, rcpt), used = 0, messages = 0;
	struct stat sb;
	int rc;

	if (limit == 0)
		return 0;
	if ((rc = store_delivered(st, did, err_r)) != 0)
		return rc < 0 ? -1 : 0;
	if (stat(path, &sb) == -1) {
		*err_r = "stat spool file";
		return -1;
	}
	if (store_usage(st, &used, &messages) < 0) {
		*err_r = "read usage";
		return -1;
	}
	if (used < limit && (uint64_t)sb.st_size <= limit - used)
		return 0;
	snprintf(why, whysize, "quota=%llu used=%llu size=%llu",
	    (unsigned long long)limit, (unsigned long long)used,
	    (unsigned long long)sb.st_size);
	return 1;
}

static void
runner_deliver_one(struct runner *r, const char *id, const char *rcpt,
    struct runner_result *res)
{
	char *path = xasprintf("%s/spool/msg/%s", r->cfg->data_dir, id);
	char *did = xasprintf("%s/%s", id, rcpt);
	struct store *st;
	const char *err = NULL;
	char why[128];
	int over = -1;

	res->rc = -1;
	if ((st = runner_store(r, rcpt, &err)) != NULL)
		over = runner_over_quota(r, st, path, did, rcpt, why,
		    sizeof(why), &err);
	if (over == 0)
		res->rc = store_deliver(st, path, did, "INBOX", &err);
	if (over == 1) {
		log_info("%s local delivery to=<%s> result=deferred "
		    "reason=over-quota %s", id, rcpt, why);
		res->error = xasprintf("mailbox full: %s", why);
	} else if (res->rc >= 0) {
		log_info("%s local delivery to=<%s> result=%s", id, rcpt,
		    res->rc == 1 ? "delivered" : "duplicate-skipped");
	} else {
		log_warnx("%s local delivery to=<%s> result=deferred "
		    "error=\"%s\"", id, rcpt, err ? err : "?");
		res->error = xstrdup(err ? err : "?");
	}
	free(did);
	free(path);
}

/* All due messages of one recipient, in one store transaction. */
static void
runner_deliver_group(struct runner *r, char (*ids)[QUEUE_ID_LEN + 1],
    const char *rcpt, struct runner_result *results, int n)
{
	const char *err = NULL;
	struct store *st = runner_store(r, rcpt, &err);
	bool batch = st != NULL && n > 1 && store_batch_begin(st, &err) == 0;

	for (int i = 0; i < n; i++)
		runner_deliver_one(r, ids[i], rcpt, &results[i]);
	if (batch && store_batch_end(st, &err) < 0) {
		log_warnx("local delivery to=<%s> result=deferred error=\"%s\""
		    " messages=%d", rcpt, err, n);
		for (int i = 0; i < n; i++) {
			results[i].rc = -1;
			free(results[i].error);
			results[i].error = xstrdup(err);
		}
	}
	for (int i = 0; i < n; i++) {
		if (results[i].rc == 1) {
			/* IMAP IDLE and friends wake up now, not at a poll */
			ipc_notify_changed(rcpt);
			break;
		}
	}
}

/* A local recipient deferred past queue.max_lifetime is handed to the
 * outbound thread to bounce; true when it was. */
static bool
runner_expire(struct runner *r, const char *id, const char *rcpt,
    const char *error)
{
	char *why = xasprintf("%s delivery time expired; last error: %s",
	    strncmp(error, "mailbox full", 12) == 0 ? "4.2.2" : "4.3.0",
	    error);
	sqlite3_stmt *st = r->expire;
	bool done;

	sqlite3_bind_text(st, 1, why, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, rcpt, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, (int64_t)time(NULL) -
	    (int64_t)r->cfg->queue_max_lifetime);
	done = queue_step(st) == 0 && sqlite3_changes(r->db) > 0;
	if (done)
		log_info("%s local delivery to=<%s> result=expired (%s)", id,
		    rcpt, why);
	free(why);
	return done;
}

static void
runner_record(struct runner *r, const char *id, const char *rcpt,
    struct runner_result *res)
{
	sqlite3_stmt *st = res->rc >= 0 ? r->mark : r->fail;
	int k = 1;

	if (res->rc < 0 && runner_expire(r, id, rcpt, res->error)) {
		x_free(&res->error);
		return;
	}
	if (res->rc < 0) {
		sqlite3_bind_int64(st, k++, (int64_t)time(NULL) +
		    (int64_t)r->cfg->queue_retry_min);
		sqlite3_bind_text(st, k++, res->error, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_text(st, k++, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, k, rcpt, -1, SQLITE_TRANSIENT);
	if (queue_step(st) < 0)
		log_warnx("queue: %s", sqlite3_errmsg(r->db));
	x_free(&res->error);
}

/* One pass; returns recipients handled or -1. */
static int
runner_pass(struct runner *r)
{
	char (*ids)[QUEUE_ID_LEN + 1] = xcalloc(RUNNER_BATCH, sizeof(*ids));
	char **rcpts = xcalloc(RUNNER_BATCH, sizeof(char *));
	bool *gone = xcalloc(RUNNER_BATCH, sizeof(bool));
	struct runner_result *results = xcalloc(RUNNER_BATCH,
	    sizeof(*results));
	int n = 0;
	bool committed;

	sqlite3_bind_int64(r->due, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_int(r->due, 2, RUNNER_BATCH);
	while (n < RUNNER_BATCH && sqlite3_step(r->due) == SQLITE_ROW) {
		str_lcpy(ids[n], (const char *)sqlite3_column_text(r->due, 0),
		    sizeof(ids[n]));
		rcpts[n] = xstrdup((const char *)
		    sqlite3_column_text(r->due, 1));
		n++;
	}
	sqlite3_reset(r->due);
	/* Deliveries first, outside any queue transaction: the committers
	 * of the workers must never wait for store fsyncs.  Then one short
	 * transaction records the pass.  The store is idempotent, so a crash
	 * before that COMMIT only repeats deliveries that are skipped. */
	/* Rows come sorted by recipient: one store batch per recipient. */
	for (int i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(rcpts[i], rcpts[j]) == 0; j++)
			;
		runner_deliver_group(r, ids + i, rcpts[i], results + i, j - i);
	}
	if (n > 0 && sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL) != SQLITE_OK)
		log_warnx("queue: %s", sqlite3_errmsg(r->db));
	for (int i = 0; i < n; i++)
		runner_record(r, ids[i], rcpts[i], &results[i]);
	for (int i = 0; i < n; i++) {
		bool seen = false;
		for (int k = 0; k < i && !seen; k++)
			seen = strcmp(ids[k], ids[i]) == 0;
		if (!seen)
			gone[i] = queue_finish_msg(r->left, r->del, ids[i]);
		free(rcpts[i]);
	}
	committed = n > 0 && sqlite3_exec(r->db, "COMMIT", NULL, NULL,
	    NULL) == SQLITE_OK;
	if (n > 0 && !committed) {
		log_warnx("queue: commit: %s", sqlite3_errmsg(r->db));
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	}
	/* Spool files go only after the queue forgot them. */
	for (int i = 0; i < n && committed; i++)
		if (gone[i])
			queue_unlink_spool(r->cfg->data_dir, ids[i]);
	runner_close_stores(r);
	free(results);
	free(gone);
	free(rcpts);
	free(ids);
	return n;
}

int
queue_deliver_pending(const struct config *cfg)
{
	struct runner r;
	int n, total = 0;

	if (runner_open(&r, cfg) < 0)
		return -1;
	while ((n = runner_pass(&r)) > 0)
		total += n;
	runner_close(&r);
	return total;
}

void
queue_runner_run(const struct config *cfg, int wake_fd, volatile int *stop)
{
	struct runner r;
	struct outbound *ob;
	char drain[256];
	int n;

	if (runner_open(&r, cfg) < 0)
		fatalx("queue runner cannot start");
	ob = outbound_start(cfg, stop);
	log_info("queue runner started");
	while (!*stop) {
		do {
			n = runner_pass(&r);
		} while (n == RUNNER_BATCH && !*stop);
		struct pollfd pfd = { .fd = wake_fd, .events = POLLIN };
		if (poll(&pfd, 1, RUNNER_TICK_MS) > 0) {
			/* One pass per burst, not per message: store and
			 * queue fsyncs are shared by what arrived meanwhile. */
			poll(NULL, 0, RUNNER_GATHER_MS);
			while (read(wake_fd, drain, sizeof(drain)) > 0)
				;
			outbound_wake(ob);
		}
	}
	outbound_wait(&ob);
	runner_close(&r);
	log_info("queue runner stopped");
}
