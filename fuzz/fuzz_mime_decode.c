/*
 * fuzz_mime_decode.c - libFuzzer target for mime_decode.c: arbitrary
 * bytes (first byte picks the chunk size and the charset) must never
 * crash; header decoding never grows past a bound of the input; the
 * base64, quoted-printable, charset and matcher streams give the same
 * result fed whole and in chunks.
 */
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_md_charsets[] = { "UTF-8", "ISO-8859-1",
	"ISO-8859-15", "windows-1252", "UTF-16BE", "EUC-JP", "x-none" };

/* One stream fed in chunks of step bytes into out. */
static void
fuzz_md_stream(const char *in, size_t len, size_t step, enum mime_cte cte,
    const char *cs, struct buf *out)
{
	struct mime_cte_dec *d = mime_cte_dec_new(cte);
	struct mime_conv *c = mime_conv_new(cs, strlen(cs));
	struct buf raw;

	buf_init(&raw, 0);
	for (size_t i = 0; i < len; i += step)
		mime_cte_dec_feed(d, in + i, len - i < step ? len - i : step,
		    &raw);
	mime_cte_dec_finish(d, &raw);
	for (size_t i = 0; i < raw.len; i += step)
		mime_conv_feed(c, raw.data + i, raw.len - i < step ?
		    raw.len - i : step, out);
	mime_conv_finish(c, out);
	buf_free(&raw);
	mime_conv_free(&c);
	mime_cte_dec_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;
	size_t len, step;
	const char *cs;
	struct buf a, b;

	if (size < 1)
		return 0;
	len = size - 1;
	step = (size_t)(data[0] & 0x1f) + 1;
	cs = fuzz_md_charsets[data[0] % (sizeof(fuzz_md_charsets) /
	    sizeof(*fuzz_md_charsets))];
	buf_init(&a, 0);
	mime_header_decode(in, len, &a);
	xassert(a.len <= len * 8 + 8);
	for (enum mime_cte cte = MIME_CTE_7BIT; cte <= MIME_CTE_QP; cte++) {
		struct mime_match *mm;
		bool whole;

		buf_init(&b, 0);
		buf_reset(&a);
		fuzz_md_stream(in, len, len + 1, cte, cs, &a);
		fuzz_md_stream(in, len, step, cte, cs, &b);
		xassert(a.len == b.len && (a.len == 0 ||
		    memcmp(a.data, b.data, a.len) == 0));
		mm = mime_match_new(in, len < 8 ? len : 8);
		whole = mime_match_feed(mm, a.data, a.len);
		mime_match_reset(mm);
		for (size_t i = 0; i < b.len; i++)
			mime_match_feed(mm, b.data + i, 1);
		xassert(mime_match_feed(mm, NULL, 0) == whole);
		mime_match_free(&mm);
		buf_free(&b);
	}
	buf_free(&a);
	return 0;
}
