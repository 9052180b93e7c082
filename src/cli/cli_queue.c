/*
 * cli_queue.c - `mailfort queue`: list what waits, deliver what is due,
 * delete a message.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "queue/queue.h"

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
		static const char *const status[] = { "pending", "done",
		    "failed" };
		int s = sqlite3_column_int(st, 6);
		printf("%s from=<%s> size=%lld to=<%s> %s %s attempts=%d%s%s\n",
		    sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
		    (long long)sqlite3_column_int64(st, 2),
		    sqlite3_column_text(st, 4),
		    sqlite3_column_int(st, 5) ? "local" : "remote",
		    s >= 0 && s <= 2 ? status[s] : "?",
		    sqlite3_column_int(st, 7),
		    *sqlite3_column_text(st, 8) ? " error=" : "",
		    sqlite3_column_text(st, 8));
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

	if (strlen(id) != QUEUE_ID_LEN || strspn(id, "0123456789ABCDEF") !=
	    QUEUE_ID_LEN) {
		fprintf(stderr, "not a queue id: %s\n", id);
		return 2;
	}
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

int
cli_queue(const struct config *cfg, int argc, char **argv)
{
	int n;

	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return cli_queue_list(cfg);
	if (argc >= 2 && strcmp(argv[1], "flush") == 0) {
		n = queue_deliver_pending(cfg);
		if (n < 0)
			return 1;
		printf("%d recipient%s handled\n", n, n == 1 ? "" : "s");
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "delete") == 0)
		return cli_queue_delete(cfg, argv[2]);
	fprintf(stderr, "usage: mailfort queue list | flush | delete ID\n");
	return 2;
}
