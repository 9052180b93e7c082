/*
 * store_deliver.c - local delivery into a store, idempotent on the
 * delivery id.  Order: file placed and fsynced (store_file.c), then one
 * IMMEDIATE transaction checks the id, takes the next UID and MODSEQ and
 * inserts the row.  A crash before the commit leaves at most a file that
 * the retry reuses (its name comes from the id); after the commit the
 * retry finds the id and stores nothing.
 *
 * Before the transaction the placed file is parsed once (mime.h) for the
 * FETCH cache columns (ENVELOPE, BODYSTRUCTURE, part tree), so IMAP never
 * parses a message delivered by this code; store_append() does the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mime/mime.h"
#include "store/store_private.h"

#define STORE_MIME_CHUNK (64 * 1024)	/* file bytes per read */

/* Feeds all of fd to p; -1 on a read error. */
static int
store_mime_feed(int fd, struct mime_parser *p)
{
	char *chunk = xmalloc(STORE_MIME_CHUNK);
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, STORE_MIME_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		mime_parser_feed(p, chunk, (size_t)n);
	}
	free(chunk);
	return n < 0 ? -1 : 0;
}

/*
 * The parser keeps at most MIME_KEPT_MAX header bytes and MIME_PARTS_MAX
 * parts, so memory is bounded whatever the message size.
 * XXX: a message delivered to several recipients (hard links of one
 * spool file) is parsed once per delivery; sharing the result within a
 * runner batch would save the repeats.
 */
void
store_mime_compute(struct store *store, const char *file,
    struct store_mime *mime_r)
{
	struct mime_parser *p;
	struct mime_message *m;
	struct buf b;
	int fd, ret;

	memset(mime_r, 0, sizeof(*mime_r));
	fd = openat(store->msg_fd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		log_warn("store %s: open %s for the cache", store->account,
		    file);
		return;
	}
	p = mime_parser_new();
	ret = store_mime_feed(fd, p);
	close(fd);
	if (ret < 0) {
		log_warn("store %s: read %s for the cache", store->account,
		    file);
		mime_parser_free(&p);
		return;
	}
	m = mime_parser_finish(&p);
	buf_init(&b, 0);
	mime_r->envelope = xstrdup(mime_envelope(m, &b));
	buf_reset(&b);
	mime_r->bodystructure = xstrdup(mime_bodystructure(m, true, &b));
	buf_reset(&b);
	mime_tree_serialize(m, &b);
	mime_r->tree_len = b.len;
	mime_r->tree = xmalloc(b.len + 1);
	if (b.len > 0)
		memcpy(mime_r->tree, b.data, b.len);
	buf_free(&b);
	mime_message_free(&m);
}

void
store_mime_clear(struct store_mime *mime)
{
	x_free(&mime->envelope);
	x_free(&mime->bodystructure);
	x_free(&mime->tree);
	mime->tree_len = 0;
}

void
store_mime_bind(sqlite3_stmt *stmt, int first, const struct store_mime *mime)
{
	sqlite3_bind_text(stmt, first, mime->envelope, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, first + 1, mime->bodystructure, -1,
	    SQLITE_STATIC);
	if (mime->tree != NULL)
		sqlite3_bind_blob64(stmt, first + 2, mime->tree,
		    (sqlite3_uint64)mime->tree_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, first + 2);
}

/* The id is hashed into the file name and stored; bound it, no controls. */
static bool
store_delivery_id_valid(const char *id)
{
	size_t len = strnlen(id, STORE_DELIVERY_ID_MAX + 1);

	if (len == 0 || len > STORE_DELIVERY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return false;
	return true;
}

/*
 * Is delivery_id stored?  1 yes (its file name in file_r when not NULL),
 * 0 no, -1 error.
 */
static int
store_delivery_get(struct store *store, const char *delivery_id,
    char file_r[STORE_FILE_NAME_MAX], const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_DELIVERY_GET);
	const char *file;
	int rc, ret = 1;

	sqlite3_bind_text(stmt, 1, delivery_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		file = (const char *)sqlite3_column_text(stmt, 0);
		if (file_r != NULL)
			str_lcpy(file_r, file != NULL ? file : "",
			    STORE_FILE_NAME_MAX);
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_fail_db(store, error_r, "look up delivery");
	}
	sqlite3_reset(stmt);
	return ret;
}

