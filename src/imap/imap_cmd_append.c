/*
 * imap_cmd_append.c - APPEND (RFC 9051 §6.3.12) with flags and internal
 * date, MULTIAPPEND (RFC 3502: several messages, all or none), UIDPLUS's
 * APPENDUID (RFC 4315 §3) and LITERAL+ (RFC 7888).
 *
 * A message literal never sits in memory: when the reader announces it
 * (imap_append_literal()), it is accepted as a stream and its chunks go
 * straight into a temporary file of the store (imap_append_chunk()).
 * When the command is complete, one pool job fsyncs the files, links
 * them in and records them with their UIDs in one transaction.
 *
 * Message rules, checked while the data streams:
 * - at most smtp.max_message_size bytes each, refused before the client
 *   sends them: NO [TOOBIG] (a synchronizing literal gets no "+");
 * - lines end in CRLF exactly: a bare CR or LF refuses the message (NO),
 *   as SMTP refuses it (README: SMTP smuggling) - the store holds CRLF
 *   and we do not rewrite what the client sent; NUL is refused by the
 *   reader already (RFC 9051 §9 CHAR8);
 * - literal8 (RFC 3516 BINARY) is refused: NO [UNKNOWN-CTE], except
 *   as RFC 6855 §4's "UTF8 (~{n})" once UTF8=ACCEPT or IMAP4rev2 is
 *   enabled (BAD before), taken as a plain literal: NUL is refused;
 * - an empty message is refused;
 * - the account's quota (RFC 9208 §4.4): NO [OVERQUOTA] before the data
 *   when the announced sizes would exceed it, and again in the job before
 *   the messages are recorded (others may have added mail meanwhile).
 * XXX: data is written to the file on the event loop: page-cache writes
 * of at most IMAP_READ_CHUNK bytes; the fsync runs on the pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_cmd_mailbox.h"
#include "imap/imap_cmd_quota.h"

/* Keywords in one APPEND flag list. */
#define IMAP_APPEND_KEYWORDS_MAX 64
/* RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz". */
#define IMAP_DATE_TIME_LEN 26

struct imap_append_file {
	char name[STORE_MSG_FILE_MAX + 1];
	uint64_t size;			/* announced */
	uint64_t written;
	bool bad_line;			/* bare CR or LF */
	bool nul;			/* NUL (in a literal8) */
	bool io_error;
};

struct imap_append_in {
	struct imap_append_file files[STORE_APPEND_MAX];
	size_t count;
	int fd;				/* file being written, or -1 */
	char prev;			/* last byte written */
	const char *refusal;		/* NO text for the reader's error */
};

/* The job's copy of the request. */
struct imap_append_job {
	struct store_append_msg msgs[STORE_APPEND_MAX];
	char *keywords[STORE_APPEND_MAX];
	size_t count;
	uint64_t quota;			/* bytes, 0: unlimited */
	uint64_t bytes;			/* of all the messages */
};

static void
imap_append_free_in(struct imap_session *s, struct imap_append_in **ap)
{
	struct imap_append_in *a = *ap;

	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	for (size_t i = 0; i < a->count; i++) {
		if (s->store != NULL)
			store_append_discard(s->store, a->files[i].name);
		else
			log_warnx("%s imap append: %s left behind", s->sid,
			    a->files[i].name);
	}
	free(a);
	*ap = NULL;
}

void
imap_append_abort(struct imap_session *s)
{
	imap_append_free_in(s, &s->append);
}

/* Streamed literals in the command so far (lists included). */
static size_t
imap_append_streamed(const struct imap_arg *a)
{
	size_t n = 0;

	for (; a != NULL; a = a->next) {
		if (a->type == IMAP_ARG_LIST)
			n += imap_append_streamed(a->list);
		else if (a->flags & IMAP_ARG_F_STREAMED)
			n++;
	}
	return n;
}

