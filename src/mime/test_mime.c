/*
 * test_mime.c - the MIME parser on message shapes written here, each fed
 * whole, byte by byte and in pseudo-random chunks (all must agree):
 * ENVELOPE/BODY/BODYSTRUCTURE strings derived by hand from RFC 9051 §7.5.2
 * and cross-checked against Dovecot 2.3 (which differs only where mime.h
 * says), section ranges, HEADER.FIELDS filtering, every limit, and the
 * serialised tree (round trip, corruption).
 */
#include <stdlib.h>
#include <string.h>

#include "core/test.h"
#include "mime/mime.h"

struct mime_case {
	const char *name;
	const char *msg;	/* "\n" becomes CRLF unless lf_only */
	bool lf_only;
	const char *envelope;
	const char *bodystructure;
	const char *body;	/* NULL: not checked */
};

static const struct mime_case mime_cases[] = {
	/* no Content-Type: RFC 2045 §5.2 default */
	{ "plain",
	  "From: Alice <alice@example.org>\n"
	  "To: bob@example.com\n"
	  "Subject: Hello\n"
	  "Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
	  "Message-ID: <1@example.org>\n"
	  "\n"
	  "Hi Bob,\n"
	  "bye\n", false,
	  "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"Hello\" "
	  "((\"Alice\" NIL \"alice\" \"example.org\")) "
	  "((\"Alice\" NIL \"alice\" \"example.org\")) "
	  "((\"Alice\" NIL \"alice\" \"example.org\")) "
	  "((NIL NIL \"bob\" \"example.com\")) NIL NIL NIL "
	  "\"<1@example.org>\")",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 "
	  "2 "
	  "NIL NIL NIL NIL)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 14 "
	  "2)" },
	/* multipart/mixed around multipart/alternative plus attachment;
	 * groups, quoted display name with comma, RFC 2047 passed raw */
	{ "alternative",
	  "From: \"Doe, John\" <john@example.org>\n"
	  "To: Team: a@x.org, \"B B\" <b@y.org>;, c@z.org (Carl)\n"
	  "Cc: undisclosed-recipients:;\n"
	  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= report\n"
	  "Date: Tue, 2 Jan 2024 11:00:00 +0100\n"
	  "Message-ID: <2@example.org>\n"
	  "In-Reply-To: <1@example.org>\n"
	  "MIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=\"outer\"\n"
	  "\n"
	  "This is the preamble.\n"
	  "--outer\n"
	  "Content-Type: multipart/alternative; boundary=inner\n"
	  "\n"
	  "--inner\n"
	  "Content-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n"
	  "\n"
	  "Hello =C3=A9\n"
	  "--inner\n"
	  "Content-Type: text/html; charset=\"utf-8\"\n"
	  "\n"
	  "<p>Hello</p>\n"
	  "--inner--\n"
	  "--outer\n"
	  "Content-Type: application/pdf; name=\"a.pdf\"\n"
	  "Content-Disposition: attachment; filename=\"a.pdf\"\n"
	  "Content-Transfer-Encoding: base64\n"
	  "Content-ID: <pdf1@x>\n"
	  "Content-Description: The report\n"
	  "Content-Language: en, de\n"
	  "Content-Location: http://x/a.pdf\n"
	  "\n"
	  "JVBERi0xLjQK\n"
	  "--outer--\n"
	  "epilogue\n", false,
	  "(\"Tue, 2 Jan 2024 11:00:00 +0100\" "
	  "\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= report\" "
	  "((\"Doe, John\" NIL \"john\" \"example.org\")) "
	  "((\"Doe, John\" NIL \"john\" \"example.org\")) "
	  "((\"Doe, John\" NIL \"john\" \"example.org\")) "
	  "((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"x.org\")"
	  "(\"B B\" NIL \"b\" \"y.org\")(NIL NIL NIL NIL)"
	  "(NIL NIL \"c\" \"z.org\")) "
	  "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL "
	  "\"<1@example.org>\" \"<2@example.org>\")",
	  "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	  "\"quoted-printable\" 12 0 NIL NIL NIL NIL)"
	  "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 12 0 "
	  "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL "
	  "NIL)(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<pdf1@x>\" "
	  "\"The report\" \"base64\" 12 NIL (\"attachment\" (\"filename\" "
	  "\"a.pdf\")) (\"en\" \"de\") \"http://x/a.pdf\") \"mixed\" "
	  "(\"boundary\" \"outer\") NIL NIL NIL)",
	  "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	  "\"quoted-printable\" 12 0)(\"text\" \"html\" (\"charset\" "
	  "\"utf-8\") NIL NIL \"7BIT\" 12 0) \"alternative\")(\"application\" "
	  "\"pdf\" (\"name\" \"a.pdf\") \"<pdf1@x>\" \"The report\" \"base64\" "
	  "12) \"mixed\")" },
	/* nested message/rfc822 with its own multipart; empty Reply-To,
	 * quoted local part, obsolete route */
	{ "nested",
	  "From: list@example.org\n"
	  "Sender: owner@example.org\n"
	  "Reply-To: \n"
	  "To: \"john doe\"@example.org\n"
	  "Subject: Fwd: inner\n"
	  "Date: Wed, 3 Jan 2024 12:00:00 +0000\n"
	  "Content-Type: multipart/mixed; boundary=b1\n"
	  "\n"
	  "--b1\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "See attached.\n"
	  "--b1\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "From: Inner <inner@example.net>\n"
	  "To: <@route1,@route2:x@example.com>\n"
	  "Subject: inner\n"
	  "Content-Type: multipart/alternative; boundary=b2\n"
	  "\n"
	  "--b2\n"
	  "\n"
	  "plain body\n"
	  "--b2\n"
	  "Content-Type: text/html\n"
	  "\n"
	  "<b>html</b>\n"
	  "--b2--\n"
	  "\n"
	  "--b1--\n", false,
	  "(\"Wed, 3 Jan 2024 12:00:00 +0000\" \"Fwd: inner\" "
	  "((NIL NIL \"list\" \"example.org\")) "
	  "((NIL NIL \"owner\" \"example.org\")) "
	  "((NIL NIL \"list\" \"example.org\")) "
	  "((NIL NIL \"john doe\" \"example.org\")) NIL NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 13 "
	  "0 "
	  "NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 212 "
	  "(NIL \"inner\" ((\"Inner\" NIL \"inner\" \"example.net\")) "
	  "((\"Inner\" NIL \"inner\" \"example.net\")) "
	  "((\"Inner\" NIL \"inner\" \"example.net\")) "
	  "((NIL \"@route1,@route2\" \"x\" \"example.com\")) NIL NIL NIL NIL) "
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 "
	  "0 "
	  "NIL NIL NIL NIL)(\"text\" \"html\" (\"CHARSET\" \"US-ASCII\") NIL "
	  "NIL \"7BIT\" 11 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" "
	  "\"b2\") NIL NIL NIL) 13 NIL NIL NIL NIL) \"mixed\" (\"boundary\" "
	  "\"b1\") NIL NIL NIL)",
	  NULL },
	/* 8-bit header as a literal, quote and backslash escaped; group
	 * only; missing From; no newline at the end */
	{ "nofrom",
	  "Subject: caf\xc3\xa9 \"quoted\" \\ back\n"
	  "To: Group One:;\n"
	  "Date: Thu, 4 Jan 2024\n"
	  "\n"
	  "body", false,
	  "(\"Thu, 4 Jan 2024\" {21}\r\ncaf\xc3\xa9 \"quoted\" \\ back NIL NIL "
	  "NIL ((NIL NIL \"Group One\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 4 0 "
	  "NIL NIL NIL NIL)", NULL },
	{ "quoting",
	  "Subject: say \"hi\" \\o/\n"
	  "Message-ID: a\rb\n"
	  "\n", false,
	  "(NIL \"say \\\"hi\\\" \\\\o/\" NIL NIL NIL NIL NIL NIL NIL "
	  "{3}\r\na\rb)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 "
	  "NIL NIL NIL NIL)", NULL },
	/* header line without colon starts the body (no blank line);
	 * quoted boundary with a space; empty part; part left open */
	{ "malformed",
	  "From: a@b\n"
	  "Content-Type: multipart/mixed; boundary=\"q r\"\n"
	  "this line has no colon\n"
	  "--q r\n"
	  "--q r\n"
	  "Content-Type: text/plain\n"
	  "text part\n"
	  "--q r\n", false,
	  "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
	  "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 "
	  "0 "
	  "NIL NIL NIL NIL)(\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL "
	  "NIL \"7BIT\" 9 0 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	  "\"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) \"mixed\" "
	  "(\"boundary\" \"q r\") NIL NIL NIL)", NULL },
	/* RFC 2046 §5.1.5: message/rfc822 is the digest default */
	{ "digest",
	  "From: d@x\n"
	  "Content-Type: multipart/digest; boundary=d\n"
	  "\n"
	  "--d\n"
	  "\n"
	  "From: one@x\n"
	  "Subject: one\n"
	  "\n"
	  "body one\n"
	  "--d\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "not a message\n"
	  "--d--\n", false,
	  "(NIL NIL ((NIL NIL \"d\" \"x\")) ((NIL NIL \"d\" \"x\")) "
	  "((NIL NIL \"d\" \"x\")) NIL NIL NIL NIL NIL)",
	  "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 37 (NIL \"one\" "
	  "((NIL NIL \"one\" \"x\")) ((NIL NIL \"one\" \"x\")) "
	  "((NIL NIL \"one\" \"x\")) NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" "
	  "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 0 NIL NIL NIL NIL) 3 "
	  "NIL NIL NIL NIL)(\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL "
	  "NIL \"7BIT\" 13 0 NIL NIL NIL NIL) \"digest\" (\"boundary\" \"d\") "
	  "NIL NIL NIL)", NULL },
	{ "rfc822top",
	  "From: outer@x\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "From: inner@y\n"
	  "Subject: in\n"
	  "\n"
	  "inner body\n", false,
	  "(NIL NIL ((NIL NIL \"outer\" \"x\")) ((NIL NIL \"outer\" \"x\")) "
	  "((NIL NIL \"outer\" \"x\")) NIL NIL NIL NIL NIL)",
	  "(\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 42 (NIL \"in\" "
	  "((NIL NIL \"inner\" \"y\")) ((NIL NIL \"inner\" \"y\")) "
	  "((NIL NIL \"inner\" \"y\")) NIL NIL NIL NIL NIL) (\"TEXT\" "
	  "\"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 1 NIL NIL "
	  "NIL NIL) 4 NIL NIL NIL NIL)", NULL },
	/* boundary never seen: one empty part, as Dovecot */
	{ "nobound",
	  "From: a@b\n"
	  "Content-Type: multipart/mixed; boundary=zz\n"
	  "\n"
	  "no boundary ever\n", false,
	  "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
	  "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 "
	  "0 "
	  "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"zz\") NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 "
	  "0) "
	  "\"mixed\")" },
	/* no boundary parameter at all */
	{ "noboundparam",
	  "From: x@y\n"
	  "Content-Type: multipart/mixed\n"
	  "\n"
	  "--x\n"
	  "hi\n", false,
	  "(NIL NIL ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) "
	  "((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL)",
	  "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 "
	  "0 "
	  "NIL NIL NIL NIL) \"mixed\" NIL NIL NIL NIL)", NULL },
	/* RFC 5322 §A.5-style addresses: comments, groups, literals,
	 * missing parts; single language, disposition without params */
	{ "addresses",
	  "From: john\n"
	  "To: <>, \"Q \\\"x\\\" y\" <q@x>, Pete(A comment) <pete(his account)"
	  "@silly.test(his host)>\n"
	  "Cc: a@[1.2.3.4], \"a b\"@c, Mary Smith <mary@x.test>, "
	  "jdoe@one.test\n"
	  "Bcc: Undisclosed:;, x@y (z), <a@b> trailing\n"
	  "Reply-To: A Group:Ed Jones <c@a.test>,joe@where.test,John "
	  "<jdoe@one.test>;\n"
	  "Content-Type: text/plain; format=flowed\n"
	  "Content-Disposition: inline\n"
	  "Content-Language: fr\n"
	  "\n"
	  "x\n", false,
	  "(NIL NIL ((NIL NIL \"john\" \"MISSING_DOMAIN\")) "
	  "((NIL NIL \"john\" \"MISSING_DOMAIN\")) "
	  "((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")"
	  "(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" \"one.test\")"
	  "(NIL NIL NIL NIL)) "
	  "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"
	  "(\"Q \\\"x\\\" y\" NIL \"q\" \"x\")"
	  "(\"Pete\" NIL \"pete\" \"silly.test\")) "
	  "((NIL NIL \"a\" \"[1.2.3.4]\")(NIL NIL \"a b\" \"c\")"
	  "(\"Mary Smith\" NIL \"mary\" \"x.test\")"
	  "(NIL NIL \"jdoe\" \"one.test\")) "
	  "((NIL NIL \"Undisclosed\" NIL)(NIL NIL NIL NIL)(NIL NIL \"x\" \"y\")"
	  "(NIL NIL \"a\" \"b\")(NIL NIL \"trailing\" \"MISSING_DOMAIN\")) "
	  "NIL NIL)",
	  "(\"text\" \"plain\" (\"format\" \"flowed\") NIL NIL \"7BIT\" 3 1 "
	  "NIL "
	  "(\"inline\" NIL) \"fr\" NIL)", NULL },
	/* obsolete route with a name; RFC 2231 passed through raw */
	{ "route2231",
	  "From: First Last <@a.org,@b.org:me@c.org>\n"
	  "Sender: \"Dup\" <d@x>\n"
	  "Content-Type: text/html; Charset=\"ISO-8859-1\"; "
	  "title*0*=us-ascii'en'This%20is; title*1=\"more\"\n"
	  "\n"
	  "x\n", false,
	  "(NIL NIL ((\"First Last\" \"@a.org,@b.org\" \"me\" \"c.org\")) "
	  "((\"Dup\" NIL \"d\" \"x\")) "
	  "((\"First Last\" \"@a.org,@b.org\" \"me\" \"c.org\")) NIL NIL NIL "
	  "NIL NIL)",
	  "(\"text\" \"html\" (\"Charset\" \"ISO-8859-1\" \"title*0*\" "
	  "\"us-ascii'en'This%20is\" \"title*1\" \"more\") NIL NIL \"7BIT\" 3 "
	  "1 NIL NIL NIL NIL)", NULL },
	/* RFC 2046 §5.2.1: an encoded message/rfc822 is not opened */
	{ "rfc822base64",
	  "From: x@y\n"
	  "Content-Type: message/rfc822\n"
	  "Content-Transfer-Encoding: base64\n"
	  "\n"
	  "RnJvbTogYUBiDQoNCmJvZHkNCg==\n", false,
	  "(NIL NIL ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) "
	  "((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL)",
	  "(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 30 (NIL NIL NIL NIL "
	  "NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" "
	  "\"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL "
	  "NIL)", NULL },
	/* case as written; encoding token without its comment */
	{ "case",
	  "From: x@y\n"
	  "Content-Type: TEXT/Plain\n"
	  "Content-Transfer-Encoding: 8BIT (comment)\n"
	  "\n"
	  "x\n", false,
	  "(NIL NIL ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) "
	  "((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL)",
	  "(\"TEXT\" \"Plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"8BIT\" 3 1 "
	  "NIL NIL NIL NIL)", NULL },
	/* folded fields (RFC 5322 §2.2.3), no CRLF after the close */
	{ "folded",
	  "From: x@y\n"
	  "Subject: line one\n"
	  " continued\n"
	  "Content-Type: multipart/mixed;\n"
	  " boundary=\"==b==\"\n"
	  "\n"
	  "--==b==\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "one\n"
	  "--==b==\n"
	  "Content-Type: image/gif\n"
	  "Content-Transfer-Encoding: base64\n"
	  "Content-Disposition: attachment;\n"
	  " filename=\"x.gif\"\n"
	  "\n"
	  "R0lGOD==\n"
	  "--==b==--", false,
	  "(NIL \"line one continued\" ((NIL NIL \"x\" \"y\")) "
	  "((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL "
	  "NIL)",
	  "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 "
	  "0 "
	  "NIL NIL NIL NIL)(\"image\" \"gif\" NIL NIL NIL \"base64\" 8 NIL "
	  "(\"attachment\" (\"filename\" \"x.gif\")) NIL NIL) \"mixed\" "
	  "(\"boundary\" \"==b==\") NIL NIL NIL)", NULL },
	{ "lfonly",
	  "From: x@y\n"
	  "Content-Type: multipart/alternative; boundary=lf\n"
	  "\n"
	  "--lf\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "lf only\n"
	  "--lf--\n", true,
	  "(NIL NIL ((NIL NIL \"x\" \"y\")) ((NIL NIL \"x\" \"y\")) "
	  "((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 "
	  "0 "
	  "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"lf\") NIL NIL NIL)",
	  NULL },
	/* a header cut short by a boundary: the CRLF is the boundary's */
	{ "cutheader",
	  "Content-Type: multipart/mixed; boundary=c\n"
	  "\n"
	  "--c\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "From: in@x\n"
	  "--c--\n", false,
	  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "((\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 10 (NIL NIL "
	  "((NIL NIL \"in\" \"x\")) ((NIL NIL \"in\" \"x\")) "
	  "((NIL NIL \"in\" \"x\")) NIL NIL NIL NIL NIL) (\"TEXT\" "
	  "\"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL "
	  "NIL NIL) 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"c\") NIL "
	  "NIL NIL)", NULL },
	/* blank line right before the boundary: the header keeps it */
	{ "emptybody",
	  "Content-Type: multipart/mixed; boundary=e\n"
	  "\n"
	  "--e\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "From: a@b\n"
	  "\n"
	  "--e--\n", false,
	  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "((\"message\" \"rfc822\" NIL NIL NIL \"7BIT\" 13 (NIL NIL "
	  "((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
	  "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL) (\"TEXT\" "
	  "\"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL "
	  "NIL NIL) 2 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"e\") NIL "
	  "NIL NIL)", NULL },
	{ "empty", "", false,
	  "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 "
	  "NIL NIL NIL NIL)", NULL },
};

