/*
 * cli_queue.c - `mailfort queue`: list what waits, show one message,
 * make everything due now, delete a message, or have it bounced.
 *
 * The commands change the queue database only; the running queue runner
 * acts on it within a second (next_try 0 is due, status 3 becomes a DSN).
 * Text that came from outside (addresses, remote replies, headers) is
 * printed with control characters escaped, so it cannot drive the
 * operator's terminal.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "queue/queue.h"

#define CLI_QUEUE_HEADER_MAX (64 * 1024)	/* of a message shown */

static const char *const cli_queue_status[] = { "pending", "done",
    "failed", "to-bounce" };

static const char *
cli_queue_status_name(int s)
{
	return s >= 0 && s < (int)MF_ARRAY_LEN(cli_queue_status) ?
	    cli_queue_status[s] : "?";
}

/* Prints len bytes of s, control bytes (but TAB) and DEL as \xHH. */
static void
cli_queue_put(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			printf("\\x%02X", c);
		else
			putchar(c);
	}
}

static void
cli_queue_puts(const unsigned char *s)
{
	if (s != NULL)
		cli_queue_put((const char *)s, strlen((const char *)s));
}

/* A queue time as an RFC 5322 date; 0 is "now" for next_try. */
static void
cli_queue_date(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		str_lcpy(out, t == 0 ? "now" : "?", size);
}

/* Queue ids are QUEUE_ID_LEN upper-case hex digits (spool file names). */
static bool
cli_queue_id_ok(const char *id)
{
	if (strlen(id) == QUEUE_ID_LEN &&
	    strspn(id, "0123456789ABCDEF") == QUEUE_ID_LEN)
		return true;
	fprintf(stderr, "not a queue id: ");
	for (const char *p = id; *p != '\0' && p - id < 64; p++)
		fputc((unsigned char)*p >= 0x20 && *p != 0x7f ? *p : '?',
		    stderr);
	fputc('\n', stderr);
	return false;
}

static int
cli_queue_open(const struct config *cfg, sqlite3 **db)
{
	char *path = xasprintf("%s/queue/queue.db", cfg->data_dir);
	int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL);

	if (rc != SQLITE_OK) {
		fprintf(stderr, "cannot open %s\n", path);
		sqlite3_close(*db);
		free(path);
		return -1;
	}
	free(path);
	sqlite3_busy_timeout(*db, 10000);
	return 0;
}

static int
cli_queue_list(const struct config *cfg)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int count = 0;

	if (cli_queue_open(cfg, &db) < 0)
		return 1;
	if (sqlite3_prepare_v2(db, "SELECT m.id, m.sender, m.size, "
	    "m.created, r.addr, r.local, r.status, r.attempts, "
	    "coalesce(r.last_error, '') FROM message m JOIN recipient r ON "
	    "r.msg_id = m.id ORDER BY m.id", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "queue: %s\n", sqlite3_errmsg(db));
		sqlite3_close(db);
		return 1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		printf("%s from=<", sqlite3_column_text(st, 0));
		cli_queue_puts(sqlite3_column_text(st, 1));
		printf("> size=%lld to=<",
		    (long long)sqlite3_column_int64(st, 2));
		cli_queue_puts(sqlite3_column_text(st, 4));
		printf("> %s %s attempts=%d",
		    sqlite3_column_int(st, 5) ? "local" : "remote",
		    cli_queue_status_name(sqlite3_column_int(st, 6)),
		    sqlite3_column_int(st, 7));
		if (*sqlite3_column_text(st, 8) != '\0') {
			printf(" error=");
			cli_queue_puts(sqlite3_column_text(st, 8));
		}
		putchar('\n');
		count++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	printf("%d recipient%s queued\n", count, count == 1 ? "" : "s");
	return 0;
}