/* Inside the transaction: the new row and the account totals. */
static int
store_deliver_insert(struct store *store, const struct store_mbox *mbox,
    const char *file, uint64_t size, const char *delivery_id,
    const struct store_mime *mime, const char **error_r)
{
	uint64_t uid = mbox->uidnext, modseq = mbox->highestmodseq + 1;
	sqlite3_stmt *stmt;

	/* RFC 9051 §2.3.1.1: UIDs are 32-bit and never reused. */
	if (uid > UINT32_MAX)
		return store_fail(store, error_r, "mailbox UIDs used up");
	stmt = store_stmt(store, STORE_STMT_MAILBOX_BUMP);
	sqlite3_bind_int64(stmt, 1, mbox->id);
	sqlite3_bind_int64(stmt, 2, (int64_t)uid + 1);
	sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
	if (store_stmt_exec(store, STORE_STMT_MAILBOX_BUMP, error_r) < 0)
		return -1;
	stmt = store_stmt(store, STORE_STMT_MESSAGE_ADD);
	sqlite3_bind_int64(stmt, 1, mbox->id);
	sqlite3_bind_int64(stmt, 2, (int64_t)uid);
	sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
	sqlite3_bind_int64(stmt, 4, (int64_t)time(NULL));
	sqlite3_bind_int64(stmt, 5, (int64_t)size);
	sqlite3_bind_text(stmt, 6, file, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 7, delivery_id, -1, SQLITE_STATIC);
	store_mime_bind(stmt, 8, mime);
	if (store_stmt_exec(store, STORE_STMT_MESSAGE_ADD, error_r) < 0)
		return -1;
	stmt = store_stmt(store, STORE_STMT_META_ADD);
	sqlite3_bind_text(stmt, 1, "usage_bytes", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, (int64_t)size);
	if (store_stmt_exec(store, STORE_STMT_META_ADD, error_r) < 0)
		return -1;
	stmt = store_stmt(store, STORE_STMT_META_ADD);
	sqlite3_bind_text(stmt, 1, "usage_messages", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, 1);
	return store_stmt_exec(store, STORE_STMT_META_ADD, error_r);
}

/*
 * The transaction.  A duplicate found here (a concurrent delivery of the
 * same id won the race) normally shares our file name, so the file stays;
 * only a file the stored row does not use is ours to remove.
 */
static int
store_deliver_commit(struct store *store, const char *file, uint64_t size,
    const char *delivery_id, const char *mailbox,
    const struct store_mime *mime, const char **error_r)
{
	char stored[STORE_FILE_NAME_MAX];
	struct store_mbox mbox;
	int ret;

	if (!store->batch) {
		store_stmt(store, STORE_STMT_BEGIN);
		if (store_stmt_exec(store, STORE_STMT_BEGIN, error_r) < 0)
			return -1;
	}
	ret = store_delivery_get(store, delivery_id, stored, error_r);
	if (ret == 0) {
		ret = store_mbox_get(store, mailbox, &mbox, error_r);
		if (ret == 0)
			ret = store_fail(store, error_r, "no such mailbox");
		else if (ret == 1)
			ret = store_deliver_insert(store, &mbox, file, size,
			    delivery_id, mime, error_r);
		if (ret == 0 && !store->batch) {
			store_stmt(store, STORE_STMT_COMMIT);
			ret = store_stmt_exec(store, STORE_STMT_COMMIT,
			    error_r);
		}
		if (ret == 0)
			ret = 1;
	} else if (ret == 1) {
		ret = 0;
		if (strcmp(stored, file) != 0 &&
		    unlinkat(store->msg_fd, file, 0) == -1)
			log_warn("store %s: unlink %s", store->account, file);
	}
	if (ret < 0 && store->batch)
		store->batch_failed = true;	/* the whole batch rolls back */
	else if (ret != 1 && !store->batch)
		store_tx_rollback(store);
	return ret;
}

int
store_batch_begin(struct store *store, const char **error_r)
{
	xassert(!store->batch);
	store_stmt(store, STORE_STMT_BEGIN);
	if (store_stmt_exec(store, STORE_STMT_BEGIN, error_r) < 0)
		return -1;
	store->batch = true;
	store->batch_failed = false;
	store->dir_dirty = false;
	return 0;
}

int
store_batch_end(struct store *store, const char **error_r)
{
	int ret = 0;

	xassert(store->batch);
	store->batch = false;
	if (store->batch_failed)
		ret = store_fail(store, error_r, "a delivery of the batch "
		    "failed");
	else if (store->dir_dirty && fsync(store->msg_fd) == -1)
		ret = store_fail_errno(store, error_r, "fsync msg directory");
	if (ret == 0) {
		store_stmt(store, STORE_STMT_COMMIT);
		ret = store_stmt_exec(store, STORE_STMT_COMMIT, error_r);
	}
	if (ret < 0)
		store_tx_rollback(store);
	return ret;
}

int
store_deliver(struct store *store, const char *spool_path,
    const char *delivery_id, const char *mailbox, const char **error_r)
{
	char file[STORE_FILE_NAME_MAX];
	struct store_mime mime;
	struct store_mbox mbox;
	uint64_t size;
	int ret;

	if (!store_delivery_id_valid(delivery_id))
		return store_fail(store, error_r, "invalid delivery id");
	/* Checks without the write lock first: a retry of a finished
	 * delivery, or a missing mailbox, touches no file. */
	ret = store_delivery_get(store, delivery_id, NULL, error_r);
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	ret = store_mbox_get(store, mailbox, &mbox, error_r);
	if (ret <= 0)
		return ret < 0 ? -1 :
		    store_fail(store, error_r, "no such mailbox");
	if (store_file_name(delivery_id, file, error_r) < 0 ||
	    store_file_place(store, spool_path, file, &size, error_r) < 0)
		return -1;
	/* From here on a failure leaves the file for the retry to reuse.
	 * Parsed before our transaction takes the write lock (a batch
	 * holds its lock already: XXX, parsing is short next to fsync). */
	store_mime_compute(store, file, &mime);
	ret = store_deliver_commit(store, file, size, delivery_id, mailbox,
	    &mime, error_r);
	store_mime_clear(&mime);
	return ret;
}
