/*
 * store_db.c - the SQLite side of a store: connection settings, the
 * versioned schema with its default mailboxes, the cached statements and
 * the read-only queries (status, count, usage).
 *
 * The schema is laid out for IMAP4rev2 with CONDSTORE/QRESYNC (RFC 9051,
 * RFC 7162): UIDs never reused (uidnext only grows), a MODSEQ per message
 * and per mailbox, expunge history, flags as a bitmask plus keywords, and
 * the ENVELOPE/BODYSTRUCTURE/MIME part tree cache filled at delivery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_private.h"

/*
 * meta keys: uidvalidity_last (UIDVALIDITY must grow for a name that is
 * deleted and created again, RFC 9051 §2.3.1.1), usage_bytes and
 * usage_messages (RFC 9208 quota resources), created.
 * messages.file is a name under msg/; several rows may share one file once
 * COPY hard-links or shares files, hence the index.  Rows of messages keep
 * their mailbox (no cascade): deleting a mailbox must unlink files and fix
 * the usage first.
 * Subscriptions are names, not mailboxes (RFC 9051 §6.3.7: a subscription
 * may name a mailbox that does not exist, and outlives a DELETE), so they
 * have a table of their own since schema version 2.
 */
#define STORE_SUBSCRIPTIONS_SQL \
	"CREATE TABLE subscriptions (" \
	" name TEXT PRIMARY KEY NOT NULL CHECK (name <> '')" \
	") STRICT, WITHOUT ROWID;"

/*
 * Schema version 1 -> 2: subscriptions move from mailboxes.subscribed to
 * their own table.  DROP COLUMN rewrites mailboxes; accounts are small.
 */
static const char store_migrate_v2_sql[] =
	STORE_SUBSCRIPTIONS_SQL
	"INSERT INTO subscriptions (name)"
	" SELECT name FROM mailboxes WHERE subscribed = 1;"
	"ALTER TABLE mailboxes DROP COLUMN subscribed;";

/*
 * Schema version 2 -> 3: messages.mime_tree caches mime_tree_serialize()
 * so section fetches read byte ranges without parsing.  ADD COLUMN of a
 * nullable column without default rewrites nothing; old rows stay NULL
 * and FETCH fills them on first use.
 */
static const char store_migrate_v3_sql[] =
	"ALTER TABLE messages ADD COLUMN mime_tree BLOB;";

static const char store_schema_sql[] =
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" value ANY"
	") STRICT;"
	"CREATE TABLE mailboxes ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE CHECK (name <> ''),"
	" uidvalidity INTEGER NOT NULL"
	"  CHECK (uidvalidity BETWEEN 1 AND 4294967295),"
	" uidnext INTEGER NOT NULL DEFAULT 1"
	"  CHECK (uidnext BETWEEN 1 AND 4294967296),"
	" highestmodseq INTEGER NOT NULL DEFAULT 1 CHECK (highestmodseq >= 1),"
	" special_use TEXT CHECK (special_use IN ('\\All', '\\Archive',"
	"  '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'))"
	") STRICT;"
	"CREATE TABLE messages ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes (id),"
	" uid INTEGER NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),"
	" modseq INTEGER NOT NULL CHECK (modseq >= 1),"
	" flags INTEGER NOT NULL DEFAULT 0 CHECK (flags >= 0),"
	" keywords TEXT NOT NULL DEFAULT '',"	/* atoms, space-separated */
	" internaldate INTEGER NOT NULL,"	/* Unix seconds */
	" size INTEGER NOT NULL CHECK (size >= 0),"	/* RFC822.SIZE */
	" file TEXT NOT NULL CHECK (file <> '' AND instr(file, '/') = 0),"
	" delivery_id TEXT UNIQUE,"
	" envelope TEXT,"		/* cached FETCH ENVELOPE */
	" bodystructure TEXT,"	/* cached FETCH BODYSTRUCTURE */
	" mime_tree BLOB,"	/* cached mime_tree_serialize() */
	" PRIMARY KEY (mailbox_id, uid)"
	") STRICT;"
	"CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);"
	"CREATE INDEX messages_file ON messages (file);"
	"CREATE TABLE expunged ("
	" mailbox_id INTEGER NOT NULL"
	"  REFERENCES mailboxes (id) ON DELETE CASCADE,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox_id, uid)"
	") STRICT, WITHOUT ROWID;"
	"CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);"
	STORE_SUBSCRIPTIONS_SQL
	"INSERT INTO meta (key, value) VALUES"
	" ('uidvalidity_last', 0), ('usage_bytes', 0),"
	" ('usage_messages', 0),"
	" ('created', CAST(strftime('%s', 'now') AS INTEGER));";

