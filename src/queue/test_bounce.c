/*
 * test_bounce.c - DSNs written by bounce_queue() into a real spool and
 * queue database, then taken apart: the file, the queue rows, the MIME
 * structure, the RFC 3464 fields, CRLF and line lengths, hostile input.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/test.h"
#include "queue/queue_private.h"

#define ORIG_ID "0000000000A000000001"

static char test_dir[] = "/tmp/mf-test-bounce-XXXXXX";
static struct config test_cfg;

static char *
test_read(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	buf_addc(&b, '\0');	/* data may hold NULs: keep the length */
	*len_r = b.len - 1;
	return b.data;
}

static void
test_write_orig(const char *id, const char *data, size_t len)
{
	char *path = xasprintf("%s/spool/msg/%s", test_dir, id);
	FILE *f = fopen(path, "wb");

	TEST_TRUE(f != NULL);
	if (f != NULL) {
		TEST_INT(fwrite(data, 1, len, f), len);
		fclose(f);
	}
	free(path);
}

static int
test_spool_count(void)
{
	char *dir = xasprintf("%s/spool/msg", test_dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	if (d != NULL)
		closedir(d);
	free(dir);
	return n;
}

/* Every line ends in CRLF and has at most 998 octets before it. */
static void
test_lines(const char *s, size_t len)
{
	size_t start = 0, longest = 0;
	int bare = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				bare++;
			if (i - start - 1 > longest)
				longest = i - start - 1;
			start = i + 1;
		} else if (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n'))
			bare++;
	}
	TEST_INT(bare, 0);
	TEST_TRUE(longest <= 998);
	TEST_INT(start, len);	/* the last line is complete too */
}

