/*
 * bounce.c - delivery status notifications (RFC 3464): a failure report
 * or a delay warning for one queued message, written to the spool and
 * recorded in the queue like any received message, with the null
 * envelope sender so that it can never cause a DSN itself.
 *
 * The report is multipart/report (RFC 6522): a human-readable text, the
 * machine-readable message/delivery-status, and the original's header
 * section as text/rfc822-headers.  When the original header or an
 * address is not ASCII (SMTPUTF8), the global types of RFC 6533 take
 * their place and the DSN itself needs SMTPUTF8.  Everything we write is
 * CRLF-terminated and folded well below 998 octets (RFC 5322 §2.1.1);
 * text from remote servers is reduced to printable ASCII.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue_private.h"

#define BOUNCE_HEADER_MAX (64 * 1024)	/* original header returned */
#define BOUNCE_LINE_MAX 998		/* RFC 5322 §2.1.1, without CRLF */
#define BOUNCE_WRAP 78			/* fold before this column */
#define BOUNCE_WORD_MAX 400		/* longer words are cut */
#define BOUNCE_TEXT_MAX 4096		/* a diagnostic is cut here */
#define BOUNCE_DATE_LEN 64

/* RFC 5322 §3.3 date-time, local time with its offset. */
static void
bounce_date(time_t t, char out[BOUNCE_DATE_LEN])
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(out, BOUNCE_DATE_LEN, "%a, %d %b %Y %H:%M:%S %z",
	    &tm) == 0)
		str_lcpy(out, "Thu, 01 Jan 1970 00:00:00 +0000",
		    BOUNCE_DATE_LEN);
}

static bool
bounce_has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * Untrusted text as words: controls (CR, LF, TAB too) become spaces,
 * runs of spaces collapse, 8-bit bytes become '?' unless allow_8bit,
 * and input past BOUNCE_TEXT_MAX is cut with "...".
 */
static void
bounce_clean(struct buf *out, const char *text, bool allow_8bit)
{
	size_t len = strlen(text);
	bool space = true;

	for (size_t i = 0; i < len && i < BOUNCE_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c == 0x7f || c == ' ') {
			if (!space)
				buf_addc(out, ' ');
			space = true;
			continue;
		}
		buf_addc(out, c >= 0x80 && !allow_8bit ? '?' : (char)c);
		space = false;
	}
	if (len > BOUNCE_TEXT_MAX)
		buf_adds(out, space ? "..." : " ...");
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
}

/* The length of the next piece of word w (len bytes): at most
 * BOUNCE_WORD_MAX, not splitting a UTF-8 sequence. */