/* RFC 6154 special-use mailboxes every account starts with. */
static const struct {
	const char *name;
	const char *special_use;
} store_default_mailboxes[] = {
	{ "INBOX", NULL },
	{ "Drafts", "\\Drafts" },
	{ "Sent", "\\Sent" },
	{ "Trash", "\\Trash" },
	{ "Junk", "\\Junk" },
	{ "Archive", "\\Archive" },
};

static const char *const store_stmt_sql[STORE_STMT_MAX] = {
	[STORE_STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STORE_STMT_COMMIT] = "COMMIT",
	[STORE_STMT_ROLLBACK] = "ROLLBACK",
	[STORE_STMT_MAILBOX_GET] =
	    "SELECT id, uidnext, highestmodseq, uidvalidity FROM mailboxes"
	    " WHERE name = ?1",
	[STORE_STMT_MAILBOX_STATUS] =
	    "SELECT uidvalidity, uidnext, highestmodseq,"
	    " (SELECT count(*) FROM messages WHERE mailbox_id = mailboxes.id)"
	    " FROM mailboxes WHERE name = ?1",
	[STORE_STMT_MAILBOX_BUMP] =
	    "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3"
	    " WHERE id = ?1",
	[STORE_STMT_DELIVERY_GET] =
	    "SELECT file FROM messages WHERE delivery_id = ?1",
	[STORE_STMT_MESSAGE_ADD] =
	    "INSERT INTO messages (mailbox_id, uid, modseq, internaldate,"
	    " size, file, delivery_id, envelope, bodystructure, mime_tree)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[STORE_STMT_META_ADD] =
	    "UPDATE meta SET value = value + ?2 WHERE key = ?1",
	[STORE_STMT_USAGE_GET] =
	    "SELECT (SELECT value FROM meta WHERE key = 'usage_bytes'),"
	    " (SELECT value FROM meta WHERE key = 'usage_messages')",
};

/* Runs SQL text that returns no rows (schema, pragmas). */
static int
store_db_exec(struct store *store, const char *sql, const char *what,
    const char **error_r)
{
	if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, what);
	return 0;
}

/* First column of the first row of sql, which takes no parameters. */
static int
store_db_int(struct store *store, const char *sql, int64_t *value_r,
    const char **error_r)
{
	sqlite3_stmt *stmt;
	int ret = 0;

	if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "prepare");
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*value_r = sqlite3_column_int64(stmt, 0);
	else
		ret = store_fail_db(store, error_r, sql);
	sqlite3_finalize(stmt);
	return ret;
}

/* Adds name to the subscriptions (already there: fine). */
static int
store_db_subscribe(struct store *store, const char *name,
    const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(store->db, "INSERT OR IGNORE INTO"
	    " subscriptions (name) VALUES (?1)", -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "prepare subscribe");
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE)
		store_fail_db(store, error_r, "subscribe");
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Adds mailbox name.  UIDVALIDITY is the time of creation but always above
 * every earlier one, so a name deleted and created again in the same
 * second still gets a new value (RFC 9051 §2.3.1.1).
 */
