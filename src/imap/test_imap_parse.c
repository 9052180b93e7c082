/*
 * test_imap_parse.c - table-driven tests of the IMAP command reader, each
 * case fed whole, byte by byte and in random-sized chunks with the same
 * expected transcript, and a case at and past every limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parse.h"
#include "core/test.h"

/* How the test session answers literals. */
enum test_policy {
	TEST_BUFFER,		/* buffer every literal */
	TEST_STREAM,		/* stream every literal */
	TEST_REJECT,		/* reject every literal: LITERAL_TOO_BIG */
	TEST_APPEND,		/* stream for APPEND, buffer otherwise */
};

struct test_case {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	enum test_policy policy;
	const char *want;	/* transcript, events joined by " | " */
};

#define B(s) s, sizeof(s) - 1
#define TEST_16 "0123456789abcdef"
#define TEST_64 TEST_16 TEST_16 TEST_16 TEST_16
#define TEST_1K TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 \
	TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 TEST_64 TEST_64

/*
 * Transcript: a command renders as "TAG NAME args": atoms as text, NIL
 * as NIL, quoted as "text", section atoms S:text, literals {n}text,
 * literal8 ~{n}text, streamed {n*text}, lists (a b); bytes outside
 * 0x20-0x7e as \xHH.  "+" is an accepted synchronizing literal, "!ERR
 * tag" an error ("*" without tag), "!!ERR tag" a fatal one.
 */
