/*
 * imap_seqset.c - sequence sets (RFC 9051 §9 sequence-set, seq-range,
 * seq-number; "$" of RFC 5182 §2): parse, resolve "*" against the current
 * maximum, sort and merge, then test or walk.  Ranges are capped at
 * IMAP_SEQSET_RANGES_MAX; sums and steps use uint64_t so UINT32_MAX is an
 * ordinary member.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"

/* seq-number = nz-number / "*"; "*" becomes 0. */
static bool
imap_seq_number(const char *s, size_t len, size_t *i, uint32_t *n_r)
{
	uint64_t v = 0;
	size_t j = *i;

	if (j < len && s[j] == '*') {
		*n_r = 0;
		*i = j + 1;
		return true;
	}
	if (j >= len || s[j] < '1' || s[j] > '9')
		return false;
	for (; j < len && s[j] >= '0' && s[j] <= '9'; j++) {
		v = v * 10 + (uint64_t)(s[j] - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*n_r = (uint32_t)v;
	*i = j;
	return true;
}

static void
imap_seqset_add(struct imap_seqset *set, size_t *cap, uint32_t lo,
		uint32_t hi)
{
	if (set->count == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		set->ranges = xreallocarray(set->ranges, *cap,
		    sizeof(*set->ranges));
	}
	set->ranges[set->count].lo = lo;
	set->ranges[set->count].hi = hi;
	set->count++;
}

int
imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set_r,
		  const char **error_r)
{
	size_t i = 0, cap = 0, elems = 0;
	uint32_t lo, hi;

	memset(set_r, 0, sizeof(*set_r));
	*error_r = "Invalid sequence set";
	do {
		if (elems++ > 0 && s[i++] != ',')
			goto fail;
		if (elems > IMAP_SEQSET_RANGES_MAX) {
			*error_r = "Sequence set too long";
			goto fail;
		}
		if (i < len && s[i] == '$') {
			set_r->saved = true;
			i++;
			continue;
		}
		if (!imap_seq_number(s, len, &i, &lo))
			goto fail;
		hi = lo;
		if (i < len && s[i] == ':' &&
		    (++i, !imap_seq_number(s, len, &i, &hi)))
			goto fail;
		imap_seqset_add(set_r, &cap, lo, hi);
	} while (i < len);
	return 0;
fail:
	imap_seqset_free(set_r);
	return -1;
}

static int
imap_seq_range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t max,
		    const struct imap_seqset *saved)
{
	size_t n = 0, total = set->count;

	if (set->saved && saved != NULL) {
		xassert(saved->resolved);
		total += saved->count;
		set->ranges = xreallocarray(set->ranges, total == 0 ? 1 :
		    total, sizeof(*set->ranges));
		if (saved->count > 0)
			memcpy(set->ranges + set->count, saved->ranges,
			    saved->count * sizeof(*set->ranges));
	}
	for (size_t i = 0; i < total; i++) {
		struct imap_seq_range r = set->ranges[i];

		r.lo = r.lo == 0 ? max : r.lo;
		r.hi = r.hi == 0 ? max : r.hi;
		if (r.lo == 0 && r.hi == 0)
			continue;	/* "*" of an empty mailbox */
		if (r.lo == 0 || r.hi == 0)
			r.lo = r.hi = r.lo | r.hi;
		if (r.lo > r.hi) {
			uint32_t t = r.lo;

			r.lo = r.hi;
			r.hi = t;
		}
		set->ranges[n++] = r;
	}
	if (n > 1)
		qsort(set->ranges, n, sizeof(*set->ranges), imap_seq_range_cmp);
	set->count = 0;
	for (size_t i = 0; i < n; i++) {
		struct imap_seq_range *last = set->count > 0 ?
		    &set->ranges[set->count - 1] : NULL;

		if (last != NULL &&
		    (uint64_t)set->ranges[i].lo <= (uint64_t)last->hi + 1) {
			if (set->ranges[i].hi > last->hi)
				last->hi = set->ranges[i].hi;
		} else {
			set->ranges[set->count++] = set->ranges[i];
		}
	}
	set->saved = false;
	set->resolved = true;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	xassert(set->resolved);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t
imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t sum = 0;

	xassert(set->resolved);
	for (size_t i = 0; i < set->count; i++)
		sum += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return sum;
}

uint32_t
imap_seqset_last(const struct imap_seqset *set)
{
	xassert(set->resolved);
	return set->count > 0 ? set->ranges[set->count - 1].hi : 0;
}

void
imap_seqset_iter_init(struct imap_seqset_iter *it)
{
	it->range = 0;
	it->next = 0;
}

bool
imap_seqset_iter_next(const struct imap_seqset *set, uint32_t max,
		      struct imap_seqset_iter *it, uint32_t *n_r)
{
	xassert(set->resolved);
	while (it->range < set->count) {
		const struct imap_seq_range *r = &set->ranges[it->range];
		uint64_t n = it->next > r->lo ? it->next : r->lo;

		if (n > r->hi) {
			it->range++;
			continue;
		}
		if (n > max)
			return false;
		*n_r = (uint32_t)n;
		it->next = n + 1;
		return true;
	}
	return false;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	x_free(&set->ranges);
	set->count = 0;
	set->saved = false;
	set->resolved = false;
}
