/*
 * store_quota.c - what quota checks read from a store: the account usage
 * without opening (so without creating) the store, the size of messages
 * a COPY would add, and whether a delivery is stored already (a retried
 * delivery adds nothing, so it is never over quota).
 *
 * The usage itself is kept by the writers (meta usage_bytes and
 * usage_messages, see store_db.c); limits are the caller's business.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_private.h"

/* Per-thread text for store_usage_peek(), which has no store. */
static _Thread_local char store_peek_error[STORE_ERROR_MAX];

static int
store_peek_fail(sqlite3 *db, const char *what, const char **error_r)
{
	snprintf(store_peek_error, sizeof(store_peek_error), "%s: %s", what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	*error_r = store_peek_error;
	return -1;
}

/*
 * The read-only URI of index.db.  With its -shm there (every store the
 * server opened keeps it, SQLITE_FCNTL_PERSIST_WAL) a plain read-only
 * connection shares the WAL index.  Without it, opening normally could
 * create -shm as the caller (root running the CLI) under the server's
 * feet; then nothing is in a WAL and immutable=1 reads the file as is.
 * XXX: a -wal left without its -shm is ignored then (stale by at most
 * the deliveries of a crashed server's last moments).
 */
static char *
store_peek_uri(const char *dir)
{
	char *shm = xasprintf("%s/index.db-shm", dir), *uri;
	struct stat st;
	bool have_shm = stat(shm, &st) == 0;

	free(shm);
	uri = xasprintf("file:%s/index.db?mode=ro%s", dir,
	    have_shm ? "" : "&immutable=1");
	return uri;
}

int
store_usage_peek(const char *data_dir, const char *account,
    uint64_t *bytes_r, uint64_t *messages_r, const char **error_r)
{
	const char *at = strchr(account, '@');
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	char *dir, *db_path, *uri;
	struct stat st;
	int ret = 1;

	*bytes_r = *messages_r = 0;
	if (!store_account_valid(account)) {
		*error_r = "invalid account name";
		return -1;
	}
	dir = xasprintf("%s/mail/%s/%.*s", data_dir, at + 1,
	    (int)(at - account), account);
	db_path = xasprintf("%s/index.db", dir);
	if (lstat(db_path, &st) == -1 || !S_ISREG(st.st_mode)) {
		free(db_path);
		free(dir);
		return 0;	/* no mail yet: no usage */
	}
	free(db_path);
	uri = store_peek_uri(dir);
	free(dir);
	if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK)
		ret = store_peek_fail(db, "open index.db", error_r);
	free(uri);
	if (ret == 1) {
		sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
		if (sqlite3_prepare_v2(db, "SELECT (SELECT value FROM meta"
		    " WHERE key = 'usage_bytes'), (SELECT value FROM meta"
		    " WHERE key = 'usage_messages')", -1, &stmt,
		    NULL) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_ROW)
			ret = store_peek_fail(db, "read usage", error_r);
	}
	if (ret == 1) {
		*bytes_r = (uint64_t)sqlite3_column_int64(stmt, 0);
		*messages_r = (uint64_t)sqlite3_column_int64(stmt, 1);
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return ret;
}

int
store_uids_size(struct store *store, const char *mailbox,
    const uint32_t *uids, size_t count, uint64_t *bytes_r,
    const char **error_r)
{
	struct store_mbox mbox;
	sqlite3_stmt *stmt;
	int ret;

	*bytes_r = 0;
	if ((ret = store_mbox_get(store, mailbox, &mbox, error_r)) <= 0)
		return ret;
	if (sqlite3_prepare_v2(store->db, "SELECT size FROM messages"
	    " WHERE mailbox_id = ?1 AND uid = ?2", -1, &stmt,
	    NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "prepare sizes");
	for (size_t i = 0; i < count && ret == 1; i++) {
		sqlite3_bind_int64(stmt, 1, mbox.id);
		sqlite3_bind_int64(stmt, 2, uids[i]);
		switch (sqlite3_step(stmt)) {
		case SQLITE_ROW:
			*bytes_r += (uint64_t)sqlite3_column_int64(stmt, 0);
			break;
		case SQLITE_DONE:
			break;		/* expunged meanwhile: adds nothing */
		default:
			ret = store_fail_db(store, error_r, "read sizes");
		}
		sqlite3_reset(stmt);
	}
	sqlite3_finalize(stmt);
	return ret;
}

int
store_delivered(struct store *store, const char *delivery_id,
    const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_DELIVERY_GET);
	int rc, ret;

	sqlite3_bind_text(stmt, 1, delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		ret = 1;
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = store_fail_db(store, error_r, "look up delivery");
	sqlite3_reset(stmt);
	return ret;
}
