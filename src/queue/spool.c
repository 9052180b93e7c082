/*
 * spool.c - writing one incoming message to the spool, and the queue
 * database schema.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue_private.h"

static const char *const queue_schema =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS message ("
    " id TEXT PRIMARY KEY,"
    " sender TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " body INTEGER NOT NULL DEFAULT 0,"	/* 0 7bit, 1 8bitmime, 2 binary */
    " smtputf8 INTEGER NOT NULL DEFAULT 0,"
    " auth TEXT,"			/* submitting user, NULL: relayed in */
    " dkim TEXT,"			/* DKIM-Signature fields, once made */
    " warned INTEGER NOT NULL DEFAULT 0);"	/* delay warning sent */
    "CREATE TABLE IF NOT EXISTS recipient ("
    " msg_id TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,"
    " addr TEXT NOT NULL,"
    " local INTEGER NOT NULL,"
    /* 0 pending, 1 done, 2 failed (bounced), 3 to bounce (operator) */
    " status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_try INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " PRIMARY KEY (msg_id, addr));"
    "CREATE INDEX IF NOT EXISTS recipient_due"
    " ON recipient(status, local, next_try);";

/* Columns added after version 0 of the schema: queue databases of older
 * builds get them here (user_version 1 marks it done). */
static const char *const queue_upgrade[] = {
	"ALTER TABLE message ADD COLUMN body INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE message ADD COLUMN smtputf8 INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE message ADD COLUMN auth TEXT",
	"ALTER TABLE message ADD COLUMN dkim TEXT",
	"ALTER TABLE message ADD COLUMN warned INTEGER NOT NULL DEFAULT 0",
};

static int
queue_schema_upgrade(sqlite3 *db)
{
	sqlite3_stmt *st;
	int version = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version != 0)
		return version < 0 ? -1 : 0;
	/* A fresh database has the columns already: "duplicate column" is
	 * expected then and ignored. */
	for (size_t i = 0; i < MF_ARRAY_LEN(queue_upgrade); i++)
		(void)sqlite3_exec(db, queue_upgrade[i], NULL, NULL, NULL);
	return sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL,
	    NULL) == SQLITE_OK ? 0 : -1;
}

static int
queue_mkdir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
queue_dirs_create(const char *data_dir, const char **error_r)
{
	static const char *const sub[] = { "", "/spool", "/spool/tmp",
	    "/spool/msg", "/queue", "/mail" };
	char path[4096];

	for (size_t i = 0; i < MF_ARRAY_LEN(sub); i++) {
		snprintf(path, sizeof(path), "%s%s", data_dir, sub[i]);
		if (queue_mkdir(path) < 0) {
			*error_r = "cannot create data directories";
			return -1;
		}
	}
	return 0;
}

void
queue_clean_tmp(const char *data_dir)
{
	char *dir = xasprintf("%s/spool/tmp", data_dir);
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *p = xasprintf("%s/%s", dir, de->d_name);
			if (unlink(p) < 0)
				log_warn("cannot remove %s", p);
			free(p);
		}
		closedir(d);
	}
	free(dir);
}

/*
 * A crash between the rename into spool/msg and the queue commit leaves a
 * file the queue does not know; it was never acknowledged, so it goes.
 * Startup only (no worker is committing then).
 */
void
queue_clean_orphans(const char *data_dir)
{
	char *dir = xasprintf("%s/spool/msg", data_dir);
	const char *err;
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	struct dirent *de;
	DIR *d;
	int removed = 0;

	if (queue_db_open(data_dir, &db, &err) < 0) {
		free(dir);
		return;
	}
	d = opendir(dir);
	if (d != NULL && sqlite3_prepare_v2(db, "SELECT 1 FROM message WHERE "
	    "id = ?", -1, &st, NULL) == SQLITE_OK) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, de->d_name, -1, SQLITE_STATIC);
			int rc = sqlite3_step(st);
			if (rc != SQLITE_DONE)
				continue;	/* known, or an error: keep */
			char *p = xasprintf("%s/%s", dir, de->d_name);
			if (unlink(p) == 0)
				removed++;
			else
				log_warn("cannot remove %s", p);
			free(p);
		}
	}
	if (removed > 0)
		log_info("removed %d unacknowledged spool file%s", removed,
		    removed == 1 ? "" : "s");
	sqlite3_finalize(st);
	if (d != NULL)
		closedir(d);
	sqlite3_close(db);
	free(dir);
}

