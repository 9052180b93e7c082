/*
 * fuzz_imap_seqset.c - libFuzzer target for the sequence-set parser.  The
 * first four bytes are the "*" value; the rest, split at the first NUL,
 * is the set and the saved "$" result.  Checks the resolved set is
 * sorted, disjoint and merged, and that membership, iteration and the
 * count agree.
 */
#include <string.h>

#include "imap/imap_seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_seqset_check(const struct imap_seqset *set, uint32_t max)
{
	struct imap_seqset_iter it;
	uint64_t sum = 0, seen = 0;
	uint32_t n, prev = 0, top = max < 4096 ? max : 4096;

	xassert(set->count <= 2 * IMAP_SEQSET_RANGES_MAX);
	for (size_t i = 0; i < set->count; i++) {
		const struct imap_seq_range *r = &set->ranges[i];

		xassert(r->lo >= 1 && r->lo <= r->hi);
		/* disjoint and not adjacent */
		xassert(i == 0 || (uint64_t)set->ranges[i - 1].hi + 1 < r->lo);
		xassert(imap_seqset_contains(set, r->lo));
		xassert(imap_seqset_contains(set, r->hi));
		xassert(r->lo == 1 || i > 0 || !imap_seqset_contains(set,
		    r->lo - 1));
		sum += (uint64_t)r->hi - r->lo + 1;
	}
	xassert(sum == imap_seqset_count(set));
	xassert(!imap_seqset_contains(set, 0));
	imap_seqset_iter_init(&it);
	while (imap_seqset_iter_next(set, top, &it, &n)) {
		xassert(n > prev && n <= top && imap_seqset_contains(set, n));
		prev = n;
		seen++;
	}
	for (uint32_t k = 1; k <= top && k <= 4096; k++)
		seen -= imap_seqset_contains(set, k);
	xassert(seen == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_seqset set, saved;
	const char *s, *nul, *err;
	size_t len, slen = 0;
	uint32_t max;
	bool have_saved = false;

	if (size < 4)
		return 0;
	max = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
	    (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
	s = (const char *)data + 4;
	len = size - 4;
	nul = memchr(s, '\0', len);
	if (nul != NULL) {
		slen = len - (size_t)(nul - s) - 1;
		len = (size_t)(nul - s);
		have_saved = imap_seqset_parse(nul + 1, slen, &saved,
		    &err) == 0;
		if (have_saved) {
			imap_seqset_resolve(&saved, max, NULL);
			fuzz_seqset_check(&saved, max);
		}
	}
	if (imap_seqset_parse(s, len, &set, &err) == 0) {
		xassert(set.count <= IMAP_SEQSET_RANGES_MAX);
		imap_seqset_resolve(&set, max, have_saved ? &saved : NULL);
		fuzz_seqset_check(&set, max);
		imap_seqset_free(&set);
	} else {
		xassert(err != NULL && set.ranges == NULL);
	}
	if (have_saved)
		imap_seqset_free(&saved);
	return 0;
}
