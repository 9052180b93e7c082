/*
 * test_pop3_parse.c - table-driven unit tests of the POP3 command parser
 * (a case per argument shape, per limit and many hostile lines) and of
 * the RETR/TOP byte-stuffer, fed whole, byte by byte and in every split.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"
#include "core/test.h"

#define B(s) s, sizeof(s) - 1
#define R_CHARS "-ERR Invalid characters in command"
#define R_MSG "-ERR Invalid message number"

/* ---- commands ---- */

struct test_cmd_case {
	const char *line;
	size_t len;		/* 0: strlen(line) */
	int ret;
	enum pop3_verb verb;
	const char *args;
	int has_msg;
	uint64_t msg;
	uint64_t lines;
	const char *reply;	/* when -1 */
};

static const struct test_cmd_case test_cmd_cases[] = {
	{ "CAPA", 0, 0, POP3_VERB_CAPA, "", 0, 0, 0, NULL },
	{ "capa", 0, 0, POP3_VERB_CAPA, "", 0, 0, 0, NULL },
	{ "CAPA ", 0, 0, POP3_VERB_CAPA, "", 0, 0, 0, NULL },
	{ "CAPA x", 0, -1, POP3_VERB_CAPA, "", 0, 0, 0,
	  "-ERR Syntax: CAPA" },
	{ "STLS", 0, 0, POP3_VERB_STLS, "", 0, 0, 0, NULL },
	{ "stls now", 0, -1, POP3_VERB_STLS, "", 0, 0, 0,
	  "-ERR Syntax: STLS" },
	{ "USER alice@example.test", 0, 0, POP3_VERB_USER,
	  "alice@example.test", 0, 0, 0, NULL },
	{ "USER", 0, -1, POP3_VERB_USER, "", 0, 0, 0,
	  "-ERR Syntax: USER name" },
	{ "USER ", 0, -1, POP3_VERB_USER, "", 0, 0, 0,
	  "-ERR Syntax: USER name" },
	{ "PASS secret with  spaces ", 0, 0, POP3_VERB_PASS,
	  "secret with  spaces ", 0, 0, 0, NULL },
	{ "PASS  lead", 0, 0, POP3_VERB_PASS, " lead", 0, 0, 0, NULL },
	{ "PASS caf\xc3\xa9\tx", 0, 0, POP3_VERB_PASS, "caf\xc3\xa9\tx", 0, 0,
	  0, NULL },
	{ "PASS", 0, -1, POP3_VERB_PASS, "", 0, 0, 0,
	  "-ERR Syntax: PASS string" },
	{ "APOP mrose c4c9334bac560ecc979e58001b3e22fb", 0, 0,
	  POP3_VERB_APOP, "mrose c4c9334bac560ecc979e58001b3e22fb", 0, 0, 0,
	  NULL },
	{ "AUTH", 0, 0, POP3_VERB_AUTH, "", 0, 0, 0, NULL },
	{ "AUTH PLAIN", 0, 0, POP3_VERB_AUTH, "PLAIN", 0, 0, 0, NULL },
	{ "auth plain AGEAYg==", 0, 0, POP3_VERB_AUTH, "plain AGEAYg==", 0,
	  0, 0, NULL },
	{ "STAT", 0, 0, POP3_VERB_STAT, "", 0, 0, 0, NULL },
	{ "STAT 1", 0, -1, POP3_VERB_STAT, "", 0, 0, 0,
	  "-ERR Syntax: STAT" },
	{ "LIST", 0, 0, POP3_VERB_LIST, "", 0, 0, 0, NULL },
	{ "LIST ", 0, 0, POP3_VERB_LIST, "", 0, 0, 0, NULL },
	{ "LIST 2", 0, 0, POP3_VERB_LIST, "2", 1, 2, 0, NULL },
	{ "list  2 ", 0, 0, POP3_VERB_LIST, " 2 ", 1, 2, 0, NULL },
	{ "LIST 0", 0, -1, POP3_VERB_LIST, "", 0, 0, 0, R_MSG },
	{ "LIST -1", 0, -1, POP3_VERB_LIST, "", 0, 0, 0,
	  "-ERR Syntax: LIST [msg]" },
	{ "LIST +1", 0, -1, POP3_VERB_LIST, "", 0, 0, 0,
	  "-ERR Syntax: LIST [msg]" },
	{ "LIST 1 2", 0, -1, POP3_VERB_LIST, "", 0, 0, 0,
	  "-ERR Syntax: LIST [msg]" },
	{ "LIST 1x", 0, -1, POP3_VERB_LIST, "", 0, 0, 0,
	  "-ERR Syntax: LIST [msg]" },
	{ "LIST\t1", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ "RETR 1", 0, 0, POP3_VERB_RETR, "1", 1, 1, 0, NULL },
	{ "retr 007", 0, 0, POP3_VERB_RETR, "007", 1, 7, 0, NULL },
	{ "RETR 4294967296", 0, 0, POP3_VERB_RETR, "4294967296", 1,
	  4294967296ULL, 0, NULL },
	{ "RETR 18446744073709551615", 0, 0, POP3_VERB_RETR,
	  "18446744073709551615", 1, UINT64_MAX, 0, NULL },
	{ "RETR 18446744073709551616", 0, -1, POP3_VERB_RETR, "", 0, 0, 0,
	  "-ERR Syntax: RETR msg" },
	{ "RETR 000000000000000000001", 0, -1, POP3_VERB_RETR, "", 0, 0, 0,
	  "-ERR Syntax: RETR msg" },
	{ "RETR", 0, -1, POP3_VERB_RETR, "", 0, 0, 0,
	  "-ERR Syntax: RETR msg" },
	{ "RETR x", 0, -1, POP3_VERB_RETR, "", 0, 0, 0,
	  "-ERR Syntax: RETR msg" },
	{ "DELE 3", 0, 0, POP3_VERB_DELE, "3", 1, 3, 0, NULL },
	{ "DELE 0", 0, -1, POP3_VERB_DELE, "", 0, 0, 0, R_MSG },
	{ "DELE", 0, -1, POP3_VERB_DELE, "", 0, 0, 0,
	  "-ERR Syntax: DELE msg" },
	{ "NOOP", 0, 0, POP3_VERB_NOOP, "", 0, 0, 0, NULL },
	{ "RSET", 0, 0, POP3_VERB_RSET, "", 0, 0, 0, NULL },
	{ "QUIT", 0, 0, POP3_VERB_QUIT, "", 0, 0, 0, NULL },
	{ "quit  ", 0, 0, POP3_VERB_QUIT, " ", 0, 0, 0, NULL },
	{ "TOP 1 10", 0, 0, POP3_VERB_TOP, "1 10", 1, 1, 10, NULL },
	{ "TOP 1 0", 0, 0, POP3_VERB_TOP, "1 0", 1, 1, 0, NULL },
	{ "TOP 1", 0, -1, POP3_VERB_TOP, "", 0, 0, 0,
	  "-ERR Syntax: TOP msg n" },
	{ "TOP 0 1", 0, -1, POP3_VERB_TOP, "", 0, 0, 0, R_MSG },
	{ "TOP 1 2 3", 0, -1, POP3_VERB_TOP, "", 0, 0, 0,
	  "-ERR Syntax: TOP msg n" },
	{ "TOP 1 -2", 0, -1, POP3_VERB_TOP, "", 0, 0, 0,
	  "-ERR Syntax: TOP msg n" },
	{ "UIDL", 0, 0, POP3_VERB_UIDL, "", 0, 0, 0, NULL },
	{ "UIDL 5", 0, 0, POP3_VERB_UIDL, "5", 1, 5, 0, NULL },
	/* Unknown verbs are not errors of the parser. */
	{ "", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ " QUIT", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ "QUITX", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ "QUI", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ "STARTTLS", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ "GET / HTTP/1.1", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	{ "XTND XMIT", 0, 0, POP3_VERB_UNKNOWN, "", 0, 0, 0, NULL },
	/* Hostile bytes. */
	{ B("USER a\0b"), -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ B("\0"), -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ "QUIT", 2, -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ "USER a\rb", 0, -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ "PASS a\nb", 0, -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ "USER \x1b[31m", 0, -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ "NOOP\x7f", 0, -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
	{ "QUIT\r", 0, -1, POP3_VERB_UNKNOWN, "", 0, 0, 0, R_CHARS },
};

static void
test_cmd(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_cmd_cases); i++) {
		const struct test_cmd_case *tc = &test_cmd_cases[i];
		size_t len = tc->len != 0 ? tc->len : strlen(tc->line);
		struct pop3_cmd cmd;
		const char *reply = "unset";
		int ret = pop3_parse_command(tc->line, len, &cmd, &reply);

		TEST_CHECK(ret == tc->ret && cmd.verb == tc->verb &&
		    strcmp(cmd.args, tc->args) == 0 &&
		    cmd.has_msg == (tc->has_msg != 0) && cmd.msg == tc->msg &&
		    cmd.lines == tc->lines,
		    "case %zu \"%s\": ret %d verb %d args \"%s\" msg %d/%llu "
		    "lines %llu", i, tc->line, ret, (int)cmd.verb, cmd.args,
		    (int)cmd.has_msg, (unsigned long long)cmd.msg,
		    (unsigned long long)cmd.lines);
		if (tc->ret < 0)
			TEST_CHECK(reply != NULL && strcmp(reply, tc->reply) ==
			    0, "case %zu \"%s\": reply \"%s\"", i, tc->line,
			    reply != NULL ? reply : "(null)");
		else
			TEST_CHECK(reply == NULL, "case %zu: reply set", i);
	}
}

