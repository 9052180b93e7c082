/*
 * mime_decode.c - decoding for SEARCH, pure and infallible: RFC 2047
 * encoded-words in header values, charsets into UTF-8 (iconv(3) from
 * libc for all but UTF-8, US-ASCII and ISO-8859-1), base64 and
 * quoted-printable bodies chunk by chunk, a streaming case-insensitive
 * substring matcher, and the text parts of a parsed message.  Every state
 * is bounded: a partial character, a partial quantum or escape, the
 * needle.  See mime.h for the decisions.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime_private.h"

#define MIME_CONV_PEND_MAX 16	/* bytes of a partial character held */
#define MIME_CONV_OUT 4096	/* iconv output block */

/* ---- charsets ---- */

enum mime_conv_kind {
	MIME_CONV_RAW,		/* UTF-8, US-ASCII, unknown: as is */
	MIME_CONV_LATIN1,
	MIME_CONV_ICONV,
};

struct mime_conv {
	enum mime_conv_kind kind;
	iconv_t cd;
	char pend[MIME_CONV_PEND_MAX];
	size_t npend;
};

static void
mime_utf8_put(struct buf *out, uint32_t cp)
{
	char u[3];

	if (cp < 0x80) {
		buf_addc(out, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 2);
	} else {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_add(out, u, 3);
	}
}

static bool
mime_cs_is(const char *cs, const char *const *names)
{
	for (; *names != NULL; names++)
		if (strcasecmp(cs, *names) == 0)
			return true;
	return false;
}

struct mime_conv *
mime_conv_new(const char *charset, size_t len)
{
	static const char *const raw[] = { "utf-8", "utf8", "us-ascii",
	    "ascii", "", NULL };
	static const char *const latin1[] = { "iso-8859-1", "iso8859-1",
	    "latin1", "iso_8859-1", NULL };
	struct mime_conv *c = xmalloc(sizeof(*c));
	char cs[MIME_CHARSET_MAX + 1];

	c->kind = MIME_CONV_RAW;
	if (len > MIME_CHARSET_MAX)
		return c;
	memcpy(cs, charset, len);
	cs[len] = '\0';
	if (mime_cs_is(cs, raw))
		return c;
	if (mime_cs_is(cs, latin1)) {
		c->kind = MIME_CONV_LATIN1;
		return c;
	}
	c->cd = iconv_open("UTF-8", cs);
	if (c->cd != (iconv_t)-1)
		c->kind = MIME_CONV_ICONV;
	return c;
}

/* Converts in through iconv; returns the bytes left of an incomplete
 * character at the end (EINVAL), replacing rejected bytes by U+FFFD. */
static size_t
mime_conv_iconv(struct mime_conv *c, const char *in, size_t len,
    struct buf *out)
{
	char block[MIME_CONV_OUT];
	char *ip = (char *)(uintptr_t)in;

	while (len > 0) {
		char *op = block;
		size_t ol = sizeof(block);
		size_t r = iconv(c->cd, &ip, &len, &op, &ol);
		int e = errno;

		buf_add(out, block, sizeof(block) - ol);
		if (r != (size_t)-1 || e == E2BIG)
			continue;
		if (e == EINVAL)
			return len;
		mime_utf8_put(out, 0xfffd);	/* EILSEQ: skip one byte */
		ip++;
		len--;
	}
	return 0;
}

void
mime_conv_feed(struct mime_conv *c, const char *in, size_t len,
    struct buf *out)
{
	size_t left;