/* The case's message as stored: CRLF unless lf_only.  Caller frees. */
static char *
mime_test_msg(const struct mime_case *c, size_t *len_r)
{
	struct buf b;

	buf_init(&b, 0);
	buf_add(&b, "", 0);
	for (const char *s = c->msg; *s != '\0'; s++) {
		if (*s == '\n' && !c->lf_only)
			buf_addc(&b, '\r');
		buf_addc(&b, *s);
	}
	*len_r = b.len;
	return b.data;
}

/* mode 0: whole, 1: byte by byte, else: pseudo-random chunks seeded by
 * mode. */
static struct mime_message *
mime_test_parse(const char *msg, size_t len, unsigned mode)
{
	struct mime_parser *p = mime_parser_new();
	unsigned seed = mode;
	size_t pos = 0;

	while (pos < len) {
		size_t n = mode == 0 ? len : mode == 1 ? 1 :
		    1 + (size_t)(rand_r(&seed) % 40);

		n = n < len - pos ? n : len - pos;
		mime_parser_feed(p, msg + pos, n);
		pos += n;
	}
	if (mode == 1)
		mime_parser_feed(p, msg, 0);
	return mime_parser_finish(&p);
}

/* All outputs of a message, concatenated, to compare feeding modes. */
static void
mime_test_dump(const struct mime_message *m, struct buf *out)
{
	static const char *const sections[] = { "", "1", "2", "1.1", "1.2",
	    "2.1", "2.2", "HEADER", "TEXT", "1.MIME", "2.MIME", "2.HEADER",
	    "2.TEXT", "2.1.MIME", "1.2.MIME", "3", "3.TEXT" };

	mime_envelope(m, out);
	buf_addc(out, '\n');
	mime_bodystructure(m, true, out);
	buf_addc(out, '\n');
	mime_bodystructure(m, false, out);
	buf_addc(out, '\n');
	mime_tree_serialize(m, out);
	for (size_t i = 0; i < MF_ARRAY_LEN(sections); i++) {
		uint64_t start = 0, len = 0;
		int r = mime_section_range(m, sections[i], &start, &len, NULL);

		buf_printf(out, "\n%s %d %llu %llu", sections[i], r,
		    (unsigned long long)start, (unsigned long long)len);
	}
}

