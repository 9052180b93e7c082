/*
 * test_imap_sort.c - the RFC 5256 pieces SORT and THREAD share: base
 * subject extraction (§2.1, also after RFC 2047 decoding) and the sent
 * date (§2.2).
 */
#include <stdlib.h>
#include <string.h>

#include "core/test.h"
#include "imap/imap_private.h"
#include "imap/imap_selected.h"

struct subject_case {
	const char *in;
	const char *base;
	bool refwd;
};

static const struct subject_case subject_cases[] = {
	/* upper-cased for i;ascii-casemap (imap_selected.h) */
	{ "Hello", "HELLO", false },
	{ "  Hello   world  ", "HELLO WORLD", false },
	{ "Re: Hello", "HELLO", true },
	{ "RE: re: Fwd: Hello", "HELLO", true },
	{ "Re[2]: Hello", "HELLO", true },
	{ "[list] Re: Hello", "HELLO", true },
	{ "Hello (fwd)", "HELLO", true },
	{ "[Fwd: Hello]", "HELLO", true },
	{ "Re:", "", true },
	{ "", "", false },
	{ "Fw: Fwd:  Re: x", "X", true },
	{ "[tag]", "[TAG]", false },
	{ "=?UTF-8?B?UmU6IEhlbGxv?=", "HELLO", true },
	{ "=?ISO-8859-1?Q?Caf=E9?=", "CAF\xc3\xa9", false },
};

static void
test_base_subject(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(subject_cases); i++) {
		const struct subject_case *c = &subject_cases[i];
		bool refwd = false;
		char *b = imap_base_subject(c->in, &refwd);
		TEST_STR(b, c->base);
		TEST_CHECK(refwd == c->refwd, "refwd of \"%s\"", c->in);
		free(b);
	}
}

static void
test_sent_date(void)
{
	struct buf h;

	buf_init(&h, 0);
	buf_adds(&h, "Subject: x\r\nDate: Mon, 30 Nov 2026 10:00:00 +0200\r\n"
	    "\r\n");
	/* 08:00 UTC */
	TEST_INT(imap_sort_sent_date(&h, 5), 1796025600);
	buf_reset(&h);
	buf_adds(&h, "Date: not a date\r\n\r\n");
	TEST_INT(imap_sort_sent_date(&h, 5), 5);	/* arrival instead */
	buf_reset(&h);
	buf_adds(&h, "Subject: none\r\n\r\n");
	TEST_INT(imap_sort_sent_date(&h, 7), 7);
	buf_free(&h);
}

int
main(void)
{
	test_base_subject();
	test_sent_date();
	return test_done("imap_sort");
}