	if (c->kind == MIME_CONV_RAW) {
		buf_add(out, in, len);
		return;
	}
	if (c->kind == MIME_CONV_LATIN1) {
		for (size_t i = 0; i < len; i++)
			mime_utf8_put(out, (unsigned char)in[i]);
		return;
	}
	if (c->npend > 0) {
		/* complete the held character: one byte at a time */
		while (c->npend > 0 && len > 0) {
			c->pend[c->npend++] = *in++;
			len--;
			left = mime_conv_iconv(c, c->pend, c->npend, out);
			if (left > 0 && c->npend == MIME_CONV_PEND_MAX) {
				mime_utf8_put(out, 0xfffd);
				left = 0;
			}
			memmove(c->pend, c->pend + c->npend - left, left);
			c->npend = left;
		}
		if (len == 0)
			return;
	}
	left = mime_conv_iconv(c, in, len, out);
	if (left > MIME_CONV_PEND_MAX - 1) {
		mime_utf8_put(out, 0xfffd);
		left = 0;
	}
	memcpy(c->pend, in + len - left, left);
	c->npend = left;
}

void
mime_conv_finish(struct mime_conv *c, struct buf *out)
{
	if (c->kind != MIME_CONV_ICONV)
		return;
	if (c->npend > 0)
		mime_utf8_put(out, 0xfffd);
	c->npend = 0;
	iconv(c->cd, NULL, NULL, NULL, NULL);
}

void
mime_conv_free(struct mime_conv **cp)
{
	struct mime_conv *c = *cp;

	if (c == NULL)
		return;
	if (c->kind == MIME_CONV_ICONV)
		iconv_close(c->cd);
	free(c);
	*cp = NULL;
}

/* ---- transfer encodings ---- */

enum mime_qp_st {
	MIME_QP_TEXT,
	MIME_QP_EQ,		/* after '=' */
	MIME_QP_HEX,		/* after '=' and one hex digit */
	MIME_QP_SOFT,		/* after "=" and whitespace or CR */
};

struct mime_cte_dec {
	enum mime_cte cte;
	uint32_t acc;		/* base64 bits */
	unsigned nacc;		/* base64 sextets held, QP hex digit */
	enum mime_qp_st qp;
	char held;		/* QP: the hex digit after '=' */
};

struct mime_cte_dec *
mime_cte_dec_new(enum mime_cte cte)
{
	struct mime_cte_dec *d = xmalloc(sizeof(*d));

	d->cte = cte;
	return d;
}

static int
mime_b64_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

static int
mime_hex_val(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Emits the bytes of a partial quantum (padding or end of input). */
static void
mime_b64_flush(struct mime_cte_dec *d, struct buf *out)
{
	if (d->nacc >= 2)
		buf_addc(out, (char)(d->acc >> (6 * d->nacc - 8)));
	if (d->nacc == 3)
		buf_addc(out, (char)(d->acc >> 2));
	d->acc = 0;
	d->nacc = 0;
}

/* RFC 2045 §6.8: characters outside the alphabet are ignored. */
static void
mime_b64_feed(struct mime_cte_dec *d, const char *in, size_t len,
    struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		int v = mime_b64_val((unsigned char)in[i]);

		if (in[i] == '=') {
			mime_b64_flush(d, out);
			continue;
		}
		if (v < 0)
			continue;
		d->acc = (d->acc << 6) | (uint32_t)v;
		if (++d->nacc == 4) {
			char b[3] = { (char)(d->acc >> 16),
			    (char)(d->acc >> 8), (char)d->acc };
			buf_add(out, b, 3);
			d->acc = 0;
			d->nacc = 0;
		}
	}
}

/* One byte of quoted-printable (RFC 2045 §6.7); a bad escape is kept
 * literally, "=" then whitespace up to the line end is a soft break. */