static int
cli_queue_delete(const struct config *cfg, const char *id)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *path;
	int changed;

	if (!cli_queue_id_ok(id))
		return 2;
	if (cli_queue_open(cfg, &db) < 0)
		return 1;
	sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(db, "DELETE FROM message WHERE id = ?", -1,
	    &st, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return 1;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
	changed = sqlite3_changes(db);
	sqlite3_close(db);
	path = xasprintf("%s/spool/msg/%s", cfg->data_dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		fprintf(stderr, "cannot remove %s\n", path);
	free(path);
	if (changed == 0) {
		fprintf(stderr, "no such message: %s\n", id);
		return 1;
	}
	printf("deleted %s\n", id);
	return 0;
}

/* The envelope of message id; 1 when there is no such message. */
static int
cli_queue_show_envelope(sqlite3 *db, const char *id)
{
	static const char *const body[] = { "7bit", "8bitmime",
	    "binarymime" };
	sqlite3_stmt *st;
	char date[64];
	int rc = 1, b;

	if (sqlite3_prepare_v2(db, "SELECT sender, size, created, body, "
	    "smtputf8, auth FROM message WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "queue: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		cli_queue_date(sqlite3_column_int64(st, 2), date,
		    sizeof(date));
		b = sqlite3_column_int(st, 3);
		printf("id: %s\nsender: <", id);
		cli_queue_puts(sqlite3_column_text(st, 0));
		printf(">\nsize: %lld\ncreated: %s\nbody: %s\nsmtputf8: %s\n"
		    "auth: ", (long long)sqlite3_column_int64(st, 1), date,
		    b >= 0 && b <= 2 ? body[b] : "?",
		    sqlite3_column_int(st, 4) ? "yes" : "no");
		if (sqlite3_column_type(st, 5) == SQLITE_NULL)
			printf("-");
		else
			cli_queue_puts(sqlite3_column_text(st, 5));
		putchar('\n');
		rc = 0;
	} else {
		fprintf(stderr, "no such message: %s\n", id);
	}
	sqlite3_finalize(st);
	return rc;
}

static void
cli_queue_show_rcpts(sqlite3 *db, const char *id)
{
	sqlite3_stmt *st;
	char date[64];

	if (sqlite3_prepare_v2(db, "SELECT addr, local, status, attempts, "
	    "next_try, last_error FROM recipient WHERE msg_id = ? ORDER BY "
	    "addr", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "queue: %s\n", sqlite3_errmsg(db));
		return;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cli_queue_date(sqlite3_column_int64(st, 4), date,
		    sizeof(date));
		printf("recipient: <");
		cli_queue_puts(sqlite3_column_text(st, 0));
		printf("> %s %s attempts=%d next_try=%s",
		    sqlite3_column_int(st, 1) ? "local" : "remote",
		    cli_queue_status_name(sqlite3_column_int(st, 2)),
		    sqlite3_column_int(st, 3), date);
		if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
			printf(" error=");
			cli_queue_puts(sqlite3_column_text(st, 5));
		}
		putchar('\n');
	}
	sqlite3_finalize(st);
}

/* The header section of the spool file, up to the empty line, at most
 * CLI_QUEUE_HEADER_MAX bytes. */
static void
cli_queue_show_header(const struct config *cfg, const char *id)
{
	char *path = xasprintf("%s/spool/msg/%s", cfg->data_dir, id);
	char *data = xmalloc(CLI_QUEUE_HEADER_MAX);
	FILE *f = fopen(path, "rb");
	size_t len, pos = 0;

	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		goto out;
	}
	len = fread(data, 1, CLI_QUEUE_HEADER_MAX, f);
	fclose(f);
	putchar('\n');
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		size_t ll = end - pos;
		if (ll > 0 && data[end - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		cli_queue_put(data + pos, ll);
		putchar('\n');
		pos = end + 1;
	}
	if (len == CLI_QUEUE_HEADER_MAX && pos >= len)
		printf("[header cut at %d bytes]\n", CLI_QUEUE_HEADER_MAX);
out:
	free(data);
	free(path);
}

static int
cli_queue_show(const struct config *cfg, const char *id)
{
	sqlite3 *db;
	int rc;

	if (!cli_queue_id_ok(id))
		return 2;
	if (cli_queue_open(cfg, &db) < 0)
		return 1;
	rc = cli_queue_show_envelope(db, id);
	if (rc == 0)
		cli_queue_show_rcpts(db, id);
	sqlite3_close(db);
	if (rc == 0)
		cli_queue_show_header(cfg, id);
	return rc;
}

/* Runs one UPDATE with an optional id; the number of rows changed, or
 * -1. */
static int
cli_queue_update(sqlite3 *db, const char *sql, const char *id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "queue: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	if (id != NULL)
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "queue: %s\n", sqlite3_errmsg(db));
		return -1;
	}
	return sqlite3_changes(db);
}

/* Everything pending is due now: the running queue runner takes it
 * within a second; local recipients are delivered here too. */
static int
cli_queue_flush(const struct config *cfg)
{
	sqlite3 *db;
	int n;

	if (cli_queue_open(cfg, &db) < 0)
		return 1;
	n = cli_queue_update(db, "UPDATE recipient SET next_try = 0 "
	    "WHERE status = 0", NULL);
	sqlite3_close(db);
	if (n < 0)
		return 1;
	printf("%d pending recipient%s due now\n", n, n == 1 ? "" : "s");
	n = queue_deliver_pending(cfg);
	if (n < 0)
		return 1;
	printf("%d recipient%s handled\n", n, n == 1 ? "" : "s");
	return 0;
}

/* 1 when message id is queued, 0 when not, -1 on error. */
static int
cli_queue_exists(sqlite3 *db, const char *id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM message WHERE id = ?", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Marks the pending recipients of id "to bounce" (status 3); the queue
 * runner returns them to the sender with a DSN. */
static int
cli_queue_bounce(const struct config *cfg, const char *id)
{
	sqlite3 *db;
	int n;

	if (!cli_queue_id_ok(id))
		return 2;
	if (cli_queue_open(cfg, &db) < 0)
		return 1;
	/* local = 0: the outbound thread writes every bounce, also for
	 * local recipients; no last_error: its reason is "bounced by the
	 * administrator" */
	n = cli_queue_update(db, "UPDATE recipient SET status = 3, "
	    "local = 0, last_error = NULL, next_try = 0 WHERE msg_id = ? AND "
	    "status = 0", id);
	if (n == 0 && cli_queue_exists(db, id) == 0)
		fprintf(stderr, "no such message: %s\n", id);
	else if (n == 0)
		fprintf(stderr, "%s: no pending recipients to bounce\n", id);
	sqlite3_close(db);
	if (n <= 0)
		return 1;
	printf("%s: %d recipient%s to bounce\n", id, n, n == 1 ? "" : "s");
	return 0;
}

int
cli_queue(const struct config *cfg, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return cli_queue_list(cfg);
	if (argc == 2 && strcmp(argv[1], "flush") == 0)
		return cli_queue_flush(cfg);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return cli_queue_show(cfg, argv[2]);
	if (argc == 3 && strcmp(argv[1], "delete") == 0)
		return cli_queue_delete(cfg, argv[2]);
	if (argc == 3 && strcmp(argv[1], "bounce") == 0)
		return cli_queue_bounce(cfg, argv[2]);
	fprintf(stderr, "usage: mailfort queue list | show ID | flush | "
	    "delete ID | bounce ID\n");
	return 2;
}
