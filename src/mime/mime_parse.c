/*
 * mime_parse.c - the streaming part-tree builder, see mime.h.
 *
 * Bytes are cut into lines at LF (CRLF as stored; a bare LF is accepted).
 * Of each line only a bounded prefix is kept: MIME_FIELD_MAX bytes in a
 * header (to read the field), MIME_LINE_KEEP in a body (enough to see a
 * boundary), so memory does not depend on line length, and every decision
 * depends only on the kept prefix: any chunking gives the same tree.
 *
 * A header ends at an empty line (included in the header block), at a
 * boundary line of an enclosing multipart, or at a line that is neither a
 * field nor a continuation (XXX: RFC 5322 §2.1 has no such case; we start
 * the body there, with no blank line, rather than swallow the text as
 * header as Dovecot does).  Boundary lines (RFC 2046 §5.1.1) are matched
 * innermost first by prefix "--boundary", like Dovecot; the CRLF before a
 * boundary belongs to the boundary, not to the part.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

/* "--" boundary "--": all a body line needs to show. */
#define MIME_LINE_KEEP (2 + MIME_BOUNDARY_MAX + 2)

enum mime_state {
	MIME_ST_HEADER,
	MIME_ST_BODY,
};

struct mime_bound {
	uint32_t part;
	size_t len;
	char text[MIME_BOUNDARY_MAX];
};

struct mime_parser {
	struct mime_message *m;
	uint64_t off;		/* bytes fed */
	uint64_t nl;		/* LFs before the current line */
	enum mime_state state;
	uint32_t cur;		/* entity whose header or body we are in */
	/* the current line */
	uint64_t line_start;
	uint64_t line_len;	/* bytes so far, terminator included */
	char last;		/* its last byte so far */
	size_t keep;		/* prefix bytes kept of this line */
	unsigned prev_eol;	/* terminator length of the previous line */
	struct buf line;	/* kept prefix */
	/* the header field being collected, unfolded */
	struct buf field;
	bool field_open, field_long;
	uint32_t nfields;
	struct mime_bound bound[MIME_DEPTH_MAX];
	unsigned nbound;
};

uint32_t
mime_part_add(struct mime_message *m, uint32_t parent, uint64_t hdr_start)
{
	struct mime_part *pt;
	uint32_t i = m->nparts;

	xassert(i < MIME_PARTS_MAX);
	if ((i & (i - 1)) == 0)	/* 0, 1, 2, 4...: double */
		m->parts = xreallocarray(m->parts, i == 0 ? 1 : 2 * i,
		    sizeof(*m->parts));
	m->nparts++;
	pt = &m->parts[i];
	memset(pt, 0, sizeof(*pt));
	pt->parent = parent;
	pt->first_child = pt->last_child = pt->next = MIME_NONE;
	pt->hdr_start = pt->body_start = pt->body_end = hdr_start;
	if (parent != MIME_NONE) {
		struct mime_part *pp = &m->parts[parent];

		pt->depth = pp->depth + 1;
		if (pp->last_child == MIME_NONE)
			pp->first_child = i;
		else
			m->parts[pp->last_child].next = i;
		pp->last_child = i;
		pp->nchildren++;
	}
	return i;
}

struct mime_parser *
mime_parser_new(void)
{
	struct mime_parser *p = xmalloc(sizeof(*p));

	p->m = xmalloc(sizeof(*p->m));
	p->m->parsed = true;
	buf_init(&p->m->arena, 0);
	buf_init(&p->line, MIME_FIELD_MAX);
	buf_init(&p->field, MIME_FIELD_MAX);
	p->cur = mime_part_add(p->m, MIME_NONE, 0);
	p->m->parts[0].flags = MIME_PF_MSG;
	p->state = MIME_ST_HEADER;
	p->keep = MIME_FIELD_MAX;
	return p;
}

void
mime_parser_free(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;

	if (p == NULL)
		return;
	mime_message_free(&p->m);
	buf_free(&p->line);
	buf_free(&p->field);
	x_free(pp);
}