static void
mime_qp_byte(struct mime_cte_dec *d, char ch, struct buf *out)
{
	int v = mime_hex_val((unsigned char)ch);

	switch (d->qp) {
	case MIME_QP_TEXT:
		if (ch == '=')
			d->qp = MIME_QP_EQ;
		else
			buf_addc(out, ch);
		return;
	case MIME_QP_EQ:
		if (v >= 0) {
			d->held = ch;
			d->qp = MIME_QP_HEX;
		} else if (ch == ' ' || ch == '\t' || ch == '\r') {
			d->qp = MIME_QP_SOFT;
		} else if (ch == '\n') {
			d->qp = MIME_QP_TEXT;
		} else {
			buf_addc(out, '=');
			d->qp = MIME_QP_TEXT;
			mime_qp_byte(d, ch, out);
		}
		return;
	case MIME_QP_HEX:
		d->qp = MIME_QP_TEXT;
		if (v >= 0) {
			buf_addc(out, (char)(mime_hex_val(
			    (unsigned char)d->held) * 16 + v));
		} else {
			buf_addc(out, '=');
			buf_addc(out, d->held);
			mime_qp_byte(d, ch, out);
		}
		return;
	case MIME_QP_SOFT:
		/* XXX: the whitespace held after '=' is dropped even when
		 * the line goes on (bad input); search only. */
		if (ch == '\n')
			d->qp = MIME_QP_TEXT;
		else if (ch != ' ' && ch != '\t' && ch != '\r') {
			d->qp = MIME_QP_TEXT;
			mime_qp_byte(d, ch, out);
		}
		return;
	}
}

void
mime_cte_dec_feed(struct mime_cte_dec *d, const char *in, size_t len,
    struct buf *out)
{
	if (d->cte == MIME_CTE_BASE64) {
		mime_b64_feed(d, in, len, out);
	} else if (d->cte == MIME_CTE_QP) {
		for (size_t i = 0; i < len; i++)
			mime_qp_byte(d, in[i], out);
	} else {
		buf_add(out, in, len);
	}
}

void
mime_cte_dec_finish(struct mime_cte_dec *d, struct buf *out)
{
	if (d->cte == MIME_CTE_BASE64)
		mime_b64_flush(d, out);
	if (d->cte == MIME_CTE_QP && d->qp == MIME_QP_EQ)
		buf_addc(out, '=');
	if (d->cte == MIME_CTE_QP && d->qp == MIME_QP_HEX) {
		buf_addc(out, '=');
		buf_addc(out, d->held);
	}
	d->qp = MIME_QP_TEXT;
}

void
mime_cte_dec_free(struct mime_cte_dec **dp)
{
	free(*dp);
	*dp = NULL;
}

/* ---- RFC 2047 encoded-words ---- */

/* The parts of "=?charset?E?text?=" at in (RFC 2047 §2); false when in
 * does not start with a well-formed word.  An RFC 2231 language suffix
 * ("charset*lang") is cut. */
static bool
mime_word_parse(const char *in, size_t len, struct mime_value *cs_r,
    char *enc_r, struct mime_value *text_r, size_t *wlen_r)
{
	const char *end = in + len, *p = in + 2, *q, *star;

	if (len < 8 || in[0] != '=' || in[1] != '?')
		return false;
	if ((q = memchr(p, '?', (size_t)(end - p))) == NULL || q == p ||
	    end - q < 5 || q[2] != '?')
		return false;
	for (const char *s = p; s < q; s++)
		if ((unsigned char)*s <= ' ')
			return false;
	star = memchr(p, '*', (size_t)(q - p));
	*cs_r = (struct mime_value){ p, (size_t)((star ? star : q) - p) };
	*enc_r = (char)(q[1] & ~0x20);
	if (*enc_r != 'B' && *enc_r != 'Q')
		return false;
	p = q + 3;
	for (q = p; q + 1 < end && !(q[0] == '?' && q[1] == '='); q++)
		if ((unsigned char)*q <= ' ' || *q == '?')
			return false;
	if (q + 1 >= end)
		return false;
	*text_r = (struct mime_value){ p, (size_t)(q - p) };
	*wlen_r = (size_t)(q + 2 - in);
	return true;
}