static size_t
bounce_piece(const char *w, size_t len)
{
	size_t n = len;

	if (n <= BOUNCE_WORD_MAX)
		return n;
	n = BOUNCE_WORD_MAX;
	while (n > 1 && ((unsigned char)w[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/*
 * Appends first (a short literal, with its trailing space if one is
 * wanted) and then text, cleaned as above and wrapped before BOUNCE_WRAP
 * where spaces allow; continuation lines start with cont (" " folds a
 * header field, RFC 5322 §2.2.3).  No line gets longer than first or
 * cont plus BOUNCE_WORD_MAX, well below BOUNCE_LINE_MAX.  Ends in CRLF.
 */
static void
bounce_wrap(struct buf *b, const char *first, const char *text,
    const char *cont, bool allow_8bit)
{
	struct buf words;
	size_t col = strlen(first), pos = 0;
	bool fresh = true;	/* nothing on this line after the prefix */

	xassert(col < 100 && strlen(cont) < 100);
	buf_init(&words, 0);
	bounce_clean(&words, text, allow_8bit);
	buf_adds(b, first);
	while (pos < words.len) {
		size_t n = bounce_piece(words.data + pos,
		    strcspn(words.data + pos, " "));
		if (!fresh && col + 1 + n > BOUNCE_WRAP) {
			buf_printf(b, "\r\n%s", cont);
			col = strlen(cont);
			fresh = true;
		}
		if (!fresh) {
			buf_addc(b, ' ');
			col++;
		}
		buf_add(b, words.data + pos, n);
		col += n;
		fresh = false;
		pos += n;
		if (pos < words.len && words.data[pos] == ' ')
			pos++;
	}
	buf_adds(b, "\r\n");
	buf_free(&words);
}

/*
 * The lines of raw up to the empty line that ends a header section, each
 * cut at BOUNCE_LINE_MAX (not inside a UTF-8 sequence) and ended with
 * CRLF; NUL and stray CR become spaces.  Unless eof, raw was cut by
 * BOUNCE_HEADER_MAX and its incomplete last line is left out.
 */
static void
bounce_header_lines(const char *raw, size_t len, bool eof, struct buf *out)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(raw + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - raw) : len;
		size_t ll = end - pos;

		if (nl == NULL && !eof)
			break;
		if (ll > 0 && raw[end - 1] == '\r')
			ll--;
		if (ll == 0)
			break;
		if (ll > BOUNCE_LINE_MAX) {
			ll = BOUNCE_LINE_MAX;
			while (ll > 1 &&
			    ((unsigned char)raw[pos + ll] & 0xC0) == 0x80)
				ll--;
		}
		for (size_t i = 0; i < ll; i++) {
			char c = raw[pos + i];
			buf_addc(out, c == '\0' || c == '\r' ? ' ' : c);
		}
		buf_adds(out, "\r\n");
		pos = end + 1;
	}
}

/* The original's header section from its spool file into out;
 * -1 when the file cannot be read (logged). */
static int
bounce_orig_header(const char *path, struct buf *out)
{
	char *raw = xmalloc(BOUNCE_HEADER_MAX);
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_warn("bounce: cannot open %s", path);
		free(raw);
		return -1;
	}
	while (len < BOUNCE_HEADER_MAX) {
		ssize_t n = read(fd, raw + len, BOUNCE_HEADER_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warn("bounce: read %s", path);
			close(fd);
			free(raw);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	bounce_header_lines(raw, len, len < BOUNCE_HEADER_MAX, out);
	free(raw);
	return 0;
}

/* What one report is made of while it is being written. */
struct bounce_ctx {
	const struct config *cfg;
	const struct bounce *b;
	const char *id;			/* the DSN's own queue id */
	char boundary[QUEUE_ID_LEN + 16];
	bool utf8;			/* RFC 6533 types, SMTPUTF8 */
	bool have_orig;
	struct buf orig;		/* the original's header section */
};

static bool
bounce_is_ascii(const char *s)
{
	return !bounce_has_8bit(s, strlen(s));
}

/* RFC 3463 status-code: class "." subject "." detail. */
static bool
bounce_status_ok(const char *s)
{
	size_t n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		n = strspn(s, "0123456789");
		if (n == 0 || n > 3)
			return false;
		s += n;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static const char *
bounce_status(const struct bounce_ctx *c, const struct bounce_rcpt *r)
{
	if (bounce_status_ok(r->status))
		return r->status;
	return c->b->delayed ? "4.0.0" : "5.0.0";
}

static void
bounce_field_date(struct buf *m, const char *name, time_t t)
{
	char date[BOUNCE_DATE_LEN];

	bounce_date(t, date);
	buf_printf(m, "%s: %s\r\n", name, date);
}

/* The message header of the DSN, up to and including the preamble. */
static void
bounce_top(struct buf *m, const struct bounce_ctx *c)
{
	const char *host = c->cfg->hostname;
	char *to = xasprintf("<%s>", c->b->sender);

	buf_printf(m, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>\r\n",
	    host);
	bounce_wrap(m, "To: ", to, " ", c->utf8);
	buf_printf(m, "Subject: %s\r\n", c->b->delayed ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	bounce_field_date(m, "Date", time(NULL));
	buf_printf(m, "Message-ID: <%s@%s>\r\n", c->id, host);
	/* RFC 3834 §5: no auto-responder answers this one. */
	buf_adds(m, "Auto-Submitted: auto-replied\r\n");
	buf_adds(m, "MIME-Version: 1.0\r\n");
	buf_printf(m, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n boundary=\"%s\"\r\n",
	    c->boundary);
	if (c->utf8)
		buf_adds(m, "Content-Transfer-Encoding: 8bit\r\n");
	buf_adds(m, "\r\nThis is a MIME-encapsulated message.\r\n");
	free(to);
}

/* Starts one body part: delimiter (after an empty line) and its header. */
static void
bounce_part(struct buf *m, const struct bounce_ctx *c, const char *desc,
    const char *type)
{
	buf_printf(m, "\r\n--%s\r\nContent-Description: %s\r\n"
	    "Content-Type: %s\r\n", c->boundary, desc, type);
	if (c->utf8)
		buf_adds(m, "Content-Transfer-Encoding: 8bit\r\n");
	buf_adds(m, "\r\n");
}

/* Part 1: what happened, for people. */
static void
bounce_human(struct buf *m, const struct bounce_ctx *c)
{
	const struct bounce *b = c->b;
	char arrival[BOUNCE_DATE_LEN], until[BOUNCE_DATE_LEN];
	char *text;

	bounce_part(m, c, "Notification", c->utf8 ?
	    "text/plain; charset=utf-8" : "text/plain; charset=us-ascii");
	buf_printf(m, "This is the mail system at host %s.\r\n\r\n",
	    c->cfg->hostname);
	if (b->delayed) {
		bounce_date(b->arrival, arrival);
		bounce_date(b->retry_until, until);
		text = xasprintf("Your message could not be delivered yet to "
		    "the recipients below. It has been queued since %s. We "
		    "will keep trying until %s; if it cannot be delivered by "
		    "then, you will be told. You do not need to send it "
		    "again.", arrival, until);
	} else {
		text = xstrdup("I'm sorry to have to inform you that your "
		    "message could not be delivered to the recipients below. "
		    "Its header is attached.");
	}
	bounce_wrap(m, "", text, "", false);
	free(text);
	for (size_t i = 0; i < b->nrcpts; i++) {
		const struct bounce_rcpt *r = &b->rcpts[i];
		const char *why = r->diagnostic != NULL &&
		    r->diagnostic[0] != '\0' ? r->diagnostic :
		    bounce_status(c, r);
		if (r->remote_mta != NULL)
			text = xasprintf("<%s>: host %s said: %s", r->addr,
			    r->remote_mta, why);
		else
			text = xasprintf("<%s>: %s", r->addr, why);
		buf_adds(m, "\r\n");
		bounce_wrap(m, "", text, "    ", c->utf8);
		free(text);
	}
}

/* RFC 3464 §2.3: the fields of one recipient (after an empty line). */
static void
bounce_rcpt_fields(struct buf *m, const struct bounce_ctx *c,
    const struct bounce_rcpt *r)
{
	const char *diag = r->diagnostic;

	buf_adds(m, "\r\n");
	/* RFC 6533 §3: a non-ASCII address is of type utf-8. */
	bounce_wrap(m, bounce_is_ascii(r->addr) ? "Final-Recipient: rfc822; " :
	    "Final-Recipient: utf-8; ", r->addr, " ", c->utf8);
	buf_printf(m, "Action: %s\r\n", c->b->delayed ? "delayed" : "failed");
	buf_printf(m, "Status: %s\r\n", bounce_status(c, r));
	if (r->remote_mta != NULL)
		bounce_wrap(m, "Remote-MTA: dns; ", r->remote_mta, " ", false);
	if (diag != NULL && diag[0] != '\0')
		bounce_wrap(m, r->remote_mta != NULL ?
		    "Diagnostic-Code: smtp; " :
		    "Diagnostic-Code: X-Mailfort; ", diag, " ", false);
	if (r->last_attempt != 0)
		bounce_field_date(m, "Last-Attempt-Date", r->last_attempt);
	if (c->b->delayed)
		bounce_field_date(m, "Will-Retry-Until", c->b->retry_until);
}

/* Part 2: RFC 3464 §2.2 per-message fields, then each recipient. */
static void
bounce_report(struct buf *m, const struct bounce_ctx *c)
{
	bounce_part(m, c, "Delivery report", c->utf8 ?
	    "message/global-delivery-status" : "message/delivery-status");
	buf_printf(m, "Reporting-MTA: dns; %s\r\n", c->cfg->hostname);
	buf_printf(m, "X-Mailfort-Queue-ID: %s\r\n", c->b->msg_id);
	if (c->b->arrival != 0)
		bounce_field_date(m, "Arrival-Date", c->b->arrival);
	for (size_t i = 0; i < c->b->nrcpts; i++)
		bounce_rcpt_fields(m, c, &c->b->rcpts[i]);
}

/* The whole DSN; part 3 (the original's header) when it was readable. */
static void
bounce_compose(struct buf *m, const struct bounce_ctx *c)
{
	bounce_top(m, c);
	bounce_human(m, c);
	bounce_report(m, c);
	if (c->have_orig) {
		bounce_part(m, c, c->b->delayed ? "Delayed Message Headers" :
		    "Undelivered Message Headers", c->utf8 ?
		    "message/global-headers" : "text/rfc822-headers");
		buf_add(m, c->orig.data, c->orig.len);
	}
	buf_printf(m, "\r\n--%s--\r\n", c->boundary);
}

/* Makes the written file durable under spool/msg (see commit.c);
 * -1 and *error_r on failure, when no file is left under spool/msg. */
static int
bounce_spool(const struct config *cfg, struct spool_msg *m,
    const char **error_r)
{
	char *dir;
	int fd, rc = 0;

	if (spool_msg_flush(m) < 0 || fdatasync(m->fd) < 0) {
		log_warn("bounce: cannot write %s", m->tmp_path);
		*error_r = "cannot write the DSN to the spool";
		return -1;
	}
	if (rename(m->tmp_path, m->msg_path) < 0) {
		log_warn("bounce: rename %s", m->tmp_path);
		*error_r = "cannot move the DSN into the spool";
		return -1;
	}
	dir = xasprintf("%s/spool/msg", cfg->data_dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		log_warn("bounce: fsync %s", dir);
		*error_r = "cannot sync the spool directory";
		if (unlink(m->msg_path) < 0)
			log_warn("bounce: unlink %s", m->msg_path);
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/* The queue rows of the DSN, in the caller's transaction. */
static int
bounce_record(sqlite3 *db, const struct spool_msg *m, bool utf8,
    const struct bounce *b)
{
	sqlite3_stmt *st = NULL;
	int ok;

	ok = sqlite3_prepare_v2(db, "INSERT INTO message(id, sender, size, "
	    "created, body, smtputf8, auth) VALUES (?, '', ?, ?, ?, ?, NULL)",
	    -1, &st, NULL) == SQLITE_OK;
	if (ok) {
		sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)m->size);
		sqlite3_bind_int64(st, 3, m->created);
		sqlite3_bind_int(st, 4, utf8 ? 1 : 0);	/* 8BITMIME */
		sqlite3_bind_int(st, 5, utf8 ? 1 : 0);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* The same final address twice is one recipient. */
	ok = ok && sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO "
	    "recipient(msg_id, addr, local) VALUES (?, ?, ?)", -1, &st,
	    NULL) == SQLITE_OK;
	for (size_t i = 0; ok && i < b->nto; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, m->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, b->to[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, b->to_local[i] ? 1 : 0);
		ok = sqlite3_step(st) == SQLITE_DONE;
	}
	sqlite3_finalize(st);
	if (!ok)
		log_warnx("bounce: queue insert: %s", sqlite3_errmsg(db));
	return ok ? 0 : -1;
}

static bool
bounce_id_ok(const char *id)
{
	return id != NULL && strlen(id) == QUEUE_ID_LEN &&
	    strspn(id, "0123456789ABCDEF") == QUEUE_ID_LEN;
}

/* Reads the original's header and decides between plain and global
 * (RFC 6533) types: any 8-bit header byte or address needs the latter. */
static void
bounce_prepare(struct bounce_ctx *c)
{
	const struct bounce *b = c->b;
	char *path = xasprintf("%s/spool/msg/%s", c->cfg->data_dir,
	    b->msg_id);

	buf_init(&c->orig, 0);
	/* XXX: without the original's header the report still goes out,
	 * in two parts (RFC 6522 §3 makes the third optional). */
	c->have_orig = bounce_orig_header(path, &c->orig) == 0;
	free(path);
	c->utf8 = bounce_has_8bit(c->orig.data, c->orig.len) ||
	    !bounce_is_ascii(b->sender);
	for (size_t i = 0; i < b->nrcpts; i++)
		c->utf8 |= !bounce_is_ascii(b->rcpts[i].addr);
	for (size_t i = 0; i < b->nto; i++)
		c->utf8 |= !bounce_is_ascii(b->to[i]);
}

int
bounce_queue(const struct config *cfg, sqlite3 *db, const struct bounce *b,
    char *id_r, const char **error_r)
{
	struct bounce_ctx c = { .cfg = cfg, .b = b };
	struct spool_msg *m;
	struct buf dsn;

	if (b->sender == NULL || b->sender[0] == '\0') {
		*error_r = "no DSN to the null sender";
		return -1;
	}
	if (!bounce_id_ok(b->msg_id) || b->nrcpts == 0 || b->nto == 0) {
		*error_r = "nothing to report";
		return -1;
	}
	if ((m = spool_msg_new(cfg->data_dir, error_r)) == NULL)
		return -1;
	c.id = spool_msg_id(m);
	snprintf(c.boundary, sizeof(c.boundary), "=_mailfort_%s", c.id);
	bounce_prepare(&c);
	buf_init(&dsn, 0);
	bounce_compose(&dsn, &c);
	buf_free(&c.orig);
	if (spool_msg_write(m, dsn.data, dsn.len) < 0 ||
	    bounce_spool(cfg, m, error_r) < 0) {
		if (m->write_failed)
			*error_r = "cannot write the DSN to the spool";
		buf_free(&dsn);
		spool_msg_abort(&m);
		return -1;
	}
	buf_free(&dsn);
	if (bounce_record(db, m, c.utf8, b) < 0) {
		*error_r = "cannot record the DSN in the queue";
		if (unlink(m->msg_path) < 0)
			log_warn("bounce: unlink %s", m->msg_path);
		spool_msg_free(&m);
		return -1;
	}
	str_lcpy(id_r, m->id, QUEUE_ID_LEN + 1);
	spool_msg_free(&m);
	return 0;
}
