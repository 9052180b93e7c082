/*
 * test_store.c - unit tests of the SQLite store against real files in a
 * temporary directory: account names, default mailboxes, delivery with
 * UIDs and MODSEQs, idempotence (also after a simulated crash), the copy
 * path across file systems, reopening.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mime/mime.h"
#include "store/store_private.h"
#include "core/test.h"

#define ACCOUNT "alice@example.test"
#define MSG1 "From: a@b\r\nSubject: one\r\n\r\nbody one\r\n"
#define MSG2 "From: a@b\r\nSubject: two\r\n\r\nsecond body\r\n"
#define MSG3 "From: a@b\r\nSubject: three\r\n\r\nthird\r\n"

static char test_root[] = "/tmp/mf-test-store-XXXXXX";
static char *test_data;		/* data_dir, two levels not yet there */
static char *test_account_dir;

static void
test_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	TEST_TRUE(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

static nlink_t
test_nlink(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_nlink : 0;
}

/* Entries of the account's msg/ whose names start with prefix. */
static int
test_msg_files(const char *prefix)
{
	char *path = xasprintf("%s/msg", test_account_dir);
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	if (d != NULL)
		closedir(d);
	free(path);
	return n;
}

static int
test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Runs one SQL query on the account's index.db; first column as int. */
static long long
test_sql_int(const char *sql)
{
	char *path = xasprintf("%s/index.db", test_account_dir);
	sqlite3_stmt *stmt;
	sqlite3 *db;
	long long v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(stmt) == SQLITE_ROW)
			v = sqlite3_column_int64(stmt, 0);
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
	free(path);
	return v;
}

static void
test_accounts(void)
{
	static const char *const bad[] = {
		"", "@", "a@", "@b", "../x@y", "a/b@c", "x@../y", "x@y/..",
		"x@a/b", ".x@y", "..@y", "x@.y", "x@y.", "x@y..z", "x@-y",
		"x@y-", "Alice@example.test", "a@Example.test", "a\n@b",
		"a b@c", "a@b@c", "a\\b@c", "x@y_z", "\xc3\xa9@b",
	};
	char longs[STORE_ACCOUNT_MAX + 8];
	struct store *store;
	const char *err;

	for (size_t i = 0; i < MF_ARRAY_LEN(bad); i++)
		TEST_CHECK(!store_account_valid(bad[i]), "accepted \"%s\"",
		    bad[i]);
	TEST_TRUE(store_account_valid("a.b+tag_x@ex-ample.test"));
	TEST_TRUE(store_account_valid("x@y"));
	memset(longs, 'a', sizeof(longs));
	memcpy(longs + STORE_LOCAL_MAX, "@", 1);
	longs[sizeof(longs) - 1] = '\0';
	TEST_TRUE(!store_account_valid(longs));
	memcpy(longs + STORE_LOCAL_MAX, "a@", 2);
	longs[STORE_LOCAL_MAX + 3] = '\0';
	TEST_TRUE(!store_account_valid(longs));	/* local part 65 */
	TEST_INT(store_open(test_data, "../x@y", &store, &err), -1);
	TEST_TRUE(store == NULL);
	TEST_INT(store_open(test_data, "a/b@c", &store, &err), -1);
	TEST_STR(err, "invalid account name");
	/* Refused before anything was created. */
	TEST_INT(access(test_data, F_OK), -1);
}

static void
test_open_new(void)
{
	struct store_mailbox_status st;
	struct store *store;
	const char *err = NULL;
	uint64_t n;
	struct stat sb;

	TEST_INT(store_open(test_data, ACCOUNT, &store, &err), 0);
	if (store == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		exit(1);
	}
	TEST_INT(stat(test_account_dir, &sb), 0);
	TEST_INT(sb.st_mode & 0777, 0700);
	TEST_INT(store_mailbox_status(store, "inbox", &st), 1);
	TEST_INT(st.uidnext, 1);
	TEST_INT(st.messages, 0);
	TEST_TRUE(st.uidvalidity > 1600000000);
	TEST_INT(store_mailbox_status(store, "Nope", &st), 0);
	TEST_INT(store_count(store, "INBOX", &n), 0);
	TEST_INT(n, 0);
	TEST_INT(store_count(store, "Nope", &n), -1);
	store_close(&store);
	TEST_TRUE(store == NULL);

	TEST_INT(test_sql_int("SELECT count(*) FROM mailboxes"), 6);
	TEST_INT(test_sql_int("SELECT count(*) FROM mailboxes"
	    " WHERE name IN (SELECT name FROM subscriptions)"), 6);
	TEST_INT(test_sql_int("SELECT count(*) FROM mailboxes WHERE"
	    " (name, special_use) IN (VALUES ('Drafts', '\\Drafts'),"
	    " ('Sent', '\\Sent'), ('Trash', '\\Trash'), ('Junk', '\\Junk'),"
	    " ('Archive', '\\Archive'))"), 5);
	TEST_INT(test_sql_int("SELECT count(DISTINCT uidvalidity)"
	    " FROM mailboxes"), 6);
	TEST_INT(test_sql_int("PRAGMA user_version"), STORE_SCHEMA_VERSION);
	TEST_INT(test_sql_int("SELECT journal_mode = 'wal'"
	    " FROM pragma_journal_mode"), 1);
}

static void
test_deliver(const char *spool_dir)
{
	char *s1 = xasprintf("%s/q1", spool_dir);
	char *s2 = xasprintf("%s/q2", spool_dir);
	struct store *store;
	const char *err = NULL;
	uint64_t n, bytes, msgs;

	test_write(s1, MSG1);
	test_write(s2, MSG2);
	TEST_INT(test_nlink(s1), 1);
	TEST_INT(store_open(test_data, ACCOUNT, &store, &err), 0);
	TEST_INT(store_deliver(store, s1, "Q1/" ACCOUNT, "INBOX", &err), 1);
	TEST_INT(test_nlink(s1), 2);
	TEST_INT(store_deliver(store, s2, "Q2/" ACCOUNT, "INBOX", &err), 1);
	TEST_INT(test_nlink(s2), 2);
	/* The same id again: stored once, no new link. */
	TEST_INT(store_deliver(store, s1, "Q1/" ACCOUNT, "INBOX", &err), 0);
	TEST_INT(test_nlink(s1), 2);
	TEST_INT(store_count(store, "INBOX", &n), 0);
	TEST_INT(n, 2);
	TEST_INT(store_usage(store, &bytes, &msgs), 0);
	TEST_INT(bytes, strlen(MSG1) + strlen(MSG2));
	TEST_INT(msgs, 2);
	/* Errors: no such mailbox, no spool file, bad ids. */
	TEST_INT(store_deliver(store, s2, "Q9/x", "Nope", &err), -1);
	TEST_STR(err, "no such mailbox");
	TEST_INT(store_deliver(store, "/nonexistent", "Q9/x", "INBOX", &err),
	    -1);
	TEST_INT(store_deliver(store, s2, "", "INBOX", &err), -1);
	TEST_INT(store_deliver(store, s2, "Q\r\n", "INBOX", &err), -1);
	store_close(&store);

	TEST_INT(test_sql_int("SELECT group_concat(uid, ',') = '1,2' FROM"
	    " (SELECT uid FROM messages ORDER BY delivery_id)"), 1);
	TEST_INT(test_sql_int("SELECT size FROM messages WHERE uid = 2"),
	    strlen(MSG2));
	TEST_INT(test_sql_int("SELECT modseq FROM messages WHERE uid = 2") >
	    test_sql_int("SELECT modseq FROM messages WHERE uid = 1"), 1);
	TEST_INT(test_sql_int("SELECT highestmodseq = (SELECT max(modseq)"
	    " FROM messages) FROM mailboxes WHERE name = 'INBOX'"), 1);
	TEST_INT(test_sql_int("SELECT count(*) FROM messages WHERE"
	    " internaldate > CAST(strftime('%s', 'now') AS INTEGER) - 60"),
	    2);
	free(s1);
	free(s2);
}