int
store_db_mailbox_add(struct store *store, const char *name,
    const char *special_use, bool subscribe, int64_t *id_r,
    const char **error_r)
{
	sqlite3_stmt *stmt;
	int64_t last = 0, v = (int64_t)time(NULL);
	int rc;

	if (store_db_int(store, "SELECT value FROM meta"
	    " WHERE key = 'uidvalidity_last'", &last, error_r) < 0)
		return -1;
	if (v <= last)
		v = last + 1;
	if (v < 1 || v > UINT32_MAX)
		return store_fail(store, error_r, "UIDVALIDITY out of range");
	if (sqlite3_prepare_v2(store->db, "INSERT INTO mailboxes (name,"
	    " uidvalidity, special_use) VALUES (?1, ?2, ?3)",
	    -1, &stmt, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "prepare mailbox add");
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, v);
	sqlite3_bind_text(stmt, 3, special_use, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_DONE)
		store_fail_db(store, error_r, "add mailbox");
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return -1;
	if (id_r != NULL)
		*id_r = sqlite3_last_insert_rowid(store->db);
	/* v is now the largest UIDVALIDITY there is. */
	if (store_db_exec(store, "UPDATE meta SET value ="
	    " (SELECT max(uidvalidity) FROM mailboxes)"
	    " WHERE key = 'uidvalidity_last'", "set uidvalidity_last",
	    error_r) < 0)
		return -1;
	return subscribe ? store_db_subscribe(store, name, error_r) : 0;
}

/* A new database: tables, meta rows and default mailboxes. */
static int
store_db_create(struct store *store, const char **error_r)
{
	char sql[64];

	if (store_db_exec(store, store_schema_sql, "create schema",
	    error_r) < 0)
		return -1;
	for (size_t i = 0; i < MF_ARRAY_LEN(store_default_mailboxes); i++)
		if (store_db_mailbox_add(store,
		    store_default_mailboxes[i].name,
		    store_default_mailboxes[i].special_use, true, NULL,
		    error_r) < 0)
			return -1;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    STORE_SCHEMA_VERSION);
	return store_db_exec(store, sql, "set user_version", error_r);
}

/* Version 1 to 2 (store_migrate_v2_sql), inside the schema transaction. */
static int
store_db_migrate_v2(struct store *store, const char **error_r)
{
	if (store_db_exec(store, store_migrate_v2_sql, "migrate to v2",
	    error_r) < 0)
		return -1;
	log_info("store %s: schema migrated from version 1 to 2",
	    store->account);
	return store_db_exec(store, "PRAGMA user_version = 2",
	    "set user_version", error_r);
}

/* Version 2 to 3 (store_migrate_v3_sql), inside the schema transaction. */
static int
store_db_migrate_v3(struct store *store, const char **error_r)
{
	if (store_db_exec(store, store_migrate_v3_sql, "migrate to v3",
	    error_r) < 0)
		return -1;
	log_info("store %s: schema migrated from version 2 to 3",
	    store->account);
	return store_db_exec(store, "PRAGMA user_version = 3",
	    "set user_version", error_r);
}

/*
 * Creates or checks the schema in one IMMEDIATE transaction, so that two
 * processes opening a new account at once create it once, and a crash
 * leaves either nothing or a complete store (user_version set last).
 */
static int
store_db_schema(struct store *store, const char **error_r)
{
	int64_t version = 0;
	int ret = 0;

	if (store_db_exec(store, "BEGIN IMMEDIATE", "begin", error_r) < 0)
		return -1;
	if (store_db_int(store, "PRAGMA user_version", &version,
	    error_r) < 0)
		ret = -1;
	else if (version == 0)
		ret = store_db_create(store, error_r);
	else if (version == 1 || version == 2) {
		/* Each step in turn: 1 -> 2 -> 3. */
		if (version == 1)
			ret = store_db_migrate_v2(store, error_r);
		if (ret == 0)
			ret = store_db_migrate_v3(store, error_r);
	} else if (version != STORE_SCHEMA_VERSION)
		/* Newer than us: never write what we do not understand. */
		ret = store_fail(store, error_r,
		    "index.db schema version %lld, expected %d",
		    (long long)version, STORE_SCHEMA_VERSION);
	if (ret == 0)
		ret = store_db_exec(store, "COMMIT", "commit", error_r);
	if (ret < 0)
		store_tx_rollback(store);
	return ret;
}

/*
 * Connection settings: WAL so IMAP readers never block delivery;
 * synchronous=FULL because a delivery must survive power loss once
 * recorded; defensive mode and untrusted schema since the file lives
 * among user data.
 */
