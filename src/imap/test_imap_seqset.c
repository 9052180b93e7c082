/*
 * test_imap_seqset.c - sequence sets: parsing (valid and hostile), "*"
 * and "$" resolution, merging, membership and iteration at the edges of
 * uint32_t, and the IMAP_SEQSET_RANGES_MAX cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"
#include "core/test.h"

struct test_seqset_case {
	const char *in;
	uint32_t max;		/* for "*" */
	const char *saved;	/* "$" result, NULL: none */
	const char *want;	/* resolved "lo-hi,lo-hi", NULL: invalid */
};

static const struct test_seqset_case test_seqset_cases[] = {
	{ "1", 10, NULL, "1-1" },
	{ "1:*", 10, NULL, "1-10" },
	{ "*", 10, NULL, "10-10" },
	{ "*:1", 10, NULL, "1-10" },
	{ "5:2", 10, NULL, "2-5" },
	{ "1:*,3,5:7", 10, NULL, "1-10" },
	{ "3,1,2", 10, NULL, "1-3" },
	{ "1,3,5", 10, NULL, "1-1,3-3,5-5" },
	{ "7:9,1:2,3", 10, NULL, "1-3,7-9" },
	{ "1:3,2:5,10:12,11", 10, NULL, "1-5,10-12" },
	{ "20:*", 10, NULL, "10-20" },	/* RFC 9051 §6.4.8 "n:*" */
	{ "*", 0, NULL, "" },
	{ "1:*", 0, NULL, "1-1" },
	{ "*,*:*", 0, NULL, "" },
	{ "4294967295", 10, NULL, "4294967295-4294967295" },
	{ "4294967294:4294967295,1", 10, NULL, "1-1,4294967294-4294967295" },
	{ "1:4294967295", 0, NULL, "1-4294967295" },
	{ "4294967295:*", 4294967295u, NULL, "4294967295-4294967295" },
	{ "$", 10, NULL, "" },
	{ "$", 10, "3:4", "3-4" },
	{ "1,$", 10, "3:4,9", "1-1,3-4,9-9" },
	{ "$,5", 10, "3:4", "3-5" },
	{ "5,$,1", 10, "", "1-1,5-5" },
	/* invalid */
	{ "", 10, NULL, NULL },
	{ "0", 10, NULL, NULL },
	{ "0:5", 10, NULL, NULL },
	{ "01", 10, NULL, NULL },
	{ "4294967296", 10, NULL, NULL },
	{ "99999999999999999999999", 10, NULL, NULL },
	{ "1,", 10, NULL, NULL },
	{ ",1", 10, NULL, NULL },
	{ "1,,2", 10, NULL, NULL },
	{ "1:", 10, NULL, NULL },
	{ ":1", 10, NULL, NULL },
	{ "1:2:3", 10, NULL, NULL },
	{ "1 ", 10, NULL, NULL },
	{ "-1", 10, NULL, NULL },
	{ "+1", 10, NULL, NULL },
	{ "1.5", 10, NULL, NULL },
	{ "**", 10, NULL, NULL },
	{ "$$", 10, NULL, NULL },
	{ "$:1", 10, NULL, NULL },
	{ "a", 10, NULL, NULL },
};

static void
test_render(const struct imap_seqset *set, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < set->count && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%u-%u",
		    i > 0 ? "," : "", set->ranges[i].lo, set->ranges[i].hi);
}

/* Membership and iteration agree with the ranges, up to max + 2. */
static void
test_walk(const struct imap_seqset *set, uint32_t max)
{
	struct imap_seqset_iter it;
	uint64_t seen = 0, in_range = 0;
	uint32_t n, prev = 0, top = max < 50 ? max : 50;

	imap_seqset_iter_init(&it);
	while (imap_seqset_iter_next(set, top, &it, &n)) {
		TEST_TRUE(imap_seqset_contains(set, n));
		TEST_TRUE(n > prev && n <= top);
		prev = n;
		seen++;
	}
	for (uint32_t k = 1; k <= top; k++)
		in_range += imap_seqset_contains(set, k);
	TEST_INT(seen, in_range);
	TEST_TRUE(!imap_seqset_contains(set, 0));
}

