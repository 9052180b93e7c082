/*
 * test_smtp_parse.c - table-driven unit tests for the SMTP command, path,
 * parameter and BDAT parsers, with a case per limit and many hostile
 * inputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"
#include "core/test.h"

#define R_MAIL "501 5.1.7 Bad sender address syntax"
#define R_RCPT "501 5.1.3 Bad recipient address syntax"
#define R_MAIL_LONG "501 5.1.7 Path too long"
#define R_RCPT_LONG "501 5.1.3 Path too long"
#define R_8BIT "553 5.6.7 Non-ASCII address requires SMTPUTF8"
#define R_PARAM "501 5.5.4 Syntax error in parameters"
#define R_UNKNOWN "555 5.5.4 Unsupported parameter"
#define R_DUP "501 5.5.4 Duplicate parameter"
#define R_SIZE "501 5.5.4 Bad SIZE value"
#define R_BODY "501 5.5.4 Bad BODY value"

/* ---- commands ---- */

struct test_cmd_case {
	const char *line;
	size_t len;		/* 0: strlen(line) */
	int ret;
	enum smtp_verb verb;
	const char *args;
};

#define B(s) s, sizeof(s) - 1

static const struct test_cmd_case test_cmd_cases[] = {
	{ "EHLO mail.example.org", 0, 0, SMTP_VERB_EHLO, "mail.example.org" },
	{ "ehlo x", 0, 0, SMTP_VERB_EHLO, "x" },
	{ "HeLo x y", 0, 0, SMTP_VERB_HELO, "x y" },
	{ "EHLO", 0, 0, SMTP_VERB_EHLO, "" },
	{ "EHLO ", 0, 0, SMTP_VERB_EHLO, "" },
	{ "EHLO  x", 0, 0, SMTP_VERB_EHLO, " x" },
	{ "EHLO\tx", 0, 0, SMTP_VERB_UNKNOWN, "" },
	{ "MAIL FROM:<a@b>", 0, 0, SMTP_VERB_MAIL, "<a@b>" },
	{ "mail from:<a@b> SIZE=1", 0, 0, SMTP_VERB_MAIL, "<a@b> SIZE=1" },
	{ "MAIL FROM: <a@b>", 0, 0, SMTP_VERB_MAIL, "<a@b>" },
	{ "MAIL FROM:  <a@b>", 0, 0, SMTP_VERB_MAIL, " <a@b>" },
	{ "MAIL FROM:", 0, 0, SMTP_VERB_MAIL, "" },
	{ "MAIL", 0, -1, SMTP_VERB_MAIL, "" },
	{ "MAIL <a@b>", 0, -1, SMTP_VERB_MAIL, "" },
	{ "MAIL FROM <a@b>", 0, -1, SMTP_VERB_MAIL, "" },
	{ "MAIL  FROM:<a@b>", 0, -1, SMTP_VERB_MAIL, "" },
	{ "MAIL TO:<a@b>", 0, -1, SMTP_VERB_MAIL, "" },
	{ "MAILFROM:<a@b>", 0, 0, SMTP_VERB_UNKNOWN, "" },
	{ "RCPT TO:<a@b>", 0, 0, SMTP_VERB_RCPT, "<a@b>" },
	{ "Rcpt To: <a@b>", 0, 0, SMTP_VERB_RCPT, "<a@b>" },
	{ "RCPT FROM:<a@b>", 0, -1, SMTP_VERB_RCPT, "" },
	{ "RCPT", 0, -1, SMTP_VERB_RCPT, "" },
	{ "DATA", 0, 0, SMTP_VERB_DATA, "" },
	{ "data x", 0, 0, SMTP_VERB_DATA, "x" },
	{ "BDAT 100 LAST", 0, 0, SMTP_VERB_BDAT, "100 LAST" },
	{ "RSET", 0, 0, SMTP_VERB_RSET, "" },
	{ "NOOP anything at all", 0, 0, SMTP_VERB_NOOP, "anything at all" },
	{ "QUIT", 0, 0, SMTP_VERB_QUIT, "" },
	{ "VRFY bob", 0, 0, SMTP_VERB_VRFY, "bob" },
	{ "EXPN list", 0, 0, SMTP_VERB_EXPN, "list" },
	{ "HELP", 0, 0, SMTP_VERB_HELP, "" },
	{ "STARTTLS", 0, 0, SMTP_VERB_STARTTLS, "" },
	{ "starttls", 0, 0, SMTP_VERB_STARTTLS, "" },
	{ "AUTH PLAIN AGFAAGI=", 0, 0, SMTP_VERB_AUTH, "PLAIN AGFAAGI=" },
	{ "STARTTLSX", 0, 0, SMTP_VERB_UNKNOWN, "" },
	{ "QUI", 0, 0, SMTP_VERB_UNKNOWN, "" },
	{ "GET / HTTP/1.1", 0, 0, SMTP_VERB_UNKNOWN, "/ HTTP/1.1" },
	{ "", 0, 0, SMTP_VERB_UNKNOWN, "" },
	{ " EHLO x", 0, 0, SMTP_VERB_UNKNOWN, "EHLO x" },
	{ "NOOP a\tb", 0, 0, SMTP_VERB_NOOP, "a\tb" },
	{ "NOOP caf\xc3\xa9", 0, 0, SMTP_VERB_NOOP, "caf\xc3\xa9" },
	/* Hostile bytes. */
	{ B("EHLO a\0b"), -1, SMTP_VERB_UNKNOWN, "" },
	{ B("\0"), -1, SMTP_VERB_UNKNOWN, "" },
	{ "EHLO a\rb", 0, -1, SMTP_VERB_UNKNOWN, "" },
	{ "EHLO a\nb", 0, -1, SMTP_VERB_UNKNOWN, "" },
	{ "EHLO a\x1b[31m", 0, -1, SMTP_VERB_UNKNOWN, "" },
	{ "EHLO a\x7f", 0, -1, SMTP_VERB_UNKNOWN, "" },
	{ "DATA\r", 0, -1, SMTP_VERB_UNKNOWN, "" },
	{ "MAIL FROM:<a@b>\x01", 0, -1, SMTP_VERB_UNKNOWN, "" },
	/* len shorter than strlen: a NUL the caller did not see. */
	{ "QUIT", 2, -1, SMTP_VERB_UNKNOWN, "" },
};

