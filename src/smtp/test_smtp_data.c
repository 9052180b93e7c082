/*
 * test_smtp_data.c - the DATA/BDAT content reader, fed whole and byte by
 * byte: terminator, dot-unstuffing, bare CR/LF refusal (no smuggling),
 * header filtering, limits.
 */
#include <stdlib.h>
#include <string.h>

#include "core/test.h"
#include "smtp/smtp_data.h"

struct data_case {
	const char *in;
	bool dot_mode;
	bool privacy;
	bool add_missing;
	bool end;		/* terminator seen */
	size_t consumed;	/* 0: whole input */
	enum smtp_data_err err;
	const char *out;	/* NULL: don't check */
};

static const struct data_case data_cases[] = {
	{ "Subject: a\r\n\r\nbody\r\n.\r\n", true, false, false, true, 0,
	  SMTP_DATA_OK, "Subject: a\r\n\r\nbody\r\n" },
	{ ".\r\n", true, false, false, true, 0, SMTP_DATA_OK, "" },
	{ "a\r\n..b\r\n.\r\nQUIT\r\n", true, false, false, true, 11,
	  SMTP_DATA_OK, "a\r\n.b\r\n" },
	/* smuggling: bare LF before the dot never ends DATA */
	{ "a\n.\nMAIL FROM:<x@y>\r\n", true, false, false, false, 0,
	  SMTP_DATA_BARE_NEWLINE, NULL },
	{ "a\r\n.\nMAIL FROM:<x@y>\r\n", true, false, false, false, 0,
	  SMTP_DATA_BARE_NEWLINE, NULL },
	{ "a\n.\r\nMAIL FROM:<x@y>\r\n", true, false, false, false, 0,
	  SMTP_DATA_BARE_NEWLINE, NULL },
	{ "a\r.\r\n", true, false, false, false, 0, SMTP_DATA_BARE_NEWLINE,
	  NULL },
	{ "a\n\r\n.\r\n", true, false, false, true, 0, SMTP_DATA_BARE_NEWLINE,
	  NULL },
	/* BDAT: dots are data, no terminator */
	{ ".\r\n..x\r\n", false, false, false, false, 0, SMTP_DATA_OK,
	  ".\r\n..x\r\n" },
	/* privacy drops fields with their continuation lines */
	{ "From: a\r\nUser-Agent: x\r\n y\r\nX-Mailer: z\r\nX-Originating-IP: "
	  "1.2.3.4\r\nTo: b\r\n\r\nUser-Agent: body\r\n.\r\n", true, true,
	  false, true, 0, SMTP_DATA_OK,
	  "From: a\r\nTo: b\r\n\r\nUser-Agent: body\r\n" },
	{ "Subject: s\r\n\r\nb\r\n.\r\n", true, false, true, true, 0,
	  SMTP_DATA_OK, NULL },
	{ "Date: x\r\nMessage-ID: <a@b>\r\n\r\nb\r\n.\r\n", true, false, true,
	  true, 0, SMTP_DATA_OK, "Date: x\r\nMessage-ID: <a@b>\r\n\r\nb\r\n" },
};

static void
data_run(const struct data_case *c, bool bytewise)
{
	struct smtp_data d;
	size_t len = strlen(c->in), used = 0;
	bool end = false;

	smtp_data_init(&d, c->dot_mode, 1 << 20, c->privacy, c->add_missing,
	    "mx.example", "ID1");
	while (used < len && !end) {
		size_t n = bytewise ? 1 : len - used;
		used += smtp_data_feed(&d, c->in + used, n, &end);
	}
	TEST_INT(end, c->end);
	TEST_INT(used, c->consumed ? c->consumed : len);
	TEST_INT(d.err, c->err);
	if (c->out != NULL && c->err == SMTP_DATA_OK)
		TEST_STR(d.out.data ? d.out.data : "", c->out);
	if (c->add_missing && strstr(c->in, "Date:") == NULL) {
		TEST_TRUE(d.out.data && strstr(d.out.data, "\r\nDate: ") != NULL);
		TEST_TRUE(d.out.data &&
		    strstr(d.out.data, "Message-ID: <ID1@mx.example>\r\n\r\nb")
		    != NULL);
	}
	smtp_data_free(&d);
}

static void
test_limits(void)
{
	struct smtp_data d;
	char *big = malloc(SMTP_DATA_LINE_MAX + 10);
	bool end;

	memset(big, 'x', SMTP_DATA_LINE_MAX + 10);
	smtp_data_init(&d, true, 1 << 30, false, false, "h", "i");
	(void)smtp_data_feed(&d, big, SMTP_DATA_LINE_MAX + 10, &end);
	(void)smtp_data_feed(&d, "\r\n.\r\n", 5, &end);
	TEST_TRUE(end);
	TEST_INT(d.err, SMTP_DATA_LINE_TOO_LONG);
	smtp_data_free(&d);

	smtp_data_init(&d, true, 10, false, false, "h", "i");
	(void)smtp_data_feed(&d, "0123456789abc\r\n.\r\n", 18, &end);
	TEST_TRUE(end);
	TEST_INT(d.err, SMTP_DATA_TOO_BIG);
	smtp_data_free(&d);

	smtp_data_init(&d, true, 1 << 20, false, false, "h", "i");
	for (int i = 0; i <= SMTP_DATA_HOPS_MAX; i++)
		(void)smtp_data_feed(&d, "Received: x\r\n", 13, &end);
	TEST_INT(d.err, SMTP_DATA_TOO_MANY_HOPS);
	smtp_data_free(&d);

	/* BDAT final line without CRLF gets one */
	smtp_data_init(&d, false, 1 << 20, false, false, "h", "i");
	(void)smtp_data_feed(&d, "A: b\r\n\r\nend", 11, &end);
	smtp_data_finish(&d);
	TEST_STR(d.out.data, "A: b\r\n\r\nend\r\n");
	smtp_data_free(&d);
	free(big);
}

int
main(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(data_cases); i++) {
		data_run(&data_cases[i], false);
		data_run(&data_cases[i], true);
	}
	test_limits();
	return test_done("smtp_data");
}
