/*
 * test_dkim.c - unit tests of the DKIM signer: relaxed header and body
 * canonicalization tables (RFC 6376 §3.4.5 among them) fed whole, byte by
 * byte and in odd chunks; body hashes against published values; which
 * header fields get signed; folding; both signatures checked with
 * OpenSSL's verify; key files, names and TXT records.
 * dkimpy verifies the same signatures in tests/test_dkim.py.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "core/test.h"
#include "dkim/dkim_private.h"

#define T_SHA256_EMPTY "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

/* ---- header canonicalization (RFC 6376 §3.4.2) ---- */

static const struct {
	const char *in, *want;	/* want NULL: not a header field */
} t_hdr[] = {
	/* RFC 6376 §3.4.5 */
	{ "A: X\r\n", "a:X\r\n" },
	{ "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n" },
	{ "Subject:   hello \t world  \r\n", "subject:hello world\r\n" },
	{ "To: a@example.org,\r\n b@example.org,\r\n\tc@example.org\r\n",
	  "to:a@example.org, b@example.org, c@example.org\r\n" },
	{ "X-Empty:\r\n", "x-empty:\r\n" },
	{ "X-Blank: \t \r\n \r\n", "x-blank:\r\n" },
	{ "NoCRLF:value", "nocrlf:value\r\n" },
	{ "X:a:b", "x:a:b\r\n" },
	{ "Subject: caf\xc3\xa9 \xff\r\n", "subject:caf\xc3\xa9 \xff\r\n" },
	{ "X-Cr: a\rb\r\n", "x-cr:a\rb\r\n" },
	{ "X-Lf: a\nb\r\n", "x-lf:a\nb\r\n" },
	{ "MESSAGE-ID:<x@y>\r\n", "message-id:<x@y>\r\n" },
	{ "no colon here\r\n", NULL },
	{ " Folded: x\r\n", NULL },
	{ "Na me: x\r\n", NULL },
	{ ": value\r\n", NULL },
	{ "", NULL },
	{ "X\x01Y: x\r\n", NULL },
};

static void
t_canon_header(void)
{
	struct buf out;

	buf_init(&out, 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(t_hdr); i++) {
		int n;

		buf_reset(&out);
		n = dkim_canon_header(t_hdr[i].in, strlen(t_hdr[i].in), &out);
		if (t_hdr[i].want == NULL) {
			TEST_INT(n, -1);
			TEST_INT(out.len, 0);
			continue;
		}
		TEST_TRUE(n > 0);
		TEST_STR(out.data, t_hdr[i].want);
		TEST_TRUE(n > 0 && out.data[n] == ':');
	}
	buf_free(&out);
}

/* ---- body canonicalization (RFC 6376 §3.4.4) ---- */

static const struct {
	const char *in, *want;
} t_body[] = {
	/* RFC 6376 §3.4.5 */
	{ " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },
	/* an empty body stays empty: no CRLF added (§3.4.4) */
	{ "", "" },
	{ "\r\n", "" },
	{ "\r\n\r\n\r\n", "" },
	{ "  \r\n\t\r\n", "" },
	{ "abc", "abc\r\n" },
	{ "abc  ", "abc \r\n" },
	{ "abc\r\n\r\n  ", "abc\r\n\r\n \r\n" },
	{ "abc\r\n\r\nd\r\n\r\n", "abc\r\n\r\nd\r\n" },
	{ "a  b\t\tc \r\n", "a b c\r\n" },
	{ "\r\n \r\nx\r\n", "\r\n\r\nx\r\n" },
	{ "x \r\n\r\n \r\n", "x\r\n" },
	{ "a\rb\r\n", "a\rb\r\n" },
	{ "a\nb \n\r\n", "a\nb \n\r\n" },
	{ "a\r", "a\r\r\n" },
	{ "a \r\r\n", "a \r\r\n" },
	{ "\r\r\n\r\n", "\r\r\n" },
	{ "\xff \t\xfe\r\n", "\xff \xfe\r\n" },
	{ "line\r\n.\r\n", "line\r\n.\r\n" },
};

static void
t_sink(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
}

/* Feeds in in pieces of step bytes (0: whole). */
static void
t_body_run(const char *in, size_t step, struct buf *out)
{
	struct dkim_body_canon *c = dkim_body_canon_new(t_sink, out);
	size_t len = strlen(in);

	if (step == 0)
		step = len;
	for (size_t at = 0; at < len; at += step)
		dkim_body_canon_feed(c, in + at, len - at < step ? len - at :
		    step);
	dkim_body_canon_finish(c);
	dkim_body_canon_free(&c);
	TEST_TRUE(c == NULL);
}

static void
t_canon_body(void)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7 };
	struct buf out;

	buf_init(&out, 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(t_body); i++) {
		for (size_t k = 0; k < MF_ARRAY_LEN(steps); k++) {
			buf_reset(&out);
			t_body_run(t_body[i].in, steps[k], &out);
			TEST_CHECK(out.len == strlen(t_body[i].want) &&
			    memcmp(out.data ? out.data : "", t_body[i].want,
			    out.len) == 0, "body row %zu step %zu", i,
			    steps[k]);
		}
	}
	/* many held-back empty lines, then text: all come out */
	buf_reset(&out);
	{
		struct dkim_body_canon *c = dkim_body_canon_new(t_sink, &out);
		for (int i = 0; i < 10000; i++)
			dkim_body_canon_feed(c, "\r\n", 2);
		dkim_body_canon_feed(c, "x", 1);
		dkim_body_canon_finish(c);
		dkim_body_canon_free(&c);
	}
	TEST_INT(out.len, 20003);
	buf_free(&out);
}