/* A crash after the link, before the commit: the retry reuses the file. */
static void
test_crash_retry(const char *spool_dir)
{
	char *s3 = xasprintf("%s/q3", spool_dir);
	char name[STORE_FILE_NAME_MAX], *dest;
	struct store *store;
	const char *err = NULL;
	uint64_t n;

	test_write(s3, MSG3);
	TEST_INT(store_file_name("Q3/" ACCOUNT, name, &err), 0);
	TEST_INT(strlen(name), STORE_FILE_NAME_MAX - 1);
	TEST_TRUE(strchr(name, '/') == NULL);
	dest = xasprintf("%s/msg/%s", test_account_dir, name);
	TEST_INT(link(s3, dest), 0);
	TEST_INT(store_open(test_data, ACCOUNT, &store, &err), 0);
	TEST_INT(store_deliver(store, s3, "Q3/" ACCOUNT, "inbox", &err), 1);
	TEST_INT(test_nlink(s3), 2);
	TEST_INT(store_count(store, "INBOX", &n), 0);
	TEST_INT(n, 3);
	/* Same id into another mailbox: still the one delivery. */
	TEST_INT(store_deliver(store, s3, "Q3/" ACCOUNT, "Junk", &err), 0);
	TEST_INT(test_nlink(s3), 2);
	store_close(&store);
	TEST_INT(test_sql_int("SELECT max(uid) FROM messages"), 3);
	free(dest);
	free(s3);
}

/* /dev/shm is another file system here: link() fails with EXDEV. */
static void
test_copy(void)
{
	char spool[] = "/dev/shm/mf-test-store-XXXXXX";
	struct store_mailbox_status st;
	struct store *store;
	const char *err = NULL;
	int fd = mkstemp(spool);

	if (fd < 0) {
		fprintf(stderr, "test_copy: no /dev/shm, skipped\n");
		return;
	}
	TEST_INT(write(fd, MSG2, strlen(MSG2)), strlen(MSG2));
	close(fd);
	TEST_INT(store_open(test_data, ACCOUNT, &store, &err), 0);
	TEST_INT(store_deliver(store, spool, "Q4/" ACCOUNT, "Junk", &err), 1);
	TEST_INT(store_deliver(store, spool, "Q4/" ACCOUNT, "Junk", &err), 0);
	TEST_INT(store_mailbox_status(store, "Junk", &st), 1);
	TEST_INT(st.messages, 1);
	TEST_INT(st.uidnext, 2);
	/* A second copy onto an existing name keeps the first. */
	fd = open(spool, O_RDONLY);
	TEST_INT(store_file_copy(store, fd, "dcopy", &err), 0);
	TEST_INT(store_file_copy(store, fd, "dcopy", &err), 0);
	close(fd);
	store_close(&store);
	TEST_INT(test_nlink(spool), 1);
	TEST_INT(test_sql_int("SELECT size FROM messages m JOIN mailboxes b"
	    " ON b.id = m.mailbox_id WHERE b.name = 'Junk'"), strlen(MSG2));
	unlink(spool);
}

static void
test_reopen(void)
{
	struct store_mailbox_status st;
	struct store *store;
	const char *err = NULL;
	long long uidvalidity;

	uidvalidity = test_sql_int("SELECT uidvalidity FROM mailboxes"
	    " WHERE name = 'INBOX'");
	TEST_INT(store_open(test_data, ACCOUNT, &store, &err), 0);
	TEST_INT(store_mailbox_status(store, "INBOX", &st), 1);
	TEST_INT(st.uidvalidity, uidvalidity);
	TEST_INT(st.uidnext, 4);
	TEST_INT(st.messages, 3);
	store_close(&store);
	TEST_INT(test_sql_int("SELECT count(*) FROM mailboxes"), 6);
	TEST_INT(test_msg_files("tmp."), 0);
	/* Four deliveries, one test copy, nothing else. */
	TEST_INT(test_msg_files("d"), 5);
}

/* A batch: provisional until its end; a failed one stores nothing. */
static void
test_batch(const char *spool_dir)
{
	char *s1 = xasprintf("%s/b1", spool_dir);
	char *s2 = xasprintf("%s/b2", spool_dir);
	struct store *store;
	const char *err = NULL;
	uint64_t n;

	test_write(s1, MSG1);
	test_write(s2, MSG2);
	TEST_INT(store_open(test_data, "bob@example.test", &store, &err), 0);
	TEST_INT(store_batch_begin(store, &err), 0);
	TEST_INT(store_deliver(store, s1, "B1/bob", "INBOX", &err), 1);
	TEST_INT(store_deliver(store, s2, "B2/bob", "INBOX", &err), 1);
	TEST_INT(store_deliver(store, s1, "B1/bob", "INBOX", &err), 0);
	TEST_INT(store_batch_end(store, &err), 0);
	TEST_INT(store_count(store, "INBOX", &n), 0);
	TEST_INT(n, 2);
	/* a failing delivery inside a batch rolls the batch back */
	TEST_INT(store_batch_begin(store, &err), 0);
	TEST_INT(store_deliver(store, s1, "B3/bob", "INBOX", &err), 1);
	TEST_INT(store_deliver(store, s1, "B4/bob", "Nope", &err), -1);
	store->batch_failed = true;	/* as a failed commit step would */
	TEST_INT(store_batch_end(store, &err), -1);
	TEST_INT(store_count(store, "INBOX", &n), 0);
	TEST_INT(n, 2);
	/* and the retry outside a batch works */
	TEST_INT(store_deliver(store, s1, "B3/bob", "INBOX", &err), 1);
	TEST_INT(store_count(store, "INBOX", &n), 0);
	TEST_INT(n, 3);
	store_close(&store);
	free(s1);
	free(s2);
}