/* Appends the decoded bytes of an encoded text (B or Q, §4). */
static void
mime_word_bytes(char enc, struct mime_value t, struct buf *raw)
{
	struct mime_cte_dec d = { .cte = enc == 'B' ? MIME_CTE_BASE64 :
	    MIME_CTE_QP };

	if (enc == 'B') {
		mime_b64_feed(&d, t.p, t.len, raw);
		mime_b64_flush(&d, raw);
		return;
	}
	for (size_t i = 0; i < t.len; i++) {
		if (t.p[i] == '_')
			buf_addc(raw, ' ');	/* §4.2 (2) */
		else
			mime_qp_byte(&d, t.p[i], raw);
	}
	mime_cte_dec_finish(&d, raw);
}

/* Pending run of words in one charset, converted when the run ends. */
struct mime_word_run {
	char cs[MIME_CHARSET_MAX];
	size_t cslen;
	struct buf raw;
};

static void
mime_run_flush(struct mime_word_run *r, struct buf *out)
{
	struct mime_conv *c;

	if (r->raw.len == 0)
		return;
	c = mime_conv_new(r->cs, r->cslen);
	mime_conv_feed(c, r->raw.data, r->raw.len, out);
	mime_conv_finish(c, out);
	mime_conv_free(&c);
	buf_reset(&r->raw);
}

/* Adds a word to the run, flushing first when its charset differs. */
static void
mime_run_add(struct mime_word_run *r, struct mime_value cs, char enc,
    struct mime_value text, struct buf *out)
{
	size_t l = cs.len > MIME_CHARSET_MAX ? MIME_CHARSET_MAX : cs.len;

	if (r->cslen != l || strncasecmp(r->cs, cs.p, l) != 0) {
		mime_run_flush(r, out);
		memcpy(r->cs, cs.p, l);
		r->cslen = cs.len > MIME_CHARSET_MAX ? SIZE_MAX : l;
	}
	mime_word_bytes(enc, text, &r->raw);
}

/* Linear whitespace as written, without the CR and LF of folding. */
static void
mime_ws_add(const char *p, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != '\r' && p[i] != '\n')
			buf_addc(out, p[i]);
}

void
mime_header_decode(const char *in, size_t len, struct buf *out)
{
	struct mime_word_run run = { .cslen = 0 };
	size_t i = 0, ws = 0, nws = 0;
	bool after_word = false;

	buf_init(&run.raw, 0);
	while (i < len) {
		struct mime_value cs, text;
		char enc;
		size_t wlen;

		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' ||
		    in[i] == '\n') {
			if (nws++ == 0)
				ws = i;
			i++;
			continue;
		}
		if (mime_word_parse(in + i, len - i, &cs, &enc, &text,
		    &wlen)) {
			if (!after_word && nws > 0)
				mime_ws_add(in + ws, i - ws, out);
			mime_run_add(&run, cs, enc, text, out);
			after_word = true;
			i += wlen;
		} else {
			mime_run_flush(&run, out);
			mime_ws_add(in + ws, nws > 0 ? i - ws : 0, out);
			after_word = false;
			buf_addc(out, in[i++]);
		}
		nws = 0;
	}
	mime_run_flush(&run, out);
	if (nws > 0)
		mime_ws_add(in + ws, len - ws, out);
	buf_free(&run.raw);
}

/* ---- matching ---- */

struct mime_match {
	unsigned char *needle;	/* folded */
	size_t *fail;		/* KMP failure function */
	size_t len, at;
	unsigned char prev;	/* last raw byte, for folding */
	bool found;
};

/* Folds one byte given the raw byte before it (see mime.h). */
static unsigned char
mime_fold(unsigned char prev, unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return (unsigned char)(ch + 0x20);
	if (prev == 0xc3 && ch >= 0x80 && ch <= 0x9e && ch != 0x97)
		return (unsigned char)(ch + 0x20);
	return ch;
}