static void
test_cases(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(mime_cases); i++) {
		const struct mime_case *c = &mime_cases[i];
		struct buf env, bs, whole, other;
		struct mime_message *m;
		size_t len;
		char *msg = mime_test_msg(c, &len);

		buf_init(&env, 0);
		buf_init(&bs, 0);
		buf_init(&whole, 0);
		buf_init(&other, 0);
		m = mime_test_parse(msg, len, 0);
		TEST_INT(mime_message_size(m), len);
		TEST_CHECK(strcmp(mime_envelope(m, &env), c->envelope) == 0,
		    "%s envelope\n got %s\nwant %s", c->name, env.data,
		    c->envelope);
		TEST_CHECK(strcmp(mime_bodystructure(m, true, &bs),
		    c->bodystructure) == 0,
		    "%s bodystructure\n got %s\nwant %s", c->name, bs.data,
		    c->bodystructure);
		if (c->body != NULL) {
			buf_reset(&bs);
			TEST_STR(mime_bodystructure(m, false, &bs), c->body);
		}
		mime_test_dump(m, &whole);
		mime_message_free(&m);
		for (unsigned mode = 1; mode < 8; mode++) {
			buf_reset(&other);
			m = mime_test_parse(msg, len, mode);
			mime_test_dump(m, &other);
			mime_message_free(&m);
			TEST_CHECK(other.len == whole.len && memcmp(other.data,
			    whole.data, whole.len) == 0, "%s mode %u differs",
			    c->name, mode);
		}
		buf_free(&env);
		buf_free(&bs);
		buf_free(&whole);
		buf_free(&other);
		free(msg);
	}
}

