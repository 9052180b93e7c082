/*
 * mime_tree.c - BODY[section] addressing (RFC 9051 §6.4.5) and the cached
 * form of the part tree.
 *
 * Part numbers: a message whose body is not multipart has only part 1, its
 * body; a multipart's parts are numbered from 1; a message/rfc822 part's
 * numbers refer to the parts of the embedded message.  HEADER and TEXT
 * apply to the message or to a message/rfc822 part; MIME to any numbered
 * part (for part 1 of a single-part message that is the message header).
 *
 * Serialised form, version 1 (all numbers unsigned LEB128 varints):
 *   "M" 0x01, size, nparts, then per part in pre-order:
 *   parent + 1 (0 for the root), kind | cte << 2 | flags << 5,
 *   hdr_start, body_start - hdr_start, body_end - body_start, lines.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

#define MIME_TREE_MAGIC 'M'
#define MIME_TREE_VERSION 1
#define MIME_VARINT_MAX 10	/* bytes of a 64-bit LEB128 */
#define MIME_PF_MASK (MIME_PF_OPAQUE | MIME_PF_DIGEST | MIME_PF_MSG | \
	MIME_PF_DEFAULT_CT)

enum mime_text {
	MIME_TEXT_NONE,		/* just part numbers */
	MIME_TEXT_MIME,
	MIME_TEXT_HEADER,
	MIME_TEXT_TEXT,
};

/* spec               meaning */
static const struct {
	const char *spec;
	enum mime_text text;
} mime_text_table[] = {
	{ "", MIME_TEXT_NONE },
	{ "MIME", MIME_TEXT_MIME },
	{ "HEADER", MIME_TEXT_HEADER },
	{ "HEADER.FIELDS", MIME_TEXT_HEADER },
	{ "HEADER.FIELDS.NOT", MIME_TEXT_HEADER },
	{ "TEXT", MIME_TEXT_TEXT },
};

/* The n-th (1-based) part inside cur (MIME_NONE: the message). */
static uint32_t
mime_section_child(const struct mime_message *m, uint32_t cur, uint64_t n)
{
	const struct mime_part *c;
	uint32_t i;

	if (cur == MIME_NONE)
		i = 0;
	else if (m->parts[cur].kind == MIME_KIND_MESSAGE)
		i = m->parts[cur].first_child;
	else if (m->parts[cur].kind == MIME_KIND_MULTIPART &&
	    !(m->parts[cur].flags & MIME_PF_MSG))
		i = cur;
	else
		return MIME_NONE;
	c = &m->parts[i];
	if (c->kind != MIME_KIND_MULTIPART)	/* a message's only part */
		return n == 1 ? i : MIME_NONE;
	for (i = c->first_child; i != MIME_NONE && n > 1; n--)
		i = m->parts[i].next;
	return i;
}

/* Parses "1.2.3." into nums; returns where the text spec starts, NULL on
 * bad syntax. */
static const char *
mime_section_nums(const char *s, uint64_t *nums, size_t *n_r)
{
	size_t n = 0;

	while (isdigit((unsigned char)*s)) {
		uint64_t v = 0;

		if (*s == '0')
			return NULL;	/* nz-number */
		for (; isdigit((unsigned char)*s); s++)
			v = v > UINT32_MAX ? v : v * 10 + (uint64_t)(*s - '0');
		nums[n++] = v;
		if (*s == '\0')
			break;
		if (*s++ != '.' || *s == '\0')
			return NULL;
	}
	*n_r = n;
	return s;
}

int
mime_section_range(const struct mime_message *m, const char *section,
    uint64_t *start_r, uint64_t *len_r, enum mime_cte *cte_r)
{
	uint64_t nums[MIME_SECTION_MAX / 2 + 1];
	const struct mime_part *pt;
	enum mime_text text = MIME_TEXT_NONE;
	uint32_t cur = MIME_NONE;
	size_t n, i;
	const char *s;
	bool known = false;

	if (strlen(section) > MIME_SECTION_MAX)
		return -1;
	if ((s = mime_section_nums(section, nums, &n)) == NULL)
		return -1;
	for (i = 0; i < MF_ARRAY_LEN(mime_text_table) && !known; i++) {
		known = strcasecmp(s, mime_text_table[i].spec) == 0;
		text = mime_text_table[i].text;
	}
	if (!known || (text == MIME_TEXT_MIME && n == 0))
		return -1;
	for (i = 0; i < n && (i == 0 || cur != MIME_NONE); i++)
		cur = mime_section_child(m, cur, nums[i]);
	if (n > 0 && cur == MIME_NONE)
		return 0;
	if (n == 0 && text == MIME_TEXT_NONE) {
		*start_r = 0;
		*len_r = m->size;
		if (cte_r != NULL)
			*cte_r = MIME_CTE_7BIT;
		return 1;
	}
	if (text == MIME_TEXT_HEADER || text == MIME_TEXT_TEXT) {
		if (n > 0 && m->parts[cur].kind != MIME_KIND_MESSAGE)
			return 0;
		cur = n > 0 ? m->parts[cur].first_child : 0;
	}
	pt = &m->parts[cur];
	if (text == MIME_TEXT_MIME || text == MIME_TEXT_HEADER) {
		*start_r = pt->hdr_start;
		*len_r = pt->body_start - pt->hdr_start;
	} else {
		*start_r = pt->body_start;
		*len_r = pt->body_end - pt->body_start;
	}
	if (cte_r != NULL)
		*cte_r = (enum mime_cte)pt->cte;
	return 1;
}

/* ---- serialisation ---- */

