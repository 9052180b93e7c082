/*
 * test_imap_args.c - the argument helpers on parsed commands: numbers,
 * astrings, mailbox names with modified UTF-7 (round trips and every
 * invalid form), and FETCH section atoms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parse.h"
#include "core/test.h"

#define B(s) s, sizeof(s) - 1

/* Parses one complete command (buffered literals) for helper tests. */
static struct imap_parser *
test_parse_len(const char *in, size_t len, const struct imap_command **cmd_r)
{
	struct imap_parser *p = imap_parser_new();
	size_t pos = 0, used;
	enum imap_parse_res res;

	while ((res = imap_parser_feed(p, in + pos, len - pos, &used)) ==
	    IMAP_PARSE_LITERAL) {
		pos += used;
		TEST_INT(imap_parser_literal_accept(p, IMAP_LIT_BUFFER), 0);
	}
	TEST_INT(res, IMAP_PARSE_COMMAND);
	*cmd_r = imap_parser_command(p);
	return p;
}

static struct imap_parser *
test_parse(const char *in, const struct imap_command **cmd_r)
{
	return test_parse_len(in, strlen(in), cmd_r);
}

static void
test_helpers(void)
{
	const struct imap_command *cmd;
	static const char in[] = "A1 X 0 1 4294967295 "
	    "18446744073709551615 18446744073709551616 01 -1 1a \"1\" "
	    "NIL \"s\" {1}\r\nl ~{3}\r\na\0b ()\r\n";
	struct imap_parser *p = test_parse_len(in, sizeof(in) - 1, &cmd);
	const struct imap_arg *a = cmd->args;
	uint64_t n;

	TEST_INT(cmd->count, 14);
	TEST_INT(imap_arg_number(a, 1, UINT32_MAX, &n), -1);
	TEST_INT(imap_arg_number(a, 0, UINT32_MAX, &n), 0);
	TEST_INT(n, 0);
	a = a->next;
	TEST_INT(imap_arg_number(a, 1, UINT32_MAX, &n), 0);
	TEST_INT(n, 1);
	a = a->next;
	TEST_INT(imap_arg_number(a, 1, UINT32_MAX, &n), 0);
	TEST_INT(n, UINT32_MAX);
	TEST_INT(imap_arg_number(a, 1, UINT32_MAX - 1, &n), -1);
	a = a->next;
	TEST_INT(imap_arg_number(a, 0, UINT64_MAX, &n), 0);
	TEST_TRUE(n == UINT64_MAX);
	for (int i = 0; i < 5; i++) {	/* overflow, 01, -1, 1a, "1" */
		a = a->next;
		TEST_INT(imap_arg_number(a, 0, UINT64_MAX, &n), -1);
	}
	TEST_STR(imap_arg_astring(a), "1");
	TEST_STR(imap_arg_string(a), "1");
	a = a->next;
	TEST_INT(a->type, IMAP_ARG_NIL);
	TEST_STR(imap_arg_astring(a), "NIL");
	TEST_TRUE(imap_arg_string(a) == NULL);
	TEST_TRUE(imap_arg_is_atom(a, "nil"));
	a = a->next;
	TEST_TRUE(imap_arg_is_atom(a, "s") == false);
	TEST_STR(imap_arg_string(a), "s");
	a = a->next;
	TEST_INT(a->type, IMAP_ARG_LITERAL);
	TEST_TRUE(a->flags & IMAP_ARG_F_SYNC);
	TEST_STR(imap_arg_astring(a), "l");
	a = a->next;
	TEST_TRUE(a->flags & IMAP_ARG_F_LITERAL8);
	TEST_INT(a->len, 3);
	TEST_TRUE(imap_arg_astring(a) == NULL);	/* holds a NUL */
	a = a->next;
	TEST_INT(a->type, IMAP_ARG_LIST);
	TEST_TRUE(a->list == NULL && a->count == 0 && a->next == NULL);
	TEST_TRUE(imap_arg_astring(a) == NULL);
	TEST_TRUE(imap_arg_astring(NULL) == NULL);
	imap_parser_free(&p);
}

