/*
 * mime_imap.c - ENVELOPE, BODY and BODYSTRUCTURE from the part tree
 * (RFC 9051 §7.5.2 and §9 body grammar; RFC 3501 §7.4.2).  Choices are
 * listed in mime.h: values as the sender wrote them, defaults as the RFC
 * 3501 examples write them.
 */
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

/* What we write for a multipart without parts (RFC 9051 §9 requires one
 * body in body-type-mpart); Dovecot does the same. */
#define MIME_DEFAULT_CHARSET "(\"CHARSET\" \"US-ASCII\")"
#define MIME_EMPTY_BODY \
	"(\"TEXT\" \"PLAIN\" " MIME_DEFAULT_CHARSET " NIL NIL \"7BIT\" 0 0)"
#define MIME_EMPTY_BODYSTRUCTURE \
	"(\"TEXT\" \"PLAIN\" " MIME_DEFAULT_CHARSET " NIL NIL \"7BIT\" 0 0 " \
	"NIL NIL NIL NIL)"
/* The envelope of a message/rfc822 we could not open. */
#define MIME_EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

/*
 * RFC 9051 §4.3: a quoted string holds no CR or LF, and in IMAP4rev1 no
 * 8-bit; those go as a literal, valid in both revisions.  NUL is allowed
 * in neither and becomes a space.
 */
void
mime_imap_string(struct buf *out, const char *s, size_t len)
{
	bool literal = false;

	for (size_t i = 0; i < len && !literal; i++) {
		unsigned char c = (unsigned char)s[i];

		literal = c == '\r' || c == '\n' || c >= 0x80;
	}
	if (literal)
		buf_printf(out, "{%zu}\r\n", len);
	else
		buf_addc(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (!literal && (s[i] == '"' || s[i] == '\\'))
			buf_addc(out, '\\');
		buf_addc(out, s[i] == '\0' ? ' ' : s[i]);
	}
	if (!literal)
		buf_addc(out, '"');
}

static void
mime_imap_value(struct buf *out, struct mime_value v)
{
	mime_imap_string(out, v.p, v.len);
}

/* The field's value, NIL when absent. */
static void
mime_imap_field(struct buf *out, const struct mime_message *m,
    const struct mime_part *pt, enum mime_fld f)
{
	if (!mime_field_present(pt, f))
		buf_adds(out, "NIL");
	else
		mime_imap_value(out, mime_field(m, pt, f));
}

/* ---- ENVELOPE ---- */

/* RFC 3501 §7.4.2: Sender and Reply-To absent or empty become From. */
static void
mime_envelope_part(const struct mime_message *m, const struct mime_part *pt,
    struct buf *out)
{
	static const enum mime_fld addrs[] = { MIME_FLD_SENDER,
	    MIME_FLD_REPLY_TO, MIME_FLD_TO, MIME_FLD_CC, MIME_FLD_BCC };
	struct buf from;

	buf_init(&from, 0);
	mime_addr_list(mime_field(m, pt, MIME_FLD_FROM), &from);
	buf_addc(out, '(');
	mime_imap_field(out, m, pt, MIME_FLD_DATE);
	buf_addc(out, ' ');
	mime_imap_field(out, m, pt, MIME_FLD_SUBJECT);
	buf_addc(out, ' ');
	buf_add(out, from.data, from.len);
	for (size_t i = 0; i < MF_ARRAY_LEN(addrs); i++) {
		size_t at;

		buf_addc(out, ' ');
		at = out->len;
		if (mime_addr_list(mime_field(m, pt, addrs[i]), out) == 0 &&
		    i < 2) {
			out->len = at;
			buf_add(out, from.data, from.len);
		}
	}
	buf_free(&from);
	buf_addc(out, ' ');
	mime_imap_field(out, m, pt, MIME_FLD_IN_REPLY_TO);
	buf_addc(out, ' ');
	mime_imap_field(out, m, pt, MIME_FLD_MESSAGE_ID);
	buf_addc(out, ')');
}

const char *
mime_envelope(const struct mime_message *m, struct buf *out)
{
	xassert(m->parsed);
	mime_envelope_part(m, &m->parts[0], out);
	return out->data;
}

/* ---- BODYSTRUCTURE ---- */

static bool
mime_ci_is(struct mime_value v, const char *s)
{
	return v.len == strlen(s) && strncasecmp(v.p, s, v.len) == 0;
}