static void
mime_varint_put(struct buf *out, uint64_t v)
{
	do {
		uint8_t b = v & 0x7f;

		v >>= 7;
		buf_addc(out, (char)(b | (v != 0 ? 0x80 : 0)));
	} while (v != 0);
}

static bool
mime_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *v_r)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < MIME_VARINT_MAX && *pp < end; i++) {
		uint8_t b = *(*pp)++;

		if (i == MIME_VARINT_MAX - 1 && b > 1)
			return false;	/* past 64 bits */
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v_r = v;
			return true;
		}
	}
	return false;
}

void
mime_tree_serialize(const struct mime_message *m, struct buf *out)
{
	buf_addc(out, MIME_TREE_MAGIC);
	buf_addc(out, MIME_TREE_VERSION);
	mime_varint_put(out, m->size);
	mime_varint_put(out, m->nparts);
	for (uint32_t i = 0; i < m->nparts; i++) {
		const struct mime_part *pt = &m->parts[i];

		mime_varint_put(out, pt->parent == MIME_NONE ? 0 :
		    (uint64_t)pt->parent + 1);
		mime_varint_put(out, (uint64_t)pt->kind |
		    (uint64_t)pt->cte << 2 | (uint64_t)pt->flags << 5);
		mime_varint_put(out, pt->hdr_start);
		mime_varint_put(out, pt->body_start - pt->hdr_start);
		mime_varint_put(out, pt->body_end - pt->body_start);
		mime_varint_put(out, pt->lines);
	}
}

/* Checks part i (just read, not yet linked) against the tree so far. */
static const char *
mime_tree_check(const struct mime_message *m, uint64_t parent,
    uint64_t bits, uint64_t hdr, uint64_t hlen, uint64_t blen,
    uint64_t lines)
{
	uint64_t kind = bits & 3, cte = (bits >> 2) & 7, flags = bits >> 5;
	const struct mime_part *pp;

	if (kind > MIME_KIND_MESSAGE || cte > MIME_CTE_OTHER ||
	    (flags & ~(uint64_t)MIME_PF_MASK) != 0)
		return "bad part kind or flags";
	if (hdr > m->size || hlen > m->size - hdr ||
	    blen > m->size - hdr - hlen || lines > blen)
		return "part outside the message";
	if ((parent == 0) != (m->nparts == 0) || parent > m->nparts)
		return "bad parent";
	if (parent == 0)
		return hdr == 0 && hlen + blen == m->size &&
		    (flags & MIME_PF_MSG) ? NULL : "bad root";
	pp = &m->parts[parent - 1];
	if (pp->depth >= MIME_DEPTH_MAX || pp->kind == MIME_KIND_BASIC)
		return "bad nesting";
	if (hdr < pp->body_start || hdr + hlen + blen > pp->body_end ||
	    (pp->last_child != MIME_NONE &&
	    hdr < m->parts[pp->last_child].body_end))
		return "part out of order";
	if (pp->kind == MIME_KIND_MESSAGE && (pp->nchildren > 0 ||
	    hdr != pp->body_start || hdr + hlen + blen != pp->body_end))
		return "bad embedded message";
	if ((pp->kind == MIME_KIND_MESSAGE) != ((flags & MIME_PF_MSG) != 0))
		return "bad message flag";
	return NULL;
}

static const char *
mime_tree_parts(struct mime_message *m, const uint8_t *p,
    const uint8_t *end, uint64_t nparts)
{
	for (uint64_t i = 0; i < nparts; i++) {
		uint64_t v[6];
		const char *err;
		struct mime_part *pt;
		uint32_t idx;

		for (size_t k = 0; k < MF_ARRAY_LEN(v); k++) {
			if (!mime_varint_get(&p, end, &v[k]))
				return "truncated";
		}
		err = mime_tree_check(m, v[0], v[1], v[2], v[3], v[4], v[5]);
		if (err != NULL)
			return err;
		idx = mime_part_add(m, v[0] == 0 ? MIME_NONE :
		    (uint32_t)(v[0] - 1), v[2]);
		pt = &m->parts[idx];
		pt->kind = v[1] & 3;
		pt->cte = (v[1] >> 2) & 7;
		pt->flags = (uint8_t)(v[1] >> 5);
		pt->body_start = v[2] + v[3];
		pt->body_end = pt->body_start + v[4];
		pt->lines = v[5];
	}
	for (uint32_t i = 0; i < m->nparts; i++) {
		if (m->parts[i].kind == MIME_KIND_MESSAGE &&
		    m->parts[i].nchildren != 1)
			return "message part without its message";
	}
	return p == end ? NULL : "trailing bytes";
}

int
mime_tree_deserialize(const void *data, size_t len,
    struct mime_message **m_r, const char **error_r)
{
	const uint8_t *p = data, *end = p + len;
	struct mime_message *m;
	uint64_t nparts;
	const char *err;

	*m_r = NULL;
	if (len < 2 || p[0] != MIME_TREE_MAGIC || p[1] != MIME_TREE_VERSION) {
		*error_r = "bad magic or version";
		return -1;
	}
	p += 2;
	m = xmalloc(sizeof(*m));
	buf_init(&m->arena, 0);
	if (!mime_varint_get(&p, end, &m->size) ||
	    !mime_varint_get(&p, end, &nparts))
		err = "truncated";
	else if (nparts == 0 || nparts > MIME_PARTS_MAX)
		err = "bad part count";
	else
		err = mime_tree_parts(m, p, end, nparts);
	if (err != NULL) {
		mime_message_free(&m);
		*error_r = err;
		return -1;
	}
	*m_r = m;
	return 1;
}
