/*
 * mime_header.c - parsing of kept header values: the field table,
 * Content-Type and its parameters (RFC 2045 §5.1), tokens, and RFC 5322
 * §3.4 address lists into IMAP address structures (RFC 9051 §7.5.2);
 * plus the HEADER.FIELDS filter.  Everything is lenient and bounded by the
 * value it reads: garbage gives odd strings, never a crash.
 */
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

/* name          field */
static const struct {
	const char *name;
	enum mime_fld fld;
} mime_field_table[] = {
	{ "Content-Type", MIME_FLD_CONTENT_TYPE },
	{ "Content-Transfer-Encoding", MIME_FLD_CTE },
	{ "Content-ID", MIME_FLD_CONTENT_ID },
	{ "Content-Description", MIME_FLD_CONTENT_DESC },
	{ "Content-MD5", MIME_FLD_CONTENT_MD5 },
	{ "Content-Disposition", MIME_FLD_CONTENT_DISP },
	{ "Content-Language", MIME_FLD_CONTENT_LANG },
	{ "Content-Location", MIME_FLD_CONTENT_LOC },
	{ "Date", MIME_FLD_DATE },
	{ "Subject", MIME_FLD_SUBJECT },
	{ "From", MIME_FLD_FROM },
	{ "Sender", MIME_FLD_SENDER },
	{ "Reply-To", MIME_FLD_REPLY_TO },
	{ "To", MIME_FLD_TO },
	{ "Cc", MIME_FLD_CC },
	{ "Bcc", MIME_FLD_BCC },
	{ "In-Reply-To", MIME_FLD_IN_REPLY_TO },
	{ "Message-ID", MIME_FLD_MESSAGE_ID },
};

int
mime_field_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(mime_field_table); i++) {
		const char *n = mime_field_table[i].name;

		if (strlen(n) == len && strncasecmp(n, name, len) == 0)
			return (int)mime_field_table[i].fld;
	}
	return -1;
}

bool
mime_field_present(const struct mime_part *pt, enum mime_fld f)
{
	return pt->set[f];
}

struct mime_value
mime_field(const struct mime_message *m, const struct mime_part *pt,
    enum mime_fld f)
{
	struct mime_value v = { "", 0 };

	if (pt->set[f])
		v.p = m->arena.data + pt->fld[f].off;
	v.len = pt->set[f] ? pt->fld[f].len : 0;
	return v;
}

/* ---- tokens (RFC 2045 §5.1, RFC 5322 §3.2.2) ---- */

static bool
mime_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips whitespace and (nested) comments; returns whether any. */
bool
mime_skip_cfws(const char **pp, const char *end)
{
	const char *p = *pp;
	size_t depth = 0;

	while (p < end) {
		if (depth > 0 && *p == '\\' && p + 1 < end)
			p++;
		else if (*p == '(')
			depth++;
		else if (depth > 0 && *p == ')')
			depth--;
		else if (depth == 0 && !mime_is_wsp(*p))
			break;
		p++;
	}
	bool moved = p != *pp;
	*pp = p;
	return moved;
}