/* ---- signing ---- */

static struct dkim_key *t_ed, *t_rsa;

/* RFC 8463 Appendix A's message (after RFC 6376 Appendix A). */
static const char t_rfc8463_msg[] =
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

/* Signs msg fed in step-byte pieces (0: whole); returns finish's rc. */
static int
t_sign(const char *msg, size_t len, size_t step, struct dkim_key **keys,
    size_t nkeys, const char *const *headers, struct buf *out,
    const char **err)
{
	struct dkim_signer *s = dkim_signer_new("Example.ORG", "mail", keys,
	    nkeys, headers);
	int rc;

	if (step == 0)
		step = len > 0 ? len : 1;
	for (size_t at = 0; at < len; at += step)
		dkim_signer_feed(s, msg + at, len - at < step ? len - at :
		    step);
	*err = NULL;
	rc = dkim_signer_finish(s, 1700000000, out, err);
	dkim_signer_free(&s);
	return rc;
}

/* The value of tag name in one unfolded signature field, spaces gone. */
static void
t_tag_n(const char *field, size_t len, const char *name, struct buf *val)
{
	struct buf canon;
	const char *p;
	size_t nlen = strlen(name);

	buf_init(&canon, 0);
	buf_reset(val);
	xassert(dkim_canon_header(field, len, &canon) > 0);
	for (p = strchr(canon.data, ':') + 1; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			for (p += nlen + 1; *p != ';' && *p != '\r'; p++)
				if (*p != ' ')
					buf_addc(val, *p);
			break;
		}
		p = strchr(p, ';');
	}
	buf_free(&canon);
}

static void
t_tag(const char *field, const char *name, struct buf *val)
{
	t_tag_n(field, strlen(field), name, val);
}

