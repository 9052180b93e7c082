/*
 * imap_cmd_search.c - SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501
 * §6.4.4) with ESEARCH return options (RFC 4731: MIN MAX COUNT ALL),
 * SAVE and "$" (RFC 5182 SEARCHRES) and the MODSEQ key (RFC 7162
 * §3.1.5).
 *
 * The keys are parsed on the loop into a tree (the program SORT and
 * THREAD run too, imap_search_prog_*); the pool job reads every row of
 * the mailbox once and, only for header and body keys, the message
 * files: the header block (at most IMAP_SEARCH_HEADER_MAX bytes) and
 * the body in chunks.  Header values match RFC 2047 decoded and
 * unfolded; BODY matches the text parts decoded by transfer encoding and
 * charset into UTF-8; TEXT both (mime_decode.c; case folding as stated
 * in mime.h: ASCII and Latin-1 letters).
 * XXX: internal dates compare in UTC, not the server's time zone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_selected.h"
#include "mime/mime.h"

#define IMAP_SEARCH_VALUE_MAX 1024	/* bytes of one search string */
/* body keys: bytes of a message parsed for its MIME structure, and
 * encoded bytes of its text parts decoded, per key and message */
#define IMAP_SEARCH_PARSE_MAX (64 * 1024 * 1024)
#define IMAP_SEARCH_DECODE_MAX (64 * 1024 * 1024)

enum imap_sk_kind {
	IMAP_SK_ALL,
	IMAP_SK_NONE,
	IMAP_SK_FLAG,		/* flag set (neg: not set) */
	IMAP_SK_KEYWORD,
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_SEQ,
	IMAP_SK_UID,
	IMAP_SK_BEFORE,
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE,
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_HEADER,
	IMAP_SK_BODY,
	IMAP_SK_TEXT,
	IMAP_SK_MODSEQ,
	IMAP_SK_NOT,
	IMAP_SK_OR,
	IMAP_SK_AND,
};

struct imap_sk {
	enum imap_sk_kind kind;
	bool neg;
	uint32_t flag;
	uint64_t n;		/* size, modseq, day number */
	char *field, *value;
	struct imap_seqset set;
	struct imap_sk *a, *b;	/* NOT: a; OR: a, b; AND: list in a */
	struct imap_sk *next;	/* AND siblings */
};

struct imap_search_job {
	struct imap_job base;
	struct imap_search_prog prog;
	bool uid, esearch;
	bool save;			/* RETURN (SAVE ...) given */
	unsigned ret;			/* IMAP_SR_* */
	uint32_t *hits;			/* seq or UID */
	size_t nhits;
	uint64_t maxmodseq;
	int ret_code;
};

#define IMAP_SR_MIN 0x1
#define IMAP_SR_MAX 0x2
#define IMAP_SR_COUNT 0x4
#define IMAP_SR_ALL 0x8
#define IMAP_SR_SAVE 0x10

static void
imap_sk_free(struct imap_sk **kp)
{
	struct imap_sk *k = *kp;

	while (k != NULL) {
		struct imap_sk *next = k->next;
		imap_sk_free(&k->a);
		imap_sk_free(&k->b);
		free(k->field);
		free(k->value);
		if (k->set.ranges != NULL)
			imap_seqset_free(&k->set);
		free(k);
		k = next;
	}
	*kp = NULL;
}

/* ---- parsing (loop) ---- */

static const struct {
	const char *name;
	uint32_t flag;
	bool neg;
} imap_sk_flags[] = {
	{ "ANSWERED", STORE_FLAG_ANSWERED, false },
	{ "DELETED", STORE_FLAG_DELETED, false },
	{ "DRAFT", STORE_FLAG_DRAFT, false },
	{ "FLAGGED", STORE_FLAG_FLAGGED, false },
	{ "SEEN", STORE_FLAG_SEEN, false },
	{ "UNANSWERED", STORE_FLAG_ANSWERED, true },
	{ "UNDELETED", STORE_FLAG_DELETED, true },
	{ "UNDRAFT", STORE_FLAG_DRAFT, true },
	{ "UNFLAGGED", STORE_FLAG_FLAGGED, true },
	{ "UNSEEN", STORE_FLAG_SEEN, true },
	/* RFC 3501: no message is ever \Recent here */
	{ "NEW", 0, false },
	{ "RECENT", 0, false },
	{ "OLD", 0, true },
};