static const struct mime_case *
mime_case_find(const char *name)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(mime_cases); i++) {
		if (strcmp(mime_cases[i].name, name) == 0)
			return &mime_cases[i];
	}
	abort();
}

struct section_case {
	const char *msg;	/* a mime_cases name */
	const char *section;
	int ret;
	const char *bytes;	/* with "\n" for the stored CRLF */
};

static const struct section_case section_cases[] = {
	{ "plain", "1", 1, "Hi Bob,\nbye\n" },
	{ "plain", "TEXT", 1, "Hi Bob,\nbye\n" },
	{ "plain", "1.MIME", 1, NULL },	/* the message header */
	{ "plain", "2", 0, NULL },
	{ "plain", "1.1", 0, NULL },
	{ "plain", "1.HEADER", 0, NULL },
	{ "alternative", "1", 1, "--inner\nContent-Type: text/plain; "
	  "charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "Hello =C3=A9\n--inner\nContent-Type: text/html; "
	  "charset=\"utf-8\"\n\n<p>Hello</p>\n--inner--" },
	{ "alternative", "1.1", 1, "Hello =C3=A9" },
	{ "alternative", "1.2", 1, "<p>Hello</p>" },
	{ "alternative", "1.2.MIME", 1,
	  "Content-Type: text/html; charset=\"utf-8\"\n\n" },
	{ "alternative", "2", 1, "JVBERi0xLjQK" },
	{ "alternative", "3", 0, NULL },
	{ "alternative", "1.3", 0, NULL },
	{ "alternative", "2.HEADER", 0, NULL },
	{ "nested", "1", 1, "See attached." },
	{ "nested", "2.HEADER", 1, "From: Inner <inner@example.net>\n"
	  "To: <@route1,@route2:x@example.com>\nSubject: inner\n"
	  "Content-Type: multipart/alternative; boundary=b2\n\n" },
	{ "nested", "2.TEXT", 1, "--b2\n\nplain body\n--b2\n"
	  "Content-Type: text/html\n\n<b>html</b>\n--b2--\n" },
	{ "nested", "2.1", 1, "plain body" },
	{ "nested", "2.1.MIME", 1, "\n" },
	{ "nested", "2.2", 1, "<b>html</b>" },
	{ "nested", "2.MIME", 1, "Content-Type: message/rfc822\n\n" },
	{ "nested", "2.2.HEADER", 0, NULL },
	{ "rfc822top", "1", 1, "From: inner@y\nSubject: in\n\ninner body\n" },
	{ "rfc822top", "1.1", 1, "inner body\n" },
	{ "rfc822top", "1.HEADER", 1, "From: inner@y\nSubject: in\n\n" },
	{ "rfc822top", "1.TEXT", 1, "inner body\n" },
	{ "digest", "1.1", 1, "body one" },
	{ "malformed", "TEXT", 1, "this line has no colon\n--q r\n--q r\n"
	  "Content-Type: text/plain\ntext part\n--q r\n" },
	{ "malformed", "1", 1, "" },
	{ "malformed", "2", 1, "text part" },
	{ "malformed", "2.MIME", 1, "Content-Type: text/plain\n" },
	{ "nobound", "1", 0, NULL },
	{ "cutheader", "1.HEADER", 1, "From: in@x" },
	{ "cutheader", "1.TEXT", 1, "" },
	{ "emptybody", "1", 1, "From: a@b\n\n" },
	{ "emptybody", "1.HEADER", 1, "From: a@b\n\n" },
	{ "emptybody", "1.TEXT", 1, "" },
	/* syntax */
	{ "plain", "0", -1, NULL },
	{ "plain", "01", -1, NULL },
	{ "plain", "1.", -1, NULL },
	{ "plain", ".1", -1, NULL },
	{ "plain", "MIME", -1, NULL },
	{ "plain", "1..2", -1, NULL },
	{ "plain", "HEADER.FIELDS.NOTX", -1, NULL },
	{ "plain", "header.fields", 1, NULL },
	{ "plain", "99999999999999999999999", 0, NULL },
};