static void
test_cmd(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_cmd_cases); i++) {
		const struct test_cmd_case *tc = &test_cmd_cases[i];
		size_t len = tc->len != 0 ? tc->len : strlen(tc->line);
		enum smtp_verb verb = (enum smtp_verb)-1;
		const char *args = NULL;
		int ret = smtp_parse_command(tc->line, len, &verb, &args);

		TEST_CHECK(ret == tc->ret && verb == tc->verb &&
		    args != NULL && strcmp(args, tc->args) == 0,
		    "case %zu \"%s\": ret %d verb %d args \"%s\"", i,
		    tc->line, ret, (int)verb, args != NULL ? args : "(null)");
	}
}

/* ---- MAIL ---- */

struct test_mail_case {
	const char *args;
	const char *addr;	/* NULL: expect -1 */
	const char *reply;	/* when -1 */
	int has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
};

static const struct test_mail_case test_mail_cases[] = {
	{ "<a@b>", "a@b", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<>", "", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<> SIZE=0", "", NULL, 1, 0, SMTP_BODY_7BIT, false },
	{ "<User.Name+tag@Example.ORG>", "User.Name+tag@example.org", NULL,
	  0, 0, SMTP_BODY_7BIT, false },
	{ "<!#$%&'*+-/=?^_`{|}~@x>", "!#$%&'*+-/=?^_`{|}~@x", NULL,
	  0, 0, SMTP_BODY_7BIT, false },
	{ "<\"a b\"@d>", "\"a b\"@d", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<\"a\\\"b@c\"@D>", "\"a\\\"b@c\"@d", NULL, 0, 0, SMTP_BODY_7BIT,
	  false },
	{ "<\"a>b\"@d>", "\"a>b\"@d", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<\"\"@d>", "\"\"@d", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<@a,@b.c:user@D>", "user@d", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<@a:user@d>", "user@d", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<a@[192.0.2.1]>", "a@[192.0.2.1]", NULL, 0, 0, SMTP_BODY_7BIT,
	  false },
	{ "<a@[IPv6:2001:DB8::1]>", "a@[ipv6:2001:db8::1]", NULL, 0, 0,
	  SMTP_BODY_7BIT, false },
	{ "<a@[IPv6:::ffff:192.0.2.1]>", "a@[ipv6:::ffff:192.0.2.1]", NULL,
	  0, 0, SMTP_BODY_7BIT, false },
	{ "<a@x-y.z9.example>", "a@x-y.z9.example", NULL, 0, 0,
	  SMTP_BODY_7BIT, false },
	{ "<a@1.2.3.4>", "a@1.2.3.4", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<a@b> SIZE=12345", "a@b", NULL, 1, 12345, SMTP_BODY_7BIT, false },
	{ "<a@b> size=1 body=8bitmime", "a@b", NULL, 1, 1,
	  SMTP_BODY_8BITMIME, false },
	{ "<a@b> BODY=BINARYMIME", "a@b", NULL, 0, 0, SMTP_BODY_BINARYMIME,
	  false },
	{ "<a@b> BODY=7BIT", "a@b", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<a@b> SIZE=18446744073709551615", "a@b", NULL, 1, UINT64_MAX,
	  SMTP_BODY_7BIT, false },
	/* 20 digits but past UINT64_MAX: "too big", the session says 552. */
	{ "<a@b> SIZE=99999999999999999999", "a@b", NULL, 1, UINT64_MAX,
	  SMTP_BODY_7BIT, false },
	{ "<a@b> SIZE=00000000000000000007", "a@b", NULL, 1, 7,
	  SMTP_BODY_7BIT, false },
	{ "<a@b> SMTPUTF8", "a@b", NULL, 0, 0, SMTP_BODY_7BIT, true },
	{ "<a@b> AUTH=<> RET=HDRS ENVID=QQ314159", "a@b", NULL, 0, 0,
	  SMTP_BODY_7BIT, false },
	{ "<a@b>  SIZE=5   BODY=8BITMIME  ", "a@b", NULL, 1, 5,
	  SMTP_BODY_8BITMIME, false },
	{ "<a@b> ", "a@b", NULL, 0, 0, SMTP_BODY_7BIT, false },
	{ "<j\xc3\xb6rg@b\xc3\xbc" "cher.example> SMTPUTF8",
	  "j\xc3\xb6rg@b\xc3\xbc" "cher.example", NULL, 0, 0,
	  SMTP_BODY_7BIT, true },
	{ "<\"\xe2\x82\xac x\"@d> SMTPUTF8", "\"\xe2\x82\xac x\"@d", NULL,
	  0, 0, SMTP_BODY_7BIT, true },
	{ "<\xf0\x9f\x93\xa7@\xe4\xbe\x8b.\xe4\xb8\xad\xe5\x9b\xbd> SMTPUTF8",
	  "\xf0\x9f\x93\xa7@\xe4\xbe\x8b.\xe4\xb8\xad\xe5\x9b\xbd", NULL,
	  0, 0, SMTP_BODY_7BIT, true },
	/* ---- bad paths ---- */
	{ "", NULL, R_MAIL, 0, 0, 0, false },
	{ "a@b", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b", NULL, R_MAIL, 0, 0, 0, false },
	{ "a@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ " <a@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<<a@b>>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b>>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b>SIZE=1", NULL, R_MAIL, 0, 0, 0, false },
	{ "< a@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a @b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@ b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b >", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a b@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a\tb@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<postmaster>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<.a@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a.@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a..b@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a(b)@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a,b@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a\\b@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\"a@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\"a\"b@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\"a\\\"@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\"a\tb\"@c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b.>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@.b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b..c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@-b.c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b-.c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b_c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b/c>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[1.2.3.4>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[1.2.3]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[1.2.3.256]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[01.2.3.4]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[::1]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[IPv6:1.2.3.4]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[IPv6:]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[IPv6:::1%eth0]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[x-tag:foo]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@[1.2.3.4]x>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b.[1.2.3.4]>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@a:>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@a@b>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@a,b:c@d>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@a,:c@d>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@:c@d>", NULL, R_MAIL, 0, 0, 0, false },
	{ "<@[1.2.3.4]:c@d>", NULL, R_MAIL, 0, 0, 0, false },
	/* ---- UTF-8 ---- */
	{ "<j\xc3\xb6rg@b>", NULL, R_8BIT, 0, 0, 0, false },
	{ "<a@b\xc3\xbc" "cher.example>", NULL, R_8BIT, 0, 0, 0, false },
	{ "<a@b> BODY=8BITMIME SIZE=1 \xc3\xa9", NULL, R_PARAM, 0, 0, 0,
	  false },
	{ "<@\xc3\xa9:a@b>", NULL, R_8BIT, 0, 0, 0, false },
	{ "<\xc3@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xc3\x28@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xc0\xaf@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xe0\x80\xaf@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xed\xa0\x80@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xf4\x90\x80\x80@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xf8\x88\x80\x80\x80@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\x80@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<\xff@b> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@b\xe2\x82> SMTPUTF8", NULL, R_MAIL, 0, 0, 0, false },
	{ "<a@\xc2\xa0> SMTPUTF8", "a@\xc2\xa0", NULL, 0, 0, 0, true },
	/* ---- parameters ---- */
	{ "<a@b> SIZE=abc", NULL, R_SIZE, 0, 0, 0, false },
	{ "<a@b> SIZE=99999999999999999999999", NULL, R_SIZE, 0, 0, 0,
	  false },
	{ "<a@b> SIZE=000000000000000000001", NULL, R_SIZE, 0, 0, 0, false },
	{ "<a@b> SIZE", NULL, R_SIZE, 0, 0, 0, false },
	{ "<a@b> SIZE=", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> SIZE=-1", NULL, R_SIZE, 0, 0, 0, false },
	{ "<a@b> SIZE=+1", NULL, R_SIZE, 0, 0, 0, false },
	{ "<a@b> SIZE=1k", NULL, R_SIZE, 0, 0, 0, false },
	{ "<a@b> SIZE=1 SIZE=2", NULL, R_DUP, 0, 0, 0, false },
	{ "<a@b> SIZE=1 size=1", NULL, R_DUP, 0, 0, 0, false },
	{ "<a@b> SMTPUTF8 SMTPUTF8", NULL, R_DUP, 0, 0, 0, false },
	{ "<a@b> BODY=8BITMIME BODY=7BIT", NULL, R_DUP, 0, 0, 0, false },
	{ "<a@b> BODY=9BIT", NULL, R_BODY, 0, 0, 0, false },
	{ "<a@b> BODY=8BITMIMEX", NULL, R_BODY, 0, 0, 0, false },
	{ "<a@b> BODY", NULL, R_BODY, 0, 0, 0, false },
	{ "<a@b> SMTPUTF8=yes", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> AUTH", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> RET", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> NOTIFY=NEVER", NULL, R_UNKNOWN, 0, 0, 0, false },
	{ "<a@b> XFOO=bar", NULL, R_UNKNOWN, 0, 0, 0, false },
	{ "<a@b> XFOO", NULL, R_UNKNOWN, 0, 0, 0, false },
	{ "<a@b> =x", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> -X=1", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> SI_ZE=1", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> ENVID=a=b", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> ENVID=a\tb", NULL, R_PARAM, 0, 0, 0, false },
	{ "<a@b> SIZE=1\tBODY=7BIT", NULL, R_PARAM, 0, 0, 0, false },
};

static void
test_mail(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_mail_cases); i++) {
		const struct test_mail_case *tc = &test_mail_cases[i];
		struct smtp_mail_args m;
		const char *reply = NULL;
		int ret = smtp_parse_mail(tc->args, &m, &reply);

		if (tc->addr == NULL) {
			TEST_CHECK(ret == -1 && reply != NULL &&
			    strcmp(reply, tc->reply) == 0,
			    "case %zu \"%s\": ret %d reply \"%s\"", i,
			    tc->args, ret, reply != NULL ? reply : "(null)");
			continue;
		}
		TEST_CHECK(ret == 0, "case %zu \"%s\": ret %d reply \"%s\"",
		    i, tc->args, ret, reply != NULL ? reply : "(null)");
		if (ret != 0)
			continue;
		TEST_STR(m.addr, tc->addr);
		TEST_INT(m.has_size, tc->has_size);
		TEST_TRUE(m.size == tc->size);
		TEST_INT(m.body, tc->body);
		TEST_INT(m.smtputf8, tc->smtputf8);
	}
}

/* ---- RCPT ---- */

struct test_rcpt_case {
	const char *args;
	bool smtputf8;
	const char *addr;	/* NULL: expect -1 */
	const char *reply;
};

static const struct test_rcpt_case test_rcpt_cases[] = {
	{ "<a@B>", false, "a@b", NULL },
	{ "<postmaster>", false, "postmaster", NULL },
	{ "<PostMaster>", false, "postmaster", NULL },
	{ "<postmaster> NOTIFY=NEVER", false, "postmaster", NULL },
	{ "<Postmaster@Example.COM>", false, "Postmaster@example.com", NULL },
	{ "<@relay:u@d>", false, "u@d", NULL },
	{ "<u@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u@d", false, "u@d",
	  NULL },
	{ "<\xc3\xa9@d>", true, "\xc3\xa9@d", NULL },
	{ "<u@[IPv6:::1]>", false, "u@[ipv6:::1]", NULL },
	{ "<>", false, NULL, R_RCPT },
	{ "", false, NULL, R_RCPT },
	{ "u@d", false, NULL, R_RCPT },
	{ "<postmaster", false, NULL, R_RCPT },
	{ "<postmasterx>", false, NULL, R_RCPT },
	{ "<postmaster>x", false, NULL, R_RCPT },
	{ "<post master>", false, NULL, R_RCPT },
	{ "<u@d>x", false, NULL, R_RCPT },
	{ "<\xc3\xa9@d>", false, NULL, R_8BIT },
	{ "<u@d> SMTPUTF8", true, NULL, R_UNKNOWN },
	{ "<u@d> SIZE=1", false, NULL, R_UNKNOWN },
	{ "<u@d> BODY=8BITMIME", false, NULL, R_UNKNOWN },
	{ "<u@d> NOTIFY", false, NULL, R_PARAM },
	{ "<u@d> NOTIFY=NEVER NOTIFY=NEVER", false, NULL, R_DUP },
	{ "<u@d> ORCPT=a orcpt=b", false, NULL, R_DUP },
	{ "<u@d> FOO=bar", false, NULL, R_UNKNOWN },
	{ "<\xc3@d>", true, NULL, R_RCPT },
};

static void
test_rcpt(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_rcpt_cases); i++) {
		const struct test_rcpt_case *tc = &test_rcpt_cases[i];
		struct smtp_rcpt_args r;
		const char *reply = NULL;
		int ret = smtp_parse_rcpt(tc->args, tc->smtputf8, &r, &reply);

		if (tc->addr == NULL) {
			TEST_CHECK(ret == -1 && reply != NULL &&
			    strcmp(reply, tc->reply) == 0,
			    "case %zu \"%s\": ret %d reply \"%s\"", i,
			    tc->args, ret, reply != NULL ? reply : "(null)");
			continue;
		}
		TEST_CHECK(ret == 0, "case %zu \"%s\": ret %d reply \"%s\"",
		    i, tc->args, ret, reply != NULL ? reply : "(null)");
		if (ret == 0)
			TEST_STR(r.addr, tc->addr);
	}
}

/* ---- limits ---- */

/* "<" local "@" labels... tail ">" params; the caller frees it. */
static char *
test_path(size_t local_len, const char *label, size_t labels,
	  size_t tail_len, const char *params)
{
	struct buf b;

	buf_init(&b, 0);
	buf_addc(&b, '<');
	for (size_t i = 0; i < local_len; i++)
		buf_addc(&b, 'l');
	buf_addc(&b, '@');
	for (size_t i = 0; i < labels; i++)
		buf_printf(&b, "%s.", label);
	for (size_t i = 0; i < tail_len; i++)
		buf_addc(&b, 'd');
	buf_addc(&b, '>');
	buf_adds(&b, params);
	return b.data;
}

static int
test_mail_ret(const char *args, const char **reply_r)
{
	struct smtp_mail_args m;

	*reply_r = "";
	return smtp_parse_mail(args, &m, reply_r);
}

static void
test_limits(void)
{
	char label63[SMTP_LABEL_MAX + 1], label64[SMTP_LABEL_MAX + 2];
	const char *reply;
	char *s;

	memset(label63, 'x', sizeof(label63) - 1);
	label63[sizeof(label63) - 1] = '\0';
	memset(label64, 'x', sizeof(label64) - 1);
	label64[sizeof(label64) - 1] = '\0';

	/* Local part: 64 fine, 65 refused (RFC 5321 §4.5.3.1.1). */
	s = test_path(SMTP_LOCAL_MAX, "", 0, 1, "");
	TEST_INT(test_mail_ret(s, &reply), 0);
	free(s);
	s = test_path(SMTP_LOCAL_MAX + 1, "", 0, 1, "");
	TEST_INT(test_mail_ret(s, &reply), -1);
	TEST_STR(reply, R_MAIL);
	free(s);

	/* Label: 63 fine, 64 refused (RFC 1035 §2.3.4). */
	s = test_path(1, label63, 1, 1, "");
	TEST_INT(test_mail_ret(s, &reply), 0);
	free(s);
	s = test_path(1, label64, 1, 1, "");
	TEST_INT(test_mail_ret(s, &reply), -1);
	TEST_STR(reply, R_MAIL);
	free(s);

	/* Path 256 with brackets fine, 257 too long (§4.5.3.1.3). */
	s = test_path(SMTP_LOCAL_MAX, label63, 2, 61, "");
	TEST_INT(strlen(s), SMTP_PATH_MAX);
	TEST_INT(test_mail_ret(s, &reply), 0);
	free(s);
	s = test_path(SMTP_LOCAL_MAX, label63, 2, 62, " SIZE=1");
	TEST_INT(strlen(s), SMTP_PATH_MAX + 1 + 7);
	TEST_INT(test_mail_ret(s, &reply), -1);
	TEST_STR(reply, R_MAIL_LONG);
	free(s);

	/* Domain: 256 octets refused whatever the path. */
	s = test_path(1, label63, 4, 0, "");
	s[strlen(s) - 2] = 'x';	/* 4 * 64 = 256, replace the final dot */
	TEST_INT(test_mail_ret(s, &reply), -1);
	free(s);
}

/* A long source route counts in the path (RFC 5321 §4.5.3.1.3). */
static void
test_limits_route(void)
{
	struct smtp_rcpt_args r;
	const char *reply;
	struct buf b;

	buf_init(&b, 0);
	buf_adds(&b, "<");
	for (int i = 0; i < 30; i++)
		buf_adds(&b, "@relay.example,");
	buf_adds(&b, "@r:a@b>");
	TEST_INT(test_mail_ret(b.data, &reply), -1);
	TEST_STR(reply, R_MAIL_LONG);
	TEST_INT(smtp_parse_rcpt(b.data, false, &r, &reply), -1);
	TEST_STR(reply, R_RCPT_LONG);
	buf_free(&b);
}

/* Every truncation of the valid cases is refused or parsed, never more. */
static void
test_truncations(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_mail_cases); i++) {
		char *s = strdup(test_mail_cases[i].args);

		for (size_t n = strlen(s); n > 0; n--) {
			struct smtp_mail_args m;
			struct smtp_rcpt_args r;
			const char *reply;
			int ret;

			s[n] = '\0';
			ret = smtp_parse_mail(s, &m, &reply);
			TEST_TRUE(ret == 0 || ret == -1);
			ret = smtp_parse_rcpt(s, true, &r, &reply);
			TEST_TRUE(ret == 0 || ret == -1);
		}
		free(s);
	}
}

