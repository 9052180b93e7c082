/*
 * test.h - the tiny assertion kit of the C unit tests.  Each failure
 * prints file:line and the values; test_done() prints the plain closing
 * line "N passed, N failed" and returns the exit status.
 */
#ifndef MAILFORT_TEST_H
#define MAILFORT_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define TEST_CHECK(cond, fmt, ...) do {					\
	if (cond) {							\
		test_passed++;						\
	} else {							\
		test_failed++;						\
		fprintf(stderr, "FAIL %s:%d: " fmt "\n", __FILE__,	\
		    __LINE__, __VA_ARGS__);				\
	}								\
} while (0)
#define TEST_TRUE(e) TEST_CHECK((e), "%s", #e)
#define TEST_INT(a, b) do {						\
	long long test_a_ = (long long)(a), test_b_ = (long long)(b);	\
	TEST_CHECK(test_a_ == test_b_, "%s = %lld, want %lld", #a,	\
	    test_a_, test_b_);						\
} while (0)
#define TEST_STR(a, b) do {						\
	const char *test_a_ = (a), *test_b_ = (b);			\
	TEST_CHECK(test_a_ != NULL && strcmp(test_a_, test_b_) == 0,	\
	    "%s = \"%s\", want \"%s\"", #a,				\
	    test_a_ ? test_a_ : "(null)", test_b_);			\
} while (0)

static inline int
test_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
	return test_failed == 0 ? 0 : 1;
}

#endif