static void
test_sections(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(section_cases); i++) {
		const struct section_case *sc = &section_cases[i];
		const struct mime_case *c = mime_case_find(sc->msg);
		struct mime_case want = { .msg = sc->bytes };
		struct mime_message *m;
		uint64_t start = 0, len = 0;
		size_t mlen, wlen;
		char *msg = mime_test_msg(c, &mlen), *w;
		int r;

		m = mime_test_parse(msg, mlen, 0);
		r = mime_section_range(m, sc->section, &start, &len, NULL);
		TEST_CHECK(r == sc->ret, "%s [%s] = %d, want %d", sc->msg,
		    sc->section, r, sc->ret);
		if (r == 1 && sc->bytes != NULL) {
			w = mime_test_msg(&want, &wlen);
			TEST_CHECK(len == wlen && memcmp(msg + start, w,
			    wlen) == 0, "%s [%s] = \"%.*s\"", sc->msg,
			    sc->section, (int)len, msg + start);
			free(w);
		}
		mime_message_free(&m);
		free(msg);
	}
}

struct filter_case {
	const char *hdr;
	const char *names;	/* space separated */
	bool negate;
	const char *out;
};

static const struct filter_case filter_cases[] = {
	{ "From: a\r\nTo: b\r\n c\r\nSubject: s\r\n\r\n", "to SUBJECT", false,
	  "To: b\r\n c\r\nSubject: s\r\n\r\n" },
	{ "From: a\r\nTo: b\r\n c\r\nSubject: s\r\n\r\n", "to", true,
	  "From: a\r\nSubject: s\r\n\r\n" },
	{ "From: a\r\nTo: b\r\n", "from", false, "From: a\r\n" },
	{ "From : a\r\nFromX: b\r\n\r\n", "from", false, "From : a\r\n\r\n" },
	{ "From: a\nTo: b\n\n", "to", false, "To: b\n\n" },
	{ "From: a\r\n\r\n", "x", false, "\r\n" },
	{ " orphan\r\nTo: b\r\n\r\n", "to", true, " orphan\r\n\r\n" },
	{ "", "to", false, "" },
};

