/*
 * store_mailbox.c - reading and expunging the messages of a mailbox: the
 * snapshot listing POP3 numbers its messages by (and IMAP SELECT starts
 * from), opening message files, expunge with its QRESYNC history, and the
 * per-account advisory locks.
 *
 * The statements here run a few times per session, so they are prepared
 * per call rather than cached with the delivery path's (store_db.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/store_private.h"

_Static_assert(STORE_MSG_FILE_MAX >= STORE_FILE_NAME_MAX,
    "store_msg.file must hold the names store_file_name() makes");

#define STORE_LIST_INITIAL 64	/* first allocation of a listing */

/* The mailbox row of a listing; 1 found, 0 none, -1 error. */
static int
store_list_mailbox(struct store *store, const char *mailbox,
    struct store_msg_list *list, int64_t *id_r, const char **error_r)
{
	struct store_mbox mbox;
	int ret = store_mbox_get(store, mailbox, &mbox, error_r);

	if (ret == 1) {
		*id_r = mbox.id;
		list->uidvalidity = mbox.uidvalidity;
		list->uidnext = mbox.uidnext;
		list->highestmodseq = mbox.highestmodseq;
	}
	return ret;
}

/* Copies one messages row; -1 for a file name we would not open. */
static int
store_list_row(struct store *store, sqlite3_stmt *stmt, struct store_msg *m,
    const char **error_r)
{
	const char *file = (const char *)sqlite3_column_text(stmt, 5);
	size_t len = file != NULL ? strlen(file) : 0;

	m->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
	m->flags = (uint32_t)sqlite3_column_int64(stmt, 1);
	m->modseq = (uint64_t)sqlite3_column_int64(stmt, 2);
	m->size = (uint64_t)sqlite3_column_int64(stmt, 3);
	m->internaldate = sqlite3_column_int64(stmt, 4);
	if (len == 0 || len > STORE_MSG_FILE_MAX || file[0] == '.' ||
	    strchr(file, '/') != NULL)
		return store_fail(store, error_r, "bad file name of UID %u",
		    m->uid);
	memcpy(m->file, file, len + 1);
	return 0;
}

static int
store_list_messages(struct store *store, int64_t id,
    struct store_msg_list *list, const char **error_r)
{
	sqlite3_stmt *stmt;
	size_t cap = 0;
	int rc, ret = 0;