/* ---- mailbox access (store_mailbox.c) ---- */

/* Like test_sql_int() on the store of account at data_dir. */
static long long
test_sql_int_of(const char *local, const char *sql)
{
	char *path = xasprintf("%s/mail/example.test/%s/index.db", test_data,
	    local);
	sqlite3_stmt *stmt;
	sqlite3 *db;
	long long v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(stmt) == SQLITE_ROW)
			v = sqlite3_column_int64(stmt, 0);
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
	free(path);
	return v;
}

static char *
test_read_fd(int fd)
{
	char *text = xmalloc(4096);
	ssize_t n = read(fd, text, 4095);

	text[n > 0 ? n : 0] = '\0';
	close(fd);
	return text;
}

/* Listing: a snapshot in UID order with sizes and files that open. */
static void
test_list(struct store *store, const char *spool_dir)
{
	struct store_msg_list list;
	struct store_mailbox_status st;
	const char *err = NULL;
	const char *texts[] = { MSG1, MSG2, MSG3 };
	int fd = -1;

	TEST_INT(store_msg_list(store, "inbox", &list, &err), 1);
	TEST_INT(list.count, 0);
	TEST_INT(store_msg_list(store, "Nope", &list, &err), 0);
	for (size_t i = 0; i < 3; i++) {
		char *sp = xasprintf("%s/l%zu", spool_dir, i);
		char *id = xasprintf("L%zu/carol", i);
		test_write(sp, texts[i]);
		TEST_INT(store_deliver(store, sp, id, "INBOX", &err), 1);
		free(sp);
		free(id);
	}
	TEST_INT(store_msg_list(store, "INBOX", &list, &err), 1);
	TEST_INT(store_mailbox_status(store, "INBOX", &st), 1);
	TEST_INT(list.uidvalidity, st.uidvalidity);
	TEST_INT(list.uidnext, 4);
	TEST_INT(list.highestmodseq, st.highestmodseq);
	TEST_INT(list.count, 3);
	for (size_t i = 0; i < list.count && i < 3; i++) {
		TEST_INT(list.msgs[i].uid, i + 1);
		TEST_INT(list.msgs[i].size, strlen(texts[i]));
		TEST_INT(list.msgs[i].flags, 0);
		TEST_TRUE(list.msgs[i].internaldate > 0);
		TEST_INT(store_msg_open(store, &list.msgs[i], &fd, &err), 1);
		char *got = test_read_fd(fd);
		TEST_STR(got, texts[i]);
		free(got);
	}
	store_msg_list_free(&list);
	TEST_TRUE(list.msgs == NULL && list.count == 0);
}

/* Expunge: one transaction, history for QRESYNC, usage, files. */
static void
test_expunge(struct store *store)
{
	static const uint32_t uids[] = { 1, 3, 3, 99 };
	struct store_msg_list before, after;
	const char *err = NULL;
	uint64_t n = 7, bytes, msgs;
	int fd = -1;

	TEST_INT(store_msg_list(store, "INBOX", &before, &err), 1);
	TEST_INT(before.count, 3);
	TEST_INT(store_expunge(store, "INBOX", uids, 0, &n, &err), 0);
	TEST_INT(n, 0);
	TEST_INT(store_expunge(store, "Nope", uids, 1, &n, &err), -1);
	TEST_INT(store_expunge(store, "INBOX", uids, MF_ARRAY_LEN(uids), &n,
	    &err), 0);
	TEST_INT(n, 2);
	TEST_INT(store_msg_list(store, "INBOX", &after, &err), 1);
	TEST_INT(after.count, 1);
	TEST_INT(after.count > 0 ? after.msgs[0].uid : 0, 2);
	TEST_INT(after.highestmodseq, before.highestmodseq + 1);
	TEST_INT(after.uidnext, before.uidnext);
	TEST_INT(test_sql_int_of("carol", "SELECT count(*) FROM expunged"
	    " WHERE uid IN (1, 3) AND modseq = (SELECT highestmodseq FROM"
	    " mailboxes WHERE name = 'INBOX')"), 2);
	TEST_INT(test_sql_int_of("carol", "SELECT count(*) FROM messages"),
	    1);
	TEST_INT(store_usage(store, &bytes, &msgs), 0);
	TEST_INT(msgs, 1);
	TEST_INT(bytes, strlen(MSG2));
	/* The files went; the snapshot's entries say "gone", not error. */
	TEST_INT(store_msg_open(store, &before.msgs[0], &fd, &err), 0);
	TEST_INT(store_msg_open(store, &before.msgs[2], &fd, &err), 0);
	TEST_INT(store_msg_open(store, &before.msgs[1], &fd, &err), 1);
	close(fd);
	/* Expunging again changes nothing, not even the modseq. */
	TEST_INT(store_expunge(store, "INBOX", uids, 2, &n, &err), 0);
	TEST_INT(n, 0);
	store_msg_list_free(&after);
	TEST_INT(store_msg_list(store, "INBOX", &after, &err), 1);
	TEST_INT(after.highestmodseq, before.highestmodseq + 1);
	store_msg_list_free(&after);
	store_msg_list_free(&before);
}

/* A file another row (a COPY) or another store (a hard link) still uses
 * survives the expunge of one of its names. */