/* ---- mailbox names and modified UTF-7 ---- */

struct test_mutf7_case {
	const char *mutf7;
	const char *utf8;	/* NULL: mutf7 is invalid */
};

static const struct test_mutf7_case test_mutf7_cases[] = {
	{ "INBOX", "INBOX" },
	{ "", "" },
	{ "&-", "&" },
	{ "a&-b&-", "a&b&" },
	/* RFC 3501 §5.1.3 example */
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
	  "\xe8\xaa\x9e" },
	{ "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" },
	{ "&AOQA9gD8-", "\xc3\xa4\xc3\xb6\xc3\xbc" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },		/* U+1F600, a pair */
	{ "&AAE-", "\x01" },
	{ "&AH8-", "\x7f" },
	{ "&AIA-", "\xc2\x80" },
	{ "&,,,,,w-", "\xef\xbf\xbf\xef\xbf\xbf" },	/* U+FFFF U+FFFF */
	/* invalid */
	{ "&", NULL },
	{ "a&", NULL },
	{ "&AOQ", NULL },			/* no "-" */
	{ "&AGE-", NULL },			/* "a": printable ASCII */
	{ "&ACY-", NULL },			/* "&" must be "&-" */
	{ "&AAA-", NULL },			/* NUL */
	{ "&AOQ-&AOQ", NULL },
	{ "&AO-", NULL },			/* too few bits */
	{ "&AOR-", NULL },			/* non-zero padding */
	{ "&AOQA-", NULL },			/* a whole sextet left */
	{ "&AOQ/-", NULL },			/* "/" is not mBASE64 */
	{ "&AO=Q-", NULL },
	{ "&2D0-", NULL },			/* lone high surrogate */
	{ "&3gA-", NULL },			/* lone low surrogate */
	{ "&2D3YPQ-", NULL },			/* high, high */
	{ "a\x80", NULL },
	{ "a\tb", NULL },
	{ "a\x7f", NULL },
};

static void
test_mutf7(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_mutf7_cases); i++) {
		const struct test_mutf7_case *tc = &test_mutf7_cases[i];
		struct buf out, back;
		const char *err = NULL;
		int ret;

		buf_init(&out, 0);
		buf_init(&back, 0);
		ret = imap_mutf7_decode(tc->mutf7, strlen(tc->mutf7), &out,
		    &err);
		TEST_CHECK(tc->utf8 != NULL ? ret == 0 &&
		    strcmp(out.len > 0 ? out.data : "", tc->utf8) == 0 :
		    ret == -1 && err != NULL, "decode %zu \"%s\": %d %s", i,
		    tc->mutf7, ret, ret == 0 ? "ok" : err);
		if (tc->utf8 != NULL) {
			/* and back to the same, canonical, text */
			ret = imap_mutf7_encode(tc->utf8, strlen(tc->utf8),
			    &back, &err);
			TEST_CHECK(ret == 0 && strcmp(back.len > 0 ?
			    back.data : "", tc->mutf7) == 0,
			    "encode %zu \"%s\": %d", i, tc->mutf7, ret);
		}
		buf_free(&out);
		buf_free(&back);
	}
}

static void
test_mutf7_invalid(void)
{
	static const char *const bad_utf8[] = {
		"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xe2\x82",
	};
	struct buf out;
	const char *err;

	buf_init(&out, 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(bad_utf8); i++) {
		buf_reset(&out);
		TEST_INT(imap_mutf7_encode(bad_utf8[i], strlen(bad_utf8[i]),
		    &out, &err), -1);
	}
	TEST_INT(imap_mutf7_encode(B("a\0b"), &out, &err), -1);
	buf_free(&out);
	/* out's cap is respected, both ways */
	buf_init(&out, 5);
	TEST_INT(imap_mutf7_encode("\xc3\xa4", 2, &out, &err), 0);
	TEST_STR(out.data, "&AOQ-");
	buf_reset(&out);
	TEST_INT(imap_mutf7_encode("\xc3\xa4\xc3\xa4", 4, &out, &err), -1);
	TEST_STR(err, "Mailbox name too long");
	buf_reset(&out);
	TEST_INT(imap_mutf7_decode("abcdef", 6, &out, &err), -1);
	buf_reset(&out);
	TEST_INT(imap_mutf7_decode("&AOQA9gD8-", 10, &out, &err), -1);
	buf_reset(&out);
	TEST_INT(imap_mutf7_encode("&&", 2, &out, &err), 0);
	TEST_STR(out.data, "&-&-");
	buf_free(&out);
}