static const struct test_case test_cases[] = {
	{ "A1 NOOP\r\n", 0, TEST_BUFFER, "A1 NOOP" },
	{ "a1 noop\r\n", 0, TEST_BUFFER, "a1 NOOP" },
	{ "A1 NOOP\r\nA2 CAPABILITY\r\n", 0, TEST_BUFFER,
	  "A1 NOOP | A2 CAPABILITY" },
	{ "A]1 NOOP\r\n", 0, TEST_BUFFER, "A]1 NOOP" },
	{ "A1 LOGIN user pass\r\n", 0, TEST_BUFFER, "A1 LOGIN user pass" },
	{ "A1 LOGIN \"us\\\"er\" \"p\\\\ss\"\r\n", 0, TEST_BUFFER,
	  "A1 LOGIN \"us\"er\" \"p\\ss\"" },
	{ "A1 LOGIN \"\" \"\"\r\n", 0, TEST_BUFFER, "A1 LOGIN \"\" \"\"" },
	{ "A1 X \"a\tb\"\r\n", 0, TEST_BUFFER, "A1 X \"a\\x09b\"" },
	{ "A1 SEARCH CHARSET UTF-8 SUBJECT \"caf\xc3\xa9\"\r\n", 0,
	  TEST_BUFFER, "A1 SEARCH CHARSET UTF-8 SUBJECT \"caf\\xc3\\xa9\"" },
	{ "A1 LIST \"\" *\r\n", 0, TEST_BUFFER, "A1 LIST \"\" *" },
	{ "A1 LIST \"\" %/a]\r\n", 0, TEST_BUFFER, "A1 LIST \"\" %/a]" },
	{ "A1 X NIL nil \"NIL\" NILS\r\n", 0, TEST_BUFFER,
	  "A1 X NIL NIL \"NIL\" NILS" },
	{ "A1 X ()\r\n", 0, TEST_BUFFER, "A1 X ()" },
	{ "A1 X (()) (a (b c) ())\r\n", 0, TEST_BUFFER,
	  "A1 X (()) (a (b c) ())" },
	{ "A1 X ~abc a~b\r\n", 0, TEST_BUFFER, "A1 X ~abc a~b" },
	{ "A1 STORE 1:3 +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\n", 0,
	  TEST_BUFFER, "A1 STORE 1:3 +FLAGS.SILENT (\\Seen \\Deleted $Junk)" },
	{ "A1 UID FETCH 1:*,5 (UID FLAGS)\r\n", 0, TEST_BUFFER,
	  "A1 UID FETCH 1:*,5 (UID FLAGS)" },
	/* FETCH sections: one atom each (imap_parse.h) */
	{ "A1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.100>)"
	  "\r\n", 0, TEST_BUFFER, "A1 FETCH 1:* (FLAGS S:BODY.PEEK[HEADER."
	  "FIELDS (DATE FROM)]<0.100>)" },
	{ "A1 FETCH 1 body[1.2.MIME]\r\n", 0, TEST_BUFFER,
	  "A1 FETCH 1 S:body[1.2.MIME]" },
	{ "A1 FETCH 1 (BODY[] BINARY.SIZE[1] BINARY.PEEK[1]<0.10>)\r\n", 0,
	  TEST_BUFFER, "A1 FETCH 1 (S:BODY[] S:BINARY.SIZE[1] "
	  "S:BINARY.PEEK[1]<0.10>)" },
	{ "A1 FETCH 1 BODY[HEADER.FIELDS.NOT (\"a b\" \"c)\\\"\")]\r\n", 0,
	  TEST_BUFFER, "A1 FETCH 1 S:BODY[HEADER.FIELDS.NOT (\"a b\" "
	  "\"c)\\\"\")]" },
	{ "A1 FETCH 1 BODY[HEADER.FIELDS (X])]\r\n", 0, TEST_BUFFER,
	  "A1 FETCH 1 S:BODY[HEADER.FIELDS (X])]" },
	{ "A1 CREATE a[b\r\n", 0, TEST_BUFFER, "A1 CREATE a[b" },
	{ "A1 RENAME a[b c]\r\n", 0, TEST_BUFFER, "A1 RENAME a[b c]" },
	{ "A1 FETCH 1 BODY[\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	{ "A1 FETCH 1 BODY[HEADER.FIELDS (A B]\r\n", 0, TEST_BUFFER,
	  "!SECTION A1" },
	{ "A1 FETCH 1 BODY[((A))]\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	{ "A1 FETCH 1 BODY[(A))]\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	{ "A1 FETCH 1 BODY[{3}]\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	{ "A1 FETCH 1 BODY[a[b]]\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	{ "A1 FETCH 1 BODY[\"a]\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	{ "A1 FETCH 1 BODY[\xc3\xa9]\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 FETCH 1 BODY[\"a\rb\"]\r\n", 0, TEST_BUFFER, "!SECTION A1" },
	/* literals (RFC 9051 §4.3, RFC 7888, RFC 3516) */
	{ "A1 LOGIN {4}\r\nuser {4}\r\npass\r\n", 0, TEST_BUFFER,
	  "+ | + | A1 LOGIN {4}user {4}pass" },
	{ "A1 LOGIN {4+}\r\nuser {4+}\r\npass\r\n", 0, TEST_BUFFER,
	  "A1 LOGIN {4}user {4}pass" },
	{ "A1 X {0}\r\n\r\nA2 X {0+}\r\n {0}\r\n\r\n", 0, TEST_BUFFER,
	  "+ | A1 X {0} | + | A2 X {0} {0}" },
	{ "A1 X (a {1+}\r\nb c)\r\n", 0, TEST_BUFFER, "A1 X (a {1}b c)" },
	{ "A1 X ({1+}\r\n))\r\n", 0, TEST_BUFFER, "A1 X ({1}))" },
	{ "A1 X {6}\r\n\r\nA2\r\n\r\n", 0, TEST_BUFFER,
	  "+ | A1 X {6}\\x0d\\x0aA2\\x0d\\x0a" },
	{ B("A1 APPEND INBOX ~{3}\r\na\0b\r\n"), TEST_BUFFER,
	  "+ | A1 APPEND INBOX ~{3}a\\x00b" },
	{ B("A1 APPEND INBOX ~{3+}\r\na\0b\r\n"), TEST_STREAM,
	  "A1 APPEND INBOX ~{3*a\\x00b}" },
	{ "A1 APPEND INBOX (\\Seen) {11}\r\nHello world\r\n", 0, TEST_APPEND,
	  "+ | A1 APPEND INBOX (\\Seen) {11*Hello world}" },
	{ "A1 APPEND {5}\r\nINBOX {2+}\r\nhi {1+}\r\nx\r\n", 0, TEST_APPEND,
	  "+ | A1 APPEND {5}INBOX {2*hi} {1*x}" },
	{ "A1 APPEND INBOX {0}\r\n\r\n", 0, TEST_STREAM,
	  "+ | A1 APPEND INBOX {0*}" },
	{ "A1 X \xff{3}\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X {3}x\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {3} \r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {3\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {}\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {-1}\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {+}\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {3+ }\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X {3-}\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X ~{3+}x\r\n", 0, TEST_BUFFER, "!LITERAL A1" },
	{ "A1 X ~ {3}\r\nabc\r\n", 0, TEST_BUFFER, "+ | A1 X ~ {3}abc" },
	{ "A1 X ~{3}~\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!LITERAL A1 | A2 NOOP" },
	{ "A1 X a{3}\r\n", 0, TEST_BUFFER, "!ATOM A1" },
	{ "{3}\r\nA2 NOOP\r\n", 0, TEST_BUFFER, "!TAG * | A2 NOOP" },
	{ "{3+}\r\nabc\r\nA2 NOOP\r\n", 0, TEST_BUFFER, "!TAG * | A2 NOOP" },
	{ "A1 {4+}\r\nNOOP\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!NAME A1 | A2 NOOP" },
	{ "A1 X {99999999999999999999}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!LITERAL_TOO_BIG A1 | A2 NOOP" },
	{ "A1 X {99999999999999999999+}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!!SKIP_TOO_BIG A1" },
	{ "A1 X {00000000000000000001+}\r\nx\r\n", 0, TEST_BUFFER,
	  "A1 X {1}x" },
	{ "A1 X {000000000000000000001+}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!LITERAL A1 | A2 NOOP" },
	{ "A1 X {9223372036854775807}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!LITERAL_TOO_BIG A1 | A2 NOOP" },
	{ "A1 X {9223372036854775808}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!LITERAL_TOO_BIG A1 | A2 NOOP" },
	{ "A1 X {9223372036854775807+}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!!SKIP_TOO_BIG A1" },
	{ "A1 X {67108865+}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!!SKIP_TOO_BIG A1" },
	{ "A1 X {65537+}\r\nA2 NOOP\r\n", 0, TEST_BUFFER, "" },
	{ "A1 X {65537}\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!LITERAL_TOO_BIG A1 | A2 NOOP" },
	/* rejected literals: never parsed as commands */
	{ "A1 APPEND INBOX {14+}\r\nA2 DELETE foo\r\nA3 NOOP\r\n", 0,
	  TEST_REJECT, "!LITERAL_TOO_BIG A1 | A3 NOOP" },
	{ "A1 APPEND INBOX {14+}\r\nA2 DELETE foo {3+}\r\nA3 X\r\nA4 NOOP\r\n",
	  0, TEST_REJECT, "!LITERAL_TOO_BIG A1 | A4 NOOP" },
	{ "A1 APPEND INBOX {14}\r\nA3 NOOP\r\n", 0, TEST_REJECT,
	  "!LITERAL_TOO_BIG A1 | A3 NOOP" },
	{ "A1 X {1+}\r\nb {4+}\r\nA2\r\n {1}\r\nA3 NOOP\r\n", 0, TEST_REJECT,
	  "!LITERAL_TOO_BIG A1 | A3 NOOP" },
	{ B("A1 X {3+}\r\na\0b\r\nA2 NOOP\r\n"), TEST_BUFFER,
	  "!LITERAL_NUL A1 | A2 NOOP" },
	{ B("A1 APPEND X {3+}\r\na\0b {1+}\r\nc\r\nA2 NOOP\r\n"), TEST_STREAM,
	  "!LITERAL_NUL A1 | A2 NOOP" },
	{ "A1 X {1+}\r\na b\"\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!ATOM A1 | A2 NOOP" },
	{ "A1 X \"bad {5+}\r\nA2 X\r\nA3 NOOP\r\n", 0, TEST_BUFFER,
	  "!QUOTED A1 | A3 NOOP" },
	{ "A1 X \"bad {5}\r\nA2 X\r\nA3 NOOP\r\n", 0, TEST_BUFFER,
	  "!QUOTED A1 | A2 X | A3 NOOP" },
	/* tags and names */
	{ "\r\n", 0, TEST_BUFFER, "!EMPTY *" },
	{ "A1\r\n", 0, TEST_BUFFER, "!NAME A1" },
	{ "A1 \r\n", 0, TEST_BUFFER, "!NAME A1" },
	{ "A1  NOOP\r\n", 0, TEST_BUFFER, "!NAME A1" },
	{ "A1 NO(OP\r\n", 0, TEST_BUFFER, "!NAME A1" },
	{ "A1 N\xc3\xa9\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ " A1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "*1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "* NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "+ NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "A+ NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "A%1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "A(1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "A\"1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "A\\1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "A{1 NOOP\r\n", 0, TEST_BUFFER, "!TAG *" },
	{ "\xc3\xa9 NOOP\r\n", 0, TEST_BUFFER, "!8BIT *" },
	{ B("\0 NOOP\r\n"), TEST_BUFFER, "!CTL *" },
	{ B("A\0 NOOP\r\nA2 NOOP\r\n"), TEST_BUFFER, "!TAG * | A2 NOOP" },
	/* spacing, parentheses */
	{ "A1 NOOP \r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X a  b\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X a \r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X (a )\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X ( a)\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X ( )\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X (a)b\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X (a)(b)\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X \"a\"\"b\"\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X \"a\"b\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X (a\r\n", 0, TEST_BUFFER, "!UNBALANCED A1" },
	{ "A1 X (\r\n", 0, TEST_BUFFER, "!UNBALANCED A1" },
	{ "A1 X a)\r\n", 0, TEST_BUFFER, "!UNBALANCED A1" },
	{ "A1 X )\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X\t a\r\n", 0, TEST_BUFFER, "!CTL A1" },
	/* atoms and quoted strings */
	{ "A1 X a\"b\r\n", 0, TEST_BUFFER, "!ATOM A1" },
	{ "A1 X a\\b\r\n", 0, TEST_BUFFER, "!ATOM A1" },
	{ "A1 X \\\\Seen\r\n", 0, TEST_BUFFER, "!ATOM A1" },
	{ "A1 X \\\r\n", 0, TEST_BUFFER, "!SYNTAX A1" },
	{ "A1 X caf\xc3\xa9\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \x80\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X a\x7f\r\n", 0, TEST_BUFFER, "!CTL A1" },
	{ "A1 X \"\xff\"\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \"\xc3\"\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \"\xed\xa0\x80\"\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \"\xe0\x80\x80\"\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \"\xe2\x82(\"\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \"\xf4\x90\x80\x80\"\r\n", 0, TEST_BUFFER, "!8BIT A1" },
	{ "A1 X \"\xf0\x9f\x98\x80\"\r\n", 0, TEST_BUFFER,
	  "A1 X \"\\xf0\\x9f\\x98\\x80\"" },
	{ "A1 X \"abc\r\n", 0, TEST_BUFFER, "!QUOTED A1" },
	{ "A1 X \"a\\b\"\r\n", 0, TEST_BUFFER, "!QUOTED A1" },
	{ "A1 X \"a\\\"\r\n", 0, TEST_BUFFER, "!QUOTED A1" },
	{ B("A1 X a\0b\r\n"), TEST_BUFFER, "!CTL A1" },
	{ B("A1 X \"a\0b\"\r\n"), TEST_BUFFER, "!CTL A1" },
	/* line ends: CRLF exactly */
	{ "A1 NOOP\rA2 NOOP\r\n", 0, TEST_BUFFER, "!NEWLINE A1" },
	{ "A1 X \"a\rb\"\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!NEWLINE A1 | A2 NOOP" },
	{ "A1 NOOP\nA2 NOOP\r\n", 0, TEST_BUFFER, "!NEWLINE A1 | A2 NOOP" },
	{ "\nA2 NOOP\r\n", 0, TEST_BUFFER, "!NEWLINE * | A2 NOOP" },
	{ "A1 X {2+}\nab\r\nA2 NOOP\r\n", 0, TEST_BUFFER,
	  "!NEWLINE A1 | A2 NOOP" },
	{ "A1 NOOP\r\r\n", 0, TEST_BUFFER, "!NEWLINE A1" },
	{ "A1 NOOP", 0, TEST_BUFFER, "" },
	{ "A1 NOOP\r", 0, TEST_BUFFER, "" },
};

static const char *const test_err_names[] = {
	"NONE", "EMPTY", "TAG", "NAME", "SYNTAX", "ATOM", "8BIT", "CTL",
	"NEWLINE", "QUOTED", "SECTION", "LITERAL", "LITERAL_NUL",
	"LITERAL_TOO_BIG", "LINE_TOO_LONG", "TOO_MANY_ARGS", "TOO_DEEP",
	"UNBALANCED", "SKIP_TOO_BIG",
};

static void
test_escape(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			buf_addc(out, (char)c);
		else
			buf_printf(out, "\\x%02x", c);
	}
}

static void
test_render_args(struct buf *out, const struct imap_arg *a,
		 const struct buf *streamed, size_t *stream_pos)
{
	for (; a != NULL; a = a->next) {
		buf_addc(out, ' ');
		switch (a->type) {
		case IMAP_ARG_NIL:
			buf_adds(out, "NIL");
			break;
		case IMAP_ARG_ATOM:
			if (a->flags & IMAP_ARG_F_SECTION)
				buf_adds(out, "S:");
			test_escape(out, a->str, a->len);
			break;
		case IMAP_ARG_QUOTED:
			buf_addc(out, '"');
			test_escape(out, a->str, a->len);
			buf_addc(out, '"');
			break;
		case IMAP_ARG_LITERAL:
			buf_printf(out, "%s{%zu",
			    a->flags & IMAP_ARG_F_LITERAL8 ? "~" : "", a->len);
			if (a->flags & IMAP_ARG_F_STREAMED) {
				buf_addc(out, '*');
				if (a->len > 0)
					test_escape(out, streamed->data +
					    *stream_pos, a->len);
				*stream_pos += a->len;
				buf_addc(out, '}');
			} else {
				buf_addc(out, '}');
				test_escape(out, a->str, a->len);
			}
			break;
		case IMAP_ARG_LIST: {
			struct buf sub;

			buf_init(&sub, 0);
			test_render_args(&sub, a->list, streamed, stream_pos);
			buf_printf(out, "(%s)", sub.len > 0 ? sub.data + 1 :
			    "");
			buf_free(&sub);
			break;
		}
		}
	}
}

static void
test_sep(struct buf *out)
{
	if (out->len > 0)
		buf_adds(out, " | ");
}

/* One event of the reader, appended to out; false after a fatal error. */
static bool
test_event(struct imap_parser *p, enum imap_parse_res res,
	   enum test_policy policy, struct buf *streamed, struct buf *out)
{
	const struct imap_command *cmd;
	struct imap_literal lit;
	const char *tag;
	const void *chunk;
	size_t clen, spos = 0;
	bool fatal, stream;
	enum imap_err err;

	switch (res) {
	case IMAP_PARSE_NEED_MORE:
		break;
	case IMAP_PARSE_COMMAND:
		cmd = imap_parser_command(p);
		test_sep(out);
		buf_printf(out, "%s %s", cmd->tag, cmd->name);
		test_render_args(out, cmd->args, streamed, &spos);
		buf_reset(streamed);
		break;
	case IMAP_PARSE_LITERAL:
		imap_parser_literal(p, &lit);
		cmd = imap_parser_command(p);
		if (policy == TEST_REJECT) {
			imap_parser_literal_reject(p,
			    IMAP_ERR_LITERAL_TOO_BIG);
			break;
		}
		stream = policy == TEST_STREAM || (policy == TEST_APPEND &&
		    strcmp(cmd->name, "APPEND") == 0 && cmd->count > 0);
		if (imap_parser_literal_accept(p, stream ? IMAP_LIT_STREAM :
		    IMAP_LIT_BUFFER) == 0 && lit.sync) {
			test_sep(out);
			buf_addc(out, '+');
		}
		break;
	case IMAP_PARSE_LITERAL_DATA:
		imap_parser_chunk(p, &chunk, &clen);
		if (clen == 0)
			TEST_TRUE(clen > 0);
		buf_add(streamed, chunk, clen);
		break;
	case IMAP_PARSE_ERROR:
		err = imap_parser_error(p, &tag, &fatal);
		test_sep(out);
		buf_printf(out, "%s%s %s", fatal ? "!!" : "!",
		    test_err_names[err], tag != NULL ? tag : "*");
		buf_reset(streamed);
		return !fatal;
	}
	return true;
}

/* Feeds in[0..len) in pieces of chunk bytes (0: random sizes). */
static void
test_run(const char *in, size_t len, enum test_policy policy, size_t chunk,
	 unsigned seed, struct buf *out)
{
	struct imap_parser *p = imap_parser_new();
	struct buf streamed;
	size_t pos = 0, n, off, used;
	enum imap_parse_res res;
	bool alive = true, taken = true;

	buf_init(&streamed, 0);
	srand(seed);
	while (alive && pos < len) {
		n = chunk != 0 ? chunk : 1 + (size_t)rand() % 17;
		if (n > len - pos)
			n = len - pos;
		off = 0;
		do {
			res = imap_parser_feed(p, in + pos + off, n - off,
			    &used);
			taken = taken && used <= n - off;
			off += used;
			/* NEED_MORE means everything was taken. */
			taken = taken && (res != IMAP_PARSE_NEED_MORE ||
			    off == n);
			alive = test_event(p, res, policy, &streamed, out);
		} while (alive && res != IMAP_PARSE_NEED_MORE);
		pos += n;
	}
	TEST_TRUE(taken);
	buf_free(&streamed);
	imap_parser_free(&p);
}

static void
test_check(const char *what, const char *in, size_t len,
	   enum test_policy policy, const char *want)
{
	static const size_t chunks[] = { SIZE_MAX, 1, 2, 0, 0, 0 };
	char shown[LOG_ESCAPE_BUF];

	for (size_t k = 0; k < MF_ARRAY_LEN(chunks); k++) {
		struct buf out;

		buf_init(&out, 0);
		test_run(in, len, policy, chunks[k], (unsigned)k, &out);
		TEST_CHECK(strcmp(out.len > 0 ? out.data : "", want) == 0,
		    "%s \"%s\" chunk %zu:\n  got  %s\n  want %s", what,
		    log_escape(in, len, shown), chunks[k],
		    out.len > 0 ? out.data : "", want);
		buf_free(&out);
	}
}

static void
test_table(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_cases); i++) {
		const struct test_case *tc = &test_cases[i];

		test_check("case", tc->in, tc->len != 0 ? tc->len :
		    strlen(tc->in), tc->policy, tc->want);
	}
}

/* Builds "A1 X " + body + "\r\nA2 NOOP\r\n" in a fresh buffer. */
static void
test_long(struct buf *b, const char *head, size_t reps, const char *unit,
	  const char *tail)
{
	buf_reset(b);
	buf_adds(b, head);
	for (size_t i = 0; i < reps; i++)
		buf_adds(b, unit);
	buf_adds(b, tail);
}

/* Size limits, at them and one past them: line, draining, buffering. */
static void
test_limits_size(void)
{
	struct buf b, want;
	size_t pad;

	buf_init(&b, 0);
	buf_init(&want, 0);
	/* IMAP_LINE_MAX counts the CRLF. */
	pad = IMAP_LINE_MAX - strlen("A1 X \r\n");
	test_long(&b, "A1 X ", pad, "a", "\r\nA2 NOOP\r\n");
	buf_reset(&want);
	buf_adds(&want, "A1 X ");
	for (size_t i = 0; i < pad; i++)
		buf_addc(&want, 'a');
	buf_adds(&want, " | A2 NOOP");
	test_check("line max", b.data, b.len, TEST_BUFFER, want.data);
	test_long(&b, "A1 X ", pad + 1, "a", "\r\nA2 NOOP\r\n");
	test_check("line max+1", b.data, b.len, TEST_BUFFER,
	    "!LINE_TOO_LONG A1 | A2 NOOP");
	test_long(&b, "A1 X ", 3 * IMAP_LINE_MAX, "a", " {6+}\r\nA3 X\r\n"
	    "\r\nA2 NOOP\r\n");
	test_check("long line, literal", b.data, b.len, TEST_BUFFER,
	    "!LINE_TOO_LONG A1 | A2 NOOP");
	test_long(&b, "", IMAP_LINE_MAX, "a", "\r\nA2 NOOP\r\n");
	test_check("long tag", b.data, b.len, TEST_BUFFER,
	    "!LINE_TOO_LONG * | A2 NOOP");
	/* The limit spans the lines around literals. */
	test_long(&b, "A1 X {1+}\r\nb ", IMAP_LINE_MAX, "a", "\r\nA2 NOOP\r\n");
	test_check("long second line", b.data, b.len, TEST_BUFFER,
	    "!LINE_TOO_LONG A1 | A2 NOOP");
	/* Draining is bounded too: fatal past IMAP_SKIP_MAX. */
	buf_reset(&b);
	buf_adds(&b, "A1 X");
	for (size_t i = 0; i <= IMAP_SKIP_MAX / (1024 * 1024); i++) {
		buf_adds(&b, " {1048576+}\r\n");
		for (size_t k = 0; k < 1024; k++)
			buf_adds(&b, TEST_1K);
	}
	buf_adds(&b, "\r\nA2 NOOP\r\n");
	test_check("skip max", b.data, b.len, TEST_REJECT,
	    "!!SKIP_TOO_BIG A1");
	/* IMAP_LITERAL_BUF_MAX: all buffered literals of a command. */
	buf_reset(&b);
	buf_printf(&b, "A1 X {%d+}\r\n", IMAP_LITERAL_BUF_MAX);
	for (size_t k = 0; k < IMAP_LITERAL_BUF_MAX / 1024; k++)
		buf_adds(&b, TEST_1K);
	buf_reset(&want);
	buf_printf(&want, "A1 X {%d}%s", IMAP_LITERAL_BUF_MAX,
	    b.data + b.len - IMAP_LITERAL_BUF_MAX);
	buf_adds(&b, "\r\n");
	test_check("literal buf max", b.data, b.len, TEST_BUFFER, want.data);
	b.len -= 2;
	buf_adds(&b, " {1+}\r\nb\r\nA2 NOOP\r\n");
	test_check("literal buf max+1", b.data, b.len, TEST_BUFFER,
	    "!LITERAL_TOO_BIG A1 | A2 NOOP");
	b.len -= strlen(" {1+}\r\nb\r\nA2 NOOP\r\n");
	buf_adds(&b, " {1}\r\nA2 NOOP\r\n");
	test_check("literal buf max+1 sync", b.data, b.len, TEST_BUFFER,
	    "!LITERAL_TOO_BIG A1 | A2 NOOP");
	buf_free(&b);
	buf_free(&want);
}

/* Counted limits: tag, name, arguments, nesting. */
static void
test_limits_count(void)
{
	struct buf b, want;

	buf_init(&b, 0);
	buf_init(&want, 0);
	/* IMAP_TAG_MAX, IMAP_NAME_MAX */
	test_long(&b, "", IMAP_TAG_MAX, "t", " NOOP\r\n");
	buf_reset(&want);
	buf_add(&want, b.data, IMAP_TAG_MAX);
	buf_adds(&want, " NOOP");
	test_check("tag max", b.data, b.len, TEST_BUFFER, want.data);
	test_long(&b, "", IMAP_TAG_MAX + 1, "t", " NOOP\r\n");
	test_check("tag max+1", b.data, b.len, TEST_BUFFER, "!TAG *");
	test_long(&b, "A1 ", IMAP_NAME_MAX, "N", "\r\n");
	buf_reset(&want);
	buf_add(&want, b.data, b.len - 2);
	test_check("name max", b.data, b.len, TEST_BUFFER, want.data);
	test_long(&b, "A1 ", IMAP_NAME_MAX + 1, "N", "\r\n");
	test_check("name max+1", b.data, b.len, TEST_BUFFER, "!NAME A1");

	/* IMAP_ARGS_MAX: lists count as arguments. */
	test_long(&b, "A1 X", IMAP_ARGS_MAX, " a", "\r\n");
	buf_reset(&want);
	buf_add(&want, b.data, b.len - 2);
	test_check("args max", b.data, b.len, TEST_BUFFER, want.data);
	test_long(&b, "A1 X", IMAP_ARGS_MAX + 1, " a", "\r\nA2 NOOP\r\n");
	test_check("args max+1", b.data, b.len, TEST_BUFFER,
	    "!TOO_MANY_ARGS A1 | A2 NOOP");
	test_long(&b, "A1 X", IMAP_ARGS_MAX, " a", " \"q\"\r\nA2 NOOP\r\n");
	test_check("args max+1 quoted", b.data, b.len, TEST_BUFFER,
	    "!TOO_MANY_ARGS A1 | A2 NOOP");
	test_long(&b, "A1 X", IMAP_ARGS_MAX / 2, " (a)", "\r\n");
	buf_reset(&want);
	buf_add(&want, b.data, b.len - 2);
	test_check("lists max", b.data, b.len, TEST_BUFFER, want.data);
	test_long(&b, "A1 X", IMAP_ARGS_MAX / 2, " (a)", " ()\r\n");
	test_check("lists max+1", b.data, b.len, TEST_BUFFER,
	    "!TOO_MANY_ARGS A1");
	test_long(&b, "A1 X", IMAP_ARGS_MAX, " a", " {1+}\r\nb\r\nA2 NOOP\r\n");
	test_check("args max literal", b.data, b.len, TEST_BUFFER,
	    "!TOO_MANY_ARGS A1 | A2 NOOP");

	/* IMAP_DEPTH_MAX */
	buf_reset(&b);
	buf_adds(&b, "A1 X ");
	for (size_t i = 0; i < IMAP_DEPTH_MAX; i++)
		buf_addc(&b, '(');
	for (size_t i = 0; i < IMAP_DEPTH_MAX; i++)
		buf_addc(&b, ')');
	buf_adds(&b, "\r\n");
	test_check("depth max", b.data, b.len, TEST_BUFFER,
	    (buf_reset(&want), buf_add(&want, b.data, b.len - 2), want.data));
	buf_reset(&b);
	buf_adds(&b, "A1 X ");
	for (size_t i = 0; i <= IMAP_DEPTH_MAX; i++)
		buf_addc(&b, '(');
	for (size_t i = 0; i <= IMAP_DEPTH_MAX; i++)
		buf_addc(&b, ')');
	buf_adds(&b, "\r\nA2 NOOP\r\n");
	test_check("depth max+1", b.data, b.len, TEST_BUFFER,
	    "!TOO_DEEP A1 | A2 NOOP");
	buf_free(&b);
	buf_free(&want);
}

/* What the session sees when it must decide on a literal. */
static void
test_partial(void)
{
	static const char in[] = "A7 APPEND Sent (\\Seen (x)) {310}\r\n";
	struct imap_parser *p = imap_parser_new();
	const struct imap_command *cmd;
	struct imap_literal lit;
	size_t used;
	const char *tag;
	bool fatal;

	TEST_TRUE(!imap_parser_pending(p));
	TEST_INT(imap_parser_feed(p, in, 3, &used), IMAP_PARSE_NEED_MORE);
	TEST_TRUE(imap_parser_pending(p));
	TEST_INT(imap_parser_feed(p, in + 3, sizeof(in) - 4, &used),
	    IMAP_PARSE_LITERAL);
	TEST_INT(used, sizeof(in) - 4);
	imap_parser_literal(p, &lit);
	TEST_INT(lit.size, 310);
	TEST_TRUE(lit.sync && !lit.binary);
	TEST_INT(lit.room, IMAP_LITERAL_BUF_MAX);
	cmd = imap_parser_command(p);
	TEST_STR(cmd->tag, "A7");
	TEST_STR(cmd->name, "APPEND");
	TEST_INT(cmd->count, 2);
	TEST_STR(imap_arg_astring(cmd->args), "Sent");
	TEST_INT(cmd->args->next->type, IMAP_ARG_LIST);
	TEST_INT(cmd->args->next->count, 2);
	TEST_TRUE(imap_arg_is_atom(cmd->args->next->list, "\\SEEN"));
	TEST_INT(cmd->args->next->list->next->list->type, IMAP_ARG_ATOM);
	imap_parser_literal_reject(p, IMAP_ERR_LITERAL_TOO_BIG);
	TEST_INT(imap_parser_feed(p, "", 0, &used), IMAP_PARSE_ERROR);
	TEST_INT(used, 0);
	TEST_INT(imap_parser_error(p, &tag, &fatal),
	    IMAP_ERR_LITERAL_TOO_BIG);
	TEST_STR(tag, "A7");
	TEST_TRUE(!fatal && !imap_parser_pending(p));
	/* A too-big buffered literal is refused by accept itself. */
	TEST_INT(imap_parser_feed(p, "A8 X {65537}\r\n", 15, &used),
	    IMAP_PARSE_LITERAL);
	TEST_INT(imap_parser_literal_accept(p, IMAP_LIT_BUFFER), -1);
	TEST_INT(imap_parser_feed(p, "", 0, &used), IMAP_PARSE_ERROR);
	/* After a fatal error nothing more is read. */
	TEST_INT(imap_parser_feed(p, "A9 X {99999999999999999999+}\r\n",
	    32, &used), IMAP_PARSE_ERROR);
	TEST_INT(imap_parser_error(p, &tag, &fatal), IMAP_ERR_SKIP_TOO_BIG);
	TEST_TRUE(fatal);
	TEST_INT(imap_parser_feed(p, "A1 NOOP\r\n", 9, &used),
	    IMAP_PARSE_ERROR);
	TEST_INT(used, 0);
	imap_parser_free(&p);
	TEST_TRUE(p == NULL);
	imap_parser_free(&p);
}

static void
test_err_texts(void)
{
	for (int e = IMAP_ERR_NONE; e <= IMAP_ERR_SKIP_TOO_BIG; e++)
		TEST_TRUE(strcmp(imap_err_text((enum imap_err)e),
		    "Error") != 0);
	TEST_STR(imap_err_text((enum imap_err)999), "Error");
	TEST_INT(MF_ARRAY_LEN(test_err_names), IMAP_ERR_SKIP_TOO_BIG + 1);
}

int
main(void)
{
	test_table();
	test_limits_size();
	test_limits_count();
	test_partial();
	test_err_texts();
	return test_done("test_imap_parse");
}