static void
t_sign_bh(void)
{
	struct buf out, val;
	const char *err;

	buf_init(&out, 0);
	buf_init(&val, 0);
	TEST_INT(t_sign(t_rfc8463_msg, strlen(t_rfc8463_msg), 0, &t_ed, 1,
	    NULL, &out, &err), 0);
	t_tag(out.data, "bh", &val);
	/* published in RFC 8463 Appendix A.3 for this body */
	TEST_STR(val.data, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
	t_tag(out.data, "h", &val);
	TEST_STR(val.data, "from:from:to:subject:date:message-id");
	t_tag(out.data, "d", &val);
	TEST_STR(val.data, "example.org");
	t_tag(out.data, "a", &val);
	TEST_STR(val.data, "ed25519-sha256");
	t_tag(out.data, "t", &val);
	TEST_STR(val.data, "1700000000");
	t_tag(out.data, "c", &val);
	TEST_STR(val.data, "relaxed/relaxed");
	t_tag(out.data, "s", &val);
	TEST_STR(val.data, "mail-ed25519");

	/* empty body, headers only, and trailing empty lines: SHA-256("") */
	static const char *const empties[] = {
		"From: a@example.org\r\n\r\n",
		"From: a@example.org\r\n",
		"From: a@example.org",
		"From: a@example.org\r\n\r\n\r\n \r\n\t\r\n",
	};
	for (size_t i = 0; i < MF_ARRAY_LEN(empties); i++) {
		buf_reset(&out);
		TEST_INT(t_sign(empties[i], strlen(empties[i]), 0, &t_ed, 1,
		    NULL, &out, &err), 0);
		t_tag(out.data, "bh", &val);
		TEST_STR(val.data, T_SHA256_EMPTY);
		t_tag(out.data, "h", &val);
		TEST_STR(val.data, "from:from");
	}
	buf_free(&out);
	buf_free(&val);
}

static const struct {
	const char *msg;
	const char *want_h;	/* NULL: refused with want_err */
	const char *want_err;
} t_select[] = {
	{ "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	  "From: a@example.org\r\nTo: b@example.net\r\nTo: c@example.net\r\n"
	  "X-Mailer: z\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
	  "Content-Type: text/plain\r\n\r\nbody\r\n",
	  "from:from:to:to:subject:mime-version:content-type", NULL },
	{ "fROM: a@example.org\r\nSUBJECT:\r\n x\r\n\r\n",
	  "from:from:subject", NULL },
	{ "From: a@example.org\r\nList-Unsubscribe: <https://x/u>\r\n"
	  "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	  "DKIM-Signature: v=1; old\r\nReturn-Path: <a@example.org>\r\n\r\n",
	  "from:from:list-unsubscribe:list-unsubscribe-post", NULL },
	/* junk lines are skipped, never signed */
	{ "junk line\r\nFrom: a@example.org\r\n\r\n", "from:from", NULL },
	{ "To: b@example.net\r\n\r\nFrom: in the body\r\n", NULL,
	  "no From header field" },
	{ "From: a@example.org\r\nFrom: b@example.org\r\n\r\n", NULL,
	  "more than one From header field" },
	{ "\r\nFrom: a@example.org\r\n", NULL, "no From header field" },
	{ "", NULL, "no From header field" },
};

static void
t_sign_select(void)
{
	static const char *const only_subject[] = { "Subject", "subject",
		NULL };
	struct buf out, val;
	const char *err;

	buf_init(&out, 0);
	buf_init(&val, 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(t_select); i++) {
		for (size_t step = 0; step < 3; step++) {
			int rc = t_sign(t_select[i].msg,
			    strlen(t_select[i].msg), step, &t_ed, 1, NULL,
			    &out, &err);
			if (t_select[i].want_h == NULL) {
				TEST_INT(rc, -1);
				TEST_STR(err, t_select[i].want_err);
				continue;
			}
			TEST_INT(rc, 0);
			t_tag(out.data, "h", &val);
			TEST_STR(val.data, t_select[i].want_h);
			buf_reset(&out);
		}
	}
	/* a custom list: From is added, duplicates dropped */
	TEST_INT(t_sign(t_select[0].msg, strlen(t_select[0].msg), 0, &t_ed, 1,
	    only_subject, &out, &err), 0);
	t_tag(out.data, "h", &val);
	TEST_STR(val.data, "from:from:subject");
	buf_free(&out);
	buf_free(&val);
}

static void
t_sign_limits(void)
{
	struct buf msg, out;
	const char *err;

	buf_init(&msg, 0);
	buf_init(&out, 0);
	/* an unsigned field past DKIM_FIELD_MAX is fine... */
	buf_adds(&msg, "From: a@example.org\r\nX-Long: ");
	for (size_t i = 0; i < DKIM_FIELD_MAX; i++)
		buf_addc(&msg, 'x');
	buf_adds(&msg, "\r\n\r\nbody\r\n");
	TEST_INT(t_sign(msg.data, msg.len, 0, &t_ed, 1, NULL, &out, &err), 0);
	/* ...a signed one is refused */
	buf_reset(&msg);
	buf_adds(&msg, "From: a@example.org\r\nSubject: ");
	for (size_t i = 0; i < DKIM_FIELD_MAX; i++)
		buf_adds(&msg, i % 70 == 69 ? "\r\n x" : "x");
	buf_adds(&msg, "\r\n\r\nbody\r\n");
	TEST_INT(t_sign(msg.data, msg.len, 0, &t_ed, 1, NULL, &out, &err), -1);
	TEST_STR(err, "header field to sign too long");
	/* too many fields to sign */
	buf_reset(&msg);
	buf_adds(&msg, "From: a@example.org\r\n");
	for (int i = 0; i < DKIM_SIGNED_MAX; i++)
		buf_printf(&msg, "To: u%d@example.net\r\n", i);
	buf_adds(&msg, "\r\nbody\r\n");
	TEST_INT(t_sign(msg.data, msg.len, 0, &t_ed, 1, NULL, &out, &err), -1);
	TEST_STR(err, "too many header fields to sign");
	/* one fewer fits: From + 62 To, plus the oversigned From */
	buf_reset(&msg);
	buf_adds(&msg, "From: a@example.org\r\n");
	for (int i = 0; i < DKIM_SIGNED_MAX - 2; i++)
		buf_printf(&msg, "To: u%d@example.net\r\n", i);
	TEST_INT(t_sign(msg.data, msg.len, 0, &t_ed, 1, NULL, &out, &err), 0);
	buf_free(&msg);
	buf_free(&out);
}

/* Every line of a field: CRLF-terminated, within DKIM_FOLD_WIDTH, the
 * continuation ones starting with TAB. */
static void
t_check_folding(const char *field, size_t len)
{
	size_t line = 0, start = 0;

	TEST_TRUE(len > 2 && field[len - 2] == '\r' && field[len - 1] == '\n');
	for (size_t i = 0; i < len; i++) {
		if (field[i] == '\n') {
			TEST_TRUE(i > 0 && field[i - 1] == '\r');
			TEST_TRUE(i - 1 - start <= DKIM_FOLD_WIDTH);
			TEST_TRUE(line == 0 || field[start] == '\t');
			start = i + 1;
			line++;
		} else {
			TEST_TRUE(field[i] != '\r' || field[i + 1] == '\n');
		}
	}
	TEST_TRUE(line >= 2);
}

/* Checks b= of one field the way a verifier does (RFC 6376 §3.7). */
static void
t_verify(const char *field, size_t len, const char *hdata,
    const struct dkim_key *key)
{
	struct buf data, val, nob;
	unsigned char sig[DKIM_SIG_MAX + 3], digest[32];
	const char *b;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	ssize_t sig_len;
	int ok;

	buf_init(&data, 0);
	buf_init(&val, 0);
	buf_init(&nob, 0);
	buf_add(&nob, field, len);
	/* cut the b= value: the last "b=" in the field */
	for (b = nob.data + nob.len - 1; b > nob.data; b--)
		if (b[0] == 'b' && b[1] == '=' && (b[-1] == ' ' ||
		    b[-1] == '\t'))
			break;
	nob.len = (size_t)(b - nob.data) + 2;
	buf_adds(&data, hdata);
	TEST_TRUE(dkim_canon_header(nob.data, nob.len, &data) > 0);
	data.len -= 2;
	t_tag_n(field, len, "b", &val);
	sig_len = base64_decode(val.data, val.len, sig);
	TEST_TRUE(sig_len > 0);
	if (key->alg == DKIM_ALG_RSA_SHA256) {
		TEST_INT(sig_len, DKIM_RSA_BITS / 8);
		ok = EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL,
		    key->pkey) == 1 && EVP_DigestVerify(m, sig,
		    (size_t)sig_len, (unsigned char *)data.data, data.len) == 1;
	} else {
		TEST_INT(sig_len, 64);
		ok = EVP_Digest(data.data, data.len, digest, NULL,
		    EVP_sha256(), NULL) == 1 && EVP_DigestVerifyInit(m, NULL,
		    NULL, NULL, key->pkey) == 1 && EVP_DigestVerify(m, sig,
		    (size_t)sig_len, digest, sizeof(digest)) == 1;
	}
	TEST_TRUE(ok);
	EVP_MD_CTX_free(m);
	buf_free(&data);
	buf_free(&val);
	buf_free(&nob);
}

