/*
 * imap_args.c - what the session asks of a parsed argument: astring,
 * string and number checks (RFC 9051 §9), mailbox names (§5.1) and the
 * modified UTF-7 of RFC 3501 §5.1.3 that IMAP4rev1 clients use, both
 * ways, with every non-canonical form refused.
 */
#include <string.h>
#include <strings.h>

#include "imap/imap_parse.h"

/* ---- astring, string, number ---- */

static bool
imap_arg_has_text(const struct imap_arg *a)
{
	return a != NULL && a->str != NULL &&
	    memchr(a->str, '\0', a->len) == NULL;
}

const char *
imap_arg_astring(const struct imap_arg *a)
{
	if (a == NULL || a->type == IMAP_ARG_LIST || !imap_arg_has_text(a))
		return NULL;
	return a->str;
}

const char *
imap_arg_string(const struct imap_arg *a)
{
	if (a == NULL || (a->type != IMAP_ARG_QUOTED &&
	    a->type != IMAP_ARG_LITERAL) || !imap_arg_has_text(a))
		return NULL;
	return a->str;
}

int
imap_arg_number(const struct imap_arg *a, uint64_t min, uint64_t max,
		uint64_t *n_r)
{
	uint64_t v = 0;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 ||
	    (a->str[0] == '0' && a->len > 1))
		return -1;
	for (size_t i = 0; i < a->len; i++) {
		unsigned d = (unsigned)(a->str[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*n_r = v;
	return 0;
}

bool
imap_arg_is_atom(const struct imap_arg *a, const char *word)
{
	return a != NULL && (a->type == IMAP_ARG_ATOM ||
	    a->type == IMAP_ARG_NIL) && strcasecmp(a->str, word) == 0;
}

/* ---- modified UTF-7 (RFC 3501 §5.1.3) ---- */

/* RFC 3501 §5.1.3: base64 with "," for "/", no padding. */
static const char imap_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
imap_b64_val(char c)
{
	const char *p = c != '\0' ? strchr(imap_b64, c) : NULL;

	return p != NULL ? (int)(p - imap_b64) : -1;
}

/* Appends without passing out's cap. */
static bool
imap_put(struct buf *out, const void *s, size_t n)
{
	if (buf_room(out) < n)
		return false;
	buf_add(out, s, n);
	return true;
}

static bool
imap_put_utf8(struct buf *out, uint32_t cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return imap_put(out, u, n);
}

/* Decoder state of one "&...-" run. */
struct imap_mutf7_run {
	uint32_t bits;
	unsigned nbits;
	uint32_t high;		/* pending high surrogate, 0 for none */
	size_t units;
};

/* One UTF-16 unit of a run; NULL or an error text. */
static const char *
imap_mutf7_unit(struct imap_mutf7_run *r, uint32_t u, struct buf *out)
{
	uint32_t cp;

	r->units++;
	if (r->high != 0) {
		if (u < 0xdc00 || u > 0xdfff)
			return "Unpaired surrogate in mailbox name";
		cp = 0x10000 + ((r->high - 0xd800) << 10) + (u - 0xdc00);
		r->high = 0;
	} else if (u >= 0xd800 && u <= 0xdbff) {
		r->high = u;
		return NULL;
	} else if (u >= 0xdc00 && u <= 0xdfff) {
		return "Unpaired surrogate in mailbox name";
	} else {
		cp = u;
	}
	/* RFC 3501 §5.1.3: printable US-ASCII must represent itself. */
	if (cp == 0 || (cp >= 0x20 && cp <= 0x7e))
		return "Non-canonical modified UTF-7";
	return imap_put_utf8(out, cp) ? NULL : "Mailbox name too long";
}

/* The base64 run at in[*i] (after "&"), up to and past its "-". */
static const char *
imap_mutf7_run(const char *in, size_t len, size_t *i, struct buf *out)
{
	struct imap_mutf7_run r = { 0, 0, 0, 0 };
	const char *err;
	int v;

	for (; *i < len && in[*i] != '-'; (*i)++) {
		if ((v = imap_b64_val(in[*i])) < 0)
			return "Invalid modified UTF-7";
		r.bits = ((r.bits << 6) | (uint32_t)v) & 0xffffff;
		r.nbits += 6;
		if (r.nbits >= 16) {
			r.nbits -= 16;
			err = imap_mutf7_unit(&r, (r.bits >> r.nbits) &
			    0xffff, out);
			if (err != NULL)
				return err;
		}
	}
	if (*i >= len)
		return "Unterminated modified UTF-7";
	(*i)++;
	/* Leftover: a whole sextet, or padding bits that are not zero. */
	if (r.high != 0 || r.units == 0 || r.nbits >= 6 ||
	    (r.bits & ((1u << r.nbits) - 1)) != 0)
		return "Invalid modified UTF-7";
	return NULL;
}

int
imap_mutf7_decode(const char *in, size_t len, struct buf *out,
		  const char **error_r)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x20 || c > 0x7e) {
			*error_r = "Invalid character in modified UTF-7";
			return -1;
		}
		if (c != '&') {
			i++;
			if (!imap_put(out, &c, 1))
				goto too_long;
			continue;
		}
		if (++i < len && in[i] == '-') {
			i++;
			if (!imap_put(out, "&", 1))
				goto too_long;
			continue;
		}
		if ((*error_r = imap_mutf7_run(in, len, &i, out)) != NULL)
			return -1;
	}
	return 0;