	if (store_sql_prepare(store, "SELECT uid, flags, modseq, size,"
	    " internaldate, file FROM messages WHERE mailbox_id = ?1"
	    " ORDER BY uid", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	while (ret == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (list->count == STORE_LIST_MAX) {
			ret = store_fail(store, error_r, "more than %d "
			    "messages", STORE_LIST_MAX);
			break;
		}
		if (list->count == cap) {
			cap = cap == 0 ? STORE_LIST_INITIAL : cap * 2;
			list->msgs = xreallocarray(list->msgs, cap,
			    sizeof(*list->msgs));
		}
		ret = store_list_row(store, stmt, &list->msgs[list->count],
		    error_r);
		if (ret == 0)
			list->count++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_db(store, error_r, "list messages");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_msg_list(struct store *store, const char *mailbox,
    struct store_msg_list *list_r, const char **error_r)
{
	int64_t id = 0;
	int ret;

	xassert(!store->batch);
	memset(list_r, 0, sizeof(*list_r));
	/* One read transaction: the mailbox row and its messages agree
	 * even while a delivery commits (WAL readers see one snapshot). */
	if (sqlite3_exec(store->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "begin");
	ret = store_list_mailbox(store, mailbox, list_r, &id, error_r);
	if (ret == 1 && store_list_messages(store, id, list_r, error_r) < 0)
		ret = -1;
	if (ret >= 0 && sqlite3_exec(store->db, "COMMIT", NULL, NULL,
	    NULL) != SQLITE_OK)
		ret = store_fail_db(store, error_r, "commit");
	if (ret < 0) {
		store_tx_rollback(store);
		store_msg_list_free(list_r);
	}
	return ret;
}

void
store_msg_list_free(struct store_msg_list *list)
{
	x_free(&list->msgs);
	list->count = 0;
}

int
store_msg_open(struct store *store, const struct store_msg *msg, int *fd_r,
    const char **error_r)
{
	int fd = openat(store->msg_fd, msg->file,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1 && errno == ENOENT)
		return 0;
	if (fd == -1)
		return store_fail_errno(store, error_r, "open message file");
	*fd_r = fd;
	return 1;
}

/* ---- expunge ---- */

/* The statements of one expunge, prepared together. */
enum store_ex_stmt {
	STORE_EX_DELETE,
	STORE_EX_RECORD,
	STORE_EX_FILE_USED,
	STORE_EX_BUMP,
	STORE_EX_MAX
};

static const char *const store_ex_sql[STORE_EX_MAX] = {
	[STORE_EX_DELETE] = "DELETE FROM messages WHERE mailbox_id = ?1"
	    " AND uid = ?2 RETURNING file, size",
	[STORE_EX_RECORD] = "INSERT OR REPLACE INTO expunged (mailbox_id,"
	    " uid, modseq) VALUES (?1, ?2, ?3)",
	[STORE_EX_FILE_USED] = "SELECT 1 FROM messages WHERE file = ?1"
	    " LIMIT 1",
	[STORE_EX_BUMP] = "UPDATE mailboxes SET highestmodseq = ?2"
	    " WHERE id = ?1",
};

struct store_ex {
	struct store *store;
	sqlite3_stmt *stmts[STORE_EX_MAX];
	struct store_mbox mbox;
	uint64_t modseq;
	uint64_t count;
	uint64_t bytes;
	char (*files)[STORE_MSG_FILE_MAX + 1];	/* to unlink after COMMIT */
	size_t nfiles;
};

static sqlite3_stmt *
store_ex_stmt(struct store_ex *ex, enum store_ex_stmt id)
{
	sqlite3_reset(ex->stmts[id]);
	sqlite3_clear_bindings(ex->stmts[id]);
	return ex->stmts[id];
}

/* Removes one UID's row and records it; a missing UID is skipped. */
static int
store_ex_one(struct store_ex *ex, uint32_t uid, const char **error_r)
{
	sqlite3_stmt *stmt = store_ex_stmt(ex, STORE_EX_DELETE);
	const char *file;
	int rc;

	sqlite3_bind_int64(stmt, 1, ex->mbox.id);
	sqlite3_bind_int64(stmt, 2, uid);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_fail_db(ex->store, error_r, "delete message");
	file = (const char *)sqlite3_column_text(stmt, 0);
	if (file != NULL && strlen(file) <= STORE_MSG_FILE_MAX &&
	    file[0] != '.' && strchr(file, '/') == NULL)
		str_lcpy(ex->files[ex->nfiles++], file, STORE_MSG_FILE_MAX + 1);
	ex->bytes += (uint64_t)sqlite3_column_int64(stmt, 1);
	ex->count++;
	/* RETURNING rows come before the delete is done: finish it. */
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return store_fail_db(ex->store, error_r, "delete message");
	stmt = store_ex_stmt(ex, STORE_EX_RECORD);
	sqlite3_bind_int64(stmt, 1, ex->mbox.id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_int64(stmt, 3, (int64_t)ex->modseq);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return store_fail_db(ex->store, error_r, "record expunge");
	return 0;
}

/* After the deletes: the new HIGHESTMODSEQ, the usage, and which files
 * no row uses any more (a COPY may share one). */
static int
store_ex_finish(struct store_ex *ex, const char **error_r)
{
	struct store *store = ex->store;
	sqlite3_stmt *stmt = store_ex_stmt(ex, STORE_EX_BUMP);
	size_t keep = 0;

	sqlite3_bind_int64(stmt, 1, ex->mbox.id);
	sqlite3_bind_int64(stmt, 2, (int64_t)ex->modseq);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return store_fail_db(store, error_r, "bump modseq");
	stmt = store_stmt(store, STORE_STMT_META_ADD);
	sqlite3_bind_text(stmt, 1, "usage_bytes", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, -(int64_t)ex->bytes);
	if (store_stmt_exec(store, STORE_STMT_META_ADD, error_r) < 0)
		return -1;
	stmt = store_stmt(store, STORE_STMT_META_ADD);
	sqlite3_bind_text(stmt, 1, "usage_messages", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, -(int64_t)ex->count);
	if (store_stmt_exec(store, STORE_STMT_META_ADD, error_r) < 0)
		return -1;
	for (size_t i = 0; i < ex->nfiles; i++) {
		int rc;
		stmt = store_ex_stmt(ex, STORE_EX_FILE_USED);
		sqlite3_bind_text(stmt, 1, ex->files[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_DONE)
			memmove(ex->files[keep++], ex->files[i],
			    sizeof(ex->files[i]));
		else if (rc != SQLITE_ROW)
			return store_fail_db(store, error_r, "file in use");
	}
	ex->nfiles = keep;
	return 0;
}

static int
store_ex_run(struct store_ex *ex, const char *mailbox, const uint32_t *uids,
    size_t count, const char **error_r)
{
	struct store *store = ex->store;
	int ret;

	for (size_t i = 0; i < STORE_EX_MAX; i++)
		if (store_sql_prepare(store, store_ex_sql[i], &ex->stmts[i],
		    error_r) < 0)
			return -1;
	store_stmt(store, STORE_STMT_BEGIN);
	if (store_stmt_exec(store, STORE_STMT_BEGIN, error_r) < 0)
		return -1;
	ret = store_mbox_get(store, mailbox, &ex->mbox, error_r);
	if (ret == 0)
		ret = store_fail(store, error_r, "no such mailbox");
	else if (ret == 1)
		ret = 0;
	/* One MODSEQ for the whole expunge (RFC 7162 §3.2.10). */
	ex->modseq = ex->mbox.highestmodseq + 1;
	for (size_t i = 0; ret == 0 && i < count; i++)
		ret = store_ex_one(ex, uids[i], error_r);
	if (ret == 0 && ex->count > 0)
		ret = store_ex_finish(ex, error_r);
	if (ret == 0) {
		store_stmt(store, STORE_STMT_COMMIT);
		ret = store_stmt_exec(store, STORE_STMT_COMMIT, error_r);
	}
	if (ret < 0)
		store_tx_rollback(store);
	return ret;
}

int
store_expunge(struct store *store, const char *mailbox,
    const uint32_t *uids, size_t count, uint64_t *expunged_r,
    const char **error_r)
{
	struct store_ex ex = { .store = store };
	int ret;

	xassert(!store->batch);
	*expunged_r = 0;
	if (count == 0)
		return 0;
	ex.files = xreallocarray(NULL, count, sizeof(*ex.files));
	ret = store_ex_run(&ex, mailbox, uids, count, error_r);
	for (size_t i = 0; i < STORE_EX_MAX; i++)
		sqlite3_finalize(ex.stmts[i]);
	/*
	 * Only after the commit: a crash before it must find every file
	 * its row names.  A crash after it leaves at most an orphan file.
	 * XXX: a late retry of the same delivery id (the queue lost the
	 * ack) between COMMIT and here would reuse the name we unlink.
	 */
	for (size_t i = 0; ret == 0 && i < ex.nfiles; i++)
		if (unlinkat(store->msg_fd, ex.files[i], 0) == -1 &&
		    errno != ENOENT)
			log_warn("store %s: unlink %s", store->account,
			    ex.files[i]);
	if (ret == 0)
		*expunged_r = ex.count;
	free(ex.files);
	return ret;
}

/* ---- advisory locks ---- */

static bool
store_lock_name_valid(const char *name)
{
	size_t len = strnlen(name, STORE_LOCK_NAME_MAX + 1);

	if (len == 0 || len > STORE_LOCK_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

int
store_lock_try(struct store *store, const char *name, int *fd_r,
    const char **error_r)
{
	char path[PATH_MAX];
	int fd, n;

	if (!store_lock_name_valid(name))
		return store_fail(store, error_r, "bad lock name");
	n = snprintf(path, sizeof(path), "%s/%s.lock", store->dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return store_fail(store, error_r, "lock path too long");
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    STORE_FILE_MODE);
	if (fd == -1)
		return store_fail_errno(store, error_r, "open lock file");
	/* flock(): per open file, so two sessions of one process conflict
	 * too; released by the kernel when the holder dies. */
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 0;
		errno = e;
		return store_fail_errno(store, error_r, "lock");
	}
	*fd_r = fd;
	return 1;
}

void
store_unlock(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