static void
t_sign_verify(void)
{
	struct dkim_key *both[] = { t_rsa, t_ed };
	struct buf out, again;
	const char *err, *second;
	/* canonical From, To, Subject as the verifier rebuilds them */
	const char *hdata = "from:Joe SixPack <joe@football.example.com>\r\n"
	    "to:Suzie Q <suzie@shopping.example.net>\r\n"
	    "subject:Is dinner ready?\r\n"
	    "date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	    "message-id:<20030712040037.46341.5F8J@football.example.com>\r\n";

	buf_init(&out, 0);
	buf_init(&again, 0);
	TEST_INT(t_sign(t_rfc8463_msg, strlen(t_rfc8463_msg), 0, both, 2,
	    NULL, &out, &err), 0);
	{
		static const char head[] = "DKIM-Signature: v=1; "
		    "a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=mail;"
		    "\r\n\tt=1700000000; h=from:from:to:subject:date:"
		    "message-id;\r\n\tbh=";
		TEST_TRUE(strncmp(out.data, head, strlen(head)) == 0);
	}
	second = strstr(out.data, "\r\nDKIM-Signature:");
	TEST_TRUE(second != NULL);
	if (second == NULL)
		goto out;
	second += 2;
	t_check_folding(out.data, (size_t)(second - out.data));
	t_check_folding(second, out.len - (size_t)(second - out.data));
	t_verify(out.data, (size_t)(second - out.data), hdata, t_rsa);
	t_verify(second, out.len - (size_t)(second - out.data), hdata, t_ed);
	/* ed25519 is deterministic: byte-by-byte feeding, same field */
	TEST_INT(t_sign(t_rfc8463_msg, strlen(t_rfc8463_msg), 1, &t_ed, 1,
	    NULL, &again, &err), 0);
	TEST_STR(again.data, second);
out:
	buf_free(&out);
	buf_free(&again);
}