/* Every prefix of every case parses without harm, and a -1 always comes
 * with an -ERR line: what a client cut off mid-line may send. */
static void
test_truncations(void)
{
	char line[POP3_LINE_MAX + 1];

	for (size_t i = 0; i < MF_ARRAY_LEN(test_cmd_cases); i++) {
		const struct test_cmd_case *tc = &test_cmd_cases[i];
		size_t len = tc->len != 0 ? tc->len : strlen(tc->line);

		for (size_t n = 0; n <= len; n++) {
			struct pop3_cmd cmd;
			const char *reply;
			int ret;

			memcpy(line, tc->line, n);
			line[n] = '\0';
			ret = pop3_parse_command(line, n, &cmd, &reply);
			TEST_CHECK(ret == 0 ? reply == NULL : ret == -1 &&
			    reply != NULL && strncmp(reply, "-ERR ", 5) == 0,
			    "case %zu prefix %zu: ret %d", i, n, ret);
			TEST_CHECK((cmd.args >= line && cmd.args <= line + n) ||
			    cmd.args[0] == '\0', "case %zu prefix %zu: args",
			    i, n);
		}
	}
}

static void
test_names(void)
{
	TEST_STR(pop3_verb_name(POP3_VERB_RETR), "RETR");
	TEST_STR(pop3_verb_name(POP3_VERB_TOP), "TOP");
	TEST_STR(pop3_verb_name(POP3_VERB_UNKNOWN), "?");
	for (int v = POP3_VERB_UNKNOWN + 1; v < POP3_VERB_COUNT; v++) {
		const char *name = pop3_verb_name((enum pop3_verb)v);
		struct pop3_cmd cmd;
		const char *reply;

		TEST_TRUE(strlen(name) >= 3 && strlen(name) <= POP3_VERB_MAX);
		/* every verb's name finds the verb again */
		int ret = pop3_parse_command(name, strlen(name), &cmd, &reply);
		TEST_TRUE(ret == 0 || (ret == -1 && reply != NULL));
		TEST_INT(cmd.verb, v);
	}
}