/* Refuses the announced literal; the reply comes with the reader's
 * error (imap_append_parse_error()). */
static bool
imap_append_refuse(struct imap_session *s, const char *why,
    enum imap_err err)
{
	s->append->refusal = why;
	imap_parser_literal_reject(s->parser, err);
	return true;
}

/* A new temporary file for the literal, accepted as a stream. */
static bool
imap_append_start(struct imap_session *s, const struct imap_literal *lit)
{
	struct imap_append_in *a = s->append;
	struct imap_append_file *f = &a->files[a->count];
	const char *err = NULL;

	if (store_append_file(s->store, &a->fd, f->name, &err) < 0) {
		log_warnx("%s imap append user=%s error=\"%s\"", s->sid,
		    s->user, err);
		return imap_append_refuse(s, "[SERVERBUG] Cannot store the "
		    "message now", IMAP_ERR_LITERAL_TOO_BIG);
	}
	f->size = lit->size;
	a->count++;
	a->prev = '\0';
	if (imap_parser_literal_accept(s->parser, IMAP_LIT_STREAM) < 0)
		return true;	/* not for streams; the error reports it */
	if (lit->size == 0) {
		close(a->fd);
		a->fd = -1;
	}
	if (lit->sync)
		imap_write(s, "+ Ready\r\n", 9);
	return true;
}

/*
 * Would the messages announced so far plus this one exceed the quota?
 * XXX: reads the usage on the event loop: one row of the session's open
 * store (WAL: readers never wait for writers), cheaper than parking the
 * literal for a pool round trip.  The job checks again authoritatively.
 */
static bool
imap_append_over_quota(struct imap_session *s, uint64_t size)
{
	uint64_t limit = imap_quota_limit(s), used = 0, messages = 0;

	if (limit == 0 || store_usage(s->store, &used, &messages) < 0)
		return false;
	for (size_t i = 0; i < s->append->count; i++)
		size += s->append->files[i].size;
	return imap_quota_exceeded(limit, used, size);
}

/* RFC 6855 §4: does the literal announced open "UTF8 (" (the list it
 * goes into is the last argument so far, still empty)?  The mailbox
 * comes first, so a mailbox named UTF8 does not count. */
static bool
imap_append_utf8(const struct imap_arg *a)
{
	const struct imap_arg *prev = NULL;

	for (; a != NULL && a->next != NULL; a = a->next)
		prev = a;
	return prev != NULL && a != NULL && a->type == IMAP_ARG_LIST &&
	    a->count == 0 && imap_arg_is_atom(prev, "UTF8");
}

bool
imap_append_literal(struct imap_session *s, const struct imap_literal *lit)
{
	const struct imap_command *cmd = imap_parser_command(s->parser);
	size_t n;

	/* Only a logged-in APPEND's message literals (after the mailbox);
	 * everything else is the session's small buffered literal. */
	if (strcmp(cmd->name, "APPEND") != 0 || s->store == NULL ||
	    (s->state != IMAP_ST_AUTH && s->state != IMAP_ST_SELECTED) ||
	    imap_tls_required(s) || cmd->count == 0)
		return false;
	n = imap_append_streamed(cmd->args);
	if (s->append != NULL && s->append->count != n)
		imap_append_abort(s);	/* left from an earlier command */
	if (s->append == NULL) {
		s->append = xmalloc(sizeof(*s->append));
		s->append->fd = -1;
	}
	if (s->append->count != n)
		return imap_append_refuse(s, NULL, IMAP_ERR_SYNTAX);
	if (lit->binary && !imap_append_utf8(cmd->args))
		return imap_append_refuse(s, "[UNKNOWN-CTE] Binary literals "
		    "are not accepted", IMAP_ERR_LITERAL);
	if (lit->binary && !s->utf8)
		return imap_append_refuse(s, NULL, IMAP_ERR_SYNTAX);
	if (n == STORE_APPEND_MAX)
		return imap_append_refuse(s, "[LIMIT] Too many messages in "
		    "one APPEND", IMAP_ERR_LITERAL_TOO_BIG);
	if (lit->size > s->srv->cfg->max_message_size)
		return imap_append_refuse(s, "[TOOBIG] Message too big",
		    IMAP_ERR_LITERAL_TOO_BIG);
	if (imap_append_over_quota(s, lit->size))
		return imap_append_refuse(s, IMAP_QUOTA_OVER_TEXT,
		    IMAP_ERR_LITERAL_TOO_BIG);
	imap_append_start(s, lit);
	return true;
}