void
mime_message_free(struct mime_message **mp)
{
	struct mime_message *m = *mp;

	if (m == NULL)
		return;
	free(m->parts);
	buf_free(&m->arena);
	x_free(mp);
}

uint64_t
mime_message_size(const struct mime_message *m)
{
	return m->size;
}

/* ---- header fields ---- */

/* RFC 5322 §3.6.8: ftext is %d33-57 / %d59-126; obs-optional allows WSP
 * before the colon.  Returns the name length, 0 when not a field. */
static size_t
mime_field_name_len(const char *s, size_t len)
{
	size_t i, n;

	for (i = 0; i < len && s[i] != ':'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t')
			continue;
		if (c < 33 || c > 126)
			return 0;
	}
	if (i == len)
		return 0;
	for (n = i; n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'); n--)
		;
	/* WSP inside the name ("a b:") is no field either */
	if (memchr(s, ' ', n) != NULL || memchr(s, '\t', n) != NULL)
		return 0;
	return n;
}

static void
mime_field_keep(struct mime_parser *p)
{
	struct mime_message *m = p->m;
	struct mime_part *pt = &m->parts[p->cur];
	const char *s = p->field.data, *v, *e;
	size_t n = mime_field_name_len(s, p->field.len);
	int f = mime_field_lookup(s, n);

	if (f < 0 || pt->set[f])
		return;
	if (f >= MIME_FLD_ENV_FIRST && !(pt->flags & MIME_PF_MSG))
		return;
	v = (const char *)memchr(s, ':', p->field.len) + 1;
	e = s + p->field.len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if ((size_t)(e - v) > MIME_KEPT_MAX - m->arena.len)
		return;
	pt->set[f] = true;
	pt->fld[f].off = (uint32_t)m->arena.len;
	pt->fld[f].len = (uint32_t)(e - v);
	buf_add(&m->arena, v, (size_t)(e - v));
}

static void
mime_field_finish(struct mime_parser *p)
{
	if (!p->field_open)
		return;
	p->field_open = false;
	if (!p->field_long)
		mime_field_keep(p);
	buf_reset(&p->field);
}

/* A field line; s/len is the kept prefix, long when cut. */
static void
mime_field_start(struct mime_parser *p, const char *s, size_t len,
    bool cut)
{
	mime_field_finish(p);
	if (p->nfields >= MIME_FIELDS_MAX)
		return;
	p->nfields++;
	p->field_open = true;
	p->field_long = cut;
	if (!cut)
		buf_add(&p->field, s, len);
}

/* RFC 5322 §2.2.3: unfolding removes the CRLF, the WSP stays. */
static void
mime_field_cont(struct mime_parser *p, const char *s, size_t len, bool cut)
{
	if (!p->field_open || p->field_long)
		return;
	if (cut || len > buf_room(&p->field)) {
		p->field_long = true;
		return;
	}
	buf_add(&p->field, s, len);
}

/* ---- entities ---- */

static bool
mime_ci_eq(struct mime_value v, const char *s)
{
	return v.len == strlen(s) && strncasecmp(v.p, s, v.len) == 0;
}

/* The boundary parameter, if usable (RFC 2046 §5.1.1: 1 to 70 chars). */
static bool
mime_boundary_get(struct mime_parser *p, struct mime_value rest,
    struct mime_bound *b)
{
	struct mime_value name;
	struct buf val;
	bool ok = false;

	buf_init(&val, 0);
	while (mime_param_next(&rest, &name, &val)) {
		if (!mime_ci_eq(name, "boundary"))
			continue;
		if (val.len >= 1 && val.len <= MIME_BOUNDARY_MAX) {
			b->len = val.len;
			memcpy(b->text, val.data, val.len);
			ok = true;
		}
		break;
	}
	buf_free(&val);
	return ok;
}

/* Decides what the entity whose header just ended is (RFC 2045 §5.2,
 * RFC 2046 §5.1.5 for the digest default), opening it if we can. */
static void
mime_classify(struct mime_parser *p)
{
	struct mime_message *m = p->m;
	struct mime_part *pt = &m->parts[p->cur];
	struct mime_value type, sub, rest;
	bool room = pt->depth < MIME_DEPTH_MAX &&
	    m->nparts < MIME_PARTS_MAX && p->nbound < MIME_DEPTH_MAX;
	bool msg;

	pt->cte = (uint8_t)mime_cte_parse(mime_field(m, pt,
	    MIME_FLD_CTE));
	if (!mime_ct_parse(mime_field(m, pt, MIME_FLD_CONTENT_TYPE), &type,
	    &sub, &rest)) {
		pt->flags |= MIME_PF_DEFAULT_CT;
		msg = (pt->flags & MIME_PF_DIGEST) != 0;
	} else if (mime_ci_eq(type, "multipart")) {
		struct mime_bound *b = &p->bound[p->nbound];

		if (room && mime_boundary_get(p, rest, b)) {
			pt->kind = MIME_KIND_MULTIPART;
			b->part = p->cur;
			p->nbound++;
		} else {
			pt->flags |= MIME_PF_OPAQUE;
		}
		return;
	} else {
		msg = mime_ci_eq(type, "message") &&
		    (mime_ci_eq(sub, "rfc822") || mime_ci_eq(sub, "global"));
	}
	if (!msg)
		return;
	/* RFC 2046 §5.2.1: only 7bit, 8bit or binary can be parsed */
	if (room && pt->cte <= MIME_CTE_BINARY)
		pt->kind = MIME_KIND_MESSAGE;
	else
		pt->flags |= MIME_PF_OPAQUE;
}

/* Ends the header of the current entity; the body starts at body_start
 * with nl LFs before it. */
static void
mime_header_end(struct mime_parser *p, uint64_t body_start, uint64_t nl)
{
	struct mime_part *pt;
	uint32_t child;

	mime_field_finish(p);
	pt = &p->m->parts[p->cur];
	pt->body_start = pt->body_end = body_start;
	pt->nl_start = nl;
	p->state = MIME_ST_BODY;
	mime_classify(p);
	if (p->m->parts[p->cur].kind != MIME_KIND_MESSAGE)
		return;
	child = mime_part_add(p->m, p->cur, body_start);
	p->m->parts[child].flags = MIME_PF_MSG;
	p->cur = child;
	p->state = MIME_ST_HEADER;
	p->nfields = 0;
}

/* Ends the body of entity i at end, nl LFs before it. */
static void
mime_part_close(struct mime_parser *p, uint32_t i, uint64_t end,
    uint64_t nl)
{
	struct mime_part *pt = &p->m->parts[i];

	if (end <= pt->body_start) {
		pt->body_end = pt->body_start;
		pt->lines = 0;
	} else {
		pt->body_end = end;
		pt->lines = nl - pt->nl_start;
	}
}

/* Innermost enclosing boundary the line starts with, or -1. */
static int
mime_boundary_match(const struct mime_parser *p, const char *s, size_t len,
    bool *close_r)
{
	if (len < 2 || s[0] != '-' || s[1] != '-')
		return -1;
	for (unsigned i = p->nbound; i-- > 0;) {
		const struct mime_bound *b = &p->bound[i];

		if (len < 2 + b->len || memcmp(s + 2, b->text, b->len) != 0)
			continue;
		*close_r = len >= 4 + b->len && s[2 + b->len] == '-' &&
		    s[3 + b->len] == '-';
		return (int)i;
	}
	return -1;
}

/* RFC 2046 §5.1.5: in multipart/digest the default type is message/rfc822 */
static bool
mime_is_digest(const struct mime_message *m, uint32_t mp)
{
	struct mime_value type, sub, rest;

	return mime_ct_parse(mime_field(m, &m->parts[mp],
	    MIME_FLD_CONTENT_TYPE), &type, &sub, &rest) &&
	    mime_ci_eq(sub, "digest");
}

/* A boundary line of level lvl: closes everything inside that multipart,
 * then opens its next part or, after the close delimiter, its epilogue. */
static void
mime_boundary(struct mime_parser *p, unsigned lvl, bool close)
{
	uint32_t mp = p->bound[lvl].part, child;
	uint64_t end = p->line_start - p->prev_eol;
	uint64_t nl = p->nl - (p->prev_eol > 0 ? 1 : 0);

	/* a header cut short by the boundary also leaves it the CRLF */
	while (p->state == MIME_ST_HEADER) {
		if (end >= p->m->parts[p->cur].hdr_start)
			mime_header_end(p, end, nl);
		else
			mime_header_end(p, p->line_start, p->nl);
	}
	/* an empty body after a blank line keeps it: the innermost entity
	 * decides, every enclosing one ends at the same byte */
	if (p->cur != mp && end < p->m->parts[p->cur].body_start) {
		end = p->m->parts[p->cur].body_start;
		nl = p->m->parts[p->cur].nl_start;
	}
	for (uint32_t i = p->cur; i != mp; i = p->m->parts[i].parent)
		mime_part_close(p, i, end, nl);
	p->cur = mp;
	p->state = MIME_ST_BODY;
	p->nbound = lvl + 1;
	if (close) {
		p->nbound = lvl;
		return;
	}
	if (p->m->nparts >= MIME_PARTS_MAX)
		return;		/* the rest of the multipart is opaque */
	child = mime_part_add(p->m, mp, p->off);
	if (mime_is_digest(p->m, mp))
		p->m->parts[child].flags |= MIME_PF_DIGEST;
	p->cur = child;
	p->state = MIME_ST_HEADER;
	p->nfields = 0;
}

/* ---- lines ---- */

/* A complete line: the kept prefix is in p->line, eol is the length of its
 * terminator (2 CRLF, 1 LF, 0 at the end of input). */
static void
mime_line(struct mime_parser *p, unsigned eol)
{
	uint64_t content = p->line_len - eol;
	const char *s = p->line.data != NULL ? p->line.data : "";
	size_t len = content < p->line.len ? (size_t)content : p->line.len;
	bool cut = content > len, close;
	int lvl;

	for (;;) {
		lvl = mime_boundary_match(p, s, len, &close);
		if (lvl >= 0) {
			mime_boundary(p, (unsigned)lvl, close);
			return;
		}
		if (p->state == MIME_ST_BODY)
			return;
		if (content == 0) {
			mime_header_end(p, p->off, p->nl + (eol > 0));
			return;
		}
		if (s[0] == ' ' || s[0] == '\t') {
			mime_field_cont(p, s, len, cut);
			return;
		}
		if (mime_field_name_len(s, len) > 0) {
			mime_field_start(p, s, len, cut);
			return;
		}
		/* not a field: the body starts here, look at it again */
		mime_header_end(p, p->line_start, p->nl);
	}
}

static void
mime_line_end(struct mime_parser *p, unsigned eol)
{
	mime_line(p, eol);
	p->nl += eol > 0;
	p->prev_eol = eol;
	p->line_start = p->off;
	p->line_len = 0;
	p->last = 0;
	buf_reset(&p->line);
	p->keep = p->state == MIME_ST_HEADER ? MIME_FIELD_MAX :
	    MIME_LINE_KEEP;
}

void
mime_parser_feed(struct mime_parser *p, const char *data, size_t len)
{
	while (len > 0) {
		const char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) + 1 : len;
		bool cr = false;

		if (lf != NULL)
			cr = n >= 2 ? data[n - 2] == '\r' :
			    p->line_len > 0 && p->last == '\r';
		if (p->line.len < p->keep) {
			size_t k = p->keep - p->line.len;

			buf_add(&p->line, data, n < k ? n : k);
		}
		p->line_len += n;
		p->last = data[n - 1];
		p->off += n;
		data += n;
		len -= n;
		if (lf != NULL)
			mime_line_end(p, cr ? 2 : 1);
	}
}

struct mime_message *
mime_parser_finish(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	struct mime_message *m;

	if (p->line_len > 0)
		mime_line_end(p, 0);
	while (p->state == MIME_ST_HEADER)
		mime_header_end(p, p->off, p->nl);
	for (uint32_t i = p->cur; i != MIME_NONE; i = p->m->parts[i].parent)
		mime_part_close(p, i, p->off, p->nl);
	m = p->m;
	m->size = p->off;
	p->m = NULL;
	mime_parser_free(pp);
	return m;
}