/* ---- byte-stuffing ---- */

struct test_stuff_case {
	const char *in;
	int top;
	uint64_t lines;
	const char *out;	/* including the terminator */
};

#define HDR "From: a@b\r\nSubject: s\r\n"

static const struct test_stuff_case test_stuff_cases[] = {
	{ "", 0, 0, ".\r\n" },
	{ "a\r\n", 0, 0, "a\r\n.\r\n" },
	{ "no line end", 0, 0, "no line end\r\n.\r\n" },
	{ ".\r\n", 0, 0, "..\r\n.\r\n" },
	{ HDR "\r\n.\r\n..x\r\n. y\r\nz.\r\n.", 0, 0,
	  HDR "\r\n..\r\n...x\r\n.. y\r\nz.\r\n..\r\n.\r\n" },
	{ ".a\r\n.b\r\n", 0, 0, "..a\r\n..b\r\n.\r\n" },
	/* bare LF and CR pass as they are; LF still ends a line */
	{ "a\n.b\rc\r\n", 0, 0, "a\n..b\rc\r\n.\r\n" },
	/* TOP: header, the empty line, n body lines */
	{ HDR "\r\nl1\r\nl2\r\nl3\r\n", 1, 0, HDR "\r\n.\r\n" },
	{ HDR "\r\nl1\r\nl2\r\nl3\r\n", 1, 2, HDR "\r\nl1\r\nl2\r\n.\r\n" },
	{ HDR "\r\nl1\r\nl2\r\nl3\r\n", 1, 3,
	  HDR "\r\nl1\r\nl2\r\nl3\r\n.\r\n" },
	{ HDR "\r\nl1\r\nl2\r\nl3\r\n", 1, 99,
	  HDR "\r\nl1\r\nl2\r\nl3\r\n.\r\n" },
	{ HDR "\r\n.l1\r\n\r\nl3", 1, 2, HDR "\r\n..l1\r\n\r\n.\r\n" },
	{ HDR "\r\nl1\r\nl2", 1, 5, HDR "\r\nl1\r\nl2\r\n.\r\n" },
	/* no empty line: all of it is header */
	{ HDR, 1, 0, HDR ".\r\n" },
	{ "\r\nbody\r\n", 1, 0, "\r\n.\r\n" },
	/* "\r\r\n" and " \r\n" are not empty lines */
	{ "A: b\r\n\r\r\n \r\nx\r\n\r\nbody\r\n", 1, 0,
	  "A: b\r\n\r\r\n \r\nx\r\n\r\n.\r\n" },
	{ "A: b\n\nbody\nmore\n", 1, 1, "A: b\n\nbody\n.\r\n" },
	/* TOP counts from 2^64 - 1 without wrapping */
	{ "h\r\n\r\nb\r\n", 1, UINT64_MAX, "h\r\n\r\nb\r\n.\r\n" },
};