static void
test_filter(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(filter_cases); i++) {
		const struct filter_case *fc = &filter_cases[i];
		char copy[128], *save = NULL, *tok;
		const char *names[8];
		size_t n = 0;
		struct buf out;

		str_lcpy(copy, fc->names, sizeof(copy));
		for (tok = strtok_r(copy, " ", &save); tok != NULL && n < 8;
		    tok = strtok_r(NULL, " ", &save))
			names[n++] = tok;
		buf_init(&out, 0);
		buf_add(&out, "", 0);
		mime_header_filter(fc->hdr, strlen(fc->hdr), names, n,
		    fc->negate, &out);
		TEST_STR(out.data, fc->out);
		buf_free(&out);
	}
}

static size_t
mime_count(const char *s, const char *needle)
{
	size_t n = 0;

	for (s = strstr(s, needle); s != NULL; s = strstr(s + 1, needle))
		n++;
	return n;
}

static struct mime_message *
mime_test_parse_buf(const struct buf *b)
{
	return mime_test_parse(b->data, b->len, 0);
}

/* RFC 2046 nesting past MIME_DEPTH_MAX: the deepest is one empty part. */
static void
test_limit_depth(void)
{
	struct buf msg, out;
	struct mime_message *m;
	char sec[2 * (MIME_DEPTH_MAX + 2)];
	uint64_t start, len;
	size_t n = 0;

	buf_init(&msg, 0);
	buf_init(&out, 0);
	for (int i = 0; i < MIME_DEPTH_MAX + 8; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=b%d_"
		    "\r\n\r\n--b%d_\r\n", i, i);
	buf_adds(&msg, "\r\ndeep\r\n");
	m = mime_test_parse_buf(&msg);
	mime_bodystructure(m, true, &out);
	TEST_INT(mime_count(out.data, "\"mixed\""), MIME_DEPTH_MAX + 1);
	for (int i = 0; i < MIME_DEPTH_MAX; i++)
		n += (size_t)snprintf(sec + n, sizeof(sec) - n, "1.");
	sec[n - 1] = '\0';
	TEST_INT(mime_section_range(m, sec, &start, &len, NULL), 1);
	TEST_TRUE(len > 0 && start + len == msg.len);
	snprintf(sec + n - 1, sizeof(sec) - n + 1, ".1");
	TEST_INT(mime_section_range(m, sec, &start, &len, NULL), 0);
	mime_message_free(&m);
	/* message/rfc822 in message/rfc822 ... */
	buf_reset(&msg);
	buf_reset(&out);
	for (int i = 0; i < MIME_DEPTH_MAX + 8; i++)
		buf_adds(&msg, "Content-Type: message/rfc822\r\n\r\n");
	m = mime_test_parse_buf(&msg);
	mime_bodystructure(m, true, &out);
	TEST_INT(mime_count(out.data, "\"rfc822\""), MIME_DEPTH_MAX + 1);
	mime_message_free(&m);
	buf_free(&msg);
	buf_free(&out);
}