struct mime_match *
mime_match_new(const char *needle, size_t len)
{
	struct mime_match *mm = xmalloc(sizeof(*mm));
	unsigned char prev = 0;

	if (len > MIME_MATCH_MAX)
		len = MIME_MATCH_MAX;
	mm->needle = xmalloc(len + 1);
	mm->fail = xmalloc((len + 1) * sizeof(*mm->fail));
	mm->len = len;
	for (size_t i = 0; i < len; i++) {
		mm->needle[i] = mime_fold(prev, (unsigned char)needle[i]);
		prev = (unsigned char)needle[i];
	}
	for (size_t i = 1, k = 0; i < len; i++) {
		while (k > 0 && mm->needle[i] != mm->needle[k])
			k = mm->fail[k - 1];
		if (mm->needle[i] == mm->needle[k])
			k++;
		mm->fail[i] = k;
	}
	mm->found = len == 0;
	return mm;
}

bool
mime_match_feed(struct mime_match *mm, const char *in, size_t len)
{
	for (size_t i = 0; i < len && !mm->found; i++) {
		unsigned char ch = mime_fold(mm->prev, (unsigned char)in[i]);

		mm->prev = (unsigned char)in[i];
		while (mm->at > 0 && mm->needle[mm->at] != ch)
			mm->at = mm->fail[mm->at - 1];
		if (mm->needle[mm->at] == ch && ++mm->at == mm->len)
			mm->found = true;
	}
	return mm->found;
}

void
mime_match_reset(struct mime_match *mm)
{
	mm->at = 0;
	mm->prev = 0;
	mm->found = mm->len == 0;
}

void
mime_match_free(struct mime_match **mmp)
{
	struct mime_match *mm = *mmp;

	if (mm == NULL)
		return;
	free(mm->needle);
	free(mm->fail);
	free(mm);
	*mmp = NULL;
}

/* ---- text parts ---- */

uint32_t
mime_part_count(const struct mime_message *m)
{
	return m->nparts;
}

static bool
mime_value_is(struct mime_value v, const char *s)
{
	return v.len == strlen(s) && strncasecmp(v.p, s, v.len) == 0;
}

bool
mime_part_text(const struct mime_message *m, uint32_t i,
    uint64_t *start_r, uint64_t *len_r, enum mime_cte *cte_r,
    struct buf *charset)
{
	const struct mime_part *pt;
	struct mime_value type, sub, rest, name;
	struct buf val;

	xassert(m->parsed);
	if (i >= m->nparts)
		return false;
	pt = &m->parts[i];
	if (pt->kind != MIME_KIND_BASIC || (pt->flags & MIME_PF_OPAQUE) != 0)
		return false;
	buf_reset(charset);
	buf_adds(charset, "us-ascii");
	*start_r = pt->body_start;
	*len_r = pt->body_end - pt->body_start;
	*cte_r = (enum mime_cte)pt->cte;
	if ((pt->flags & MIME_PF_DEFAULT_CT) != 0)
		return true;
	if (!mime_ct_parse(mime_field(m, pt, MIME_FLD_CONTENT_TYPE), &type,
	    &sub, &rest) || !mime_value_is(type, "text"))
		return false;
	buf_init(&val, 0);
	while (mime_param_next(&rest, &name, &val))
		if (mime_value_is(name, "charset") && val.len > 0 &&
		    val.len <= MIME_CHARSET_MAX) {
			buf_reset(charset);
			buf_add(charset, val.data, val.len);
			break;
		}
	buf_free(&val);
	return true;
}

bool
mime_part_embedded_header(const struct mime_message *m, uint32_t i,
    uint64_t *start_r, uint64_t *len_r)
{
	const struct mime_part *pt;

	if (i == 0 || i >= m->nparts)
		return false;
	pt = &m->parts[i];
	if ((pt->flags & MIME_PF_MSG) == 0)
		return false;
	*start_r = pt->hdr_start;
	*len_r = pt->body_start - pt->hdr_start;
	return true;
}