static int
store_db_settings(struct store *store, const char **error_r)
{
	int64_t ignored = 0;
	const char *mode;
	sqlite3_stmt *stmt;
	int rc;

	sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);
	sqlite3_db_config(store->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(store->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	if (sqlite3_prepare_v2(store->db, "PRAGMA journal_mode = WAL", -1,
	    &stmt, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "prepare journal_mode");
	rc = sqlite3_step(stmt);
	mode = rc == SQLITE_ROW ?
	    (const char *)sqlite3_column_text(stmt, 0) : NULL;
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		if (rc == SQLITE_ROW)
			store_fail(store, error_r, "journal_mode is not WAL");
		else
			store_fail_db(store, error_r, "journal_mode");
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	/* cache_size: one connection per logged-in IMAP session, so each
	 * keeps at most 512 KiB of pages (the OS page cache holds more). */
	if (store_db_exec(store, "PRAGMA synchronous = FULL;"
	    " PRAGMA foreign_keys = ON; PRAGMA cache_size = -512", "pragmas",
	    error_r) < 0)
		return -1;
	/* Pragmas fail silently on unknown names: read one back. */
	if (store_db_int(store, "PRAGMA foreign_keys", &ignored,
	    error_r) < 0)
		return -1;
	if (ignored != 1)
		return store_fail(store, error_r, "foreign_keys are off");
	return 0;
}

static int
store_db_prepare(struct store *store, const char **error_r)
{
	sqlite3_stmt *stmt = NULL;

	/* Statements are prepared on first use (store_stmt()); check once
	 * here that they compile against this schema, without keeping them,
	 * so a broken database fails at open, not in the middle of work. */
	for (size_t i = 0; i < STORE_STMT_MAX; i++) {
		if (sqlite3_prepare_v2(store->db, store_stmt_sql[i], -1, &stmt,
		    NULL) != SQLITE_OK)
			return store_fail_db(store, error_r, "prepare");
		sqlite3_finalize(stmt);
	}
	return 0;
}

#define STORE_LOOKASIDE_SLOT 128	/* bytes per lookaside slot */
#define STORE_LOOKASIDE_SLOTS 64

void
store_release_memory(struct store *store)
{
	if (store != NULL && store->db != NULL)
		(void)sqlite3_db_release_memory(store->db);
}

void
store_library_init(void)
{
	/* Memory per connection matters: every logged-in IMAP session has
	 * one.  SQLite's default lookaside (up to ~120 KB) is cut to 8 KB,
	 * which keeps most of its speed benefit.  Must run before SQLite is
	 * first used. */
	if (sqlite3_config(SQLITE_CONFIG_LOOKASIDE, STORE_LOOKASIDE_SLOT,
	    STORE_LOOKASIDE_SLOTS) != SQLITE_OK)
		log_warnx("sqlite3_config(LOOKASIDE) failed");
	/* No up-front bulk page cache (20 pages per connection by default):
	 * pages are allocated as they are used. */
	if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK)
		log_warnx("sqlite3_config(PAGECACHE) failed");
}

int
store_sql_prepare(struct store *store, const char *sql, sqlite3_stmt **stmt_r,
    const char **error_r)
{
	if (sqlite3_prepare_v2(store->db, sql, -1, stmt_r, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "prepare");
	return 0;
}

int
store_db_open(struct store *store, const char **error_r)
{
	char *path = xasprintf("%s/index.db", store->dir);
	int rc;

	rc = sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
	    SQLITE_OPEN_EXRESCODE, NULL);
	free(path);
	if (rc != SQLITE_OK) {
		if (store->db == NULL)
			fatalx("out of memory (sqlite3_open_v2)");
		return store_fail_db(store, error_r, "open index.db");
	}
	/* Keep -wal/-shm after close: a reader running as another user
	 * (root tools, tests) would otherwise re-create them as its own. */
	int persist = 1;
	sqlite3_file_control(store->db, "main", SQLITE_FCNTL_PERSIST_WAL,
	    &persist);
	if (store_db_settings(store, error_r) < 0 ||
	    store_db_schema(store, error_r) < 0 ||
	    store_db_prepare(store, error_r) < 0)
		return -1;
	return 0;
}

void
store_db_close(struct store *store)
{
	for (size_t i = 0; i < STORE_STMT_MAX; i++) {
		sqlite3_finalize(store->stmts[i]);
		store->stmts[i] = NULL;
	}
	/* Statements are gone, so close cannot fail with SQLITE_BUSY. */
	sqlite3_close(store->db);
	store->db = NULL;
}

sqlite3_stmt *
store_stmt(struct store *store, enum store_stmt id)
{
	sqlite3_stmt *stmt = store->stmts[id];

	/* Prepared on first use: an idle IMAP session should not carry a
	 * dozen compiled statements it may never run. */
	if (stmt == NULL) {
		if (sqlite3_prepare_v3(store->db, store_stmt_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &store->stmts[id], NULL) !=
		    SQLITE_OK)
			panic("store %s: prepare: %s", store->account,
			    sqlite3_errmsg(store->db));
		stmt = store->stmts[id];
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	return stmt;
}

int
store_stmt_exec(struct store *store, enum store_stmt id,
    const char **error_r)
{
	sqlite3_stmt *stmt = store->stmts[id];
	int ret = 0;

	if (sqlite3_step(stmt) != SQLITE_DONE)
		ret = store_fail_db(store, error_r, sqlite3_sql(stmt));
	sqlite3_reset(stmt);
	return ret;
}

void
store_tx_rollback(struct store *store)
{
	/* Some errors (SQLITE_FULL, IOERR) already ended the transaction. */
	if (sqlite3_get_autocommit(store->db))
		return;
	if (sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL) !=
	    SQLITE_OK)
		log_warnx("store %s: rollback: %s", store->account,
		    sqlite3_errmsg(store->db));
}

int
store_mbox_get(struct store *store, const char *mailbox,
    struct store_mbox *mbox_r, const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_MAILBOX_GET);
	int rc, ret = 1;

	sqlite3_bind_text(stmt, 1, store_mailbox_canon(mailbox), -1,
	    SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		mbox_r->id = sqlite3_column_int64(stmt, 0);
		mbox_r->uidnext = (uint64_t)sqlite3_column_int64(stmt, 1);
		mbox_r->highestmodseq =
		    (uint64_t)sqlite3_column_int64(stmt, 2);
		mbox_r->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 3);
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_fail_db(store, error_r, "look up mailbox");
	}
	sqlite3_reset(stmt);
	return ret;
}