struct test_mailbox_case {
	const char *cmd;	/* "A1 SELECT <arg>\r\n" */
	bool utf8;
	const char *name;	/* NULL: refused */
};

static const struct test_mailbox_case test_mailbox_cases[] = {
	{ "A1 SELECT INBOX\r\n", false, "INBOX" },
	{ "A1 SELECT inbox\r\n", true, "INBOX" },
	{ "A1 SELECT \"InBoX\"\r\n", false, "INBOX" },
	{ "A1 SELECT {5}\r\niNBOX\r\n", false, "INBOX" },
	{ "A1 SELECT INBOX.sub\r\n", false, "INBOX.sub" },
	{ "A1 SELECT inbox/Sub\r\n", false, "inbox/Sub" },
	{ "A1 SELECT Entw&APw-rfe\r\n", false, "Entw\xc3\xbcrfe" },
	{ "A1 SELECT Entw&APw-rfe\r\n", true, "Entw&APw-rfe" },
	{ "A1 SELECT \"Entw\xc3\xbcrfe\"\r\n", true, "Entw\xc3\xbcrfe" },
	{ "A1 SELECT \"Entw\xc3\xbcrfe\"\r\n", false, NULL },
	{ "A1 SELECT &AOQ\r\n", false, NULL },
	{ "A1 SELECT &AOQ\r\n", true, "&AOQ" },
	{ "A1 SELECT NIL\r\n", false, "NIL" },
	{ "A1 SELECT \"a b\"\r\n", false, "a b" },
	{ "A1 SELECT \"\"\r\n", false, NULL },
	{ "A1 SELECT {0}\r\n\r\n", true, NULL },
	{ "A1 SELECT \"a\tb\"\r\n", true, NULL },
	{ "A1 SELECT &AAE-\r\n", false, NULL },
	{ "A1 SELECT ()\r\n", false, NULL },
	{ "A1 SELECT ~{1}\r\nx\r\n", true, "x" },
	{ "A1 SELECT {3}\r\na\rb\r\n", true, NULL },
};

static void
test_mailbox(void)
{
	struct buf b;

	for (size_t i = 0; i < MF_ARRAY_LEN(test_mailbox_cases); i++) {
		const struct test_mailbox_case *tc = &test_mailbox_cases[i];
		const struct imap_command *cmd;
		struct imap_parser *p = test_parse(tc->cmd, &cmd);
		char name[IMAP_MAILBOX_MAX + 1];
		const char *err = NULL;
		int ret = imap_arg_mailbox(cmd->args, tc->utf8, name, &err);

		TEST_CHECK(tc->name != NULL ? ret == 0 &&
		    strcmp(name, tc->name) == 0 : ret == -1 && err != NULL,
		    "mailbox %zu: %d %s", i, ret, ret == 0 ? name : err);
		imap_parser_free(&p);
	}
	/* IMAP_MAILBOX_MAX, in bytes after decoding */
	buf_init(&b, 0);
	for (int over = 0; over <= 1; over++) {
		const struct imap_command *cmd;
		struct imap_parser *p;
		char name[IMAP_MAILBOX_MAX + 1];
		const char *err;

		buf_reset(&b);
		buf_printf(&b, "A1 SELECT {%d}\r\n",
		    IMAP_MAILBOX_MAX + over);
		for (size_t i = 0; i < IMAP_MAILBOX_MAX + (size_t)over; i++)
			buf_addc(&b, 'm');
		buf_adds(&b, "\r\n");
		p = test_parse(b.data, &cmd);
		TEST_INT(imap_arg_mailbox(cmd->args, true, name, &err),
		    over ? -1 : 0);
		TEST_INT(imap_arg_mailbox(cmd->args, false, name, &err),
		    over ? -1 : 0);
		imap_parser_free(&p);
	}
	buf_free(&b);
}