/* CRLF exactly (STYLE §4): a CR must be followed by LF, an LF preceded
 * by CR; prev carries over between chunks. */
static bool
imap_append_lines_ok(const char *d, size_t len, char *prev)
{
	char p = *prev;
	bool ok = true;

	for (size_t i = 0; i < len; i++) {
		if ((d[i] == '\n' && p != '\r') || (p == '\r' && d[i] != '\n'))
			ok = false;
		p = d[i];
	}
	*prev = p;
	return ok;
}

void
imap_append_chunk(struct imap_session *s)
{
	struct imap_append_in *a = s->append;
	struct imap_append_file *f;
	const void *data;
	size_t len, done = 0;

	imap_parser_chunk(s->parser, &data, &len);
	if (a == NULL || a->count == 0)
		return;		/* not ours: dropped; the command fails */
	f = &a->files[a->count - 1];
	if (!imap_append_lines_ok(data, len, &a->prev))
		f->bad_line = true;
	if (memchr(data, '\0', len) != NULL)
		f->nul = true;	/* the reader lets literal8 have them */
	while (a->fd >= 0 && !f->io_error && done < len) {
		ssize_t w = write(a->fd, (const char *)data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			log_warn("%s imap append write", s->sid);
			f->io_error = true;
		} else {
			done += (size_t)w;
		}
	}
	f->written += len;
	if (f->written >= f->size && a->fd >= 0) {
		if (a->prev == '\r')
			f->bad_line = true;	/* ends in a bare CR */
		if (close(a->fd) < 0)
			f->io_error = true;
		a->fd = -1;
	}
}

bool
imap_append_parse_error(struct imap_session *s)
{
	const char *refusal, *tag = NULL;
	bool fatal = false;

	if (s->append == NULL)
		return false;
	refusal = s->append->refusal;
	imap_append_abort(s);
	(void)imap_parser_error(s->parser, &tag, &fatal);
	if (refusal == NULL || fatal || tag == NULL)
		return false;
	imap_tagged(s, tag, "NO", "%s", refusal);
	return true;
}

/* ---- the command ---- */

static const struct {
	const char *name;
	uint32_t flag;
} imap_append_sysflags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