static void
test_cases(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_seqset_cases); i++) {
		const struct test_seqset_case *tc = &test_seqset_cases[i];
		struct imap_seqset set, saved;
		const char *err = NULL;
		char got[256];
		int ret = imap_seqset_parse(tc->in, strlen(tc->in), &set,
		    &err);

		if (tc->want == NULL) {
			TEST_CHECK(ret == -1 && err != NULL &&
			    set.ranges == NULL, "seqset %zu \"%s\": %d", i,
			    tc->in, ret);
			continue;
		}
		TEST_CHECK(ret == 0, "seqset %zu \"%s\": %s", i, tc->in, err);
		if (ret != 0)
			continue;
		if (tc->saved != NULL) {
			if (tc->saved[0] == '\0')
				memset(&saved, 0, sizeof(saved));
			else
				TEST_INT(imap_seqset_parse(tc->saved,
				    strlen(tc->saved), &saved, &err), 0);
			imap_seqset_resolve(&saved, tc->max, NULL);
		}
		imap_seqset_resolve(&set, tc->max,
		    tc->saved != NULL ? &saved : NULL);
		test_render(&set, got, sizeof(got));
		TEST_CHECK(strcmp(got, tc->want) == 0,
		    "seqset %zu \"%s\": %s, want %s", i, tc->in, got,
		    tc->want);
		/* resolving again changes nothing */
		imap_seqset_resolve(&set, tc->max, NULL);
		test_render(&set, got, sizeof(got));
		TEST_STR(got, tc->want);
		test_walk(&set, tc->max);
		if (tc->saved != NULL)
			imap_seqset_free(&saved);
		imap_seqset_free(&set);
	}
}

static void
test_edges(void)
{
	struct imap_seqset set;
	struct imap_seqset_iter it;
	const char *err;
	uint32_t n;

	/* Iteration ends at UINT32_MAX without wrapping. */
	TEST_INT(imap_seqset_parse("4294967294:*", 12, &set, &err), 0);
	imap_seqset_resolve(&set, UINT32_MAX, NULL);
	TEST_INT(imap_seqset_count(&set), 2);
	TEST_INT(imap_seqset_last(&set), UINT32_MAX);
	imap_seqset_iter_init(&it);
	TEST_TRUE(imap_seqset_iter_next(&set, UINT32_MAX, &it, &n));
	TEST_INT(n, 4294967294u);
	TEST_TRUE(imap_seqset_iter_next(&set, UINT32_MAX, &it, &n));
	TEST_INT(n, UINT32_MAX);
	TEST_TRUE(!imap_seqset_iter_next(&set, UINT32_MAX, &it, &n));
	TEST_TRUE(!imap_seqset_iter_next(&set, UINT32_MAX, &it, &n));
	imap_seqset_free(&set);

	TEST_INT(imap_seqset_parse("1:4294967295", 12, &set, &err), 0);
	imap_seqset_resolve(&set, 5, NULL);
	TEST_INT(imap_seqset_count(&set), UINT32_MAX);
	TEST_TRUE(imap_seqset_contains(&set, UINT32_MAX));
	/* iteration stops at max */
	imap_seqset_iter_init(&it);
	for (uint32_t k = 1; k <= 5; k++) {
		TEST_TRUE(imap_seqset_iter_next(&set, 5, &it, &n));
		TEST_INT(n, k);
	}
	TEST_TRUE(!imap_seqset_iter_next(&set, 5, &it, &n));
	imap_seqset_free(&set);

	/* len, not NUL, ends the text */
	TEST_INT(imap_seqset_parse("12,junk", 2, &set, &err), 0);
	imap_seqset_resolve(&set, 0, NULL);
	TEST_INT(imap_seqset_last(&set), 12);
	imap_seqset_free(&set);
	TEST_INT(imap_seqset_parse("1\0", 2, &set, &err), -1);
	imap_seqset_free(&set);	/* harmless after -1 */
	imap_seqset_free(&set);
}

/* IMAP_SEQSET_RANGES_MAX elements ("$" counted), and one more. */
static void
test_cap(void)
{
	struct buf b;
	struct imap_seqset set;
	const char *err;

	buf_init(&b, 0);
	for (int over = 0; over <= 1; over++) {
		buf_reset(&b);
		for (size_t i = 0; i < IMAP_SEQSET_RANGES_MAX + (size_t)over;
		    i++)
			buf_printf(&b, "%s%zu", i > 0 ? "," : "", 2 * i + 1);
		TEST_INT(imap_seqset_parse(b.data, b.len, &set, &err), -over);
		if (over) {
			TEST_STR(err, "Sequence set too long");
			continue;
		}
		imap_seqset_resolve(&set, 0, NULL);
		TEST_INT(set.count, IMAP_SEQSET_RANGES_MAX);
		TEST_INT(imap_seqset_count(&set), IMAP_SEQSET_RANGES_MAX);
		TEST_TRUE(imap_seqset_contains(&set, 2 * 100 + 1));
		TEST_TRUE(!imap_seqset_contains(&set, 2 * 100));
		imap_seqset_free(&set);
	}
	buf_free(&b);
}

int
main(void)
{
	test_cases();
	test_edges();
	test_cap();
	return test_done("test_imap_seqset");
}
