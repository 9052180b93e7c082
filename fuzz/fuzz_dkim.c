/*
 * fuzz_dkim.c - libFuzzer target for the DKIM canonicalizers and the
 * signer's header parser: arbitrary bytes (first byte picks the chunk
 * size) never crash; whole and chunked feeding give the same canonical
 * body and the same signature field (Ed25519 is deterministic); relaxed
 * body output has no WSP runs, no TAB, no trailing empty lines, and for
 * input ending in CRLF no trailing WSP and is a fixed point; a header
 * field canonicalizes to "name:value\r\n".
 */
#include <stdlib.h>
#include <string.h>

#include "dkim/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dkim_key *fuzz_dkim_key;

static void
fuzz_dkim_sink(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
}

static void
fuzz_dkim_body(const char *in, size_t len, size_t step, struct buf *out)
{
	struct dkim_body_canon *c = dkim_body_canon_new(fuzz_dkim_sink, out);

	for (size_t at = 0; at < len; at += step)
		dkim_body_canon_feed(c, in + at, len - at < step ? len - at :
		    step);
	dkim_body_canon_finish(c);
	dkim_body_canon_free(&c);
}

static void
fuzz_dkim_check_body(const char *in, size_t len, size_t step)
{
	struct buf whole, chunked, again;

	buf_init(&whole, 0);
	buf_init(&chunked, 0);
	buf_init(&again, 0);
	fuzz_dkim_body(in, len, len > 0 ? len : 1, &whole);
	fuzz_dkim_body(in, len, step, &chunked);
	xassert(whole.len == chunked.len && (whole.len == 0 ||
	    memcmp(whole.data, chunked.data, whole.len) == 0));
	if (whole.len > 0) {
		xassert(whole.len >= 2 && memcmp(whole.data + whole.len - 2,
		    "\r\n", 2) == 0);
		xassert(whole.len < 4 || memcmp(whole.data + whole.len - 4,
		    "\r\n\r\n", 4) != 0);
		xassert(memmem(whole.data, whole.len, "  ", 2) == NULL);
		xassert(memchr(whole.data, '\t', whole.len) == NULL);
	}
	/* WSP on an unterminated last line survives as one SP (see
	 * dkim_body_canon_finish()); otherwise no trailing WSP, and the
	 * output is its own canonical form */
	if (len >= 2 && in[len - 2] == '\r' && in[len - 1] == '\n') {
		xassert(whole.len == 0 || memmem(whole.data, whole.len,
		    " \r\n", 3) == NULL);
		fuzz_dkim_body(whole.data, whole.len, 1, &again);
		xassert(again.len == whole.len && (whole.len == 0 ||
		    memcmp(whole.data, again.data, whole.len) == 0));
	}
	buf_free(&whole);
	buf_free(&chunked);
	buf_free(&again);
}

static void
fuzz_dkim_check_header(const char *in, size_t len)
{
	struct buf out;
	int n;

	buf_init(&out, 0);
	n = dkim_canon_header(in, len, &out);
	if (n < 0) {
		xassert(out.len == 0);
	} else {
		xassert(n > 0 && (size_t)n < out.len && out.data[n] == ':');
		xassert(out.len >= (size_t)n + 3 && memcmp(out.data +
		    out.len - 2, "\r\n", 2) == 0);
		for (int i = 0; i < n; i++)
			xassert(out.data[i] > 0x20 && out.data[i] < 0x7f &&
			    !(out.data[i] >= 'A' && out.data[i] <= 'Z'));
		xassert(out.len <= len + 3);
	}
	buf_free(&out);
}

static int
fuzz_dkim_sign(const char *in, size_t len, size_t step, struct buf *out,
    const char **err)
{
	struct dkim_signer *s = dkim_signer_new("example.org", "mail",
	    &fuzz_dkim_key, 1, NULL);
	int rc;

	for (size_t at = 0; at < len; at += step)
		dkim_signer_feed(s, in + at, len - at < step ? len - at :
		    step);
	rc = dkim_signer_finish(s, 1700000000, out, err);
	dkim_signer_free(&s);
	return rc;
}

static void
fuzz_dkim_check_sign(const char *in, size_t len, size_t step)
{
	struct buf whole, chunked, canon;
	const char *e1 = NULL, *e2 = NULL;
	int r1, r2;

	buf_init(&whole, 0);
	buf_init(&chunked, 0);
	buf_init(&canon, 0);
	r1 = fuzz_dkim_sign(in, len, len > 0 ? len : 1, &whole, &e1);
	r2 = fuzz_dkim_sign(in, len, step, &chunked, &e2);
	xassert(r1 == r2 && e1 == e2);
	xassert(whole.len == chunked.len && (whole.len == 0 ||
	    memcmp(whole.data, chunked.data, whole.len) == 0));
	if (r1 == 0) {
		xassert(strncmp(whole.data, "DKIM-Signature:", 15) == 0);
		xassert(dkim_canon_header(whole.data, whole.len, &canon) ==
		    14);
		xassert(strstr(whole.data, "h=from:from") != NULL);
	} else {
		xassert(whole.len == 0 && e1 != NULL);
	}
	buf_free(&whole);
	buf_free(&chunked);
	buf_free(&canon);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *err = NULL, *msg;
	size_t step, len;

	if (fuzz_dkim_key == NULL)
		xassert(dkim_key_generate(DKIM_ALG_ED25519_SHA256,
		    &fuzz_dkim_key, &err) == 0);
	if (size < 1)
		return 0;
	step = 1 + data[0] % 16;
	msg = (const char *)data + 1;
	len = size - 1;
	fuzz_dkim_check_header(msg, len);
	fuzz_dkim_check_body(msg, len, step);
	fuzz_dkim_check_sign(msg, len, step);
	return 0;
}