/* ---- BDAT ---- */

struct test_bdat_case {
	const char *args;
	int ret;
	uint64_t size;
	bool last;
};

static const struct test_bdat_case test_bdat_cases[] = {
	{ "0", 0, 0, false },
	{ "1000", 0, 1000, false },
	{ "86 LAST", 0, 86, true },
	{ "0 last", 0, 0, true },
	{ "18446744073709551615", 0, UINT64_MAX, false },
	{ "00000000000000000001 LAST", 0, 1, true },
	{ "18446744073709551616", -1, 0, false },
	{ "99999999999999999999", -1, 0, false },
	{ "000000000000000000001", -1, 0, false },
	{ "", -1, 0, false },
	{ " 1", -1, 0, false },
	{ "1 ", -1, 0, false },
	{ "1  LAST", -1, 0, false },
	{ "1 LAST ", -1, 0, false },
	{ "1 LASTX", -1, 0, false },
	{ "1 LAS", -1, 0, false },
	{ "1 FIRST", -1, 0, false },
	{ "LAST", -1, 0, false },
	{ "-1", -1, 0, false },
	{ "+1", -1, 0, false },
	{ "0x10", -1, 0, false },
	{ "1e3", -1, 0, false },
	{ "1\tLAST", -1, 0, false },
};

