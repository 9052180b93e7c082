/*
 * imap_seqset.h - RFC 9051 §9 sequence-set ("1:*,3,5:7", "$") parsed into
 * ranges, then resolved against the mailbox's current largest number into
 * a sorted list of disjoint ranges for membership tests and iteration.
 * Pure: no I/O; numbers are uint32_t (nz-number) and nothing overflows.
 */
#ifndef MAILFORT_IMAP_SEQSET_H
#define MAILFORT_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Ranges one sequence-set may list (an IMAP_LINE_MAX line holds ~32K). */
#define IMAP_SEQSET_RANGES_MAX 8192

/* lo..hi inclusive.  Before imap_seqset_resolve() 0 stands for "*" and
 * lo may exceed hi ("5:2" is "2:5", RFC 9051 §9 seq-range). */
struct imap_seq_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	struct imap_seq_range *ranges;	/* owned, xmalloc'ed */
	size_t count;
	bool saved;		/* "$" given (RFC 5182); resolve clears it */
	bool resolved;
};

/*
 * Parses s[0..len): (seq-number / seq-range) *("," ...), where "$" may
 * stand for any element.  Numbers are nz-number (no 0, no leading 0, at
 * most UINT32_MAX).  Returns 0 with *set_r filled (free it with
 * imap_seqset_free), or -1 with *error_r static text for "BAD <text>"
 * and nothing to free.
 */
int imap_seqset_parse(const char *s, size_t len, struct imap_seqset *set_r,
		      const char **error_r) MF_WUR;

/*
 * Replaces "*" by max (the highest sequence number or UID; 0 in an empty
 * mailbox, where a range down to "*" keeps only its number part), orders
 * each range, adds saved's ranges when "$" was given (saved may be NULL:
 * the empty set, RFC 5182 §2.1), then sorts and merges.  Idempotent.
 */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t max,
			 const struct imap_seqset *saved);

/* Resolved set: is n in it (binary search)? */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Resolved set: number of members; the highest (0 when empty). */
uint64_t imap_seqset_count(const struct imap_seqset *set);
uint32_t imap_seqset_last(const struct imap_seqset *set);

/* Iterates a resolved set in ascending order, members above max left
 * out.  Start with an iterator zeroed by imap_seqset_iter_init. */
struct imap_seqset_iter {
	size_t range;
	uint64_t next;
};
void imap_seqset_iter_init(struct imap_seqset_iter *it);
bool imap_seqset_iter_next(const struct imap_seqset *set, uint32_t max,
			   struct imap_seqset_iter *it, uint32_t *n_r);

void imap_seqset_free(struct imap_seqset *set);

#endif