/* RFC 2045 token: no SPACE, CTLs or tspecials; 8-bit tolerated. */
static bool
mime_is_token_char(char ch)
{
	unsigned char c = (unsigned char)ch;

	return c > 32 && c != 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static struct mime_value
mime_token_at(const char **pp, const char *end)
{
	struct mime_value t = { *pp, 0 };

	while (*pp < end && mime_is_token_char(**pp))
		(*pp)++;
	t.len = (size_t)(*pp - t.p);
	return t;
}

struct mime_value
mime_token(struct mime_value v, struct mime_value *rest_r)
{
	const char *p = v.p, *end = v.p + v.len;
	struct mime_value t;

	mime_skip_cfws(&p, end);
	t = mime_token_at(&p, end);
	rest_r->p = p;
	rest_r->len = (size_t)(end - p);
	return t;
}

enum mime_cte
mime_cte_parse(struct mime_value v)
{
	/* token                  encoding (RFC 2045 §6.1) */
	static const struct {
		const char *name;
		enum mime_cte cte;
	} tab[] = {
		{ "7bit", MIME_CTE_7BIT },
		{ "8bit", MIME_CTE_8BIT },
		{ "binary", MIME_CTE_BINARY },
		{ "base64", MIME_CTE_BASE64 },
		{ "quoted-printable", MIME_CTE_QP },
	};
	struct mime_value rest, t = mime_token(v, &rest);

	if (t.len == 0)
		return MIME_CTE_7BIT;
	for (size_t i = 0; i < MF_ARRAY_LEN(tab); i++) {
		if (strlen(tab[i].name) == t.len &&
		    strncasecmp(tab[i].name, t.p, t.len) == 0)
			return tab[i].cte;
	}
	return MIME_CTE_OTHER;
}

bool
mime_ct_parse(struct mime_value v, struct mime_value *type_r,
    struct mime_value *sub_r, struct mime_value *rest_r)
{
	const char *p = v.p, *end = v.p + v.len;

	mime_skip_cfws(&p, end);
	*type_r = mime_token_at(&p, end);
	mime_skip_cfws(&p, end);
	if (type_r->len == 0 || p == end || *p != '/')
		return false;
	p++;
	mime_skip_cfws(&p, end);
	*sub_r = mime_token_at(&p, end);
	rest_r->p = p;
	rest_r->len = (size_t)(end - p);
	return sub_r->len > 0;
}

/* Appends the quoted string at *pp (on its opening quote), unescaped. */
void
mime_unquote(const char **pp, const char *end, struct buf *out)
{
	const char *p = *pp + 1;

	while (p < end && *p != '"') {
		if (*p == '\\' && p + 1 < end)
			p++;
		buf_addc(out, *p++);
	}
	*pp = p < end ? p + 1 : p;
}

static void
mime_skip_to_semicolon(struct mime_value *rest)
{
	const char *p = rest->p, *end = rest->p + rest->len;

	while (p < end && *p != ';')
		p++;
	rest->len = (size_t)(end - p);
	rest->p = p;
}

/* RFC 2045 §5.1: parameter := attribute "=" value; value is a token or a
 * quoted-string.  RFC 2231 names (title*0*) pass through as tokens. */
bool
mime_param_next(struct mime_value *rest, struct mime_value *name_r,
    struct buf *val)
{
	for (;;) {
		const char *p = rest->p, *end = rest->p + rest->len;

		mime_skip_cfws(&p, end);
		while (p < end && *p == ';') {
			p++;
			mime_skip_cfws(&p, end);
		}
		rest->len = (size_t)(end - p);
		rest->p = p;
		if (p == end)
			return false;
		*name_r = mime_token_at(&p, end);
		mime_skip_cfws(&p, end);
		if (name_r->len == 0 || p == end || *p != '=') {
			rest->len = (size_t)(end - p);
			rest->p = p;
			mime_skip_to_semicolon(rest);
			continue;
		}
		p++;
		mime_skip_cfws(&p, end);
		buf_reset(val);
		if (p < end && *p == '"') {
			mime_unquote(&p, end, val);
		} else {
			const char *s = p;

			while (p < end && *p != ';' && !mime_is_wsp(*p) &&
			    *p != '(')
				p++;
			buf_add(val, s, (size_t)(p - s));
		}
		rest->len = (size_t)(end - p);
		rest->p = p;
		return true;
	}
}

/* ---- HEADER.FIELDS (RFC 9051 §6.4.5) ---- */

static bool
mime_name_listed(const char *s, size_t len, const char *const *names,
    size_t count)
{
	for (size_t i = 0; len > 0 && i < count; i++) {
		if (strlen(names[i]) == len &&
		    strncasecmp(names[i], s, len) == 0)
			return true;
	}
	return false;
}

void
mime_header_filter(const char *hdr, size_t len, const char *const *names,
    size_t count, bool negate, struct buf *out)
{
	size_t pos = 0;

	while (pos < len) {
		const char *lf = memchr(hdr + pos, '\n', len - pos);
		size_t e = lf != NULL ? (size_t)(lf - hdr) + 1 : len, n;
		size_t c = e - pos - (lf != NULL) -
		    (lf != NULL && e - pos >= 2 && hdr[e - 2] == '\r');

		if (c == 0) {		/* the blank line ends the block */
			buf_add(out, hdr + pos, e - pos);
			return;
		}
		/* the field: this line and its continuation lines */
		for (n = 0; pos + n < e && hdr[pos + n] != ':' &&
		    hdr[pos + n] != ' ' && hdr[pos + n] != '\t' &&
		    hdr[pos + n] != '\r' && hdr[pos + n] != '\n'; n++)
			;
		if (pos + n == e || hdr[pos + n] == '\r' ||
		    hdr[pos + n] == '\n')
			n = 0;		/* no colon: no name */
		while (e < len && (hdr[e] == ' ' || hdr[e] == '\t')) {
			lf = memchr(hdr + e, '\n', len - e);
			e = lf != NULL ? (size_t)(lf - hdr) + 1 : len;
		}
		if (mime_name_listed(hdr + pos, n, names, count) != negate)
			buf_add(out, hdr + pos, e - pos);
		pos = e;
	}
}
