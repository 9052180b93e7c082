/*
 * store_private.h - the insides of the SQLite backend, shared by the files
 * of src/store/ and its unit test; nothing outside src/store/ includes it.
 */
#ifndef MAILFORT_STORE_PRIVATE_H
#define MAILFORT_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store/store.h"

/* PRAGMA user_version of the schema this code writes (store_db.c). */
#define STORE_SCHEMA_VERSION 3
#define STORE_BUSY_TIMEOUT_MS 5000
/* Message file names: "d" + 32 hex digits + NUL (store_file_name()). */
#define STORE_FILE_NAME_MAX 34
#define STORE_ERROR_MAX 256
/* Directory and file modes: one system user owns all mail. */
#define STORE_DIR_MODE 0700
#define STORE_FILE_MODE 0600

/* Statements prepared once at open (store_db.c has the SQL). */
enum store_stmt {
	STORE_STMT_BEGIN,
	STORE_STMT_COMMIT,
	STORE_STMT_ROLLBACK,
	STORE_STMT_MAILBOX_GET,
	STORE_STMT_MAILBOX_STATUS,
	STORE_STMT_MAILBOX_BUMP,
	STORE_STMT_DELIVERY_GET,
	STORE_STMT_MESSAGE_ADD,
	STORE_STMT_META_ADD,
	STORE_STMT_USAGE_GET,
	STORE_STMT_MAX
};

struct store {
	char *account;
	char *dir;		/* <data_dir>/mail/<domain>/<local> */
	int msg_fd;		/* dir/msg, O_DIRECTORY */
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_STMT_MAX];
	char error[STORE_ERROR_MAX];	/* what *error_r points to */
	bool batch;		/* inside store_batch_begin/end */
	bool batch_failed;	/* a delivery of the batch failed */
	bool dir_dirty;		/* msg/ needs its fsync before COMMIT */
};

/* One mailboxes row as the delivery path needs it. */
struct store_mbox {
	int64_t id;
	uint64_t uidnext;
	uint64_t highestmodseq;
	uint32_t uidvalidity;
};

/* ---- errors (store.c): fill store->error, set *error_r, return -1 ---- */
int store_fail(struct store *store, const char **error_r,
    const char *fmt, ...) MF_PRINTF(3, 4);
/* Appends strerror(errno). */
int store_fail_errno(struct store *store, const char **error_r,
    const char *what);
/* Appends sqlite3_errmsg(); call before resetting the statement. */
int store_fail_db(struct store *store, const char **error_r,
    const char *what);

/* "INBOX" for any case of it (RFC 9051 §5.1), else name itself. */
const char *store_mailbox_canon(const char *name);

/* ---- database (store_db.c) ---- */
/* A one-off statement (the caller finalizes it); -1 and *error_r. */
int store_sql_prepare(struct store *store, const char *sql,
    sqlite3_stmt **stmt_r, const char **error_r) MF_WUR;
/* Opens dir/index.db, sets the pragmas, creates or checks the schema and
 * the default mailboxes, prepares the statements. */
int store_db_open(struct store *store, const char **error_r) MF_WUR;
void store_db_close(struct store *store);
/* The cached statement id, reset and with its bindings cleared. */
sqlite3_stmt *store_stmt(struct store *store, enum store_stmt id);
/* Steps a statement that returns no rows, then resets it. */
int store_stmt_exec(struct store *store, enum store_stmt id,
    const char **error_r) MF_WUR;
/* Rolls back the open transaction, if SQLite has not already. */
void store_tx_rollback(struct store *store);
/* Adds a mailbox row (UIDVALIDITY above all earlier ones), its id in
 * *id_r when not NULL, and subscribes to it when asked; inside the
 * caller's transaction. */
int store_db_mailbox_add(struct store *store, const char *name,
    const char *special_use, bool subscribe, int64_t *id_r,
    const char **error_r) MF_WUR;
/* Looks mailbox up: 1 found, 0 none, -1 error. */
int store_mbox_get(struct store *store, const char *mailbox,
    struct store_mbox *mbox_r, const char **error_r) MF_WUR;

/* ---- the FETCH cache of a new message (store_deliver.c) ---- */
/* What a message gets at delivery/APPEND: the cache columns of its row,
 * each xmalloc'd or NULL (then FETCH computes it lazily). */
struct store_mime {
	char *envelope;
	char *bodystructure;
	void *tree;			/* mime_tree_serialize() output */
	size_t tree_len;
};

/* Parses msg/file once, streaming (bounded memory), into *mime_r.  Never
 * fails: on any error the fields stay NULL, logged once. */
void store_mime_compute(struct store *store, const char *file,
    struct store_mime *mime_r);
void store_mime_clear(struct store_mime *mime);
/* Binds the three cache columns at parameters first..first+2 (text,
 * text, blob; NULL when missing).  mime must outlive the step. */
void store_mime_bind(sqlite3_stmt *stmt, int first,
    const struct store_mime *mime);

/* ---- message files (store_file.c) ---- */
/* The file name of delivery_id under msg/: deterministic, so that a retry
 * after a crash finds the file the first attempt put there. */
int store_file_name(const char *delivery_id, char name_r[STORE_FILE_NAME_MAX],
    const char **error_r) MF_WUR;
/* Puts spool_path into msg/name (link, else copy), fsyncs msg/; *size_r
 * is the file's size. */
int store_file_place(struct store *store, const char *spool_path,
    const char *name, uint64_t *size_r, const char **error_r) MF_WUR;
/* The copy half of store_file_place(), for file systems apart. */
int store_file_copy(struct store *store, int src_fd, const char *name,
    const char **error_r) MF_WUR;

#endif