static void
test_bdat(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_bdat_cases); i++) {
		const struct test_bdat_case *tc = &test_bdat_cases[i];
		uint64_t size = 42;
		bool last = false;
		int ret = smtp_parse_bdat(tc->args, &size, &last);

		TEST_CHECK(ret == tc->ret, "case %zu \"%s\": ret %d", i,
		    tc->args, ret);
		if (ret == 0 && tc->ret == 0) {
			TEST_TRUE(size == tc->size);
			TEST_INT(last, tc->last);
		}
	}
}

/* ---- split ---- */

static void
test_split(void)
{
	char l[SMTP_LOCAL_MAX + 1], d[SMTP_DOMAIN_MAX + 1];

	TEST_INT(smtp_addr_split("a@b", l, sizeof(l), d, sizeof(d)), 0);
	TEST_STR(l, "a");
	TEST_STR(d, "b");
	TEST_INT(smtp_addr_split("\"x@y\"@b.c", l, sizeof(l), d, sizeof(d)),
	    0);
	TEST_STR(l, "\"x@y\"");
	TEST_STR(d, "b.c");
	TEST_INT(smtp_addr_split("\"x\\\"@y\"@b", l, sizeof(l), d,
	    sizeof(d)), 0);
	TEST_STR(l, "\"x\\\"@y\"");
	TEST_STR(d, "b");
	TEST_INT(smtp_addr_split("a@b@c", l, sizeof(l), d, sizeof(d)), 0);
	TEST_STR(l, "a@b");
	TEST_STR(d, "c");
	TEST_INT(smtp_addr_split("@d", l, sizeof(l), d, sizeof(d)), 0);
	TEST_STR(l, "");
	TEST_STR(d, "d");
	TEST_INT(smtp_addr_split("postmaster", l, sizeof(l), d, sizeof(d)),
	    -1);
	TEST_INT(smtp_addr_split("", l, sizeof(l), d, sizeof(d)), -1);
	TEST_INT(smtp_addr_split("\"a@b\"", l, sizeof(l), d, sizeof(d)), -1);
	TEST_INT(smtp_addr_split("\"a@b", l, sizeof(l), d, sizeof(d)), -1);
	/* Buffers: exactly fitting, one short. */
	TEST_INT(smtp_addr_split("abc@de", l, 4, d, 3), 0);
	TEST_INT(smtp_addr_split("abc@de", l, 3, d, 3), -1);
	TEST_INT(smtp_addr_split("abc@de", l, 4, d, 2), -1);
}

int
main(void)
{
	test_cmd();
	test_mail();
	test_rcpt();
	test_limits();
	test_limits_route();
	test_truncations();
	test_bdat();
	test_split();
	return test_done("smtp_parse");
}