/* Feeds in the given pieces; the output must not depend on them. */
static char *
test_stuff_run(const struct test_stuff_case *tc, size_t step, size_t split)
{
	struct pop3_stuff st;
	struct buf out;
	size_t len = strlen(tc->in), off = 0;

	buf_init(&out, 0);
	pop3_stuff_init(&st, tc->top != 0, tc->lines);
	while (off < len && !st.done) {
		size_t n = step != 0 ? step : split > off ? split - off :
		    len - off;
		size_t used;

		if (n > len - off)
			n = len - off;
		used = pop3_stuff_feed(&st, tc->in + off, n, &out);
		TEST_TRUE(used <= n && (used == n || st.done));
		off += used;
		if (used < n)
			break;
	}
	pop3_stuff_end(&st, &out);
	buf_addc(&out, '\0');
	return out.data;
}

static void
test_stuff(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_stuff_cases); i++) {
		const struct test_stuff_case *tc = &test_stuff_cases[i];
		size_t len = strlen(tc->in);
		char *got = test_stuff_run(tc, 0, len);

		TEST_CHECK(strcmp(got, tc->out) == 0, "case %zu whole: "
		    "\"%s\"", i, got);
		free(got);
		got = test_stuff_run(tc, 1, 0);
		TEST_CHECK(strcmp(got, tc->out) == 0, "case %zu byte by "
		    "byte: \"%s\"", i, got);
		free(got);
		for (size_t split = 1; split < len; split++) {
			got = test_stuff_run(tc, 0, split);
			TEST_CHECK(strcmp(got, tc->out) == 0, "case %zu split "
			    "%zu: \"%s\"", i, split, got);
			free(got);
		}
	}
}

/* Output grows by at most twice the input (the documented bound the
 * session sizes its buffer by). */
static void
test_stuff_bound(void)
{
	static const char dots[] = ".\n.\n.\n.\n";
	struct pop3_stuff st;
	struct buf out;

	buf_init(&out, 2 * (sizeof(dots) - 1));
	pop3_stuff_init(&st, false, 0);
	TEST_INT(pop3_stuff_feed(&st, dots, sizeof(dots) - 1, &out),
	    sizeof(dots) - 1);
	TEST_INT(out.len, 12);
	buf_free(&out);
}

int
main(void)
{
	test_cmd();
	test_truncations();
	test_names();
	test_stuff();
	test_stuff_bound();
	return test_done("pop3_parse");
}