/* Keys taking one string: header fields and texts. */
static const struct {
	const char *name;
	enum imap_sk_kind kind;
	const char *field;
} imap_sk_strings[] = {
	{ "FROM", IMAP_SK_HEADER, "From" },
	{ "TO", IMAP_SK_HEADER, "To" },
	{ "CC", IMAP_SK_HEADER, "Cc" },
	{ "BCC", IMAP_SK_HEADER, "Bcc" },
	{ "SUBJECT", IMAP_SK_HEADER, "Subject" },
	{ "BODY", IMAP_SK_BODY, NULL },
	{ "TEXT", IMAP_SK_TEXT, NULL },
	{ "KEYWORD", IMAP_SK_KEYWORD, NULL },
	{ "UNKEYWORD", IMAP_SK_KEYWORD, NULL },
};

static const struct {
	const char *name;
	enum imap_sk_kind kind;
} imap_sk_dates[] = {
	{ "BEFORE", IMAP_SK_BEFORE }, { "ON", IMAP_SK_ON },
	{ "SINCE", IMAP_SK_SINCE }, { "SENTBEFORE", IMAP_SK_SENTBEFORE },
	{ "SENTON", IMAP_SK_SENTON }, { "SENTSINCE", IMAP_SK_SENTSINCE },
};

