/*
 * test_mime_decode.c - RFC 2047 header decoding (the §8 examples, split
 * words, bad input, iconv charsets), the base64 and quoted-printable
 * decoders and the charset converter fed whole and byte by byte, the
 * substring matcher's folding, and the text parts of a parsed message.
 */
#include <stdlib.h>
#include <string.h>

#include "core/test.h"
#include "mime/mime.h"

struct hdr_case {
	const char *in, *out;
};

static const struct hdr_case hdr_cases[] = {
	/* RFC 2047 §8 */
	{ "(=?ISO-8859-1?Q?a?=)", "(a)" },
	{ "(=?ISO-8859-1?Q?a?= b)", "(a b)" },
	{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)" },
	{ "(=?ISO-8859-1?Q?a_b?=)", "(a b)" },
	{ "(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)" },
	{ "=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>",
	  "Keith Moore <moore@cs.utk.edu>" },
	{ "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
	  "Keld J\xc3\xb8rn Simonsen <keld@dkuug.dk>" },
	{ "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
	  "Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>" },
	{ "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
	  "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
	  "If you can read this you understand the example." },
	/* lower case encoding, RFC 2231 language suffix */
	{ "=?utf-8?b?w6k=?=", "\xc3\xa9" },
	{ "=?UTF-8*fr?Q?=C3=A9?=", "\xc3\xa9" },
	/* a character split across words of one charset */
	{ "=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "\xc3\xa9" },
	{ "=?UTF-16BE?Q?=00?= =?UTF-16BE?Q?a?=", "a" },
	/* iconv charsets */
	{ "=?ISO-8859-15?Q?=A4?=", "\xe2\x82\xac" },
	{ "=?windows-1252?Q?=80_x?=", "\xe2\x82\xac x" },
	/* text around words keeps its whitespace, folding drops CRLF */
	{ "a =?UTF-8?Q?b?= c", "a b c" },
	{ "a\r\n b", "a b" },
	{ "Gr\xc3\xbc\xc3\x9f" "e", "Gr\xc3\xbc\xc3\x9f" "e" },
	/* bad input: kept as written, or replaced */
	{ "=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=" },
	{ "=?UTF-8?B?abc", "=?UTF-8?B?abc" },
	{ "=??B?abc?=", "=??B?abc?=" },
	{ "=?UTF-8?Q?a b?=", "=?UTF-8?Q?a b?=" },
	{ "=?no-such-charset?Q?x=41?=", "xA" },
	{ "=?UTF-16BE?Q?=00?=", "\xef\xbf\xbd" },
	{ "=?UTF-8?Q?=ZZ?=", "=ZZ" },
	{ "=?UTF-8?B?!!!?=", "" },
	{ "", "" },
};

static void
test_header(void)
{
	for (size_t i = 0; i < sizeof(hdr_cases) / sizeof(*hdr_cases); i++) {
		const struct hdr_case *c = &hdr_cases[i];
		struct buf out;

		buf_init(&out, 0);
		mime_header_decode(c->in, strlen(c->in), &out);
		buf_addc(&out, '\0');
		TEST_STR(out.data, c->out);
		buf_free(&out);
	}
}

struct cte_case {
	enum mime_cte cte;
	const char *in, *out;
};

static const struct cte_case cte_cases[] = {
	{ MIME_CTE_BASE64, "SGVsbG8s\r\nIHdvcmxkIQ==\r\n", "Hello, world!" },
	{ MIME_CTE_BASE64, "SGk", "Hi" },
	{ MIME_CTE_BASE64, "S G\r\nk*=", "Hi" },
	{ MIME_CTE_QP, "Gr=C3=BC=\r\n=C3=9Fe caf=E9 =3d x\r\n",
	  "Gr\xc3\xbc\xc3\x9f" "e caf\xe9 = x\r\n" },
	{ MIME_CTE_QP, "a=  \r\nb", "ab" },
	{ MIME_CTE_QP, "a=\nb", "ab" },
	{ MIME_CTE_QP, "=ZZ=4", "=ZZ=4" },
	{ MIME_CTE_QP, "x=", "x=" },
	{ MIME_CTE_7BIT, "=41", "=41" },
};

static void
test_cte_one(const struct cte_case *c, size_t step)
{
	struct mime_cte_dec *d = mime_cte_dec_new(c->cte);
	size_t len = strlen(c->in);
	struct buf out;

	buf_init(&out, 0);
	for (size_t i = 0; i < len; i += step)
		mime_cte_dec_feed(d, c->in + i, len - i < step ? len - i :
		    step, &out);
	mime_cte_dec_finish(d, &out);
	buf_addc(&out, '\0');
	TEST_STR(out.data, c->out);
	buf_free(&out);
	mime_cte_dec_free(&d);
	TEST_TRUE(d == NULL);
}

static void
test_cte(void)
{
	for (size_t i = 0; i < sizeof(cte_cases) / sizeof(*cte_cases); i++) {
		test_cte_one(&cte_cases[i], 1);
		test_cte_one(&cte_cases[i], 3);
		test_cte_one(&cte_cases[i], 1000);
	}
}

struct conv_case {
	const char *cs;
	const char *in;
	size_t len;
	const char *out;
};

static const struct conv_case conv_cases[] = {
	{ "ISO-8859-15", "\xa4 \xbd", 3, "\xe2\x82\xac \xc5\x93" },
	{ "windows-1252", "\x80" "abc\x93", 5,
	  "\xe2\x82\xac" "abc\xe2\x80\x9c" },
	{ "iso-8859-1", "caf\xe9", 4, "caf\xc3\xa9" },
	{ "UTF-16BE", "\x00h\x00\xe9", 4, "h\xc3\xa9" },
	{ "UTF-16BE", "\x00h\x00", 3, "h\xef\xbf\xbd" },
	{ "UTF-8", "\xff", 1, "\xff" },
	{ "x-unknown", "abc", 3, "abc" },
	/* EUC-JP: a byte invalid as a lead */
	{ "EUC-JP", "a\xff" "b", 3, "a\xef\xbf\xbd" "b" },
};

static void
test_conv(void)
{
	for (size_t i = 0; i < sizeof(conv_cases) / sizeof(*conv_cases);
	    i++) {
		const struct conv_case *c = &conv_cases[i];

		for (size_t step = 1; step <= c->len; step++) {
			struct mime_conv *cv = mime_conv_new(c->cs,
			    strlen(c->cs));
			struct buf out;

			buf_init(&out, 0);
			for (size_t k = 0; k < c->len; k += step)
				mime_conv_feed(cv, c->in + k, c->len - k <
				    step ? c->len - k : step, &out);
			mime_conv_finish(cv, &out);
			buf_addc(&out, '\0');
			TEST_STR(out.data, c->out);
			buf_free(&out);
			mime_conv_free(&cv);
		}
	}
}

struct match_case {
	const char *needle, *hay;
	bool hit;
};

static const struct match_case match_cases[] = {
	{ "", "", true },
	{ "report", "Quarterly REPORT", true },
	{ "aab", "aaab", true },
	{ "abab", "abaabab", true },
	{ "abc", "ab", false },
	{ "K\xc3\x96LN", "aus k\xc3\xb6ln", true },
	{ "\xc3\xa4", "\xc3\x84", true },
	{ "\xc3\xb7", "\xc3\x97", false },	/* not a letter pair */
	{ "gr\xc3\xbc\xc3\x9f" "e", "GR\xc3\x9c\xc3\x9f" "E", true },
	{ "\xd0\xb0", "\xd0\x90", false },	/* Cyrillic: not folded */
};

static void
test_match(void)
{
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(*match_cases);
	    i++) {
		const struct match_case *c = &match_cases[i];
		struct mime_match *mm = mime_match_new(c->needle,
		    strlen(c->needle));
		size_t len = strlen(c->hay);
		bool hit = mime_match_feed(mm, c->hay, len);

		TEST_CHECK(hit == c->hit, "match %zu whole", i);
		mime_match_reset(mm);
		hit = len == 0 ? mime_match_feed(mm, "", 0) : false;
		for (size_t k = 0; k < len; k++)
			hit = mime_match_feed(mm, c->hay + k, 1);
		TEST_CHECK(hit == c->hit, "match %zu byte by byte", i);
		mime_match_free(&mm);
	}
}

