/*
 * dkim_canon.c - the "relaxed" canonicalizations of RFC 6376 §3.4.2
 * (one header field at a time) and §3.4.4 (the body, streamed in chunks
 * of any size with constant memory).  Pure: bytes in, bytes out, no I/O.
 *
 * The body canonicalizer keeps three facts between chunks: WSP seen but
 * not yet written (it becomes one SP if more text follows on the line,
 * nothing if the line ends), a CR that may start a CRLF, and the number of
 * empty lines held back (written only if a non-empty line follows, since
 * §3.4.4 drops empty lines at the end of the body).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dkim/dkim_private.h"

#define DKIM_CANON_OUT 8192	/* bytes batched before calling the sink */

struct dkim_body_canon {
	dkim_sink_fn *sink;
	void *ctx;
	size_t empty_lines;	/* held back, see above */
	bool wsp;		/* WSP pending on the current line */
	bool cr;		/* last byte was CR */
	bool text;		/* the current line has text */
	bool finished;
	size_t out_len;
	char out[DKIM_CANON_OUT];
};

static bool
dkim_canon_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';	/* RFC 5234 WSP */
}

int
dkim_canon_header(const char *field, size_t len, struct buf *out)
{
	size_t colon, name_end;
	bool wsp = false, started = false;

	colon = 0;
	while (colon < len && field[colon] != ':')
		colon++;
	if (colon == len)
		return -1;
	/* §3.4.2: WSP before the colon goes (obs-optional, RFC 5322 §4.5) */
	name_end = colon;
	while (name_end > 0 && dkim_canon_is_wsp((unsigned char)
	    field[name_end - 1]))
		name_end--;
	if (name_end == 0 || name_end > INT_MAX)
		return -1;
	for (size_t i = 0; i < name_end; i++) {
		unsigned char c = (unsigned char)field[i];
		if (c < 0x21 || c > 0x7e)	/* ftext, RFC 5322 §3.6.8 */
			return -1;
	}
	for (size_t i = 0; i < name_end; i++) {
		unsigned char c = (unsigned char)field[i];
		buf_addc(out, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
	}
	buf_addc(out, ':');
	for (size_t i = colon + 1; i < len; i++) {
		unsigned char c = (unsigned char)field[i];
		/* unfold: CRLF goes, the WSP after it stays (and shrinks) */
		if (c == '\r' && i + 1 < len && field[i + 1] == '\n') {
			i++;
			continue;
		}
		if (dkim_canon_is_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && started)
			buf_addc(out, ' ');
		wsp = false;
		started = true;
		buf_addc(out, (char)c);
	}
	buf_add(out, "\r\n", 2);
	return (int)name_end;
}

struct dkim_body_canon *
dkim_body_canon_new(dkim_sink_fn *sink, void *ctx)
{
	struct dkim_body_canon *c = xmalloc(sizeof(*c));

	c->sink = sink;
	c->ctx = ctx;
	return c;
}

static void
dkim_canon_flush(struct dkim_body_canon *c)
{
	if (c->out_len > 0)
		c->sink(c->ctx, c->out, c->out_len);
	c->out_len = 0;
}

static void
dkim_canon_put(struct dkim_body_canon *c, const char *data, size_t len)
{
	while (len > 0) {
		size_t n = sizeof(c->out) - c->out_len;

		if (n > len)
			n = len;
		memcpy(c->out + c->out_len, data, n);
		c->out_len += n;
		data += n;
		len -= n;
		if (c->out_len == sizeof(c->out))
			dkim_canon_flush(c);
	}
}

/* Text on the line: held-back empty lines and WSP become real first. */
static void
dkim_canon_text(struct dkim_body_canon *c, const char *data, size_t len)
{
	for (; c->empty_lines > 0; c->empty_lines--)
		dkim_canon_put(c, "\r\n", 2);
	if (c->wsp)
		dkim_canon_put(c, " ", 1);
	c->wsp = false;
	c->text = true;
	dkim_canon_put(c, data, len);
}

/* CRLF: trailing WSP is dropped; an empty line is held back. */
static void
dkim_canon_eol(struct dkim_body_canon *c)
{
	c->wsp = false;
	if (c->text)
		dkim_canon_put(c, "\r\n", 2);
	else
		c->empty_lines++;
	c->text = false;
}

void
dkim_body_canon_feed(struct dkim_body_canon *c, const void *data, size_t len)
{
	const char *p = data;
	size_t i = 0;

	xassert(!c->finished);
	while (i < len) {
		unsigned char ch = (unsigned char)p[i];

		if (c->cr) {
			c->cr = false;
			if (ch == '\n') {
				dkim_canon_eol(c);
				i++;
				continue;
			}
			/* a bare CR is text */
			dkim_canon_text(c, "\r", 1);
		}
		if (ch == '\r') {
			c->cr = true;
			i++;
		} else if (dkim_canon_is_wsp(ch)) {
			c->wsp = true;
			i++;
		} else {
			/* a run of plain text in one copy */
			size_t j = i + 1;
			while (j < len && p[j] != '\r' && p[j] != ' ' &&
			    p[j] != '\t')
				j++;
			dkim_canon_text(c, p + i, j - i);
			i = j;
		}
	}
}

void
dkim_body_canon_finish(struct dkim_body_canon *c)
{
	xassert(!c->finished);
	c->finished = true;
	if (c->cr) {
		c->cr = false;
		dkim_canon_text(c, "\r", 1);
	}
	/*
	 * §3.4.4: "If the body is non-empty but does not end with a CRLF, a
	 * CRLF is added."  XXX: WSP on such an unterminated last line is
	 * kept as one SP: it is not "at the end of a line" until the CRLF is
	 * added; dkimpy reads the rule the same way.  Stored mail always
	 * ends in CRLF, so this never matters for what we send.
	 */
	if (c->text || c->wsp) {
		if (c->wsp)
			dkim_canon_text(c, "", 0);
		dkim_canon_put(c, "\r\n", 2);
	}
	dkim_canon_flush(c);
}

void
dkim_body_canon_free(struct dkim_body_canon **c)
{
	x_free(c);
}
