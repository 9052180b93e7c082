/*
 * commit.c - the committer thread: group commit of received messages.
 *
 * Sessions hand over finished messages; the thread takes everything that
 * is waiting, fsyncs each file, renames it into spool/msg, fsyncs that
 * directory once, and records all of them in one SQLite transaction.
 * Only then are the sessions told (on their loop thread) to answer 250.
 * Under load one directory fsync and one WAL fsync serve many messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "queue/queue_private.h"

#define COMMIT_BATCH_MAX 256

struct commit_job {
	struct spool_msg *msg;
	void (*done)(void *arg, bool ok);
	void *arg;
	bool ok;
	struct commit_job *next;
};

struct queue_committer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct commit_job *todo, *todo_tail;
	bool stopping;
	struct pool *pool;
	sqlite3 *db;
	sqlite3_stmt *ins_msg, *ins_rcpt;
	int spool_dir_fd;
	int wake_fd;
};

static void
commit_on_done(void *arg)
{
	struct commit_job *j = arg;

	if (!j->ok)
		spool_msg_abort(&j->msg);
	else
		spool_msg_free(&j->msg);
	j->done(j->arg, j->ok);
	free(j);
}

/* fsync and rename one file; false on failure. */
static bool
commit_file(struct spool_msg *m)
{
	if (spool_msg_flush(m) < 0)
		return false;
	if (fdatasync(m->fd) < 0) {
		log_warn("fdatasync %s", m->tmp_path);
		return false;
	}
	if (rename(m->tmp_path, m->msg_path) < 0) {
		log_warn("rename %s", m->tmp_path);
		return false;
	}
	return true;
}

static bool
commit_insert(struct queue_committer *qc, struct spool_msg *m)
{
	sqlite3_stmt *s = qc->ins_msg;

	sqlite3_reset(s);
	sqlite3_bind_text(s, 1, m->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, m->sender ? m->sender : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)m->size);
	sqlite3_bind_int64(s, 4, m->created);
	sqlite3_bind_int(s, 5, m->body);
	sqlite3_bind_int(s, 6, m->smtputf8);
	if (m->auth != NULL)
		sqlite3_bind_text(s, 7, m->auth, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 7);
	if (sqlite3_step(s) != SQLITE_DONE)
		return false;
	s = qc->ins_rcpt;
	for (size_t i = 0; i < m->rcpt_count; i++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, m->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, m->rcpts[i].addr, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 3, m->rcpts[i].local);
		if (sqlite3_step(s) != SQLITE_DONE)
			return false;
	}
	return true;
}

static void
commit_batch(struct queue_committer *qc, struct commit_job *batch)
{
	struct commit_job *j;
	bool db_ok, any = false;

	for (j = batch; j != NULL; j = j->next) {
		j->ok = commit_file(j->msg);
		any |= j->ok;
	}
	if (any && fsync(qc->spool_dir_fd) < 0) {
		log_warn("fsync spool directory");
		for (j = batch; j != NULL; j = j->next)
			j->ok = false;
		any = false;
	}
	db_ok = any && sqlite3_exec(qc->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL) == SQLITE_OK;
	for (j = batch; j != NULL && db_ok; j = j->next)
		if (j->ok && !commit_insert(qc, j->msg))
			db_ok = false;
	if (db_ok && sqlite3_exec(qc->db, "COMMIT", NULL, NULL, NULL) !=
	    SQLITE_OK)
		db_ok = false;
	if (!db_ok && any) {
		log_warnx("queue commit failed: %s", sqlite3_errmsg(qc->db));
		sqlite3_exec(qc->db, "ROLLBACK", NULL, NULL, NULL);
		for (j = batch; j != NULL; j = j->next) {
			if (j->ok && unlink(j->msg->msg_path) < 0)
				log_warn("unlink %s", j->msg->msg_path);
			j->ok = false;
		}
	}
	if (db_ok && qc->wake_fd >= 0) {
		char c = 'q';
		if (write(qc->wake_fd, &c, 1) < 0 && errno != EAGAIN)
			log_warn("queue wake");
	}
}