static int
test_count(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* The text with folding (CRLF before white space) undone. */
static char *
test_unfold(const char *s)
{
	char *out = xstrdup(s), *o = out;

	for (const char *p = s; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' ||
		    p[2] == '\t')) {
			p++;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* The boundary parameter, and the MIME skeleton around it: 3 or 2 parts. */
static void
test_structure(const char *dsn, int parts)
{
	const char *p = strstr(dsn, "boundary=\"");
	char boundary[128], delim[160];
	size_t n;

	TEST_TRUE(p != NULL);
	if (p == NULL)
		return;
	p += strlen("boundary=\"");
	n = strcspn(p, "\"");
	TEST_TRUE(n > 0 && n < 70);	/* RFC 2046 §5.1.1 */
	snprintf(boundary, sizeof(boundary), "%.*s", (int)n, p);
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	TEST_INT(test_count(dsn, delim), parts);
	snprintf(delim, sizeof(delim), "\r\n--%s--\r\n", boundary);
	TEST_INT(test_count(dsn, delim), 1);
	/* the close delimiter ends the message */
	p = strstr(dsn, delim);
	TEST_TRUE(p != NULL && strlen(p) == strlen(delim));
}

/* Runs bounce_queue() in a transaction; 0 and the new id, or -1. */
static int
test_queue(sqlite3 *db, const struct bounce *b, char *id)
{
	const char *err = NULL;
	int rc;

	TEST_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	rc = bounce_queue(&test_cfg, db, b, id, &err);
	if (rc == 0)
		TEST_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
		    SQLITE_OK);
	else {
		TEST_TRUE(err != NULL);
		TEST_INT(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
		    SQLITE_OK);
	}
	return rc;
}

static char *
test_dsn(const char *id, size_t *len_r)
{
	char *path = xasprintf("%s/spool/msg/%s", test_dir, id);
	char *data = test_read(path, len_r);

	TEST_TRUE(data != NULL);
	free(path);
	return data;
}

static void
test_rows(sqlite3 *db, const char *id, size_t size, int smtputf8)
{
	sqlite3_stmt *st;

	TEST_INT(sqlite3_prepare_v2(db, "SELECT sender, size, body, smtputf8,"
	    " auth IS NULL, (SELECT count(*) FROM recipient WHERE msg_id ="
	    " m.id), (SELECT local FROM recipient WHERE msg_id = m.id AND "
	    "addr = 'sender@example.test') FROM message m WHERE id = ?", -1,
	    &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	TEST_INT(sqlite3_step(st), SQLITE_ROW);
	TEST_STR((const char *)sqlite3_column_text(st, 0), "");
	TEST_INT(sqlite3_column_int64(st, 1), size);
	TEST_INT(sqlite3_column_int(st, 2), smtputf8);
	TEST_INT(sqlite3_column_int(st, 3), smtputf8);
	TEST_INT(sqlite3_column_int(st, 4), 1);
	TEST_INT(sqlite3_column_int(st, 5), 2);
	TEST_INT(sqlite3_column_int(st, 6), 1);
	sqlite3_finalize(st);
}

static bool
test_has(const char *s, const char *needle)
{
	bool ok = strstr(s, needle) != NULL;

	TEST_CHECK(ok, "missing \"%s\"", needle);
	return ok;
}

static const char *const test_to[] = { "sender@example.test",
    "other@remote.example" };
static const bool test_to_local[] = { true, false };

static const char test_orig[] =
    "Received: by mail.example.test with ESMTPSA id " ORIG_ID "\r\n"
    "Subject: Hello there\r\n"
    "From: <sender@example.test>\r\n"
    "To: a@remote.example\r\n"
    "\r\n"
    "BODY-SECRET line\r\n";

static void
test_failure(sqlite3 *db)
{
	struct buf diag;
	char id[QUEUE_ID_LEN + 1], *dsn, *unfolded, *hdr_end;
	size_t len;

	buf_init(&diag, 0);
	buf_adds(&diag, "550-5.1.1 <a@remote.example>: Recipient\r\n"
	    "X-Injected: yes\r\n550 5.1.1 address\trejected ");
	for (int i = 0; i < 2000; i++)
		buf_addc(&diag, 'x');
	buf_adds(&diag, " \x1b[31m\xc3\xa9nd");
	struct bounce_rcpt rcpts[] = {
		{ "a@remote.example", "5.1.1", "mx.remote.example",
		    diag.data, time(NULL) },
		{ "b@remote.example", "5.0.0", NULL,
		    "bounced by the administrator", 0 },
	};
	struct bounce b = { .msg_id = ORIG_ID, .sender = "sender@example.test",
	    .arrival = time(NULL) - 60, .rcpts = rcpts, .nrcpts = 2,
	    .to = test_to, .to_local = test_to_local, .nto = 2 };

	test_write_orig(ORIG_ID, test_orig, strlen(test_orig));
	TEST_INT(test_queue(db, &b, id), 0);
	TEST_INT(strlen(id), QUEUE_ID_LEN);
	TEST_TRUE(strcmp(id, ORIG_ID) != 0);
	dsn = test_dsn(id, &len);
	buf_free(&diag);
	if (dsn == NULL)
		return;
	test_rows(db, id, len, 0);
	test_lines(dsn, len);
	TEST_TRUE(strlen(dsn) == len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)dsn[i] >= 0x80 || dsn[i] == 0x1b) {
			TEST_CHECK(false, "8-bit or ESC at %zu", i);
			break;
		}
	test_structure(dsn, 3);
	hdr_end = strstr(dsn, "\r\n\r\n");
	TEST_TRUE(hdr_end != NULL && hdr_end < strstr(dsn, "Final-Recipient"));
	TEST_TRUE(strncmp(dsn, "From: \"Mail Delivery System\" "
	    "<MAILER-DAEMON@mail.example.test>\r\n", 64) == 0);
	test_has(dsn, "\r\nTo: <sender@example.test>\r\n");
	test_has(dsn, "\r\nSubject: Undelivered Mail Returned to Sender\r\n");
	test_has(dsn, "\r\nDate: ");
	char *mid = xasprintf("\r\nMessage-ID: <%s@mail.example.test>\r\n",
	    id);
	test_has(dsn, mid);
	free(mid);
	test_has(dsn, "\r\nAuto-Submitted: auto-replied\r\n");
	test_has(dsn, "\r\nMIME-Version: 1.0\r\n");
	test_has(dsn, "\r\nContent-Type: multipart/report; "
	    "report-type=delivery-status;\r\n boundary=\"");
	test_has(dsn, "\r\nContent-Type: text/plain; charset=us-ascii\r\n");
	test_has(dsn, "\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; mail.example.test\r\n"
	    "X-Mailfort-Queue-ID: " ORIG_ID "\r\nArrival-Date: ");
	test_has(dsn, "\r\n\r\nFinal-Recipient: rfc822; a@remote.example\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\n"
	    "Remote-MTA: dns; mx.remote.example\r\n"
	    "Diagnostic-Code: smtp; 550-5.1.1");
	test_has(dsn, "\r\n\r\nFinal-Recipient: rfc822; b@remote.example\r\n"
	    "Action: failed\r\nStatus: 5.0.0\r\n"
	    "Diagnostic-Code: X-Mailfort; bounced by the administrator\r\n");
	TEST_INT(test_count(dsn, "\r\nLast-Attempt-Date: "), 1);
	TEST_INT(test_count(dsn, "Will-Retry-Until"), 0);
	TEST_INT(test_count(dsn, "\r\nX-Injected"), 0);
	unfolded = test_unfold(dsn);
	test_has(unfolded, "\r\nDiagnostic-Code: smtp; 550-5.1.1 "
	    "<a@remote.example>: Recipient X-Injected: yes 550 5.1.1 address "
	    "rejected xxxx");
	test_has(unfolded, "xxx [31m??nd\r\n");
	free(unfolded);
	/* human part: who and why */
	test_has(dsn, "\r\n<a@remote.example>: host mx.remote.example said: "
	    "550-5.1.1");
	test_has(dsn, "\r\n<b@remote.example>: bounced by the administrator");
	/* part 3: the original's header, not its body */
	test_has(dsn, "\r\nContent-Type: text/rfc822-headers\r\n\r\nReceived: "
	    "by mail.example.test with ESMTPSA id " ORIG_ID "\r\n"
	    "Subject: Hello there\r\nFrom: <sender@example.test>\r\n"
	    "To: a@remote.example\r\n\r\n--");
	TEST_INT(test_count(dsn, "BODY-SECRET"), 0);
	free(dsn);
}

static void
test_delay(sqlite3 *db)
{
	struct bounce_rcpt r = { "c@remote.example", "4.4.1", NULL,
	    "connection refused", time(NULL) };
	struct bounce b = { .msg_id = ORIG_ID, .sender = "sender@example.test",
	    .arrival = time(NULL) - 3600, .delayed = true,
	    .retry_until = time(NULL) + 5 * 86400, .rcpts = &r, .nrcpts = 1,
	    .to = test_to, .to_local = test_to_local, .nto = 2 };
	char id[QUEUE_ID_LEN + 1], *dsn, *unfolded;
	size_t len;

	TEST_INT(test_queue(db, &b, id), 0);
	if ((dsn = test_dsn(id, &len)) == NULL)
		return;
	test_rows(db, id, len, 0);
	test_lines(dsn, len);
	test_structure(dsn, 3);
	test_has(dsn, "\r\nSubject: Delayed Mail (still being retried)\r\n");
	test_has(dsn, "\r\nFinal-Recipient: rfc822; c@remote.example\r\n"
	    "Action: delayed\r\nStatus: 4.4.1\r\n"
	    "Diagnostic-Code: X-Mailfort; connection refused\r\n"
	    "Last-Attempt-Date: ");
	test_has(dsn, "\r\nWill-Retry-Until: ");
	test_has(dsn, "\r\nContent-Description: Delayed Message Headers\r\n");
	unfolded = test_unfold(dsn);
	for (char *p = unfolded; (p = strstr(p, "\r\n")) != NULL; p++)
		memset(p, ' ', 2);	/* the human text, as one line */
	test_has(unfolded, "will keep trying until ");
	test_has(unfolded, "<c@remote.example>: connection refused");
	free(unfolded);
	free(dsn);
}

/* 8-bit header (SMTPUTF8): the RFC 6533 types and an SMTPUTF8 DSN. */
static void
test_utf8(sqlite3 *db)
{
	static const char orig[] = "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n"
	    "From: <j\xc3\xb6rg@example.test>\r\n\r\nbody\r\n";
	struct bounce_rcpt r = { "d\xc3\xa9@remote.example", "5.7.1",
	    "mx.remote.example", "550 5.7.1 no", time(NULL) };
	struct bounce b = { .msg_id = "0000000000A000000002",
	    .sender = "sender@example.test", .arrival = time(NULL),
	    .rcpts = &r, .nrcpts = 1, .to = test_to,
	    .to_local = test_to_local, .nto = 2 };
	char id[QUEUE_ID_LEN + 1], *dsn;
	size_t len;

	test_write_orig(b.msg_id, orig, strlen(orig));
	TEST_INT(test_queue(db, &b, id), 0);
	if ((dsn = test_dsn(id, &len)) == NULL)
		return;
	test_rows(db, id, len, 1);
	test_lines(dsn, len);
	test_structure(dsn, 3);
	test_has(dsn, "\r\nContent-Type: text/plain; charset=utf-8\r\n");
	test_has(dsn, "\r\nContent-Type: message/global-delivery-status\r\n");
	test_has(dsn, "\r\nContent-Type: message/global-headers\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n"
	    "Subject: Gr\xc3\xbc\xc3\x9f" "e\r\n");
	TEST_INT(test_count(dsn, "text/rfc822-headers"), 0);
	/* RFC 6533 §3: a non-ASCII address is of type utf-8 */
	test_has(dsn, "\r\nFinal-Recipient: utf-8; "
	    "d\xc3\xa9@remote.example\r\n");
	test_has(dsn, "\r\n<d\xc3\xa9@remote.example>: host ");
	free(dsn);
}

/* A hostile original: overlong, bare LF, NUL, no end of header, and more
 * header than the cap; the DSN still has short CRLF lines. */
static void
test_hostile(sqlite3 *db)
{
	struct bounce_rcpt r = { "e@remote.example", "nonsense", NULL, NULL,
	    0 };
	struct bounce b = { .msg_id = "0000000000A000000003",
	    .sender = "sender@example.test", .rcpts = &r, .nrcpts = 1,
	    .to = test_to, .to_local = test_to_local, .nto = 1 };
	char id[QUEUE_ID_LEN + 1], *dsn;
	struct buf orig;
	size_t len;

	buf_init(&orig, 0);
	buf_adds(&orig, "X-Long: ");
	for (int i = 0; i < 3000; i++)
		buf_addc(&orig, 'y');
	buf_adds(&orig, "\nX-Bare: lf\nX-Nul: a");
	buf_addc(&orig, '\0');
	buf_adds(&orig, "b\rc\r\n");
	for (int i = 0; i < 2000; i++)
		buf_printf(&orig, "X-Filler-%d: %060d\r\n", i, i);
	test_write_orig(b.msg_id, orig.data, orig.len);
	buf_free(&orig);
	TEST_INT(test_queue(db, &b, id), 0);
	if ((dsn = test_dsn(id, &len)) == NULL)
		return;
	test_lines(dsn, len);
	TEST_TRUE(strlen(dsn) == len);	/* no NUL made it */
	test_structure(dsn, 3);
	test_has(dsn, "\r\nX-Bare: lf\r\nX-Nul: a b c\r\n");
	test_has(dsn, "\r\nStatus: 5.0.0\r\n");
	TEST_INT(test_count(dsn, "Diagnostic-Code"), 0);
	TEST_INT(test_count(dsn, "Arrival-Date"), 0);
	TEST_TRUE(len < 64 * 1024 + 8 * 1024);
	TEST_INT(test_count(dsn, "X-Filler-1999"), 0);
	free(dsn);
}

/* Refusals leave neither file nor rows; a missing original gives a
 * two-part report. */
static void
test_refusals(sqlite3 *db)
{
	struct bounce_rcpt r = { "f@remote.example", "5.1.1", NULL, "gone",
	    0 };
	struct bounce b = { .msg_id = ORIG_ID, .sender = "", .rcpts = &r,
	    .nrcpts = 1, .to = test_to, .to_local = test_to_local, .nto = 1 };
	char id[QUEUE_ID_LEN + 1], *dsn;
	int files = test_spool_count();
	size_t len;

	TEST_INT(test_queue(db, &b, id), -1);
	b.sender = NULL;
	TEST_INT(test_queue(db, &b, id), -1);
	b.sender = "sender@example.test";
	b.msg_id = "../../etc/passwd";
	TEST_INT(test_queue(db, &b, id), -1);
	b.msg_id = ORIG_ID;
	b.nto = 0;
	TEST_INT(test_queue(db, &b, id), -1);
	TEST_INT(test_spool_count(), files);
	b.nto = 1;
	b.msg_id = "0000000000A0000000FF";	/* no such file */
	TEST_INT(test_queue(db, &b, id), 0);
	TEST_INT(test_spool_count(), files + 1);
	if ((dsn = test_dsn(id, &len)) == NULL)
		return;
	test_lines(dsn, len);
	test_structure(dsn, 2);
	TEST_INT(test_count(dsn, "rfc822-headers"), 0);
	free(dsn);
}

int
main(void)
{
	const char *err = NULL;
	sqlite3 *db;

	log_init("test_bounce", false, LOG_LVL_WARN);
	if (mkdtemp(test_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_cfg.hostname = "mail.example.test";
	test_cfg.data_dir = test_dir;
	TEST_INT(queue_dirs_create(test_dir, &err), 0);
	TEST_INT(queue_db_open(test_dir, &db, &err), 0);
	test_failure(db);
	test_delay(db);
	test_utf8(db);
	test_hostile(db);
	test_refusals(db);
	sqlite3_close(db);
	/* TEST_BOUNCE_KEEP=1 keeps the DSNs to look at */
	if (getenv("TEST_BOUNCE_KEEP") == NULL) {
		char *cmd = xasprintf("rm -rf '%s'", test_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", test_dir);
		free(cmd);
	} else {
		printf("kept %s\n", test_dir);
	}
	return test_done("bounce");
}