/* ---- names, keys, records ---- */

static void
t_names(void)
{
	static const struct { const char *name; bool ok; } rows[] = {
		{ "example.org", true }, { "mail", true },
		{ "s2024-01.mail", true }, { "EXAMPLE.org", true },
		{ "a", true }, { "", false }, { ".", false },
		{ "a..b", false }, { ".a", false }, { "a.", false },
		{ "-a", false }, { "a-", false }, { "a_b", false },
		{ "a/b", false }, { "a;b", false }, { "a\r\nb", false },
		{ "a b", false }, { "x\xc3\xa9", false },
		{ "0123456789012345678901234567890123456789012345678901234"
		  "567890123", false },		/* a 64-byte label */
	};

	char sel[DKIM_NAME_MAX + 1], long_label[64];

	for (size_t i = 0; i < MF_ARRAY_LEN(rows); i++)
		TEST_CHECK(dkim_valid_name(rows[i].name) == rows[i].ok,
		    "dkim_valid_name(\"%s\")", rows[i].name);
	TEST_TRUE(dkim_selector("mail", DKIM_ALG_RSA_SHA256, sel));
	TEST_STR(sel, "mail");
	TEST_TRUE(dkim_selector("s1.mail", DKIM_ALG_ED25519_SHA256, sel));
	TEST_STR(sel, "s1.mail-ed25519");
	/* a 56-byte label fits alone, not with the suffix */
	memset(long_label, 'a', 56);
	long_label[56] = '\0';
	TEST_TRUE(dkim_selector(long_label, DKIM_ALG_RSA_SHA256, sel));
	TEST_TRUE(!dkim_selector(long_label, DKIM_ALG_ED25519_SHA256, sel));
	long_label[55] = '\0';
	TEST_TRUE(dkim_selector(long_label, DKIM_ALG_ED25519_SHA256, sel));
}

static void
t_records(void)
{
	struct buf txt, line;
	unsigned char raw[1024];
	const unsigned char *p = raw;
	const char *at;
	ssize_t n;
	EVP_PKEY *pub;

	buf_init(&txt, 0);
	buf_init(&line, 0);
	dkim_key_txt(t_ed, &txt);
	TEST_TRUE(strncmp(txt.data, "v=DKIM1; k=ed25519; p=", 22) == 0);
	n = base64_decode(txt.data + 22, txt.len - 22, raw);
	TEST_INT(n, 32);
	buf_reset(&txt);
	dkim_key_txt(t_rsa, &txt);
	TEST_TRUE(strncmp(txt.data, "v=DKIM1; k=rsa; p=", 18) == 0);
	n = base64_decode(txt.data + 18, txt.len - 18, raw);
	TEST_TRUE(n > 0);
	pub = d2i_PUBKEY(NULL, &p, n);
	TEST_TRUE(pub != NULL && EVP_PKEY_get_bits(pub) == DKIM_RSA_BITS);
	EVP_PKEY_free(pub);
	dkim_txt_line("mail", "example.org", txt.data, &line);
	TEST_TRUE(strncmp(line.data, "mail._domainkey.example.org. IN TXT "
	    "\"v=DKIM1; k=rsa; p=", 55) == 0);
	/* 410 bytes: two character-strings of 255 and the rest */
	at = strchr(line.data, '"');
	TEST_TRUE(at != NULL && at[256] == '"' && at[257] == ' ' &&
	    at[258] == '"');
	TEST_TRUE(line.data[line.len - 1] == '\n' &&
	    line.data[line.len - 2] == '"');
	buf_reset(&line);
	dkim_txt_line("s", "d.example", "", &line);
	TEST_STR(line.data, "s._domainkey.d.example. IN TXT \"\"\n");
	buf_free(&txt);
	buf_free(&line);
}

