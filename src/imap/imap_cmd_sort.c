/*
 * imap_cmd_sort.c - SORT and UID SORT (RFC 5256 §3) with the keys
 * ARRIVAL CC DATE FROM REVERSE SIZE SUBJECT TO and DISPLAYFROM DISPLAYTO
 * (RFC 5957), and the pieces THREAD shares: header fields, the sent date
 * (§2.2) and the base subject (§2.1).
 *
 * The search keys are SEARCH's program (imap_cmd_search.c); the pool job
 * takes the sort values of each matching message from its header block
 * (at most IMAP_SEARCH_HEADER_MAX bytes), then sorts.  Strings compare
 * under i;ascii-casemap (upper-cased, then octet order); ties go to the
 * lower sequence number (§3).
 * Subjects and display names are RFC 2047-decoded to UTF-8 first
 * (§2.1 step 1).
 * XXX: one pool job reads every matching message's header block; a sort
 * value cache in the store would spare large mailboxes the reads.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_selected.h"
#include "mime/mime.h"

#define IMAP_SORT_CRIT_MAX 16		/* criteria of one SORT */
#define IMAP_SORT_STR_MAX 1024		/* bytes of a string sort value */
#define IMAP_SORT_DATE_MAX 256		/* bytes of a Date: value read */

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_DATE,
	IMAP_SORT_SIZE,
	/* string values from here on, index into imap_sort_ent.str */
	IMAP_SORT_SUBJECT,
	IMAP_SORT_FROM,
	IMAP_SORT_TO,
	IMAP_SORT_CC,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
	IMAP_SORT_NKEYS,
};

#define IMAP_SORT_NSTR (IMAP_SORT_NKEYS - IMAP_SORT_SUBJECT)

static const struct {
	const char *name;
	enum imap_sort_key key;
	const char *field;		/* header field of address keys */
} imap_sort_keys[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL, NULL },
	{ "DATE", IMAP_SORT_DATE, NULL },
	{ "SIZE", IMAP_SORT_SIZE, NULL },
	{ "SUBJECT", IMAP_SORT_SUBJECT, NULL },
	{ "FROM", IMAP_SORT_FROM, "From" },
	{ "TO", IMAP_SORT_TO, "To" },
	{ "CC", IMAP_SORT_CC, "Cc" },
	{ "DISPLAYFROM", IMAP_SORT_DISPLAYFROM, "From" },
	{ "DISPLAYTO", IMAP_SORT_DISPLAYTO, "To" },
};

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

/* The sort values of one message. */
struct imap_sort_ent {
	uint32_t num;			/* answered: seq or UID */
	uint32_t seq;
	uint64_t size;
	int64_t arrival, date;
	char *str[IMAP_SORT_NSTR];	/* xmalloc'd, NULL as "" */
};

struct imap_sort_job {
	struct imap_job base;
	struct imap_search_prog prog;
	struct imap_sort_crit crit[IMAP_SORT_CRIT_MAX];
	size_t ncrit;
	bool need[IMAP_SORT_NKEYS];
	bool need_hdr;			/* a key of the header block */
	bool uid;
	struct imap_sort_ent *ents;
	size_t n;
	uint64_t maxmodseq;
	int ret_code;
};

/* ---- header fields, dates, subjects (shared with THREAD) ---- */