static int
imap_append_kw_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "(\Seen $Label1)": system flags to *flags_r, keywords sorted and
 * unique (case-insensitively) to *keywords_r (xmalloc'd).  -1: BAD. */
static int
imap_append_flags(const struct imap_arg *list, uint32_t *flags_r,
    char **keywords_r)
{
	const char *kw[IMAP_APPEND_KEYWORDS_MAX];
	size_t nkw = 0;
	struct buf b;

	for (const struct imap_arg *a = list->list; a != NULL; a = a->next) {
		size_t i;
		if (a->type != IMAP_ARG_ATOM)
			return -1;
		if (a->str[0] == '\\') {
			for (i = 0; i < MF_ARRAY_LEN(imap_append_sysflags); i++)
				if (strcasecmp(a->str,
				    imap_append_sysflags[i].name) == 0)
					break;
			if (i < MF_ARRAY_LEN(imap_append_sysflags))
				*flags_r |= imap_append_sysflags[i].flag;
			/* \Recent is the server's to set (RFC 3501 §2.3.2) */
			else if (strcasecmp(a->str, "\\Recent") != 0)
				return -1;
			continue;
		}
		if (a->len > STORE_KEYWORD_MAX || strchr(a->str, '[') != NULL)
			return -1;
		for (i = 0; i < nkw && strcasecmp(kw[i], a->str) != 0; i++)
			;
		if (i < nkw)
			continue;
		if (nkw == IMAP_APPEND_KEYWORDS_MAX)
			return -1;
		kw[nkw++] = a->str;
	}
	qsort(kw, nkw, sizeof(kw[0]), imap_append_kw_cmp);
	buf_init(&b, STORE_KEYWORDS_MAX);
	for (size_t i = 0; i < nkw; i++) {
		if (b.len + strlen(kw[i]) + 1 > STORE_KEYWORDS_MAX) {
			buf_free(&b);
			return -1;
		}
		buf_printf(&b, "%s%s", i > 0 ? " " : "", kw[i]);
	}
	*keywords_r = b.data != NULL ? b.data : xstrdup("");
	return 0;
}

/* RFC 9051 §9 date-time, "d-Mon-yyyy" and " d-Mon-yyyy" days too. */
static int
imap_append_date(const char *s, int64_t *t_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char mon[4], sign;
	struct tm tm = { 0 };
	int day, year, hh, mm, ss, zone, n = 0;

	if (strlen(s) > IMAP_DATE_TIME_LEN ||
	    sscanf(s, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year,
	    &hh, &mm, &ss, &sign, &zone, &n) != 8 || s[n] != '\0' ||
	    (sign != '+' && sign != '-') || s[n - 5] != sign)
		return -1;
	mon[3] = '\0';
	str_lower(mon);
	const char *m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || day < 1 || day > 31 ||
	    year < 1900 || hh > 23 || mm > 59 || ss > 60 || zone % 100 > 59 ||
	    hh < 0 || mm < 0 || ss < 0 || zone < 0)
		return -1;
	tm.tm_mday = day;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year = year - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	zone = (zone / 100 * 60 + zone % 100) * 60;
	*t_r = (int64_t)timegm(&tm) - (sign == '+' ? zone : -zone);
	return 0;
}

static void
imap_append_job_free(void *arg)
{
	struct imap_append_job *aj = arg;

	for (size_t i = 0; i < STORE_APPEND_MAX; i++)
		free(aj->keywords[i]);
	free(aj);
}

/*
 * One message's arguments from a: [flags] [date-time] (literal / "UTF8"
 * SP "(" literal8 ")", RFC 6855 §4).  Returns the argument after the
 * message via *next_r; -1 BAD.
 */
static int
imap_append_one(const struct imap_arg *a, struct imap_append_job *aj,
    const struct imap_append_in *in, const struct imap_arg **next_r)
{
	struct store_append_msg *m = &aj->msgs[aj->count];
	const struct imap_arg *next;
	size_t i = aj->count;

	m->internaldate = (int64_t)time(NULL);
	if (a != NULL && a->type == IMAP_ARG_LIST) {
		if (imap_append_flags(a, &m->flags, &aj->keywords[i]) < 0)
			return -1;
		a = a->next;
	}
	if (a != NULL && a->type == IMAP_ARG_QUOTED) {
		if (imap_append_date(a->str, &m->internaldate) < 0)
			return -1;
		a = a->next;
	}
	next = a != NULL ? a->next : NULL;
	if (imap_arg_is_atom(a, "UTF8")) {
		a = a->next;
		if (a == NULL || a->type != IMAP_ARG_LIST || a->count != 1 ||
		    !(a->list->flags & IMAP_ARG_F_LITERAL8))
			return -1;
		next = a->next;
		a = a->list;
	}
	if (a == NULL || !(a->flags & IMAP_ARG_F_STREAMED) ||
	    i >= in->count || in->files[i].size != a->len ||
	    in->files[i].written != a->len)
		return -1;
	if (aj->keywords[i] == NULL)
		aj->keywords[i] = xstrdup("");
	m->keywords = aj->keywords[i];
	str_lcpy(m->file, in->files[i].name, sizeof(m->file));
	aj->bytes += in->files[i].size;
	aj->count++;
	*next_r = next;
	return 0;
}