int
store_mailbox_status(struct store *store, const char *mailbox,
    struct store_mailbox_status *status_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_MAILBOX_STATUS);
	int rc, ret = 1;

	sqlite3_bind_text(stmt, 1, store_mailbox_canon(mailbox), -1,
	    SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		status_r->uidvalidity =
		    (uint32_t)sqlite3_column_int64(stmt, 0);
		status_r->uidnext = (uint64_t)sqlite3_column_int64(stmt, 1);
		status_r->highestmodseq =
		    (uint64_t)sqlite3_column_int64(stmt, 2);
		status_r->messages = (uint64_t)sqlite3_column_int64(stmt, 3);
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		/* No error_r in this interface: say it here, once. */
		log_warnx("store %s: mailbox status: %s", store->account,
		    sqlite3_errmsg(store->db));
		ret = -1;
	}
	sqlite3_reset(stmt);
	return ret;
}

int
store_count(struct store *store, const char *mailbox, uint64_t *count_r)
{
	struct store_mailbox_status status;

	if (store_mailbox_status(store, mailbox, &status) != 1)
		return -1;
	*count_r = status.messages;
	return 0;
}

int
store_usage(struct store *store, uint64_t *bytes_r, uint64_t *messages_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_USAGE_GET);
	int ret = 0;

	if (sqlite3_step(stmt) == SQLITE_ROW) {
		*bytes_r = (uint64_t)sqlite3_column_int64(stmt, 0);
		*messages_r = (uint64_t)sqlite3_column_int64(stmt, 1);
	} else {
		log_warnx("store %s: usage: %s", store->account,
		    sqlite3_errmsg(store->db));
		ret = -1;
	}
	sqlite3_reset(stmt);
	return ret;
}