static void
test_parts(void)
{
	static const char msg[] =
	    "Subject: x\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain; charset=\"ISO-8859-1\"\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "caf=E9\r\n"
	    "--b\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "PNG\r\n"
	    "--b\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "\r\n"
	    "Subject: inner\r\n"
	    "\r\n"
	    "body\r\n"
	    "--b--\r\n";
	struct mime_parser *p = mime_parser_new();
	struct mime_message *m;
	uint64_t start, len;
	enum mime_cte cte;
	struct buf cs;
	unsigned ntext = 0, nemb = 0;

	mime_parser_feed(p, msg, sizeof(msg) - 1);
	m = mime_parser_finish(&p);
	buf_init(&cs, 0);
	for (uint32_t i = 0; i < mime_part_count(m); i++) {
		if (mime_part_embedded_header(m, i, &start, &len)) {
			nemb++;
			TEST_TRUE(len == 18 && memcmp(msg + start,
			    "Subject: inner\r\n\r\n", 18) == 0);
		}
		if (!mime_part_text(m, i, &start, &len, &cte, &cs))
			continue;
		if (ntext++ == 0) {
			TEST_INT(cte, MIME_CTE_QP);
			TEST_STR(cs.data, "ISO-8859-1");
			TEST_TRUE(len == 6 && memcmp(msg + start, "caf=E9",
			    6) == 0);
		} else {
			TEST_STR(cs.data, "us-ascii");
			TEST_TRUE(len == 4 && memcmp(msg + start, "body",
			    4) == 0);
		}
	}
	TEST_INT(ntext, 2);
	TEST_INT(nemb, 1);
	TEST_TRUE(!mime_part_text(m, mime_part_count(m), &start, &len, &cte,
	    &cs));
	buf_free(&cs);
	mime_message_free(&m);
}

int
main(void)
{
	test_header();
	test_cte();
	test_conv();
	test_match();
	test_parts();
	return test_done("mime_decode");
}