static void
test_expunge_shared(const char *spool_dir)
{
	char *sp = xasprintf("%s/shared", spool_dir);
	struct store *a, *b;
	struct store_msg_list la, lb;
	const char *err = NULL;
	uint32_t uid;
	uint64_t n;
	char *dbp, *path;
	sqlite3 *db;
	int fd = -1;

	test_write(sp, MSG3);
	TEST_INT(store_open(test_data, "dan@example.test", &a, &err), 0);
	TEST_INT(store_open(test_data, "erin@example.test", &b, &err), 0);
	TEST_INT(store_deliver(a, sp, "S1/dan", "INBOX", &err), 1);
	TEST_INT(store_deliver(b, sp, "S1/erin", "INBOX", &err), 1);
	TEST_INT(store_msg_list(a, "INBOX", &la, &err), 1);
	TEST_INT(store_msg_list(b, "INBOX", &lb, &err), 1);
	/* a second row of dan's on the same file, as COPY may make */
	dbp = xasprintf("%s/mail/example.test/dan/index.db", test_data);
	TEST_INT(sqlite3_open(dbp, &db), SQLITE_OK);
	path = xasprintf("INSERT INTO messages (mailbox_id, uid, modseq,"
	    " internaldate, size, file) SELECT id, 1, 2, 0, %zu, '%s' FROM"
	    " mailboxes WHERE name = 'Archive'", strlen(MSG3),
	    la.count ? la.msgs[0].file : "x");
	TEST_INT(sqlite3_exec(db, path, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(path);
	free(dbp);
	uid = 1;
	TEST_INT(store_expunge(a, "INBOX", &uid, 1, &n, &err), 0);
	TEST_INT(n, 1);
	TEST_INT(store_msg_open(a, &la.msgs[0], &fd, &err), 1);
	close(fd);
	/* now the last row of dan's: the name goes, erin's link stays */
	TEST_INT(store_expunge(a, "Archive", &uid, 1, &n, &err), 0);
	TEST_INT(n, 1);
	TEST_INT(store_msg_open(a, &la.msgs[0], &fd, &err), 0);
	TEST_INT(store_msg_open(b, &lb.msgs[0], &fd, &err), 1);
	char *got = test_read_fd(fd);
	TEST_STR(got, MSG3);
	free(got);
	store_msg_list_free(&la);
	store_msg_list_free(&lb);
	store_close(&a);
	store_close(&b);
	free(sp);
}

/* The per-account lock: exclusive, also within one process. */
static void
test_lock(struct store *store)
{
	struct store *other;
	const char *err = NULL;
	int fd1 = -1, fd2 = -1;

	TEST_INT(store_open(test_data, "carol@example.test", &other, &err), 0);
	TEST_INT(store_lock_try(store, "pop3", &fd1, &err), 1);
	TEST_INT(store_lock_try(other, "pop3", &fd2, &err), 0);
	TEST_INT(fd2, -1);
	TEST_INT(store_lock_try(other, "imap", &fd2, &err), 1);
	store_unlock(&fd2);
	TEST_INT(store_lock_try(store, "../x", &fd2, &err), -1);
	TEST_INT(store_lock_try(store, "", &fd2, &err), -1);
	TEST_INT(store_lock_try(store, "POP3", &fd2, &err), -1);
	store_unlock(&fd1);
	TEST_INT(fd1, -1);
	store_unlock(&fd1);	/* -1 is ignored */
	TEST_INT(store_lock_try(other, "pop3", &fd2, &err), 1);
	store_unlock(&fd2);
	store_close(&other);
}

static void
test_mailbox(const char *spool_dir)
{
	struct store *store;
	const char *err = NULL;

	TEST_INT(store_open(test_data, "carol@example.test", &store, &err),
	    0);
	test_list(store, spool_dir);
	test_expunge(store);
	test_lock(store);
	store_close(&store);
	test_expunge_shared(spool_dir);
}

/* ---- mailbox management (store_mailboxes.c) ---- */

static void
test_mailbox_names(void)
{
	static const char *const bad[] = {
		"", "/a", "a/", "a//b", "a\tb", "a\x7f", "Inbox", "inbox/x",
		"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
	};
	char longname[STORE_MAILBOX_NAME_MAX + 2];

	for (size_t i = 0; i < MF_ARRAY_LEN(bad); i++)
		TEST_CHECK(!store_mailbox_name_valid(bad[i]), "accepted \"%s\"",
		    bad[i]);
	TEST_TRUE(store_mailbox_name_valid("INBOX"));
	TEST_TRUE(store_mailbox_name_valid("INBOX/x"));
	TEST_TRUE(store_mailbox_name_valid("Inboxes"));
	TEST_TRUE(store_mailbox_name_valid("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"));
	TEST_TRUE(store_mailbox_name_valid("Entw\xc3\xbcrfe"));
	memset(longname, 'x', sizeof(longname));
	longname[STORE_MAILBOX_NAME_MAX] = '\0';
	TEST_TRUE(store_mailbox_name_valid(longname));
	longname[STORE_MAILBOX_NAME_MAX] = 'x';
	longname[STORE_MAILBOX_NAME_MAX + 1] = '\0';
	TEST_TRUE(!store_mailbox_name_valid(longname));
}

static const struct store_mailbox_info *
test_set_find(const struct store_mailbox_set *set, const char *name)
{
	for (size_t i = 0; i < set->count; i++)
		if (strcmp(set->items[i].name, name) == 0)
			return &set->items[i];
	return NULL;
}

static void
test_mailbox_tree(struct store *store)
{
	struct store_mailbox_set set;
	const struct store_mailbox_info *m;
	enum store_refusal why;
	const char *err = NULL;

	TEST_INT(store_mailbox_create(store, "a/b/c", NULL, &why, &err), 1);
	TEST_INT(store_mailbox_create(store, "a/b", NULL, &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_EXISTS);
	TEST_INT(store_mailbox_create(store, "x", "\\Bogus", &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_USEATTR);
	TEST_INT(store_mailbox_create(store, "f", "\\Flagged", &why, &err), 1);
	TEST_INT(store_mailbox_delete(store, "a/b", &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_HASCHILDREN);
	TEST_INT(store_mailbox_delete(store, "INBOX", &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_INBOX);
	TEST_INT(store_subscribe(store, "a/b/c", true, &why, &err), 1);
	TEST_INT(store_subscribe(store, "gone/x", true, &why, &err), 1);
	TEST_INT(store_subscribe(store, "gone/y", false, &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_NONEXISTENT);
	TEST_INT(store_mailbox_rename(store, "a", "a/z", &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_INFERIOR);
	TEST_INT(store_mailbox_rename(store, "a/b", "n/m", &why, &err), 1);
	TEST_INT(store_mailboxes(store, &set, &err), 0);
	TEST_TRUE(test_set_find(&set, "a/b") == NULL);
	m = test_set_find(&set, "n");
	TEST_TRUE(m != NULL && m->exists && m->children && !m->subscribed);
	m = test_set_find(&set, "n/m/c");
	TEST_TRUE(m != NULL && m->exists && m->subscribed && !m->children);
	m = test_set_find(&set, "gone/x");
	TEST_TRUE(m != NULL && !m->exists && m->subscribed);
	m = test_set_find(&set, "f");
	TEST_TRUE(m != NULL && m->special_use != NULL &&
	    strcmp(m->special_use, "\\Flagged") == 0);
	m = test_set_find(&set, "a");
	TEST_TRUE(m != NULL && m->exists && !m->children);
	for (size_t i = 1; i < set.count; i++)
		TEST_TRUE(strcmp(set.items[i - 1].name, set.items[i].name) < 0);
	store_mailboxes_free(&set);
	TEST_INT(store_mailbox_delete(store, "n/m/c", &why, &err), 1);
	TEST_INT(store_mailbox_delete(store, "n/m/c", &why, &err), 0);
	TEST_INT(why, STORE_REFUSE_NONEXISTENT);
}

/* A message received into a temporary file, as APPEND does. */
static void
test_append_tmp(struct store *store, const char *text,
    struct store_append_msg *m)
{
	int fd = -1;
	const char *err = NULL;

	memset(m, 0, sizeof(*m));
	TEST_INT(store_append_file(store, &fd, m->file, &err), 0);
	TEST_INT(write(fd, text, strlen(text)), strlen(text));
	close(fd);
	m->keywords = "";
	m->internaldate = 1700000000;
}

static void
test_mailbox_append(struct store *store)
{
	struct store_append_msg msgs[2];
	struct store_status st;
	struct store_msg_list list;
	enum store_refusal why;
	const char *err = NULL;
	uint32_t uv = 0, uid = 0;
	uint64_t bytes0, n0, bytes, n;

	TEST_INT(store_usage(store, &bytes0, &n0), 0);
	TEST_INT(store_mailbox_create(store, "ap", NULL, &why, &err), 1);
	test_append_tmp(store, MSG1, &msgs[0]);
	test_append_tmp(store, MSG2, &msgs[1]);
	msgs[0].flags = STORE_FLAG_SEEN;
	msgs[1].flags = STORE_FLAG_DELETED;
	msgs[1].keywords = "$Label1 Work";
	TEST_INT(store_append(store, "ap", msgs, 2, &uv, &uid, &why, &err),
	    1);
	TEST_INT(uid, 1);
	TEST_INT(test_msg_files("tmp."), 0);
	TEST_INT(store_status(store, "ap", &st, &err), 1);
	TEST_INT(st.uidvalidity, uv);
	TEST_INT(st.messages, 2);
	TEST_INT(st.unseen, 1);
	TEST_INT(st.deleted, 1);
	TEST_INT(st.uidnext, 3);
	TEST_INT(st.size, strlen(MSG1) + strlen(MSG2));
	TEST_INT(store_usage(store, &bytes, &n), 0);
	TEST_INT(n, n0 + 2);
	TEST_INT(store_msg_list(store, "ap", &list, &err), 1);
	TEST_INT(list.count, 2);
	TEST_INT(list.count == 2 ? list.msgs[1].internaldate : 0, 1700000000);
	store_msg_list_free(&list);
	/* no such mailbox: refused, the temporary file gone */
	test_append_tmp(store, MSG3, &msgs[0]);
	TEST_INT(store_append(store, "nope", msgs, 1, &uv, &uid, &why, &err),
	    0);
	TEST_INT(why, STORE_REFUSE_NONEXISTENT);
	TEST_INT(test_msg_files("tmp."), 0);
	/* RENAME INBOX: the messages move, INBOX stays with its UIDs */
	test_append_tmp(store, MSG3, &msgs[0]);
	TEST_INT(store_append(store, "INBOX", msgs, 1, &uv, &uid, &why, &err),
	    1);
	TEST_INT(store_status(store, "INBOX", &st, &err), 1);
	n = st.messages;
	TEST_INT(store_mailbox_rename(store, "INBOX", "old/in", &why, &err),
	    1);
	TEST_INT(store_status(store, "INBOX", &st, &err), 1);
	TEST_INT(st.messages, 0);
	TEST_INT(st.uidnext, uid + 1);
	TEST_INT(st.uidvalidity, uv);
	TEST_INT(store_status(store, "old/in", &st, &err), 1);
	TEST_INT(st.messages, n);
	TEST_TRUE(st.uidvalidity != uv);
	/* DELETE takes the messages and their usage */
	TEST_INT(store_mailbox_delete(store, "ap", &why, &err), 1);
	TEST_INT(store_usage(store, &bytes, &n), 0);
	TEST_INT(n, n0 + 1);
	TEST_INT(bytes, bytes0 + strlen(MSG3));
	TEST_INT(test_sql_int("SELECT count(*) FROM expunged e JOIN mailboxes"
	    " b ON b.id = e.mailbox_id WHERE b.name = 'INBOX' AND e.modseq ="
	    " b.highestmodseq"), 4);
}

static void
test_mailboxes(void)
{
	struct store *store;
	const char *err = NULL;

	test_mailbox_names();
	TEST_INT(store_open(test_data, ACCOUNT, &store, &err), 0);
	test_mailbox_tree(store);
	test_mailbox_append(store);
	store_close(&store);
}

/* ---- the IMAP selected state (store_select.c) ---- */

static void
test_select_deliver(struct store *store, const char *spool_dir, size_t n)
{
	const char *err = NULL;

	for (size_t i = 0; i < n; i++) {
		char *sp = xasprintf("%s/sel%zu", spool_dir, i);
		char *id = xasprintf("SEL%zu/dan", i);
		test_write(sp, i % 2 ? MSG2 : MSG1);
		TEST_INT(store_deliver(store, sp, id, "INBOX", &err), 1);
		free(sp);
		free(id);
	}
}

static uint32_t test_sel_uids[3];	/* INBOX of dan, ascending */

static void
test_select_flags(struct store *store)
{
	struct store_flags_req req = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_FLAG_SEEN, .keywords = "$b $A" };
	struct store_flags_res res[3];
	struct store_changes ch;
	uint32_t uids[3] = { 0, 0, 99 };
	const char *err = NULL;
	uint64_t before;

	TEST_INT(store_changes_get(store, "INBOX", 0, true, &ch, &err), 1);
	TEST_INT(ch.count, 3);
	if (ch.count < 3)
		return;
	uids[0] = ch.msgs[0].uid;	/* the UIDs delivery gave */
	uids[1] = ch.msgs[1].uid;
	test_sel_uids[0] = uids[0];
	test_sel_uids[1] = uids[1];
	test_sel_uids[2] = ch.msgs[2].uid;
	before = ch.highestmodseq;
	store_changes_free(&ch);
	TEST_INT(store_flags_change(store, "INBOX", &req, uids, 3, res, &err),
	    1);
	TEST_INT(res[0].status, STORE_FLAGS_CHANGED);
	TEST_INT(res[2].status, STORE_FLAGS_GONE);
	TEST_STR(res[0].keywords, "$A $b");	/* sorted */
	TEST_INT(res[0].modseq, before + 1);
	TEST_INT(res[1].modseq, before + 1);	/* one MODSEQ per STORE */
	store_flags_res_clear(res, 3);
	/* the same again changes nothing and takes no MODSEQ */
	TEST_INT(store_flags_change(store, "INBOX", &req, uids, 2, res, &err),
	    1);
	TEST_INT(res[0].status, STORE_FLAGS_SAME);
	store_flags_res_clear(res, 2);
	/* keywords compare case-insensitively; UNCHANGEDSINCE */
	req = (struct store_flags_req){ .op = STORE_FLAGS_REMOVE,
	    .keywords = "$a", .conditional = true,
	    .unchangedsince = before };
	TEST_INT(store_flags_change(store, "INBOX", &req, uids, 1, res, &err),
	    1);
	TEST_INT(res[0].status, STORE_FLAGS_MODIFIED);
	store_flags_res_clear(res, 1);
	req.unchangedsince = before + 1;
	TEST_INT(store_flags_change(store, "INBOX", &req, uids, 1, res, &err),
	    1);
	TEST_INT(res[0].status, STORE_FLAGS_CHANGED);
	TEST_STR(res[0].keywords, "$b");
	store_flags_res_clear(res, 1);
	/* since: only what changed after it */
	TEST_INT(store_changes_get(store, "INBOX", before + 1, true, &ch,
	    &err), 1);
	TEST_INT(ch.count, 1);
	TEST_INT(ch.count > 0 ? ch.msgs[0].uid : 0, uids[0]);
	TEST_INT(ch.highestmodseq, before + 2);
	store_changes_free(&ch);
	TEST_INT(store_changes_get(store, "Nope", 0, true, &ch, &err), 0);
}

static void
test_select_rows(struct store *store)
{
	struct store_row row, *rows = NULL;
	const char *err = NULL;
	char *text;
	size_t n = 0;
	int fd = -1;

	TEST_INT(store_row_get(store, "INBOX", test_sel_uids[1], &row, &err),
	    1);
	TEST_INT(row.uid, test_sel_uids[1]);
	TEST_INT(row.size, strlen(MSG2));
	/* filled at delivery (schema 3) */
	TEST_TRUE(row.envelope != NULL && row.bodystructure != NULL);
	TEST_TRUE(row.mime_tree != NULL && row.mime_tree_len > 0);
	TEST_INT(store_row_open(store, &row, &fd, &err), 1);
	text = test_read_fd(fd);
	TEST_STR(text, MSG2);
	free(text);
	store_row_clear(&row);
	TEST_INT(store_cache_set(store, "INBOX", test_sel_uids[1], "(env)",
	    "(bs)", NULL, 0, &err), 0);
	TEST_INT(store_row_get(store, "INBOX", test_sel_uids[1], &row, &err),
	    1);
	TEST_STR(row.envelope, "(env)");
	TEST_STR(row.bodystructure, "(bs)");
	store_row_clear(&row);
	TEST_INT(store_row_get(store, "INBOX", 77, &row, &err), 0);
	TEST_INT(store_rows_list(store, "INBOX", &rows, &n, &err), 1);
	TEST_INT(n, 3);
	if (n == 3)
		TEST_STR(rows[0].keywords, "$b");
	store_rows_free(&rows, n);
}

static void
test_select_copy(struct store *store)
{
	struct store_flags_req req = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_FLAG_DELETED, .keywords = "" };
	struct store_flags_res res[1];
	const uint32_t uids[] = { test_sel_uids[0], test_sel_uids[2],
	    test_sel_uids[2] + 50 }, del[] = { test_sel_uids[2] };
	uint32_t *src = NULL, *dst = NULL, *d = NULL, v = 0;
	struct store_changes ch;
	const char *err = NULL;
	uint64_t gone = 0, msgs = 0, bytes = 0, msgs2 = 0, bytes2 = 0;
	struct store_row row;
	char *text;
	size_t n = 0;
	int fd = -1;

	TEST_INT(store_usage(store, &bytes, &msgs), 0);
	TEST_INT(store_copy(store, "INBOX", "Trash", uids, 3, &v, &src, &dst,
	    &n, &err), 1);
	TEST_INT(n, 2);
	TEST_INT(src[0], uids[0]);
	TEST_INT(src[1], uids[1]);
	TEST_INT(dst[1], dst[0] + 1);
	TEST_TRUE(v > 0);
	free(src);
	free(dst);
	TEST_INT(store_usage(store, &bytes2, &msgs2), 0);
	TEST_INT(msgs2, msgs + 2);
	TEST_INT(bytes2, bytes + strlen(MSG1) * 2);
	TEST_INT(store_copy(store, "INBOX", "Nope", uids, 1, &v, &src, &dst,
	    &n, &err), 0);
	TEST_INT(store_changes_get(store, "Trash", 0, false, &ch, &err), 1);
	TEST_INT(ch.count, 2);
	if (ch.count == 2)	/* flags travel along */
		TEST_STR(ch.msgs[0].keywords, "$b");
	store_changes_free(&ch);
	/* the copies share the file: expunging the original keeps it */
	TEST_INT(store_flags_change(store, "INBOX", &req, del, 1, res, &err),
	    1);
	store_flags_res_clear(res, 1);
	TEST_INT(store_deleted_uids(store, "INBOX", &d, &n, &err), 1);
	TEST_INT(n, 1);
	TEST_INT(n > 0 ? d[0] : 0, del[0]);
	TEST_INT(store_expunge(store, "INBOX", d, n, &gone, &err), 0);
	free(d);
	TEST_INT(store_changes_get(store, "Trash", 0, false, &ch, &err), 1);
	TEST_INT(store_row_get(store, "Trash", ch.count == 2 ?
	    ch.msgs[1].uid : 0, &row, &err), 1);
	store_changes_free(&ch);
	TEST_INT(store_row_open(store, &row, &fd, &err), 1);
	text = test_read_fd(fd);
	TEST_STR(text, MSG1);
	free(text);
	store_row_clear(&row);
	/* the expunge shows as vanished since the old MODSEQ */
	TEST_INT(store_changes_get(store, "INBOX", 1, true, &ch, &err), 1);
	TEST_TRUE(ch.nvanished >= 1);
	TEST_INT(ch.nvanished > 0 ? ch.vanished[ch.nvanished - 1] : 0,
	    del[0]);
	store_changes_free(&ch);
}

static void
test_select(const char *spool_dir)
{
	struct store *store;
	const char *err = NULL;

	TEST_INT(store_open(test_data, "dan@example.test", &store, &err), 0);
	test_select_deliver(store, spool_dir, 3);
	test_select_flags(store);
	test_select_rows(store);
	test_select_copy(store);
	store_close(&store);
}

/* ---- schema 3: the FETCH cache filled at delivery ---- */

/* A store of schema version 2 as the code before mime_tree wrote it,
 * with one message row (no cache) whose file is MSG1. */
#define TEST_V2_SQL \
	"PRAGMA journal_mode = WAL;" \
	"CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT;" \
	"CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, name TEXT NOT NULL" \
	" UNIQUE CHECK (name <> ''), uidvalidity INTEGER NOT NULL," \
	" uidnext INTEGER NOT NULL DEFAULT 1, highestmodseq INTEGER NOT NULL" \
	" DEFAULT 1, special_use TEXT) STRICT;" \
	"CREATE TABLE messages (mailbox_id INTEGER NOT NULL REFERENCES" \
	" mailboxes (id), uid INTEGER NOT NULL, modseq INTEGER NOT NULL," \
	" flags INTEGER NOT NULL DEFAULT 0, keywords TEXT NOT NULL DEFAULT" \
	" '', internaldate INTEGER NOT NULL, size INTEGER NOT NULL, file TEXT" \
	" NOT NULL, delivery_id TEXT UNIQUE, envelope TEXT, bodystructure" \
	" TEXT, PRIMARY KEY (mailbox_id, uid)) STRICT;" \
	"CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);" \
	"CREATE INDEX messages_file ON messages (file);" \
	"CREATE TABLE expunged (mailbox_id INTEGER NOT NULL REFERENCES" \
	" mailboxes (id) ON DELETE CASCADE, uid INTEGER NOT NULL, modseq" \
	" INTEGER NOT NULL, PRIMARY KEY (mailbox_id, uid)) STRICT," \
	" WITHOUT ROWID;" \
	"CREATE TABLE subscriptions (name TEXT PRIMARY KEY NOT NULL CHECK" \
	" (name <> '')) STRICT, WITHOUT ROWID;" \
	"INSERT INTO meta VALUES ('uidvalidity_last', 100)," \
	" ('usage_bytes', 0), ('usage_messages', 1), ('created', 0);" \
	"INSERT INTO mailboxes (name, uidvalidity, uidnext, highestmodseq)" \
	" VALUES ('INBOX', 100, 2, 2);" \
	"INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size," \
	" file) VALUES (1, 1, 2, 0, 37, 'dold');" \
	"PRAGMA user_version = 2;"

static void
test_v2_make(void)
{
	char *dir = xasprintf("%s/mail/example.test/gina", test_data);
	char *path = xasprintf("%s/msg", dir);
	sqlite3 *db = NULL;

	TEST_INT(mkdir(dir, 0700), 0);
	TEST_INT(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/msg/dold", dir);
	test_write(path, MSG1);
	free(path);
	path = xasprintf("%s/index.db", dir);
	TEST_INT(sqlite3_open(path, &db), SQLITE_OK);
	TEST_INT(sqlite3_exec(db, TEST_V2_SQL, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	free(path);
	free(dir);
}

/* The cached tree of a row gives the same ranges as a parse of text. */
static void
test_tree_same(const struct store_row *row, const char *text)
{
	static const char *const specs[] = { "", "HEADER", "TEXT", "1" };
	struct mime_parser *p = mime_parser_new();
	struct mime_message *parsed, *cached = NULL;
	uint64_t s1, l1, s2, l2;
	const char *err = NULL;

	mime_parser_feed(p, text, strlen(text));
	parsed = mime_parser_finish(&p);
	TEST_INT(mime_tree_deserialize(row->mime_tree, row->mime_tree_len,
	    &cached, &err), 1);
	for (size_t i = 0; cached != NULL && i < MF_ARRAY_LEN(specs); i++) {
		s1 = l1 = s2 = l2 = 0;
		TEST_INT(mime_section_range(parsed, specs[i], &s1, &l1, NULL),
		    mime_section_range(cached, specs[i], &s2, &l2, NULL));
		TEST_INT(s1, s2);
		TEST_INT(l1, l2);
	}
	mime_message_free(&parsed);
	mime_message_free(&cached);
}

/* Migration 2 -> 3 keeps the old row (cache NULL, computed lazily);
 * delivery and APPEND fill envelope, bodystructure and tree. */
static void
test_schema_v3(const char *spool_dir)
{
	char *s1 = xasprintf("%s/v3", spool_dir);
	struct store_append_msg am;
	struct store_row row;
	struct store *store = NULL;
	enum store_refusal why;
	const char *err = NULL;
	uint32_t uv = 0, uid = 0;

	test_v2_make();
	TEST_INT(store_open(test_data, "gina@example.test", &store, &err), 0);
	if (store == NULL)
		return;
	TEST_INT(test_sql_int_of("gina", "PRAGMA user_version"), 3);
	TEST_INT(test_sql_int_of("gina", "SELECT count(*) FROM messages"
	    " WHERE mime_tree IS NULL AND envelope IS NULL"), 1);
	TEST_INT(store_row_get(store, "INBOX", 1, &row, &err), 1);
	TEST_TRUE(row.mime_tree == NULL && row.envelope == NULL);
	store_row_clear(&row);
	TEST_INT(store_cache_set(store, "INBOX", 1, "(e)", "(b)", "\x01", 1,
	    &err), 0);
	TEST_INT(test_sql_int_of("gina", "SELECT length(mime_tree)"
	    " FROM messages WHERE uid = 1"), 1);

	test_write(s1, MSG2);
	TEST_INT(store_deliver(store, s1, "V3/gina", "INBOX", &err), 1);
	TEST_INT(store_row_get(store, "INBOX", 2, &row, &err), 1);
	TEST_TRUE(row.envelope != NULL && strstr(row.envelope, "\"two\"") !=
	    NULL);
	TEST_TRUE(row.bodystructure != NULL &&
	    strncmp(row.bodystructure, "(\"TEXT\" \"PLAIN\"", 15) == 0);
	TEST_TRUE(row.mime_tree != NULL);
	if (row.mime_tree != NULL)
		test_tree_same(&row, MSG2);
	store_row_clear(&row);

	test_append_tmp(store, MSG3, &am);
	TEST_INT(store_append(store, "INBOX", &am, 1, &uv, &uid, &why, &err),
	    1);
	TEST_INT(store_row_get(store, "INBOX", uid, &row, &err), 1);
	TEST_TRUE(row.envelope != NULL && strstr(row.envelope, "\"three\"") !=
	    NULL);
	TEST_TRUE(row.bodystructure != NULL && row.mime_tree != NULL);
	if (row.mime_tree != NULL)
		test_tree_same(&row, MSG3);
	store_row_clear(&row);
	store_close(&store);
	free(s1);
}

/* ---- MOVE and the temporary file sweep ---- */

static uint64_t
test_modseq(struct store *store, const char *mailbox)
{
	struct store_mailbox_status st = { 0 };

	TEST_INT(store_mailbox_status(store, mailbox, &st), 1);
	return st.highestmodseq;
}

/* A move that fails half-way (no UIDs left in to) leaves everything. */
static void
test_move_rollback(struct store *store, uint32_t uid)
{
	uint32_t *src = NULL, *dst = NULL, v = 0;
	const char *err = NULL;
	uint64_t count = 0;
	size_t n = 0;

	TEST_INT(sqlite3_exec(store->db, "UPDATE mailboxes SET uidnext ="
	    " 4294967296 WHERE name = 'Junk'", NULL, NULL, NULL), SQLITE_OK);
	TEST_INT(store_move(store, "INBOX", "Junk", &uid, 1, &v, &src, &dst,
	    &n, &err), -1);
	TEST_TRUE(src == NULL && n == 0);
	TEST_INT(store_count(store, "INBOX", &count), 0);
	TEST_INT(count, 1);
	TEST_INT(store_count(store, "Junk", &count), 0);
	TEST_INT(count, 0);
}

static void
test_move_check(struct store *store, uint64_t inbox_before,
    const uint32_t *moved)
{
	struct store_changes ch;
	const char *err = NULL;
	uint64_t count = 0;
	struct store_row row;
	char *text;
	int fd = -1;

	/* one new MODSEQ for the sources, VANISHED since before */
	TEST_INT(store_changes_get(store, "INBOX", inbox_before, true, &ch,
	    &err), 1);
	TEST_INT(ch.highestmodseq, inbox_before + 1);
	TEST_INT(ch.nvanished, 2);
	if (ch.nvanished == 2) {
		TEST_INT(ch.vanished[0], moved[0]);
		TEST_INT(ch.vanished[1], moved[1]);
	}
	store_changes_free(&ch);
	TEST_INT(store_count(store, "INBOX", &count), 0);
	TEST_INT(count, 1);
	/* the copy still reads its file: nothing was unlinked */
	TEST_INT(store_changes_get(store, "Archive", 0, false, &ch, &err), 1);
	TEST_INT(ch.count, 2);
	TEST_INT(store_row_get(store, "Archive", ch.count > 0 ?
	    ch.msgs[0].uid : 0, &row, &err), 1);
	store_changes_free(&ch);
	TEST_INT(store_row_open(store, &row, &fd, &err), 1);
	text = test_read_fd(fd);
	TEST_STR(text, MSG1);
	free(text);
	store_row_clear(&row);
}

static void
test_move(struct store *store)
{
	uint32_t uids[3] = { 0, 0, 4000 }, *src = NULL, *dst = NULL, v = 0;
	uint64_t msgs = 0, bytes = 0, msgs2 = 0, bytes2 = 0, before, abefore;
	struct store_changes ch;
	const char *err = NULL;
	size_t n = 0;

	TEST_INT(store_changes_get(store, "INBOX", 0, false, &ch, &err), 1);
	TEST_INT(ch.count, 3);
	uids[0] = ch.count == 3 ? ch.msgs[0].uid : 0;
	uids[1] = ch.count == 3 ? ch.msgs[2].uid : 0;
	store_changes_free(&ch);
	TEST_INT(store_usage(store, &bytes, &msgs), 0);
	before = test_modseq(store, "INBOX");
	abefore = test_modseq(store, "Archive");
	TEST_INT(store_move(store, "INBOX", "Archive", uids, 3, &v, &src,
	    &dst, &n, &err), 1);
	TEST_INT(n, 2);
	TEST_TRUE(v > 0);
	if (n == 2) {
		TEST_INT(src[0], uids[0]);
		TEST_INT(src[1], uids[1]);
		TEST_INT(dst[1], dst[0] + 1);
	}
	free(src);
	free(dst);
	TEST_INT(test_modseq(store, "Archive"), abefore + 1);
	TEST_INT(store_usage(store, &bytes2, &msgs2), 0);
	TEST_INT(msgs2, msgs);		/* a move adds nothing */
	TEST_INT(bytes2, bytes);
	test_move_check(store, before, uids);
	TEST_INT(store_move(store, "INBOX", "Nope", uids, 1, &v, &src, &dst,
	    &n, &err), 0);
	TEST_INT(store_changes_get(store, "INBOX", 0, false, &ch, &err), 1);
	uids[0] = ch.count == 1 ? ch.msgs[0].uid : 0;
	store_changes_free(&ch);
	/* within one mailbox: a new UID, the old one vanishes */
	TEST_INT(store_move(store, "INBOX", "INBOX", uids, 1, &v, &src, &dst,
	    &n, &err), 1);
	TEST_INT(n, 1);
	TEST_TRUE(n == 1 && dst[0] > uids[0]);
	uids[1] = n == 1 ? dst[0] : 0;
	free(src);
	free(dst);
	test_move_rollback(store, uids[1]);
}

/* An APPEND temporary file under msg/, back-dated by age seconds. */
static void
test_sweep_file(struct store *store, const char *name, time_t age)
{
	struct timespec ts[2] = { { .tv_sec = time(NULL) - age },
	    { .tv_sec = time(NULL) - age } };
	int fd = openat(store->msg_fd, name, O_WRONLY | O_CREAT, 0600);

	TEST_TRUE(fd >= 0);
	if (fd >= 0) {
		TEST_INT(futimens(fd, ts), 0);
		close(fd);
	}
}

static bool
test_sweep_has(struct store *store, const char *name)
{
	struct stat st;

	return fstatat(store->msg_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void
test_sweep(struct store *store)
{
	const char *err = NULL;
	uint64_t removed = 9;
	char *stamp;

	test_sweep_file(store, "tmp.aold", 2 * 60 * 60);
	test_sweep_file(store, "tmp.anew", 0);
	test_sweep_file(store, "xold", 2 * 60 * 60);	/* not ours */
	TEST_INT(store_sweep_tmp(store, &removed, &err), 1);
	TEST_INT(removed, 1);
	TEST_TRUE(!test_sweep_has(store, "tmp.aold"));
	TEST_TRUE(test_sweep_has(store, "tmp.anew"));
	TEST_TRUE(test_sweep_has(store, "xold"));
	/* not again within the interval, whatever is there */
	test_sweep_file(store, "tmp.aold", 2 * 60 * 60);
	TEST_INT(store_sweep_tmp(store, &removed, &err), 0);
	TEST_INT(removed, 0);
	TEST_TRUE(test_sweep_has(store, "tmp.aold"));
	stamp = xasprintf("%s/sweep.stamp", store->dir);
	TEST_INT(unlink(stamp), 0);
	free(stamp);
	TEST_INT(store_sweep_tmp(store, &removed, &err), 1);
	TEST_INT(removed, 1);
}

static void
test_move_sweep(const char *spool_dir)
{
	struct store *store = NULL;
	const char *err = NULL;

	TEST_INT(store_open(test_data, "mover@example.test", &store, &err),
	    0);
	if (store == NULL)
		return;
	test_select_deliver(store, spool_dir, 3);
	test_move(store);
	test_sweep(store);
	store_close(&store);
}

int
main(void)
{
	char *spool_dir;

	if (mkdtemp(test_root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_data = xasprintf("%s/var/data", test_root);
	test_account_dir = xasprintf("%s/mail/example.test/alice",
	    test_data);
	spool_dir = xasprintf("%s/spool", test_root);
	if (mkdir(spool_dir, 0700) < 0) {
		perror("mkdir");
		return 1;
	}
	test_accounts();
	test_open_new();
	test_deliver(spool_dir);
	test_crash_retry(spool_dir);
	test_copy();
	test_reopen();
	test_batch(spool_dir);
	test_mailbox(spool_dir);
	test_mailboxes();
	test_select(spool_dir);
	test_move_sweep(spool_dir);
	test_schema_v3(spool_dir);
	nftw(test_root, test_rm, 16, FTW_DEPTH | FTW_PHYS);
	free(spool_dir);
	free(test_account_dir);
	free(test_data);
	return test_done("store");
}