/* ---- FETCH sections ---- */

struct test_section_case {
	const char *atom;
	int ret;
	enum imap_section_att att;
	const char *parts;	/* "1.2" */
	enum imap_section_spec spec;
	const char *fields;	/* "A,B" */
	const char *partial;	/* "0.100" or "" */
};

static const struct test_section_case test_section_cases[] = {
	{ "BODY[]", 0, IMAP_SECTION_BODY, "", IMAP_SPEC_NONE, "", "" },
	{ "body.peek[]<0.1>", 0, IMAP_SECTION_BODY_PEEK, "", IMAP_SPEC_NONE,
	  "", "0.1" },
	{ "BODY[1.2.3]", 0, IMAP_SECTION_BODY, "1.2.3", IMAP_SPEC_NONE, "",
	  "" },
	{ "BODY.PEEK[1.2.MIME]<10.20>", 0, IMAP_SECTION_BODY_PEEK, "1.2",
	  IMAP_SPEC_MIME, "", "10.20" },
	{ "BODY[HEADER]", 0, IMAP_SECTION_BODY, "", IMAP_SPEC_HEADER, "",
	  "" },
	{ "BODY[text]", 0, IMAP_SECTION_BODY, "", IMAP_SPEC_TEXT, "", "" },
	{ "BODY[2.HEADER]", 0, IMAP_SECTION_BODY, "2", IMAP_SPEC_HEADER, "",
	  "" },
	{ "BODY[HEADER.FIELDS (DATE FROM)]<0.100>", 0, IMAP_SECTION_BODY,
	  "", IMAP_SPEC_HEADER_FIELDS, "DATE,FROM", "0.100" },
	{ "BODY[1.HEADER.FIELDS.NOT (\"X-A\" \"q\\\"\" Y])]", 0,
	  IMAP_SECTION_BODY, "1", IMAP_SPEC_HEADER_FIELDS_NOT,
	  "X-A,q\",Y]", "" },
	{ "BINARY[1.2]<0.4294967295>", 0, IMAP_SECTION_BINARY, "1.2",
	  IMAP_SPEC_NONE, "", "0.4294967295" },
	{ "BINARY.PEEK[]", 0, IMAP_SECTION_BINARY_PEEK, "", IMAP_SPEC_NONE,
	  "", "" },
	{ "BINARY.SIZE[3]", 0, IMAP_SECTION_BINARY_SIZE, "3", IMAP_SPEC_NONE,
	  "", "" },
	{ "BODY[4294967295]", 0, IMAP_SECTION_BODY, "4294967295",
	  IMAP_SPEC_NONE, "", "" },
	{ "BODY[4294967296]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[0]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[01]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[1.]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[.1]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[1..2]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[1TEXT]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[MIME]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADERS]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER.FIELDS]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER.FIELDS ()]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER.FIELDS (A )]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER.FIELDS (A:)]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER.FIELDS (\"A)]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER.FIELDS (A)", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[HEADER (A)]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[TEXT]x", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[]<0>", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[]<0.0>", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[]<.1>", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[]<1.1", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY[]<4294967296.1>", -1, 0, NULL, 0, NULL, NULL },
	{ "BINARY[TEXT]", -1, 0, NULL, 0, NULL, NULL },
	{ "BINARY[1.MIME]", -1, 0, NULL, 0, NULL, NULL },
	{ "BINARY.SIZE[1]<0.1>", -1, 0, NULL, 0, NULL, NULL },
	{ "RFC822[]", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY", -1, 0, NULL, 0, NULL, NULL },
	{ "BODY.PEEK.X[]", -1, 0, NULL, 0, NULL, NULL },
};

static void
test_section(void)
{
	struct buf b, got;

	buf_init(&b, 4096);
	buf_init(&got, 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(test_section_cases); i++) {
		const struct test_section_case *tc = &test_section_cases[i];
		struct imap_section sec;
		const char *err = NULL;
		int ret = imap_section_parse(tc->atom, &b, &sec, &err);

		if (tc->ret != 0 || ret != 0) {
			TEST_CHECK(ret == tc->ret && (ret == 0 || err != NULL),
			    "section %zu %s: %d", i, tc->atom, ret);
			continue;
		}
		buf_reset(&got);
		for (size_t k = 0; k < sec.nparts; k++)
			buf_printf(&got, "%s%u", k > 0 ? "." : "",
			    sec.parts[k]);
		buf_addc(&got, '|');
		for (size_t k = 0; k < sec.nfields; k++)
			buf_printf(&got, "%s%s", k > 0 ? "," : "",
			    sec.fields[k]);
		buf_addc(&got, '|');
		if (sec.partial)
			buf_printf(&got, "%u.%u", sec.offset, sec.count);
		TEST_CHECK(sec.att == tc->att && sec.spec == tc->spec,
		    "section %zu %s: att %d spec %d", i, tc->atom,
		    (int)sec.att, (int)sec.spec);
		TEST_CHECK(strncmp(got.data, tc->parts, strlen(tc->parts))
		    == 0, "section %zu %s: %s", i, tc->atom, got.data);
		buf_reset(&b);
		buf_printf(&b, "%s|%s|%s", tc->parts, tc->fields,
		    tc->partial);
		TEST_STR(got.data, b.data);
	}
	buf_free(&b);
	buf_free(&got);
}

/* Limits of the section parser: parts, fields, the caller's buffer. */
static void
test_section_limits(void)
{
	struct buf a, b;
	struct imap_section sec;
	const char *err;

	buf_init(&a, 0);
	buf_init(&b, 64);
	for (int over = 0; over <= 1; over++) {
		buf_reset(&a);
		buf_adds(&a, "BODY[");
		for (int i = 0; i < IMAP_SECTION_PARTS_MAX + over; i++)
			buf_adds(&a, i > 0 ? ".1" : "1");
		buf_adds(&a, "]");
		TEST_INT(imap_section_parse(a.data, &b, &sec, &err), -over);
		buf_reset(&a);
		buf_adds(&a, "BODY[HEADER.FIELDS (");
		for (int i = 0; i < IMAP_SECTION_FIELDS_MAX + over; i++)
			buf_adds(&a, i > 0 ? " a" : "a");
		buf_adds(&a, ")]");
		buf_free(&b);
		buf_init(&b, 0);
		TEST_INT(imap_section_parse(a.data, &b, &sec, &err), -over);
	}
	buf_free(&b);
	buf_init(&b, 8);
	TEST_INT(imap_section_parse("BODY[HEADER.FIELDS (abcdefgh)]", &b,
	    &sec, &err), -1);
	TEST_STR(err, "Section too long");
	TEST_INT(imap_section_parse("BODY[HEADER.FIELDS (abcdefg)]", &b,
	    &sec, &err), 0);
	TEST_STR(sec.fields[0], "abcdefg");
	buf_free(&a);
	buf_free(&b);
}

/* The reader and the section parser agree on what the reader passes. */
static void
test_section_roundtrip(void)
{
	const struct imap_command *cmd;
	struct imap_parser *p = test_parse("A1 FETCH 1 (FLAGS "
	    "BODY.PEEK[HEADER.FIELDS (From \"To\")]<5.7>)\r\n", &cmd);
	const struct imap_arg *a = cmd->args->next->list->next;
	struct imap_section sec;
	struct buf b;
	const char *err;

	buf_init(&b, 0);
	TEST_TRUE(a->flags & IMAP_ARG_F_SECTION);
	TEST_INT(imap_section_parse(a->str, &b, &sec, &err), 0);
	TEST_INT(sec.nfields, 2);
	TEST_STR(sec.fields[1], "To");
	TEST_INT(sec.offset, 5);
	TEST_INT(sec.count, 7);
	buf_free(&b);
	imap_parser_free(&p);
}

int
main(void)
{
	test_helpers();
	test_mutf7();
	test_mutf7_invalid();
	test_mailbox();
	test_section();
	test_section_limits();
	test_section_roundtrip();
	return test_done("test_imap_args");
}