bool
imap_header_get(const struct buf *hdr, const char *name, struct buf *out)
{
	size_t nlen = strlen(name);
	const char *p = hdr->data, *end = p + hdr->len;

	buf_reset(out);
	while (p != NULL && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		if ((size_t)(end - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			/* RFC 5322 §2.2.3: unfolding removes the CRLF */
			const char *v = p + nlen + 1;
			for (;;) {
				const char *e = next;
				while (e > v && (e[-1] == '\n' ||
				    e[-1] == '\r'))
					e--;
				buf_add(out, v, (size_t)(e - v));
				if (next >= end || (*next != ' ' &&
				    *next != '\t'))
					break;
				v = next;
				eol = memchr(v, '\n', (size_t)(end - v));
				next = eol != NULL ? eol + 1 : end;
			}
			if (out->data == NULL)
				buf_adds(out, "");
			return true;
		}
		p = next;
	}
	return false;
}

static const char *const imap_sort_months[] = { "JAN", "FEB", "MAR",
    "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };

/* RFC 5322 §3.3 zone, with the obsolete names of §4.3 (military and
 * unknown ones count as -0000); seconds east of UTC. */
static int
imap_sort_zone(const char *z)
{
	static const struct {
		const char *name;
		int hours;
	} names[] = { { "UT", 0 }, { "GMT", 0 }, { "EST", -5 },
	    { "EDT", -4 }, { "CST", -6 }, { "CDT", -5 }, { "MST", -7 },
	    { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 } };
	unsigned hhmm;

	if ((z[0] == '+' || z[0] == '-') && strlen(z) >= 5 &&
	    sscanf(z + 1, "%4u", &hhmm) == 1 && isdigit((unsigned char)z[4]))
		return (z[0] == '-' ? -1 : 1) *
		    (int)((hhmm / 100) * 3600 + (hhmm % 100) * 60);
	for (size_t i = 0; i < MF_ARRAY_LEN(names); i++)
		if (strcasecmp(z, names[i].name) == 0)
			return names[i].hours * 3600;
	return 0;
}

/* RFC 5322 §3.3 date-time (and §4.3 obsolete forms) into UTC seconds;
 * -1 when it is not one. */
static int
imap_sort_date_parse(const char *v, int64_t *t_r)
{
	char d[IMAP_SORT_DATE_MAX], mon[16], zone[16] = "";
	unsigned day, year, hh, mm, ss = 0;
	size_t n = 0, depth = 0;
	struct tm tm = { 0 };
	const char *p;
	int k, used = 0;

	/* comments (possibly nested) become spaces */
	for (; *v != '\0' && n + 1 < sizeof(d); v++) {
		if (*v == '(')
			depth++;
		d[n++] = depth > 0 ? ' ' : *v;
		if (*v == ')' && depth > 0)
			depth--;
	}
	d[n] = '\0';
	p = strchr(d, ',');
	p = p != NULL ? p + 1 : d;
	if (sscanf(p, "%2u %15s %4u %2u:%2u%n", &day, mon, &year, &hh, &mm,
	    &used) != 5)
		return -1;
	p += used;
	if (*p == ':' && sscanf(p + 1, "%2u%n", &ss, &used) == 1)
		p += 1 + used;
	if (sscanf(p, "%15s", zone) != 1)
		zone[0] = '\0';
	for (k = 0; k < 12; k++)
		if (strncasecmp(mon, imap_sort_months[k], 3) == 0)
			break;
	if (k == 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return -1;
	/* RFC 5322 §4.3: two-digit and three-digit years */
	year += year < 50 ? 2000 : year < 1000 ? 1900 : 0;
	tm.tm_year = (int)year - 1900;
	tm.tm_mon = k;
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hh;
	tm.tm_min = (int)mm;
	tm.tm_sec = (int)ss;
	*t_r = (int64_t)timegm(&tm) - imap_sort_zone(zone);
	return 0;
}

int64_t
imap_sort_sent_date(const struct buf *hdr, int64_t internaldate)
{
	struct buf v;
	int64_t t = internaldate;

	buf_init(&v, 0);
	if (hdr->data != NULL && imap_header_get(hdr, "Date", &v) &&
	    imap_sort_date_parse(v.data, &t) < 0)
		t = internaldate;
	buf_free(&v);
	return t;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP (RFC 5256 §5); its length or 0. */
static size_t
imap_subj_blob(const char *p, size_t n)
{
	size_t i = 1;

	if (n == 0 || p[0] != '[')
		return 0;
	while (i < n && p[i] != '[' && p[i] != ']')
		i++;
	if (i >= n || p[i] != ']')
		return 0;
	for (i++; i < n && p[i] == ' '; i++)
		;
	return i;
}

/* *subj-blob subj-refwd, subj-refwd = ("re" / ("fw" ["d"])) *WSP
 * [subj-blob] ":"; its length or 0. */
static size_t
imap_subj_refwd(const char *p, size_t n)
{
	size_t i = 0, k;

	while ((k = imap_subj_blob(p + i, n - i)) > 0)
		i += k;
	if (n - i >= 3 && strncasecmp(p + i, "fwd", 3) == 0)
		i += 3;
	else if (n - i >= 2 && (strncasecmp(p + i, "fw", 2) == 0 ||
	    strncasecmp(p + i, "re", 2) == 0))
		i += 2;
	else
		return 0;
	while (i < n && p[i] == ' ')
		i++;
	i += imap_subj_blob(p + i, n - i);
	return i < n && p[i] == ':' ? i + 1 : 0;
}

/* Steps 3 to 5 of §2.1 on s[*b..e). */
static void
imap_subj_leaders(const char *s, size_t *b, size_t e, bool *refwd)
{
	size_t k;

	for (;;) {
		/* step 3: subj-leader = (*subj-blob subj-refwd) / WSP */
		if (*b < e && s[*b] == ' ') {
			(*b)++;
			continue;
		}
		if ((k = imap_subj_refwd(s + *b, e - *b)) > 0) {
			*b += k;
			*refwd = true;
			continue;
		}
		/* step 4: a subj-blob that leaves a non-empty subj-base */
		k = imap_subj_blob(s + *b, e - *b);
		if (k == 0 || *b + k >= e)
			return;
		*b += k;
	}
}

char *
imap_base_subject(const char *raw, bool *refwd_r)
{
	struct buf dec;
	const char *subject;
	size_t len, n = 0, b = 0, e;
	char *s, *out;

	/* RFC 5256 §2.1 step 1: encoded-words decoded to UTF-8 first */
	buf_init(&dec, 0);
	mime_header_decode(raw, strlen(raw), &dec);
	subject = dec.data != NULL ? dec.data : "";
	len = strlen(subject);
	s = xmalloc(len + 1);
	*refwd_r = false;
	/* step 1: every run of white space becomes one SP */
	for (size_t i = 0; i < len; i++) {
		bool ws = subject[i] == ' ' || subject[i] == '\t' ||
		    subject[i] == '\r' || subject[i] == '\n';
		if (!ws)
			s[n++] = subject[i];
		else if (n == 0 || s[n - 1] != ' ')
			s[n++] = ' ';
	}
	e = n;
	for (;;) {
		/* step 2: subj-trailer = "(fwd)" / WSP */
		for (;;) {
			if (e > b && s[e - 1] == ' ')
				e--;
			else if (e - b >= 5 &&
			    strncasecmp(s + e - 5, "(fwd)", 5) == 0) {
				e -= 5;
				*refwd_r = true;
			} else
				break;
		}
		imap_subj_leaders(s, &b, e, refwd_r);
		/* step 6: subj-fwd-hdr and subj-fwd-trl */
		if (e - b >= 6 && strncasecmp(s + b, "[fwd:", 5) == 0 &&
		    s[e - 1] == ']') {
			b += 5;
			e--;
			*refwd_r = true;
			continue;
		}
		break;
	}
	if (e - b > IMAP_SORT_STR_MAX)
		e = b + IMAP_SORT_STR_MAX;
	out = xmalloc(e - b + 1);
	for (size_t i = b; i < e; i++)
		out[i - b] = (char)toupper((unsigned char)s[i]);
	free(s);
	buf_free(&dec);
	return out;
}

/* ---- addresses (RFC 5322 §3.4): the first mailbox of a list ---- */

struct imap_addr {
	struct buf name, local, host;
};

/* The next token at *p: a word (atom or quoted string, into w) returns
 * 'w', a special its character, the end 0.  Comments are skipped. */
static int
imap_addr_token(const char **p, struct buf *w)
{
	const char *s = *p;
	size_t depth = 0;

	buf_reset(w);
	while (*s == ' ' || *s == '\t' || *s == '(' || depth > 0) {
		if (*s == '\0')
			break;
		if (*s == '(')
			depth++;
		else if (*s == ')')
			depth--;
		else if (*s == '\\' && depth > 0 && s[1] != '\0')
			s++;
		s++;
	}
	*p = s;
	if (*s == '\0')
		return 0;
	if (*s == '"') {
		for (s++; *s != '\0' && *s != '"'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			buf_addc(w, *s);
		}
		*p = *s == '"' ? s + 1 : s;
		if (w->data == NULL)
			buf_adds(w, "");
		return 'w';
	}
	if (strchr("<>@,:;.[]", *s) != NULL) {
		*p = s + 1;
		return *s;
	}
	while (*s != '\0' && strchr(" \t()\"<>@,:;.[]", *s) == NULL)
		buf_addc(w, *s++);
	*p = s;
	return 'w';
}

/* Concatenates the tokens up to one of stops (not taken) into out. */
static int
imap_addr_collect(const char **p, struct buf *w, const char *stops,
    struct buf *out)
{
	int t;

	while ((t = imap_addr_token(p, w)) != 0) {
		if (strchr(stops, t) != NULL)
			return t;
		if (t == 'w')
			buf_add(out, w->data, w->len);
		else
			buf_addc(out, (char)t);
	}
	return 0;
}

/* The first mailbox of an address list into a (name, local part, host);
 * a group's name is passed over for its first member. */
static void
imap_addr_first(const char *v, struct imap_addr *a)
{
	struct buf w;
	bool angle = false;
	int t;

	buf_init(&w, 0);
	while ((t = imap_addr_token(&v, &w)) != 0) {
		if (t == 'w' || t == '.') {
			if (t == 'w' && a->name.len > 0)
				buf_addc(&a->name, ' ');
			buf_add(&a->name, t == 'w' ? w.data : ".",
			    t == 'w' ? w.len : 1);
			buf_add(&a->local, t == 'w' ? w.data : ".",
			    t == 'w' ? w.len : 1);
		} else if (t == '<') {
			/* angle-addr = "<" [obs-route] addr-spec ">" */
			angle = true;
			buf_reset(&a->local);
			t = imap_addr_collect(&v, &w, "@>", &a->local);
			if (t == '@' && a->local.len == 0) {
				/* obs-route "@a,@b:" */
				t = imap_addr_collect(&v, &w, ":>", &a->host);
				buf_reset(&a->host);
				if (t == ':')
					t = imap_addr_collect(&v, &w, "@>",
					    &a->local);
			}
			if (t == '@')
				imap_addr_collect(&v, &w, ">", &a->host);
			break;
		} else if (t == '@') {
			/* a bare addr-spec */
			imap_addr_collect(&v, &w, ",;", &a->host);
			break;
		} else if (t == ':' || ((t == ',' || t == ';') &&
		    a->local.len == 0)) {
			/* a group name, an empty entry */
			buf_reset(&a->name);
			buf_reset(&a->local);
		} else if (t == ',' || t == ';') {
			break;		/* a mailbox without domain */
		}
	}
	/* only a name-addr has a display name (a comment is none) */
	if (!angle)
		buf_reset(&a->name);
	buf_free(&w);
}

/* The sort value of an address key of the header block hdr. */
static char *
imap_sort_addr(const struct buf *hdr, const char *field, bool display)
{
	struct imap_addr a;
	struct buf v, out;
	char *ret;

	memset(&a, 0, sizeof(a));
	buf_init(&v, 0);
	buf_init(&out, 0);
	if (hdr->data != NULL && imap_header_get(hdr, field, &v)) {
		imap_addr_first(v.data, &a);
		/* RFC 5957 §3: the display name, else mailbox@host;
		 * RFC 5256 §3: FROM, TO, CC sort by the addr-mailbox */
		if (display && a.name.len > 0)
			mime_header_decode(a.name.data, a.name.len, &out);
		else if (display && a.host.len > 0)
			buf_printf(&out, "%s@%s", a.local.data != NULL ?
			    a.local.data : "", a.host.data);
		else if (a.local.len > 0)
			buf_add(&out, a.local.data, a.local.len);
	}
	if (out.len > IMAP_SORT_STR_MAX)
		out.len = IMAP_SORT_STR_MAX;
	ret = xmalloc(out.len + 1);
	for (size_t i = 0; i < out.len; i++)
		ret[i] = (char)toupper((unsigned char)out.data[i]);
	buf_free(&a.name);
	buf_free(&a.local);
	buf_free(&a.host);
	buf_free(&v);
	buf_free(&out);
	return ret;
}

/* ---- the job (pool) ---- */

static void
imap_sort_hit(void *arg, struct imap_search_msg *m)
{
	struct imap_sort_job *sj = arg;
	struct imap_sort_ent *e = &sj->ents[sj->n++];
	struct buf v;
	bool refwd;

	e->num = sj->uid ? m->row->uid : m->seq;
	e->seq = m->seq;
	e->size = m->row->size;
	e->arrival = e->date = m->row->internaldate;
	if (m->row->modseq > sj->maxmodseq)
		sj->maxmodseq = m->row->modseq;
	/* an unreadable file sorts as a message without header fields */
	if (sj->need_hdr)
		(void)imap_search_msg_header(m);
	if (sj->need[IMAP_SORT_DATE])
		e->date = imap_sort_sent_date(&m->hdr, e->arrival);
	if (sj->need[IMAP_SORT_SUBJECT]) {
		buf_init(&v, 0);
		if (m->hdr.data != NULL)
			imap_header_get(&m->hdr, "Subject", &v);
		e->str[0] = imap_base_subject(v.data != NULL ? v.data : "",
		    &refwd);
		buf_free(&v);
	}
	for (size_t i = 0; i < MF_ARRAY_LEN(imap_sort_keys); i++) {
		enum imap_sort_key k = imap_sort_keys[i].key;
		if (imap_sort_keys[i].field != NULL && sj->need[k])
			e->str[k - IMAP_SORT_SUBJECT] = imap_sort_addr(&m->hdr,
			    imap_sort_keys[i].field,
			    k == IMAP_SORT_DISPLAYFROM ||
			    k == IMAP_SORT_DISPLAYTO);
	}
}

static int
imap_sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct imap_sort_ent *a = pa, *b = pb;
	const struct imap_sort_job *sj = arg;

	for (size_t i = 0; i < sj->ncrit; i++) {
		enum imap_sort_key k = sj->crit[i].key;
		int c;
		if (k == IMAP_SORT_ARRIVAL)
			c = (a->arrival > b->arrival) -
			    (a->arrival < b->arrival);
		else if (k == IMAP_SORT_DATE)
			c = (a->date > b->date) - (a->date < b->date);
		else if (k == IMAP_SORT_SIZE)
			c = (a->size > b->size) - (a->size < b->size);
		else
			c = strcmp(a->str[k - IMAP_SORT_SUBJECT] != NULL ?
			    a->str[k - IMAP_SORT_SUBJECT] : "",
			    b->str[k - IMAP_SORT_SUBJECT] != NULL ?
			    b->str[k - IMAP_SORT_SUBJECT] : "");
		if (c != 0)
			return sj->crit[i].reverse ? -c : c;
	}
	/* RFC 5256 §3: exact matches in sequence number order */
	return (a->seq > b->seq) - (a->seq < b->seq);
}

static void
imap_sort_work(struct imap_job *j)
{
	struct imap_sort_job *sj = (struct imap_sort_job *)j;
	const char *err = NULL;

	sj->ents = xreallocarray(NULL, sj->prog.n + 1, sizeof(*sj->ents));
	memset(sj->ents, 0, (sj->prog.n + 1) * sizeof(*sj->ents));
	sj->ret_code = imap_search_prog_run(&sj->prog, j->store, j->mailbox,
	    imap_sort_hit, sj, &err);
	if (sj->ret_code < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
	else
		qsort_r(sj->ents, sj->n, sizeof(*sj->ents), imap_sort_cmp,
		    sj);
}

/* ---- answering (loop) ---- */

static void
imap_sort_free(struct imap_job *j)
{
	struct imap_sort_job *sj = (struct imap_sort_job *)j;

	imap_search_prog_free(&sj->prog);
	for (size_t i = 0; i < sj->n; i++)
		for (size_t k = 0; k < IMAP_SORT_NSTR; k++)
			free(sj->ents[i].str[k]);
	free(sj->ents);
	free(sj);
}

static void
imap_sort_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_sort_job *sj = (struct imap_sort_job *)j;
	struct buf b;

	if (sj->ret_code <= 0) {
		log_warnx("%s imap sort: %s", s->sid, j->error);
		imap_job_end(s, j, false, "NO", "[UNAVAILABLE] SORT failed");
		return;
	}
	buf_init(&b, 0);
	buf_adds(&b, "SORT");
	for (size_t i = 0; i < sj->n; i++)
		buf_printf(&b, " %u", sj->ents[i].num);
	/* RFC 7162 §3.1.5 */
	if (sj->n > 0 && sj->prog.modseq_key)
		buf_printf(&b, " (MODSEQ %llu)",
		    (unsigned long long)sj->maxmodseq);
	imap_untagged(s, "%s", b.data);
	buf_free(&b);
	imap_job_end(s, j, false, "OK", "%sSORT completed",
	    sj->uid ? "UID " : "");
}

/* sort-criteria = "(" sort-criterion *(SP sort-criterion) ")",
 * sort-criterion = ["REVERSE" SP] sort-key (RFC 5256 §5). */
static int
imap_sort_criteria(struct imap_sort_job *sj, const struct imap_arg *l)
{
	bool reverse = false;

	if (l == NULL || l->type != IMAP_ARG_LIST || l->list == NULL)
		return -1;
	for (const struct imap_arg *a = l->list; a != NULL; a = a->next) {
		size_t i;
		if (!reverse && imap_arg_is_atom(a, "REVERSE")) {
			reverse = true;
			continue;
		}
		for (i = 0; i < MF_ARRAY_LEN(imap_sort_keys); i++)
			if (imap_arg_is_atom(a, imap_sort_keys[i].name))
				break;
		if (i == MF_ARRAY_LEN(imap_sort_keys) ||
		    sj->ncrit == IMAP_SORT_CRIT_MAX)
			return -1;
		sj->crit[sj->ncrit].key = imap_sort_keys[i].key;
		sj->crit[sj->ncrit++].reverse = reverse;
		sj->need[imap_sort_keys[i].key] = true;
		sj->need_hdr |= imap_sort_keys[i].key != IMAP_SORT_ARRIVAL &&
		    imap_sort_keys[i].key != IMAP_SORT_SIZE;
		reverse = false;
	}
	return reverse ? -1 : 0;
}

void
imap_cmd_sort(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_sort_job *sj = xmalloc(sizeof(*sj));
	const struct imap_arg *a = cmd->args;
	const char *status = "BAD", *err = "Syntax: SORT (criteria) charset "
	    "search-keys", *cs;

	sj->uid = uid;
	if (imap_sort_criteria(sj, a) < 0 || a->next == NULL ||
	    (cs = imap_arg_astring(a->next)) == NULL ||
	    imap_search_prog_parse(s, cs, a->next->next, &sj->prog, &status,
	    &err) < 0) {
		imap_sort_free(&sj->base);
		imap_tagged(s, cmd->tag, status, "%s", err);
		return;
	}
	imap_job_init(s, &sj->base, imap_sort_work, imap_sort_done,
	    imap_sort_free);
	imap_job_start(s, &sj->base);
}