static void *
commit_thread(void *arg)
{
	struct queue_committer *qc = arg;
	struct commit_job *batch, *j, *next;

	pthread_mutex_lock(&qc->lock);
	for (;;) {
		while (qc->todo == NULL && !qc->stopping)
			pthread_cond_wait(&qc->cond, &qc->lock);
		if (qc->todo == NULL)
			break;
		batch = qc->todo;
		/* Cut the batch at COMMIT_BATCH_MAX jobs. */
		j = batch;
		for (int n = 1; n < COMMIT_BATCH_MAX && j->next != NULL; n++)
			j = j->next;
		qc->todo = j->next;
		if (qc->todo == NULL)
			qc->todo_tail = NULL;
		j->next = NULL;
		pthread_mutex_unlock(&qc->lock);
		commit_batch(qc, batch);
		for (j = batch; j != NULL; j = next) {
			next = j->next;
			pool_complete(qc->pool, commit_on_done, j);
		}
		pthread_mutex_lock(&qc->lock);
	}
	pthread_mutex_unlock(&qc->lock);
	return NULL;
}

struct queue_committer *
queue_committer_new(const char *data_dir, struct pool *pool, int wake_fd,
    const char **error_r)
{
	struct queue_committer *qc = xmalloc(sizeof(*qc));
	char *dir;

	qc->pool = pool;
	qc->wake_fd = wake_fd;
	if (queue_db_open(data_dir, &qc->db, error_r) < 0) {
		free(qc);
		return NULL;
	}
	if (sqlite3_prepare_v2(qc->db, "INSERT INTO message(id, sender, size,"
	    " created, body, smtputf8, auth) VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &qc->ins_msg, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(qc->db, "INSERT INTO "
	    "recipient(msg_id, addr, local) VALUES (?, ?, ?)", -1,
	    &qc->ins_rcpt, NULL) != SQLITE_OK)
		fatalx("queue statements: %s", sqlite3_errmsg(qc->db));
	dir = xasprintf("%s/spool/msg", data_dir);
	qc->spool_dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (qc->spool_dir_fd < 0) {
		*error_r = "cannot open spool directory";
		sqlite3_finalize(qc->ins_msg);
		sqlite3_finalize(qc->ins_rcpt);
		sqlite3_close(qc->db);
		free(qc);
		return NULL;
	}
	pthread_mutex_init(&qc->lock, NULL);
	pthread_cond_init(&qc->cond, NULL);
	if (pthread_create(&qc->thread, NULL, commit_thread, qc) != 0)
		fatalx("pthread_create failed");
	return qc;
}

void
queue_committer_free(struct queue_committer **qcp)
{
	struct queue_committer *qc = *qcp;

	if (qc == NULL)
		return;
	pthread_mutex_lock(&qc->lock);
	qc->stopping = true;
	pthread_cond_signal(&qc->cond);
	pthread_mutex_unlock(&qc->lock);
	pthread_join(qc->thread, NULL);
	sqlite3_finalize(qc->ins_msg);
	sqlite3_finalize(qc->ins_rcpt);
	sqlite3_close(qc->db);
	close(qc->spool_dir_fd);
	pthread_mutex_destroy(&qc->lock);
	pthread_cond_destroy(&qc->cond);
	free(qc);
	*qcp = NULL;
}

void
queue_commit(struct queue_committer *qc, struct spool_msg *m,
    void (*done)(void *arg, bool ok), void *arg)
{
	struct commit_job *j = xmalloc(sizeof(*j));

	j->msg = m;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&qc->lock);
	if (qc->todo_tail != NULL)
		qc->todo_tail->next = j;
	else
		qc->todo = j;
	qc->todo_tail = j;
	pthread_cond_signal(&qc->cond);
	pthread_mutex_unlock(&qc->lock);
}