/* MIME_PARTS_MAX entities: later parts are opaque multipart content. */
static void
test_limit_parts(void)
{
	struct buf msg, out;
	struct mime_message *m;
	uint64_t start, len;
	char sec[16];

	buf_init(&msg, 0);
	buf_init(&out, 0);
	buf_adds(&msg, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < MIME_PARTS_MAX + 100; i++)
		buf_printf(&msg, "--p\r\n\r\npart %d\r\n", i + 1);
	buf_adds(&msg, "--p--\r\n");
	m = mime_test_parse_buf(&msg);
	mime_bodystructure(m, false, &out);
	TEST_INT(mime_count(out.data, "(\"TEXT\""), MIME_PARTS_MAX - 1);
	snprintf(sec, sizeof(sec), "%d", MIME_PARTS_MAX - 1);
	TEST_INT(mime_section_range(m, sec, &start, &len, NULL), 1);
	TEST_TRUE(len == 8 && memcmp(msg.data + start, "part 999", 8) == 0);
	snprintf(sec, sizeof(sec), "%d", MIME_PARTS_MAX);
	TEST_INT(mime_section_range(m, sec, &start, &len, NULL), 0);
	mime_message_free(&m);
	buf_free(&msg);
	buf_free(&out);
}

/* Header limits: field length, field count, boundary length. */
static void
test_limit_header(void)
{
	struct buf msg, out;
	struct mime_message *m;
	uint64_t start, len;

	buf_init(&msg, 0);
	buf_init(&out, 0);
	buf_adds(&msg, "Subject: ");
	for (int i = 0; i < MIME_FIELD_MAX; i++)
		buf_addc(&msg, 'x');
	buf_adds(&msg, "\r\nFrom: a@b\r\nTo: c@d\r\n");
	for (int i = 0; i < MIME_FIELD_MAX; i++)
		buf_adds(&msg, i == 0 ? "Cc: " : " e@f,\r\n");
	buf_adds(&msg, "\r\nbody\r\n");
	m = mime_test_parse_buf(&msg);
	TEST_STR(mime_envelope(m, &out), "(NIL NIL ((NIL NIL \"a\" \"b\")) "
	    "((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
	    "((NIL NIL \"c\" \"d\")) NIL NIL NIL NIL)");
	TEST_INT(mime_section_range(m, "TEXT", &start, &len, NULL), 1);
	TEST_INT(len, 6);
	mime_message_free(&m);

	buf_reset(&msg);
	buf_reset(&out);
	for (int i = 0; i < MIME_FIELDS_MAX; i++)
		buf_adds(&msg, "X-A: b\r\n");
	buf_adds(&msg, "From: late@x\r\n\r\n");
	m = mime_test_parse_buf(&msg);
	TEST_STR(mime_envelope(m, &out),
	    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	TEST_INT(mime_section_range(m, "HEADER", &start, &len, NULL), 1);
	TEST_INT(len, msg.len);
	mime_message_free(&m);

	for (int blen = MIME_BOUNDARY_MAX; blen <= MIME_BOUNDARY_MAX + 1;
	    blen++) {
		buf_reset(&msg);
		buf_reset(&out);
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary="
		    "%0*d\r\n\r\n--%0*d\r\n\r\nx\r\n--%0*d--\r\n", blen, 0,
		    blen, 0, blen, 0);
		m = mime_test_parse_buf(&msg);
		/* too long: not split, so part 1 is the whole body */
		TEST_INT(mime_section_range(m, "1", &start, &len, NULL), 1);
		TEST_INT(len, blen <= MIME_BOUNDARY_MAX ? 1 : 2 * blen + 15);
		mime_message_free(&m);
	}
	buf_free(&msg);
	buf_free(&out);
}