static const char *const imap_months[] = { "jan", "feb", "mar", "apr",
    "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" };

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t
imap_days(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy" (RFC 9051 §9 date-text); -1 if bad. */
static int
imap_date_parse(const char *s, int64_t *day_r)
{
	unsigned d = 0, y = 0;
	char mon[4];
	size_t i = 0, k;

	while (s[i] >= '0' && s[i] <= '9' && i < 2)
		d = d * 10 + (unsigned)(s[i++] - '0');
	if (i == 0 || s[i++] != '-' || d < 1 || d > 31)
		return -1;
	for (k = 0; k < 3; k++, i++) {
		if (s[i] == '\0')
			return -1;
		mon[k] = (char)(s[i] | 0x20);
	}
	mon[3] = '\0';
	if (s[i++] != '-')
		return -1;
	for (k = 0; k < 4; k++, i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		y = y * 10 + (unsigned)(s[i] - '0');
	}
	if (s[i] != '\0')
		return -1;
	for (k = 0; k < 12; k++)
		if (strcmp(mon, imap_months[k]) == 0) {
			*day_r = imap_days(y, (unsigned)k + 1, d);
			return 0;
		}
	return -1;
}

static struct imap_sk *imap_sk_parse(const struct imap_arg **ap,
    unsigned depth, const char **error_r);

static struct imap_sk *
imap_sk_new(enum imap_sk_kind kind)
{
	struct imap_sk *k = xmalloc(sizeof(*k));

	k->kind = kind;
	return k;
}

/* The next argument as a string (astring), advancing *ap. */
static const char *
imap_sk_string(const struct imap_arg **ap)
{
	const struct imap_arg *a = *ap;
	const char *s;

	if (a == NULL || (s = imap_arg_astring(a)) == NULL ||
	    strlen(s) > IMAP_SEARCH_VALUE_MAX)
		return NULL;
	*ap = a->next;
	return s;
}

static struct imap_sk *
imap_sk_seqset(const char *atom, size_t len, enum imap_sk_kind kind,
    const char **error_r)
{
	struct imap_sk *k = imap_sk_new(kind);

	if (imap_seqset_parse(atom, len, &k->set, error_r) < 0) {
		free(k);
		return NULL;
	}
	return k;
}

/* One key with a name of the tables above; NULL when unknown/bad. */
static struct imap_sk *
imap_sk_named(const char *name, const struct imap_arg **ap,
    const char **error_r)
{
	struct imap_sk *k;
	const char *v, *f;
	int64_t day;

	for (size_t i = 0; i < MF_ARRAY_LEN(imap_sk_flags); i++)
		if (strcasecmp(name, imap_sk_flags[i].name) == 0) {
			k = imap_sk_new(imap_sk_flags[i].flag != 0 ?
			    IMAP_SK_FLAG : imap_sk_flags[i].neg ?
			    IMAP_SK_ALL : IMAP_SK_NONE);
			k->flag = imap_sk_flags[i].flag;
			k->neg = imap_sk_flags[i].neg;
			return k;
		}
	for (size_t i = 0; i < MF_ARRAY_LEN(imap_sk_strings); i++)
		if (strcasecmp(name, imap_sk_strings[i].name) == 0) {
			if ((v = imap_sk_string(ap)) == NULL)
				return NULL;
			k = imap_sk_new(imap_sk_strings[i].kind);
			k->value = xstrdup(v);
			k->neg = strcasecmp(name, "UNKEYWORD") == 0;
			if (imap_sk_strings[i].field != NULL)
				k->field = xstrdup(imap_sk_strings[i].field);
			return k;
		}
	for (size_t i = 0; i < MF_ARRAY_LEN(imap_sk_dates); i++)
		if (strcasecmp(name, imap_sk_dates[i].name) == 0) {
			if ((v = imap_sk_string(ap)) == NULL ||
			    imap_date_parse(v, &day) < 0)
				return NULL;
			k = imap_sk_new(imap_sk_dates[i].kind);
			k->n = (uint64_t)day;
			return k;
		}
	if (strcasecmp(name, "HEADER") == 0) {
		if ((f = imap_sk_string(ap)) == NULL ||
		    (v = imap_sk_string(ap)) == NULL)
			return NULL;
		k = imap_sk_new(IMAP_SK_HEADER);
		k->field = xstrdup(f);
		k->value = xstrdup(v);
		return k;
	}
	if (strcasecmp(name, "UID") == 0) {
		const struct imap_arg *a = *ap;
		if (a == NULL || a->type != IMAP_ARG_ATOM)
			return NULL;
		*ap = a->next;
		return imap_sk_seqset(a->str, a->len, IMAP_SK_UID, error_r);
	}
	return NULL;
}

static struct imap_sk *
imap_sk_number(const char *name, const struct imap_arg **ap)
{
	enum imap_sk_kind kind;
	struct imap_sk *k;
	uint64_t n;

	if (strcasecmp(name, "LARGER") == 0)
		kind = IMAP_SK_LARGER;
	else if (strcasecmp(name, "SMALLER") == 0)
		kind = IMAP_SK_SMALLER;
	else if (strcasecmp(name, "MODSEQ") == 0)
		kind = IMAP_SK_MODSEQ;
	else
		return NULL;
	/* RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] n */
	if (kind == IMAP_SK_MODSEQ && *ap != NULL &&
	    (*ap)->type == IMAP_ARG_QUOTED) {
		*ap = (*ap)->next;
		if (*ap == NULL)
			return NULL;
		*ap = (*ap)->next;
	}
	if (*ap == NULL || imap_arg_number(*ap, 0, INT64_MAX, &n) < 0)
		return NULL;
	*ap = (*ap)->next;
	k = imap_sk_new(kind);
	k->n = n;
	return k;
}

/* Keys up to the end of the list, ANDed. */
static struct imap_sk *
imap_sk_list(const struct imap_arg *a, unsigned depth, const char **error_r)
{
	struct imap_sk *and = imap_sk_new(IMAP_SK_AND), **tail = &and->a;

	if (a == NULL) {
		*error_r = "Missing search key";
		imap_sk_free(&and);
		return NULL;
	}
	while (a != NULL) {
		struct imap_sk *k = imap_sk_parse(&a, depth, error_r);
		if (k == NULL) {
			imap_sk_free(&and);
			return NULL;
		}
		*tail = k;
		tail = &k->next;
	}
	return and;
}

static struct imap_sk *
imap_sk_parse(const struct imap_arg **ap, unsigned depth,
    const char **error_r)
{
	const struct imap_arg *a = *ap;
	struct imap_sk *k;

	*error_r = "Invalid search key";
	if (a == NULL || depth > IMAP_DEPTH_MAX)
		return NULL;
	*ap = a->next;
	if (a->type == IMAP_ARG_LIST)
		return imap_sk_list(a->list, depth + 1, error_r);
	if (a->type != IMAP_ARG_ATOM)
		return NULL;
	if ((a->str[0] >= '0' && a->str[0] <= '9') || a->str[0] == '*' ||
	    a->str[0] == '$')
		return imap_sk_seqset(a->str, a->len, IMAP_SK_SEQ, error_r);
	if (strcasecmp(a->str, "ALL") == 0)
		return imap_sk_new(IMAP_SK_ALL);
	if (strcasecmp(a->str, "NOT") == 0 || strcasecmp(a->str, "OR") == 0) {
		bool or = strcasecmp(a->str, "OR") == 0;
		k = imap_sk_new(or ? IMAP_SK_OR : IMAP_SK_NOT);
		if ((k->a = imap_sk_parse(ap, depth + 1, error_r)) == NULL ||
		    (or && (k->b = imap_sk_parse(ap, depth + 1,
		    error_r)) == NULL)) {
			imap_sk_free(&k);
			return NULL;
		}
		return k;
	}
	if ((k = imap_sk_number(a->str, ap)) != NULL)
		return k;
	return imap_sk_named(a->str, ap, error_r);
}

/* ---- matching (pool) ---- */

bool
imap_search_msg_header(struct imap_search_msg *m)
{
	const char *err = NULL;
	uint64_t off = 0;

	if (m->hdr_read)
		return !m->failed;
	m->hdr_read = true;
	if (store_row_open(m->store, m->row, &m->fd, &err) != 1) {
		m->failed = true;
		return false;
	}
	while (m->hdr.len < IMAP_SEARCH_HEADER_MAX) {
		ssize_t n = pread(m->fd, m->chunk, IMAP_SEARCH_CHUNK,
		    (off_t)off);
		char *end;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_add(&m->hdr, m->chunk, (size_t)n);
		off += (uint64_t)n;
		if ((end = strstr(m->hdr.data, "\r\n\r\n")) != NULL) {
			m->hdr.len = (size_t)(end - m->hdr.data) + 4;
			m->hdr.data[m->hdr.len] = '\0';
			break;
		}
	}
	return true;
}

/* The field from p to next without its first skip bytes (name and
 * colon), unfolded and RFC 2047 decoded, fed to mt from a fresh start. */
static bool
imap_search_field_match(const char *p, const char *next, size_t skip,
    struct mime_match *mt)
{
	struct buf d;
	bool hit;

	buf_init(&d, 0);
	mime_header_decode(p + skip, (size_t)(next - p) - skip, &d);
	mime_match_reset(mt);
	hit = mime_match_feed(mt, d.data, d.len);
	buf_free(&d);
	return hit;
}

/* The decoded, unfolded value of a field called name (NULL: any field,
 * name included, for TEXT) contains value (mime.h folding). */
static bool
imap_search_field(const struct buf *hdr, const char *name,
    const char *value)
{
	size_t nlen = name != NULL ? strlen(name) : 0;
	const char *p = hdr->data, *end = hdr->data + hdr->len;
	struct mime_match *mt = mime_match_new(value, strlen(value));
	bool hit = false;

	while (p < end && !hit) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		bool want = name == NULL || ((size_t)(end - p) > nlen &&
		    p[nlen] == ':' && strncasecmp(p, name, nlen) == 0);

		while (next < end && (*next == ' ' || *next == '\t')) {
			eol = memchr(next, '\n', (size_t)(end - next));
			next = eol ? eol + 1 : end;
		}
		if (want)
			hit = imap_search_field_match(p, next,
			    name != NULL ? nlen + 1 : 0, mt);
		p = next;
	}
	mime_match_free(&mt);
	return hit;
}