static void t_key_files_bad(const char *dir, const char *path);

static void
t_key_files(void)
{
	char dir[] = "/tmp/test_dkim.XXXXXX", *path, *sub;
	struct dkim_key *k = NULL, *keys[DKIM_ALG_COUNT];
	struct stat st;
	const char *err = NULL;
	char *bad = NULL;
	size_t n;

	TEST_TRUE(mkdtemp(dir) != NULL);
	path = dkim_key_path(dir, "Example.ORG", "mail",
	    DKIM_ALG_ED25519_SHA256);
	sub = xasprintf("%s/example.org", dir);
	TEST_TRUE(strcmp(path + strlen(dir), "/example.org/mail.ed25519.key")
	    == 0);
	TEST_INT(dkim_keys_load(dir, "example.org", "mail", keys, &n, &bad,
	    &err), 0);
	TEST_INT(mkdir(sub, 0700), 0);
	TEST_INT(dkim_key_save(t_ed, path, (uid_t)-1, (gid_t)-1, false,
	    &err), 0);
	TEST_INT(stat(path, &st), 0);
	TEST_INT(st.st_mode & 07777, 0600);
	TEST_INT(dkim_key_save(t_ed, path, (uid_t)-1, (gid_t)-1, false,
	    &err), -1);
	TEST_STR(err, "exists");
	TEST_INT(dkim_key_save(t_ed, path, (uid_t)-1, (gid_t)-1, true,
	    &err), 0);
	TEST_INT(dkim_key_load(path, &k, &err), 0);
	TEST_TRUE(k != NULL && dkim_key_alg(k) == DKIM_ALG_ED25519_SHA256 &&
	    EVP_PKEY_eq(k->pkey, t_ed->pkey) == 1);
	dkim_key_free(&k);
	TEST_TRUE(k == NULL);
	TEST_INT(dkim_keys_load(dir, "EXAMPLE.org", "mail", keys, &n, &bad,
	    &err), 1);
	TEST_INT(n, 1);
	TEST_TRUE(n == 1 && dkim_key_alg(keys[0]) == DKIM_ALG_ED25519_SHA256);
	while (n > 0)
		dkim_key_free(&keys[--n]);
	t_key_files_bad(dir, path);
	rmdir(sub);
	rmdir(dir);
	free(sub);
	free(path);
}

/* A world-readable key, garbage, and no file at all are refused. */
static void
t_key_files_bad(const char *dir, const char *path)
{
	struct dkim_key *k = NULL, *keys[DKIM_ALG_COUNT];
	const char *err = NULL;
	char *bad = NULL;
	size_t n;
	int fd;

	TEST_INT(chmod(path, 0644), 0);
	TEST_INT(dkim_key_load(path, &k, &err), -1);
	TEST_INT(dkim_keys_load(dir, "example.org", "mail", keys, &n, &bad,
	    &err), -1);
	TEST_TRUE(bad != NULL && strcmp(bad, path) == 0);
	x_free(&bad);
	/* not a key */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	TEST_TRUE(fd >= 0 && write(fd, "garbage\n", 8) == 8);
	close(fd);
	TEST_INT(dkim_key_load(path, &k, &err), -1);
	TEST_STR(err, "not a PEM private key without passphrase");
	unlink(path);
	TEST_INT(dkim_key_load(path, &k, &err), -1);
	TEST_STR(err, "no such file");
}

int
main(void)
{
	const char *err = NULL;

	log_init("test_dkim", false, LOG_LVL_WARN);
	xassert(dkim_key_generate(DKIM_ALG_ED25519_SHA256, &t_ed, &err) == 0);
	xassert(dkim_key_generate(DKIM_ALG_RSA_SHA256, &t_rsa, &err) == 0);
	TEST_STR(dkim_alg_name(dkim_key_alg(t_rsa)), "rsa-sha256");
	TEST_STR(dkim_alg_name(dkim_key_alg(t_ed)), "ed25519-sha256");
	t_canon_header();
	t_canon_body();
	t_sign_bh();
	t_sign_select();
	t_sign_limits();
	t_sign_verify();
	t_names();
	t_records();
	t_key_files();
	dkim_key_free(&t_ed);
	dkim_key_free(&t_rsa);
	return test_done("dkim");
}