too_long:
	*error_r = "Mailbox name too long";
	return -1;
}

/* Appends unit u to the base64 run in *bits / *nbits. */
static bool
imap_mutf7_put_unit(struct buf *out, uint32_t u, uint32_t *bits,
		    unsigned *nbits)
{
	*bits = ((*bits << 16) | u) & 0x3fffff;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		if (!imap_put(out, &imap_b64[(*bits >> *nbits) & 63], 1))
			return false;
	}
	return true;
}

/* Decodes one UTF-8 character at in (len > 0); 0 length when invalid. */
static size_t
imap_utf8_decode(const char *in, size_t len, uint32_t *cp_r)
{
	const unsigned char *u = (const unsigned char *)in;
	size_t n;

	if (u[0] < 0x80) {
		*cp_r = u[0];
		return 1;
	}
	if ((n = imap_utf8_len(in, len)) == 0)
		return 0;
	*cp_r = u[0] & (0x7f >> n);
	for (size_t k = 1; k < n; k++)
		*cp_r = (*cp_r << 6) | (u[k] & 0x3f);
	return n;
}

/* A run of characters outside 0x20-0x7e at in[*i], as "&...-". */
static const char *
imap_mutf7_enc_run(const char *in, size_t len, size_t *i, struct buf *out)
{
	uint32_t bits = 0, cp;
	unsigned nbits = 0;
	size_t n;
	bool ok = imap_put(out, "&", 1);

	while (ok && *i < len &&
	    ((unsigned char)in[*i] < 0x20 || (unsigned char)in[*i] > 0x7e)) {
		if (in[*i] == '\0' || (n = imap_utf8_decode(in + *i,
		    len - *i, &cp)) == 0)
			return "Invalid UTF-8 in mailbox name";
		*i += n;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			ok = imap_mutf7_put_unit(out, 0xd800 + (cp >> 10),
			    &bits, &nbits) && imap_mutf7_put_unit(out,
			    0xdc00 + (cp & 0x3ff), &bits, &nbits);
		} else {
			ok = imap_mutf7_put_unit(out, cp, &bits, &nbits);
		}
	}
	if (ok && nbits > 0)
		ok = imap_put(out, &imap_b64[(bits << (6 - nbits)) & 63], 1);
	if (!ok || !imap_put(out, "-", 1))
		return "Mailbox name too long";
	return NULL;
}

int
imap_mutf7_encode(const char *in, size_t len, struct buf *out,
		  const char **error_r)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x20 && c <= 0x7e) {
			if (!imap_put(out, c == '&' ? "&-" : in + i,
			    c == '&' ? 2 : 1)) {
				*error_r = "Mailbox name too long";
				return -1;
			}
			i++;
			continue;
		}
		if ((*error_r = imap_mutf7_enc_run(in, len, &i, out)) != NULL)
			return -1;
	}
	return 0;
}

/* ---- mailbox names ---- */

/* The UTF-8 name has no control character and no invalid sequence. */
static const char *
imap_mailbox_check(const char *s, size_t len)
{
	size_t n;

	for (size_t i = 0; i < len; i += n) {
		unsigned char c = (unsigned char)s[i];

		n = 1;
		if (c < 0x20 || c == 0x7f)
			return "Control character in mailbox name";
		if (c >= 0x80 && (n = imap_utf8_len(s + i, len - i)) == 0)
			return "Invalid UTF-8 in mailbox name";
	}
	return NULL;
}

int
imap_arg_mailbox(const struct imap_arg *a, bool utf8,
		 char name_r[IMAP_MAILBOX_MAX + 1], const char **error_r)
{
	const char *s = imap_arg_astring(a);
	struct buf b;
	int ret = -1;

	if (s == NULL) {
		*error_r = "Invalid mailbox name";
		return -1;
	}
	if (a->len == 0) {
		*error_r = "Empty mailbox name";
		return -1;
	}
	buf_init(&b, IMAP_MAILBOX_MAX);
	/* RFC 9051 §5.1: UTF-8 names for IMAP4rev2 / UTF8=ACCEPT. */
	if (utf8) {
		if (a->len > IMAP_MAILBOX_MAX)
			*error_r = "Mailbox name too long";
		else
			buf_add(&b, s, a->len);
	}
	if ((utf8 && b.len == a->len) ||
	    (!utf8 && imap_mutf7_decode(s, a->len, &b, error_r) == 0)) {
		*error_r = imap_mailbox_check(b.data, b.len);
		ret = *error_r == NULL ? 0 : -1;
	}
	if (ret == 0) {
		/* RFC 9051 §5.1: INBOX is case-insensitive. */
		if (str_case_eq(b.data, "INBOX"))
			memcpy(name_r, "INBOX", sizeof("INBOX"));
		else
			memcpy(name_r, b.data, b.len + 1);
	}
	buf_free(&b);
	return ret;
}