/* body-fld-param: ("name" "value" ...) or NIL, from rest of a field. */
static size_t
mime_imap_params(struct buf *out, struct mime_value rest)
{
	struct mime_value name;
	struct buf val;
	size_t n = 0;

	buf_init(&val, 0);
	while (n < MIME_PARAMS_MAX && mime_param_next(&rest, &name, &val)) {
		buf_addc(out, n++ == 0 ? '(' : ' ');
		mime_imap_value(out, name);
		buf_addc(out, ' ');
		mime_imap_string(out, val.data != NULL ? val.data : "",
		    val.len);
	}
	buf_adds(out, n > 0 ? ")" : "NIL");
	buf_free(&val);
	return n;
}

/* body-fld-dsp: ("type" params) or NIL (RFC 2183). */
static void
mime_imap_disposition(struct buf *out, const struct mime_message *m,
    const struct mime_part *pt)
{
	struct mime_value rest, t;

	t = mime_token(mime_field(m, pt, MIME_FLD_CONTENT_DISP), &rest);
	if (t.len == 0) {
		buf_adds(out, "NIL");
		return;
	}
	buf_addc(out, '(');
	mime_imap_value(out, t);
	buf_addc(out, ' ');
	mime_imap_params(out, rest);
	buf_addc(out, ')');
}

/* body-fld-lang: one tag as a string, several as a list (RFC 3282). */
static void
mime_imap_language(struct buf *out, const struct mime_message *m,
    const struct mime_part *pt)
{
	struct mime_value v = mime_field(m, pt, MIME_FLD_CONTENT_LANG), t;
	size_t start = out->len, n = 0;

	buf_addc(out, '(');
	for (;;) {
		t = mime_token(v, &v);
		if (t.len > 0) {
			if (n++ > 0)
				buf_addc(out, ' ');
			mime_imap_value(out, t);
		}
		if (v.len == 0 || n >= MIME_PARAMS_MAX)
			break;
		v.p++;		/* the "," or a stray special */
		v.len--;
	}
	buf_addc(out, ')');
	if (n == 0) {
		out->len = start;
		buf_adds(out, "NIL");
	} else if (n == 1) {	/* drop the parentheses */
		memmove(out->data + start, out->data + start + 1,
		    out->len - start - 2);
		out->len -= 2;
		out->data[out->len] = '\0';
	}
}

/* md5, disposition, language, location (body-ext-1part after md5 is the
 * same as body-ext-mpart after the parameters). */
static void
mime_imap_ext(struct buf *out, const struct mime_message *m,
    const struct mime_part *pt)
{
	buf_addc(out, ' ');
	mime_imap_disposition(out, m, pt);
	buf_addc(out, ' ');
	mime_imap_language(out, m, pt);
	buf_addc(out, ' ');
	mime_imap_field(out, m, pt, MIME_FLD_CONTENT_LOC);
}

static void mime_imap_body(const struct mime_message *m, uint32_t i,
    bool ext, struct buf *out);

static void
mime_imap_multipart(const struct mime_message *m, const struct mime_part *pt,
    bool ext, struct buf *out)
{
	struct mime_value type, sub, rest;

	buf_addc(out, '(');
	if (pt->nchildren == 0)
		buf_adds(out, ext ? MIME_EMPTY_BODYSTRUCTURE : MIME_EMPTY_BODY);
	for (uint32_t c = pt->first_child; c != MIME_NONE;
	    c = m->parts[c].next)
		mime_imap_body(m, c, ext, out);
	xassert(mime_ct_parse(mime_field(m, pt, MIME_FLD_CONTENT_TYPE),
	    &type, &sub, &rest));
	buf_addc(out, ' ');
	mime_imap_value(out, sub);
	if (ext) {
		buf_addc(out, ' ');
		mime_imap_params(out, rest);
		mime_imap_ext(out, m, pt);
	}
	buf_addc(out, ')');
}

/* Content-Type says message/rfc822 or message/global, or it is the
 * digest default (RFC 2046 §5.1.5), whether or not we could open it. */