/* Kept header bytes per message are capped; the rest reads as absent. */
static void
test_limit_kept(void)
{
	struct buf msg, out;
	struct mime_message *m;
	int n = MIME_KEPT_MAX / (MIME_FIELD_MAX / 2) + 4;

	buf_init(&msg, 0);
	buf_init(&out, 0);
	buf_adds(&msg, "Content-Type: multipart/mixed; boundary=k\r\n\r\n");
	for (int i = 0; i < n; i++) {
		buf_adds(&msg, "--k\r\nContent-Description: ");
		for (int j = 0; j < MIME_FIELD_MAX / 2 - 64; j++)
			buf_addc(&msg, 'd');
		buf_adds(&msg, "\r\n\r\nx\r\n");
	}
	buf_adds(&msg, "--k--\r\n");
	m = mime_test_parse_buf(&msg);
	mime_bodystructure(m, false, &out);
	TEST_INT(mime_count(out.data, "dddd\""), MIME_KEPT_MAX /
	    (MIME_FIELD_MAX / 2));
	TEST_INT(mime_count(out.data, "NIL NIL \"7BIT\" 1 0)"), n -
	    MIME_KEPT_MAX / (MIME_FIELD_MAX / 2));
	mime_message_free(&m);
	buf_free(&msg);
	buf_free(&out);
}

/* Every truncation is refused; every flipped bit is refused or gives a
 * tree whose ranges stay inside the message. */
static void
test_tree_damage(struct buf *ser)
{
	struct mime_message *d;
	const char *err;
	uint64_t s, l;

	for (size_t cut = 0; cut < ser->len; cut++) {
		TEST_INT(mime_tree_deserialize(ser->data, cut, &d, &err), -1);
		TEST_TRUE(d == NULL);
	}
	for (size_t at = 0; at < ser->len; at++) {
		for (int bit = 0; bit < 8; bit++) {
			ser->data[at] ^= (char)(1 << bit);
			if (mime_tree_deserialize(ser->data, ser->len, &d,
			    &err) == 1) {
				if (mime_section_range(d, "2.1.TEXT", &s, &l,
				    NULL) == 1)
					TEST_TRUE(s + l <=
					    mime_message_size(d));
				mime_message_free(&d);
			}
			ser->data[at] ^= (char)(1 << bit);
		}
	}
}

/* Serialised trees: round trip, same ranges; any damage is refused or
 * at least harmless. */
static void
test_tree(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(mime_cases); i++) {
		struct mime_message *m, *d;
		struct buf ser, again;
		const char *err;
		size_t len;
		char *msg = mime_test_msg(&mime_cases[i], &len);

		buf_init(&ser, 0);
		buf_init(&again, 0);
		m = mime_test_parse(msg, len, 0);
		mime_tree_serialize(m, &ser);
		TEST_INT(mime_tree_deserialize(ser.data, ser.len, &d, &err), 1);
		mime_tree_serialize(d, &again);
		TEST_TRUE(again.len == ser.len &&
		    memcmp(again.data, ser.data, ser.len) == 0);
		TEST_INT(mime_message_size(d), len);
		for (const char *const *s = (const char *const []){ "1", "2",
		    "1.2", "2.1", "2.HEADER", "2.TEXT", "1.MIME", "TEXT",
		    "HEADER", NULL }; *s != NULL; s++) {
			uint64_t a1 = 0, l1 = 0, a2 = 0, l2 = 0;
			enum mime_cte c1 = 0, c2 = 0;

			TEST_INT(mime_section_range(m, *s, &a1, &l1, &c1),
			    mime_section_range(d, *s, &a2, &l2, &c2));
			TEST_TRUE(a1 == a2 && l1 == l2 && c1 == c2);
		}
		mime_message_free(&d);
		test_tree_damage(&ser);
		mime_message_free(&m);
		buf_free(&ser);
		buf_free(&again);
		free(msg);
	}
}

int
main(void)
{
	test_cases();
	test_sections();
	test_filter();
	test_limit_depth();
	test_limit_parts();
	test_limit_header();
	test_limit_kept();
	test_tree();
	return test_done("mime");
}