int
queue_db_open(const char *data_dir, sqlite3 **db_r, const char **error_r)
{
	char *path = xasprintf("%s/queue/queue.db", data_dir);
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	free(path);
	if (rc != SQLITE_OK) {
		*error_r = "cannot open queue database";
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 10000);
	/* Keep -wal/-shm after close: root tools must not re-create them. */
	int persist = 1;
	sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (sqlite3_exec(db, queue_schema, NULL, NULL, NULL) != SQLITE_OK ||
	    queue_schema_upgrade(db) < 0 ||
	    sqlite3_exec(db, "PRAGMA synchronous=FULL;"
	    "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("queue database: %s", sqlite3_errmsg(db));
		*error_r = "cannot set up queue database";
		sqlite3_close(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

/* Time-ordered, unique: 11 hex digits of µs time, 9 random. */
static void
queue_new_id(char *out)
{
	struct timespec ts;
	uint64_t us, rnd = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)getpid() ^ (uint64_t)ts.tv_nsec;
	snprintf(out, QUEUE_ID_LEN + 1, "%011llX%09llX",
	    (unsigned long long)(us & 0xFFFFFFFFFFFULL),
	    (unsigned long long)(rnd & 0xFFFFFFFFFULL));
}

struct spool_msg *
spool_msg_new(const char *data_dir, const char **error_r)
{
	struct spool_msg *m = xmalloc(sizeof(*m));

	queue_new_id(m->id);
	m->tmp_path = xasprintf("%s/spool/tmp/%s", data_dir, m->id);
	m->msg_path = xasprintf("%s/spool/msg/%s", data_dir, m->id);
	m->fd = open(m->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (m->fd < 0) {
		log_warn("cannot create %s", m->tmp_path);
		*error_r = "cannot create spool file";
		spool_msg_free(&m);
		return NULL;
	}
	buf_init(&m->pending, 0);
	m->created = (int64_t)time(NULL);
	return m;
}

const char *
spool_msg_id(const struct spool_msg *m)
{
	return m->id;
}

int
spool_msg_flush(struct spool_msg *m)
{
	size_t off = 0;

	while (off < m->pending.len && !m->write_failed) {
		ssize_t n = write(m->fd, m->pending.data + off,
		    m->pending.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("write %s", m->tmp_path);
			m->write_failed = true;
			break;
		}
		off += (size_t)n;
	}
	buf_reset(&m->pending);
	return m->write_failed ? -1 : 0;
}

int
spool_msg_write(struct spool_msg *m, const void *data, size_t len)
{
	if (m->write_failed)
		return -1;
	buf_add(&m->pending, data, len);
	m->size += len;
	if (m->pending.len >= SPOOL_WRITE_CHUNK)
		return spool_msg_flush(m);
	return 0;
}

uint64_t
spool_msg_size(const struct spool_msg *m)
{
	return m->size;
}

void
spool_msg_set_sender(struct spool_msg *m, const char *sender)
{
	free(m->sender);
	m->sender = xstrdup(sender);
}

void
spool_msg_set_flags(struct spool_msg *m, int body, bool smtputf8,
    const char *auth_user)
{
	m->body = body;
	m->smtputf8 = smtputf8;
	free(m->auth);
	m->auth = auth_user != NULL ? xstrdup(auth_user) : NULL;
}

void
spool_msg_add_rcpt(struct spool_msg *m, const char *rcpt, bool local)
{
	for (size_t i = 0; i < m->rcpt_count; i++)
		if (strcmp(m->rcpts[i].addr, rcpt) == 0)
			return;
	m->rcpts = xreallocarray(m->rcpts, m->rcpt_count + 1,
	    sizeof(*m->rcpts));
	m->rcpts[m->rcpt_count].addr = xstrdup(rcpt);
	m->rcpts[m->rcpt_count].local = local;
	m->rcpt_count++;
}

void
spool_msg_free(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	if (m->fd >= 0)
		close(m->fd);
	for (size_t i = 0; i < m->rcpt_count; i++)
		free(m->rcpts[i].addr);
	free(m->rcpts);
	free(m->sender);
	free(m->auth);
	free(m->tmp_path);
	free(m->msg_path);
	buf_free(&m->pending);
	free(m);
	*mp = NULL;
}

void
spool_msg_abort(struct spool_msg **mp)
{
	if (*mp == NULL)
		return;
	if (unlink((*mp)->tmp_path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s", (*mp)->tmp_path);
	spool_msg_free(mp);
}

int
queue_step(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

bool
queue_finish_msg(sqlite3_stmt *left, sqlite3_stmt *del, const char *id)
{
	int64_t n = 1;

	sqlite3_bind_text(left, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(left) == SQLITE_ROW)
		n = sqlite3_column_int64(left, 0);
	sqlite3_reset(left);
	if (n != 0)
		return false;
	sqlite3_bind_text(del, 1, id, -1, SQLITE_TRANSIENT);
	if (queue_step(del) < 0) {
		log_warnx("queue: cannot delete %s: %s", id,
		    sqlite3_errmsg(sqlite3_db_handle(del)));
		return false;
	}
	return true;
}

void
queue_unlink_spool(const char *data_dir, const char *id)
{
	char *path = xasprintf("%s/spool/msg/%s", data_dir, id);

	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("unlink %s", path);
	free(path);
}