static bool
mime_is_message(const struct mime_message *m, const struct mime_part *pt)
{
	struct mime_value type, sub, rest;

	if (pt->flags & MIME_PF_DEFAULT_CT)
		return (pt->flags & MIME_PF_DIGEST) != 0;
	return mime_ct_parse(mime_field(m, pt, MIME_FLD_CONTENT_TYPE), &type,
	    &sub, &rest) && mime_ci_is(type, "message") &&
	    (mime_ci_is(sub, "rfc822") || mime_ci_is(sub, "global"));
}

/* media type, subtype and parameters; returns whether it is text. */
static bool
mime_imap_media(const struct mime_message *m, const struct mime_part *pt,
    struct buf *out)
{
	struct mime_value type, sub, rest;
	bool text;

	if (pt->flags & MIME_PF_DEFAULT_CT) {
		if (pt->flags & MIME_PF_DIGEST) {
			buf_adds(out, "\"MESSAGE\" \"RFC822\" NIL");
			return false;
		}
		buf_adds(out, "\"TEXT\" \"PLAIN\" " MIME_DEFAULT_CHARSET);
		return true;
	}
	xassert(mime_ct_parse(mime_field(m, pt, MIME_FLD_CONTENT_TYPE),
	    &type, &sub, &rest));
	text = mime_ci_is(type, "text");
	mime_imap_value(out, type);
	buf_addc(out, ' ');
	mime_imap_value(out, sub);
	buf_addc(out, ' ');
	/* RFC 2046 §4.1.2: text without parameters is us-ascii (as
	 * Dovecot writes it; with other parameters we add nothing) */
	if (mime_imap_params(out, rest) == 0 && text) {
		out->len -= 3;
		buf_adds(out, MIME_DEFAULT_CHARSET);
	}
	return text;
}

static void
mime_imap_single(const struct mime_message *m, const struct mime_part *pt,
    bool ext, struct buf *out)
{
	struct mime_value rest, enc;
	bool text, msg;

	buf_addc(out, '(');
	text = mime_imap_media(m, pt, out);
	buf_addc(out, ' ');
	mime_imap_field(out, m, pt, MIME_FLD_CONTENT_ID);
	buf_addc(out, ' ');
	mime_imap_field(out, m, pt, MIME_FLD_CONTENT_DESC);
	buf_addc(out, ' ');
	enc = mime_token(mime_field(m, pt, MIME_FLD_CTE), &rest);
	if (enc.len == 0)
		buf_adds(out, "\"7BIT\"");
	else
		mime_imap_value(out, enc);
	buf_printf(out, " %llu",
	    (unsigned long long)(pt->body_end - pt->body_start));
	msg = mime_is_message(m, pt);
	if (msg && pt->kind == MIME_KIND_MESSAGE) {
		buf_addc(out, ' ');
		mime_envelope_part(m, &m->parts[pt->first_child], out);
		buf_addc(out, ' ');
		mime_imap_body(m, pt->first_child, ext, out);
	} else if (msg) {	/* not opened: keep the grammar, as Dovecot */
		buf_adds(out, " " MIME_EMPTY_ENVELOPE " ");
		buf_adds(out, ext ? MIME_EMPTY_BODYSTRUCTURE : MIME_EMPTY_BODY);
	}
	if (text || msg)
		buf_printf(out, " %llu", (unsigned long long)pt->lines);
	if (ext) {
		buf_addc(out, ' ');
		mime_imap_field(out, m, pt, MIME_FLD_CONTENT_MD5);
		mime_imap_ext(out, m, pt);
	}
	buf_addc(out, ')');
}

static void
mime_imap_body(const struct mime_message *m, uint32_t i, bool ext,
    struct buf *out)
{
	const struct mime_part *pt = &m->parts[i];
	struct mime_value type, sub, rest;

	/* an opened multipart, or one we could not open (no boundary, too
	 * deep): then it has no parts, see mime_imap_multipart() */
	if (pt->kind == MIME_KIND_MULTIPART ||
	    (!(pt->flags & MIME_PF_DEFAULT_CT) &&
	    mime_ct_parse(mime_field(m, pt, MIME_FLD_CONTENT_TYPE), &type,
	    &sub, &rest) && mime_ci_is(type, "multipart")))
		mime_imap_multipart(m, pt, ext, out);
	else
		mime_imap_single(m, pt, ext, out);
}

const char *
mime_bodystructure(const struct mime_message *m, bool extensible,
    struct buf *out)
{
	xassert(m->parsed);
	mime_imap_body(m, 0, extensible, out);
	return out->data;
}