/* The MIME structure of m's file, of its first IMAP_SEARCH_PARSE_MAX
 * bytes; owned by the caller. */
static struct mime_message *
imap_search_tree(struct imap_search_msg *m)
{
	struct mime_parser *p = mime_parser_new();
	uint64_t off = 0;

	while (off < IMAP_SEARCH_PARSE_MAX) {
		ssize_t n = pread(m->fd, m->chunk, IMAP_SEARCH_CHUNK,
		    (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		mime_parser_feed(p, m->chunk, (size_t)n);
		off += (uint64_t)n;
	}
	return mime_parser_finish(&p);
}

/* Decoded (transfer encoding, then charset into UTF-8) text of one part
 * fed to mt; *budget_r counts down the encoded bytes read. */
static bool
imap_search_part(struct imap_search_msg *m, uint64_t off, uint64_t len,
    enum mime_cte cte, const struct buf *cs, struct mime_match *mt,
    uint64_t *budget_r)
{
	struct mime_cte_dec *dec = mime_cte_dec_new(cte);
	struct mime_conv *conv = mime_conv_new(cs->data, cs->len);
	struct buf raw, utf;
	bool hit = false, more = true;

	buf_init(&raw, 0);
	buf_init(&utf, 0);
	while (!hit) {
		size_t want = IMAP_SEARCH_CHUNK;
		ssize_t n = 0;

		want = len < want ? (size_t)len : want;
		want = *budget_r < want ? (size_t)*budget_r : want;
		if (more && want > 0)
			n = pread(m->fd, m->chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		buf_reset(&raw);
		buf_reset(&utf);
		if (n > 0) {
			mime_cte_dec_feed(dec, m->chunk, (size_t)n, &raw);
			off += (uint64_t)n;
			len -= (uint64_t)n;
			*budget_r -= (uint64_t)n;
		} else {
			mime_cte_dec_finish(dec, &raw);
			more = false;
		}
		if (raw.len > 0)
			mime_conv_feed(conv, raw.data, raw.len, &utf);
		if (!more)
			mime_conv_finish(conv, &utf);
		hit = mime_match_feed(mt, utf.data, utf.len);
		if (!more)
			break;
	}
	buf_free(&raw);
	buf_free(&utf);
	mime_conv_free(&conv);
	mime_cte_dec_free(&dec);
	return hit;
}

/* The header block of an embedded message (message/rfc822 part),
 * decoded field by field, contains value; at most
 * IMAP_SEARCH_HEADER_MAX bytes of it are read. */
static bool
imap_search_embedded(struct imap_search_msg *m, uint64_t off,
    uint64_t len, const char *value, uint64_t *budget_r)
{
	struct buf hdr;
	bool hit;

	len = len < IMAP_SEARCH_HEADER_MAX ? len : IMAP_SEARCH_HEADER_MAX;
	len = len < *budget_r ? len : *budget_r;
	buf_init(&hdr, 0);
	while (hdr.len < len) {
		size_t want = len - hdr.len < IMAP_SEARCH_CHUNK ?
		    (size_t)(len - hdr.len) : IMAP_SEARCH_CHUNK;
		ssize_t n = pread(m->fd, m->chunk, want,
		    (off_t)(off + hdr.len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf_add(&hdr, m->chunk, (size_t)n);
	}
	*budget_r -= hdr.len;
	hit = hdr.len > 0 && imap_search_field(&hdr, NULL, value);
	buf_free(&hdr);
	return hit;
}

/*
 * The text parts of the body, and the headers of embedded messages,
 * contain value, each decoded by its
 * Content-Transfer-Encoding and charset (RFC 9051 §6.4.4 leaves the
 * decoding to the server; Dovecot decodes too).  Non-text parts are not
 * searched.  XXX: the tree is parsed again for every body key of a
 * message (imap_search_msg has no slot for it); bounded by
 * IMAP_SEARCH_PARSE_MAX and IMAP_SEARCH_DECODE_MAX per key.
 */
static bool
imap_search_body(struct imap_search_msg *m, const char *value)
{
	struct mime_message *tree;
	struct mime_match *mt;
	uint64_t budget = IMAP_SEARCH_DECODE_MAX, start, len;
	enum mime_cte cte;
	struct buf cs;
	bool hit = false;

	if (value[0] == '\0')
		return true;
	tree = imap_search_tree(m);
	mt = mime_match_new(value, strlen(value));
	buf_init(&cs, 0);
	for (uint32_t i = 0; i < mime_part_count(tree) && !hit &&
	    budget > 0; i++) {
		if (mime_part_embedded_header(tree, i, &start, &len))
			hit = imap_search_embedded(m, start, len, value,
			    &budget);
		if (hit || !mime_part_text(tree, i, &start, &len, &cte, &cs))
			continue;
		mime_match_reset(mt);
		hit = imap_search_part(m, start, len, cte, &cs, mt, &budget);
	}
	buf_free(&cs);
	mime_match_free(&mt);
	mime_message_free(&tree);
	return hit;
}

/* The day of a Date: header, time and zone disregarded (RFC 9051). */
static bool
imap_search_sent(struct imap_search_msg *m, int64_t *day_r)
{
	char date[128];
	const char *p;
	unsigned d, y;
	char mon[4];

	if (!imap_search_msg_header(m) || m->hdr.data == NULL)
		return false;
	p = m->hdr.data;
	while (p != NULL && strncasecmp(p, "Date:", 5) != 0) {
		p = strstr(p, "\n");
		p = p != NULL ? p + 1 : NULL;
	}
	if (p == NULL)
		return false;
	str_lcpy(date, p + 5, sizeof(date));
	p = strchr(date, ',');
	p = p != NULL ? p + 1 : date;
	if (sscanf(p, "%u %3s %u", &d, mon, &y) != 3)
		return false;
	for (size_t k = 0; k < 12; k++)
		if (strcasecmp(mon, imap_months[k]) == 0) {
			*day_r = imap_days(y < 100 ? y + 1900 +
			    (y < 50 ? 100 : 0) : y, (unsigned)k + 1, d);
			return true;
		}
	return false;
}

static bool imap_sk_match(struct imap_search_msg *m,
    const struct imap_sk *k);

static bool
imap_sk_match_day(struct imap_search_msg *m, const struct imap_sk *k)
{
	int64_t day, want = (int64_t)k->n;

	if (k->kind <= IMAP_SK_SINCE) {
		int64_t t = m->row->internaldate;
		day = (t >= 0 ? t : t - 86399) / 86400;
	} else if (!imap_search_sent(m, &day)) {
		return false;
	}
	switch (k->kind) {
	case IMAP_SK_BEFORE:
	case IMAP_SK_SENTBEFORE:
		return day < want;
	case IMAP_SK_ON:
	case IMAP_SK_SENTON:
		return day == want;
	default:
		return day >= want;
	}
}

static bool
imap_sk_keyword(const char *keywords, const char *kw)
{
	const char *p = keywords;
	size_t len = strlen(kw);

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ' ');
		size_t l = end != NULL ? (size_t)(end - p) : strlen(p);
		if (l == len && strncasecmp(p, kw, len) == 0)
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

static bool
imap_sk_match(struct imap_search_msg *m, const struct imap_sk *k)
{
	const struct store_row *r = m->row;

	switch (k->kind) {
	case IMAP_SK_ALL:
		return true;
	case IMAP_SK_NONE:
		return false;
	case IMAP_SK_FLAG:
		return ((r->flags & k->flag) != 0) != k->neg;
	case IMAP_SK_KEYWORD:
		return imap_sk_keyword(r->keywords, k->value) != k->neg;
	case IMAP_SK_LARGER:
		return r->size > k->n;
	case IMAP_SK_SMALLER:
		return r->size < k->n;
	case IMAP_SK_SEQ:
		return imap_seqset_contains(&k->set, m->seq);
	case IMAP_SK_UID:
		return imap_seqset_contains(&k->set, r->uid);
	case IMAP_SK_MODSEQ:
		return r->modseq >= k->n;
	case IMAP_SK_HEADER:
		return imap_search_msg_header(m) && m->hdr.data != NULL &&
		    imap_search_field(&m->hdr, k->field, k->value);
	case IMAP_SK_BODY:
		return imap_search_msg_header(m) &&
		    imap_search_body(m, k->value);
	case IMAP_SK_TEXT:
		return imap_search_msg_header(m) && ((m->hdr.data != NULL &&
		    imap_search_field(&m->hdr, NULL, k->value)) ||
		    imap_search_body(m, k->value));
	case IMAP_SK_NOT:
		return !imap_sk_match(m, k->a);
	case IMAP_SK_OR:
		return imap_sk_match(m, k->a) ||
		    imap_sk_match(m, k->b);
	case IMAP_SK_AND:
		for (const struct imap_sk *c = k->a; c != NULL; c = c->next)
			if (!imap_sk_match(m, c))
				return false;
		return true;
	default:
		return imap_sk_match_day(m, k);
	}
}

int
imap_search_prog_run(const struct imap_search_prog *p, struct store *store,
    const char *mailbox, void (*hit)(void *arg, struct imap_search_msg *m),
    void *arg, const char **error_r)
{
	struct store_row *rows = NULL;
	size_t nrows = 0, r = 0;
	char *chunk;
	int ret;

	if ((ret = store_rows_list(store, mailbox, &rows, &nrows,
	    error_r)) != 1)
		return ret;
	chunk = xmalloc(IMAP_SEARCH_CHUNK);
	for (size_t i = 0; i < p->n; i++) {
		struct imap_search_msg m = { .store = store, .chunk = chunk,
		    .seq = (uint32_t)i + 1, .fd = -1 };
		while (r < nrows && rows[r].uid < p->uids[i])
			r++;
		if (r == nrows || rows[r].uid != p->uids[i])
			continue;	/* expunged meanwhile */
		m.row = &rows[r];
		buf_init(&m.hdr, IMAP_SEARCH_HEADER_MAX + IMAP_SEARCH_CHUNK);
		if (imap_sk_match(&m, p->root))
			hit(arg, &m);
		buf_free(&m.hdr);
		if (m.fd >= 0)
			close(m.fd);
	}
	free(chunk);
	store_rows_free(&rows, nrows);
	return 1;
}

static void
imap_search_hit(void *arg, struct imap_search_msg *m)
{
	struct imap_search_job *sj = arg;

	sj->hits[sj->nhits++] = sj->uid ? m->row->uid : m->seq;
	if (m->row->modseq > sj->maxmodseq)
		sj->maxmodseq = m->row->modseq;
}

static void
imap_search_work(struct imap_job *j)
{
	struct imap_search_job *sj = (struct imap_search_job *)j;
	const char *err = NULL;

	sj->hits = xreallocarray(NULL, sj->prog.n + 1, sizeof(*sj->hits));
	sj->ret_code = imap_search_prog_run(&sj->prog, j->store, j->mailbox,
	    imap_search_hit, sj, &err);
	if (sj->ret_code < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
}

/* ---- answering (loop) ---- */

static void
imap_search_free(struct imap_job *j)
{
	struct imap_search_job *sj = (struct imap_search_job *)j;

	imap_search_prog_free(&sj->prog);
	free(sj->hits);
	free(sj);
}

static void
imap_search_esearch(struct imap_session *s, struct imap_search_job *sj,
    struct buf *b)
{
	/* RFC 5182 §2.1: SAVE alone returns no ESEARCH (b stays empty) */
	if ((sj->ret & ~IMAP_SR_SAVE) == 0)
		return;
	buf_printf(b, "ESEARCH (TAG \"%s\")%s", s->tag, sj->uid ? " UID" :
	    "");
	if (sj->nhits > 0 && (sj->ret & IMAP_SR_MIN))
		buf_printf(b, " MIN %u", sj->hits[0]);
	if (sj->nhits > 0 && (sj->ret & IMAP_SR_MAX))
		buf_printf(b, " MAX %u", sj->hits[sj->nhits - 1]);
	if (sj->ret & IMAP_SR_COUNT)
		buf_printf(b, " COUNT %zu", sj->nhits);
	if (sj->nhits > 0 && (sj->ret & IMAP_SR_ALL)) {
		buf_adds(b, " ALL ");
		imap_uidset_out(b, sj->hits, sj->nhits);
	}
	if (sj->nhits > 0 && sj->prog.modseq_key)
		buf_printf(b, " MODSEQ %llu",
		    (unsigned long long)sj->maxmodseq);
}

/*
 * RFC 5182 §2.1: "$" becomes what was found, as UIDs; with MIN and/or
 * MAX but neither ALL nor COUNT, only the messages those name.
 */
static void
imap_search_save(struct imap_session *s, struct imap_search_job *sj)
{
	uint32_t *uids = xreallocarray(NULL, sj->nhits + 1, sizeof(*uids));
	bool all = (sj->ret & (IMAP_SR_ALL | IMAP_SR_COUNT)) != 0 ||
	    (sj->ret & (IMAP_SR_MIN | IMAP_SR_MAX)) == 0;
	size_t n = 0;

	for (size_t i = 0; i < sj->nhits; i++) {
		if (!all && !(i == 0 && (sj->ret & IMAP_SR_MIN)) &&
		    !(i == sj->nhits - 1 && (sj->ret & IMAP_SR_MAX)))
			continue;
		/* seq numbers are indexes + 1 into the job's snapshot */
		uids[n++] = sj->uid ? sj->hits[i] :
		    sj->prog.uids[sj->hits[i] - 1];
	}
	imap_saved_set(s->mbox, uids, n);
	free(uids);
}

static void
imap_search_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_search_job *sj = (struct imap_search_job *)j;
	struct buf b;

	if (sj->ret_code <= 0) {
		log_warnx("%s imap search: %s", s->sid, j->error);
		if (sj->save)	/* RFC 5182 §2.1 */
			imap_saved_set(s->mbox, NULL, 0);
		imap_job_end(s, j, false, "NO", "[UNAVAILABLE] SEARCH failed");
		return;
	}
	if (sj->save)
		imap_search_save(s, sj);
	buf_init(&b, 0);
	if (sj->esearch) {
		imap_search_esearch(s, sj, &b);
	} else {
		buf_adds(&b, "SEARCH");
		for (size_t i = 0; i < sj->nhits; i++)
			buf_printf(&b, " %u", sj->hits[i]);
		/* RFC 7162 §3.1.5 */
		if (sj->nhits > 0 && sj->prog.modseq_key)
			buf_printf(&b, " (MODSEQ %llu)",
			    (unsigned long long)sj->maxmodseq);
	}
	if (b.len > 0)
		imap_untagged(s, "%s", b.data);
	buf_free(&b);
	imap_job_end(s, j, false, "OK", "%sSEARCH completed%s",
	    sj->uid ? "UID " : "", sj->save ? ", result saved" : "");
}

/* RETURN (MIN MAX COUNT ALL SAVE), RFC 4731 §3.1, RFC 5182 §2.1;
 * "()" means ALL. */
static int
imap_search_return(struct imap_search_job *sj, const struct imap_arg *l)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = { { "MIN", IMAP_SR_MIN }, { "MAX", IMAP_SR_MAX },
	    { "COUNT", IMAP_SR_COUNT }, { "ALL", IMAP_SR_ALL },
	    { "SAVE", IMAP_SR_SAVE } };

	if (l == NULL || l->type != IMAP_ARG_LIST)
		return -1;
	sj->esearch = true;
	/* known before anything fails: a failed SAVE empties "$" */
	for (const struct imap_arg *a = l->list; a != NULL; a = a->next)
		sj->save |= imap_arg_is_atom(a, "SAVE");
	for (const struct imap_arg *a = l->list; a != NULL; a = a->next) {
		size_t i;
		for (i = 0; i < MF_ARRAY_LEN(opts); i++)
			if (imap_arg_is_atom(a, opts[i].name))
				break;
		if (i == MF_ARRAY_LEN(opts))
			return -1;
		sj->ret |= opts[i].bit;
	}
	if (sj->ret == 0)
		sj->ret = IMAP_SR_ALL;
	return 0;
}

static bool
imap_sk_has_modseq(const struct imap_sk *k)
{
	for (; k != NULL; k = k->next)
		if (k->kind == IMAP_SK_MODSEQ || imap_sk_has_modseq(k->a) ||
		    imap_sk_has_modseq(k->b))
			return true;
	return false;
}

/* Resolves the sequence sets of the tree against the snapshot. */
static void
imap_sk_resolve(struct imap_sk *k, const struct imap_mailbox *mbox)
{
	for (; k != NULL; k = k->next) {
		if (k->kind == IMAP_SK_SEQ || k->kind == IMAP_SK_UID)
			imap_mbox_resolve(mbox, &k->set,
			    k->kind == IMAP_SK_UID);
		imap_sk_resolve(k->a, mbox);
		imap_sk_resolve(k->b, mbox);
	}
}

void
imap_search_prog_free(struct imap_search_prog *p)
{
	imap_sk_free(&p->root);
	free(p->uids);
	p->uids = NULL;
	p->n = 0;
}

int
imap_search_prog_parse(struct imap_session *s, const char *charset,
    const struct imap_arg *keys, struct imap_search_prog *p,
    const char **status_r, const char **error_r)
{
	const struct imap_mailbox *mbox = s->mbox;

	*status_r = "BAD";
	if (charset != NULL && strcasecmp(charset, "UTF-8") != 0 &&
	    strcasecmp(charset, "US-ASCII") != 0) {
		*status_r = "NO";
		*error_r = "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset";
		return -1;
	}
	if ((p->root = imap_sk_list(keys, 0, error_r)) == NULL)
		return -1;
	p->modseq_key = imap_sk_has_modseq(p->root);
	/* RFC 7162 §3.1.5: a MODSEQ key enables CONDSTORE */
	if (p->modseq_key)
		s->condstore = true;
	imap_sk_resolve(p->root, mbox);
	p->n = mbox->count;
	p->uids = xreallocarray(NULL, p->n + 1, sizeof(*p->uids));
	for (size_t i = 0; i < p->n; i++)
		p->uids[i] = mbox->msgs[i].uid;
	return 0;
}

static int
imap_search_parse(struct imap_session *s, struct imap_search_job *sj,
    const struct imap_command *cmd, const char **status_r,
    const char **error_r)
{
	const struct imap_arg *a = cmd->args;
	const char *cs = NULL;

	*status_r = "BAD";
	*error_r = "Invalid RETURN options";
	if (imap_arg_is_atom(a, "RETURN")) {
		if (imap_search_return(sj, a->next) < 0)
			return -1;
		a = a->next->next;
	}
	if (imap_arg_is_atom(a, "CHARSET")) {
		cs = a->next ? imap_arg_astring(a->next) : NULL;
		*error_r = "Missing charset";
		if (cs == NULL)
			return -1;
		a = a->next->next;
	}
	if (imap_search_prog_parse(s, cs, a, &sj->prog, status_r,
	    error_r) < 0)
		return -1;
	/* RFC 9051 §7.3.4: an IMAP4rev2 client always gets ESEARCH */
	if (s->rev2 && !sj->esearch) {
		sj->esearch = true;
		sj->ret = IMAP_SR_ALL;
	}
	return 0;
}

void
imap_cmd_search(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_search_job *sj = xmalloc(sizeof(*sj));
	const char *status, *err;

	sj->uid = uid;
	if (imap_search_parse(s, sj, cmd, &status, &err) < 0) {
		if (sj->save)	/* RFC 5182 §2.1 */
			imap_saved_set(s->mbox, NULL, 0);
		imap_search_free(&sj->base);
		imap_tagged(s, cmd->tag, status, "%s", err);
		return;
	}
	imap_job_init(s, &sj->base, imap_search_work, imap_search_done,
	    imap_search_free);
	imap_job_start(s, &sj->base);
}