static void
imap_work_append(struct imap_mjob *j)
{
	struct imap_append_job *aj = j->ctx;
	const char *err = NULL;
	uint32_t uidvalidity = 0, uid = 0;
	uint64_t used = 0, messages = 0;

	/* XXX: checked outside store_append()'s transaction: concurrent
	 * deliveries may overshoot the quota by what they add meanwhile. */
	if (aj->quota != 0) {
		j->ret = store_usage(j->store, &used, &messages) < 0 ? -1 :
		    imap_quota_exceeded(aj->quota, used, aj->bytes) ? 0 : 1;
		if (j->ret != 1) {
			for (size_t i = 0; i < aj->count; i++)
				store_append_discard(j->store,
				    aj->msgs[i].file);
			if (j->ret < 0)
				imap_mjob_fail(j, "read usage");
			j->refusal = STORE_REFUSE_OVERQUOTA;
			return;
		}
	}
	j->ret = store_append(j->store, j->name, aj->msgs, aj->count,
	    &uidvalidity, &uid, &j->refusal, &err);
	if (j->ret < 0)
		imap_mjob_fail(j, err);
	if (j->ret != 1)
		return;
	j->changed = true;
	if (aj->count == 1)
		snprintf(j->code, sizeof(j->code), "[APPENDUID %u %u] ",
		    uidvalidity, uid);
	else
		snprintf(j->code, sizeof(j->code), "[APPENDUID %u %u:%u] ",
		    uidvalidity, uid, uid + (uint32_t)aj->count - 1);
}

/* NO text when a received message breaks a rule, else NULL. */
static const char *
imap_append_check(const struct imap_append_in *in)
{
	for (size_t i = 0; i < in->count; i++) {
		if (in->files[i].io_error)
			return "[SERVERBUG] Cannot store the message now";
		if (in->files[i].bad_line)
			return "[CANNOT] Lines must end in CRLF";
		if (in->files[i].nul)
			return "[CANNOT] NUL in message";
		if (in->files[i].size == 0)
			return "[CANNOT] Empty message";
	}
	return NULL;
}

void
imap_cmd_append(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_append_in *in = s->append;
	struct imap_append_job *aj = xmalloc(sizeof(*aj));
	const struct imap_arg *a = cmd->args != NULL ? cmd->args->next : NULL;
	const char *err = NULL, *no;
	char name[IMAP_MAILBOX_MAX + 1];
	struct imap_mjob *j;

	s->append = NULL;		/* the files are this command's now */
	while (in != NULL && a != NULL && aj->count < in->count &&
	    imap_append_one(a, aj, in, &a) == 0)
		;
	if (in == NULL || cmd->count < 2 || a != NULL ||
	    aj->count != in->count || in->fd >= 0 ||
	    imap_append_streamed(cmd->args) != in->count) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: APPEND mailbox "
		    "[(flags)] [\"date-time\"] literal ...");
	} else if ((no = imap_append_check(in)) != NULL) {
		imap_tagged(s, cmd->tag, "NO", "%s", no);
	} else if (imap_mbox_arg(s, cmd->args, name, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] %s", err);
	} else {
		aj->quota = imap_quota_limit(s);
		j = imap_mjob_new(s, "APPEND", imap_work_append);
		str_lcpy(j->name, name, sizeof(j->name));
		j->ctx = aj;
		j->ctx_free = imap_append_job_free;
		free(in);	/* the job owns the files now */
		imap_mjob_submit(s, j);
		return;
	}
	imap_append_job_free(aj);
	imap_append_free_in(s, &in);
}
