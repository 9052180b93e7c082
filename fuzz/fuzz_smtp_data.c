/*
 * fuzz_smtp_data.c - libFuzzer target for the DATA/BDAT content reader:
 * arbitrary bytes (first byte picks DATA or BDAT and whether to feed in
 * small pieces) must never crash; output only ever holds CRLF line ends;
 * feeding whole or in pieces gives the same result.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_data_run(const uint8_t *in, size_t len, bool dot, size_t step,
    bool add_missing, struct smtp_data *d, bool *end_r, size_t *used_r)
{
	size_t used = 0;
	bool end = false;

	smtp_data_init(d, dot, 1 << 16, true, add_missing, "h", "id");
	while (used < len && !end) {
		size_t n = len - used < step ? len - used : step;
		used += smtp_data_feed(d, (const char *)in + used, n, &end);
	}
	if (!dot)
		smtp_data_finish(d);
	*end_r = end;
	*used_r = used;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data a, b;
	bool end_a, end_b;
	size_t used_a, used_b;

	if (size < 1)
		return 0;
	bool dot = data[0] & 1;
	size_t step = 1 + (data[0] >> 1) % 7;
	/* The added Date header depends on the clock: exercised, not
	 * compared. */
	fuzz_data_run(data + 1, size - 1, dot, step, true, &a, &end_a,
	    &used_a);
	smtp_data_free(&a);
	fuzz_data_run(data + 1, size - 1, dot, size, false, &a, &end_a,
	    &used_a);
	fuzz_data_run(data + 1, size - 1, dot, step, false, &b, &end_b,
	    &used_b);
	xassert(end_a == end_b && used_a == used_b && a.err == b.err);
	xassert(a.out.len == b.out.len &&
	    (a.out.len == 0 || memcmp(a.out.data, b.out.data, a.out.len) == 0));
	if (a.err == SMTP_DATA_OK) {
		for (size_t i = 0; i < a.out.len; i++) {
			if (a.out.data[i] == '\n')
				xassert(i > 0 && a.out.data[i - 1] == '\r');
			if (a.out.data[i] == '\r')
				xassert(i + 1 < a.out.len &&
				    a.out.data[i + 1] == '\n');
		}
	}
	smtp_data_free(&a);
	smtp_data_free(&b);
	return 0;
}
