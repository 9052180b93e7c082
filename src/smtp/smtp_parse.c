/*
 * smtp_parse.c - pure parsers of SMTP command lines: the verb table, the
 * MAIL/RCPT path grammar of RFC 5321 §4.1.2 (with the UTF-8 extensions of
 * RFC 6531 §3.3), the ESMTP parameter tables, and BDAT arguments.  Every
 * scan is bounded by the NUL of the line and by the limits of
 * smtp_parse.h; nothing is copied before its length was checked.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_parse.h"

/* Longest text inet_pton() may see: INET6_ADDRSTRLEN - 1. */
#define SMTP_ADDR_TEXT_MAX 45
#define SMTP_IPV6_TAG "IPv6:"

static const char smtp_reply_mail_syntax[] =
	"501 5.1.7 Bad sender address syntax";
static const char smtp_reply_rcpt_syntax[] =
	"501 5.1.3 Bad recipient address syntax";
static const char smtp_reply_mail_long[] = "501 5.1.7 Path too long";
static const char smtp_reply_rcpt_long[] = "501 5.1.3 Path too long";
static const char smtp_reply_8bit[] =
	"553 5.6.7 Non-ASCII address requires SMTPUTF8";
static const char smtp_reply_param_syntax[] =
	"501 5.5.4 Syntax error in parameters";
static const char smtp_reply_param_unknown[] =
	"555 5.5.4 Unsupported parameter";
static const char smtp_reply_param_dup[] = "501 5.5.4 Duplicate parameter";
static const char smtp_reply_size[] = "501 5.5.4 Bad SIZE value";
static const char smtp_reply_body[] = "501 5.5.4 Bad BODY value";

/* ---- commands (RFC 5321 §4.1.1) ---- */

struct smtp_verb_row {
	const char *name;
	enum smtp_verb verb;
	const char *sep;	/* required after the name: " FROM:" */
};

static const struct smtp_verb_row smtp_verb_rows[] = {
	{ "HELO", SMTP_VERB_HELO, NULL },
	{ "EHLO", SMTP_VERB_EHLO, NULL },
	{ "MAIL", SMTP_VERB_MAIL, " FROM:" },
	{ "RCPT", SMTP_VERB_RCPT, " TO:" },
	{ "DATA", SMTP_VERB_DATA, NULL },
	{ "BDAT", SMTP_VERB_BDAT, NULL },
	{ "RSET", SMTP_VERB_RSET, NULL },
	{ "NOOP", SMTP_VERB_NOOP, NULL },
	{ "QUIT", SMTP_VERB_QUIT, NULL },
	{ "VRFY", SMTP_VERB_VRFY, NULL },
	{ "EXPN", SMTP_VERB_EXPN, NULL },
	{ "HELP", SMTP_VERB_HELP, NULL },
	{ "STARTTLS", SMTP_VERB_STARTTLS, NULL },
	{ "AUTH", SMTP_VERB_AUTH, NULL },
};

static const struct smtp_verb_row *
smtp_verb_find(const char *word, size_t len)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(smtp_verb_rows); i++) {
		const struct smtp_verb_row *row = &smtp_verb_rows[i];

		if (strlen(row->name) == len &&
		    strncasecmp(word, row->name, len) == 0)
			return row;
	}
	return NULL;
}

int
smtp_parse_command(const char *line, size_t len, enum smtp_verb *verb_r,
		   const char **args_r)
{
	const struct smtp_verb_row *row;
	size_t word;

	*verb_r = SMTP_VERB_UNKNOWN;
	*args_r = "";
	/* RFC 5321 §4.1: no NUL; control characters only as CRLF. */
	if (memchr(line, '\0', len) != NULL || line[len] != '\0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	word = strcspn(line, " ");
	row = smtp_verb_find(line, word);
	if (row == NULL || row->sep == NULL) {
		if (row != NULL)
			*verb_r = row->verb;
		*args_r = line[word] == ' ' ? line + word + 1 : line + word;
		return 0;
	}
	*verb_r = row->verb;
	/* RFC 5321 §4.1.1.2-3: "MAIL FROM:" and "RCPT TO:" are one token. */
	if (!str_case_prefix(line + word, row->sep))
		return -1;
	*args_r = line + word + strlen(row->sep);
	/* XXX: RFC 5321 has no space here; Postfix and clients disagree. */
	if (**args_r == ' ')
		(*args_r)++;
	return 0;
}

/* ---- character classes ---- */

static bool
smtp_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* RFC 5322 §3.2.3 atext. */
static bool
smtp_is_atext(unsigned char c)
{
	return smtp_is_alnum(c) || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the valid UTF-8 sequence of a non-ASCII character at p (RFC
 * 3629 §4, which RFC 6531 §3.3 UTF8-non-ascii refers to), or 0.  Reading
 * stops at a NUL, so this never passes the end of the line.
 */
static size_t
smtp_utf8_len(const unsigned char *p)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;	/* overlong */
	else if (c == 0xed)
		hi = 0x9f;	/* surrogates */
	else if (c == 0xf0)
		lo = 0x90;	/* overlong */
	else if (c == 0xf4)
		hi = 0x8f;	/* past U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Length of one character at p of the class "ascii" accepts or, when utf8,
 * a valid non-ASCII UTF-8 sequence; 0 when neither.
 */
static size_t
smtp_char_len(const char *p, bool (*ascii)(unsigned char), bool utf8)
{
	unsigned char c = (unsigned char)*p;

	if (c < 0x80)
		return ascii(c) ? 1 : 0;
	return utf8 ? smtp_utf8_len((const unsigned char *)p) : 0;
}

/* ---- path grammar (RFC 5321 §4.1.2) ---- */

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str],
 * or a U-label with SMTPUTF8 (RFC 6531 §3.3).  Returns the length taken
 * from p (at most SMTP_DOMAIN_MAX) or -1.
 */
static int
smtp_domain_len(const char *p, bool utf8)
{
	size_t i = 0, label = 0;
	bool hyphen = false;

	for (;;) {
		size_t n = smtp_char_len(p + i, smtp_is_alnum, utf8);

		if (n == 0 && p[i] == '-' && label > 0) {
			n = 1;
			hyphen = true;
		} else if (n > 0) {
			hyphen = false;
		} else if (label == 0 || hyphen) {
			return -1;
		} else if (p[i] != '.') {
			break;
		} else {
			label = 0;
			i++;
			continue;
		}
		label += n;
		i += n;
		if (label > SMTP_LABEL_MAX || i > SMTP_DOMAIN_MAX)
			return -1;
	}
	return (int)i;
}

/*
 * address-literal = "[" (IPv4-address-literal / IPv6-address-literal) "]"
 * (RFC 5321 §4.1.3); General-address-literal has no registered tag, so it
 * is refused.  Returns the length taken from p or -1.
 */
static int
smtp_literal_len(const char *p)
{
	const char *start = p, *end = strchr(p, ']');
	char text[SMTP_ADDR_TEXT_MAX + 1];
	uint8_t bin[16];
	size_t tag = strlen(SMTP_IPV6_TAG), len;
	int family = AF_INET;

	if (p[0] != '[' || end == NULL)
		return -1;
	p++;
	len = (size_t)(end - p);
	if (len > tag && strncasecmp(p, SMTP_IPV6_TAG, tag) == 0) {
		family = AF_INET6;
		p += tag;
		len -= tag;
	}
	if (len > SMTP_ADDR_TEXT_MAX)
		return -1;
	memcpy(text, p, len);
	text[len] = '\0';
	if (inet_pton(family, text, bin) != 1)
		return -1;
	return (int)(end + 1 - start);
}

/* qtextSMTP (RFC 5321 §4.1.2): printable ASCII but '"' and '\'. */
static bool
smtp_is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/*
 * Local-part = Dot-string / Quoted-string.  Returns the length taken from
 * p (at most SMTP_LOCAL_MAX, quotes included) or -1.
 */
static int
smtp_local_len(const char *p, bool utf8)
{
	size_t i = 0, n;

	if (p[0] == '"') {
		for (i = 1; p[i] != '"'; i += n) {
			if (p[i] == '\\' && p[i + 1] >= 32 && p[i + 1] <= 126)
				n = 2;
			else
				n = smtp_char_len(p + i, smtp_is_qtext, utf8);
			if (n == 0 || i + n > SMTP_LOCAL_MAX)
				return -1;
		}
		i++;
	} else {
		for (;;) {
			size_t atom = 0;

			while ((n = smtp_char_len(p + i, smtp_is_atext,
			    utf8)) > 0) {
				atom += n;
				i += n;
			}
			if (atom == 0)
				return -1;
			if (p[i] != '.')
				break;
			i++;
		}
	}
	return i <= SMTP_LOCAL_MAX ? (int)i : -1;
}

/*
 * A-d-l = At-domain *( "," At-domain ), then ":" (RFC 5321 §4.1.2).
 * Returns the length taken from p, -1 on bad syntax, or a length over
 * SMTP_PATH_MAX as soon as the route alone is too long.
 */
static int
smtp_route_len(const char *p, bool utf8)
{
	size_t i = 0;

	for (;;) {
		int n;

		if (p[i] != '@' || (n = smtp_domain_len(p + i + 1, utf8)) < 0)
			return -1;
		i += 1 + (size_t)n;
		if (i > SMTP_PATH_MAX)
			return (int)i;
		if (p[i] == ':')
			return (int)i + 1;
		if (p[i] != ',')
			return -1;
		i++;
	}
}

enum smtp_path_res {
	SMTP_PATH_OK,
	SMTP_PATH_BAD,
	SMTP_PATH_LONG,
};

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">" at the start of p, "<>" included
 * (RFC 5321 §4.1.2).  Copies the Mailbox, source route stripped and
 * domain lower-cased, to out ("" for "<>") and sets *len_r to the length
 * taken from p, brackets included (RFC 5321 §4.5.3.1.3).
 */
static enum smtp_path_res
smtp_path(const char *p, bool utf8, char out[SMTP_PATH_MAX + 1],
	  size_t *len_r)
{
	size_t i = 1, total;
	int n, local, domain;
	const char *d;

	if (p[0] != '<')
		return SMTP_PATH_BAD;
	if (p[1] == '@') {
		if ((n = smtp_route_len(p + 1, utf8)) < 0)
			return SMTP_PATH_BAD;
		if (n > SMTP_PATH_MAX)
			return SMTP_PATH_LONG;
		i += (size_t)n;
	} else if (p[1] == '>') {
		out[0] = '\0';
		*len_r = 2;
		return SMTP_PATH_OK;
	}
	if ((local = smtp_local_len(p + i, utf8)) < 0 || p[i + local] != '@')
		return SMTP_PATH_BAD;
	d = p + i + local + 1;
	domain = d[0] == '[' ? smtp_literal_len(d) : smtp_domain_len(d, utf8);
	if (domain < 0 || d[domain] != '>')
		return SMTP_PATH_BAD;
	total = (size_t)(d - p) + (size_t)domain + 1;
	if (total > SMTP_PATH_MAX)
		return SMTP_PATH_LONG;
	/* Fits: the Mailbox is shorter than the path. */
	memcpy(out, p + i, (size_t)local + 1 + (size_t)domain);
	out[local + 1 + domain] = '\0';
	str_lower(out + local + 1);
	*len_r = total;
	return SMTP_PATH_OK;
}

static bool
smtp_has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* ---- ESMTP parameters (RFC 5321 §4.1.2 Mail-parameters) ---- */

struct smtp_param_row {
	const char *keyword;
	/* value is NULL when the parameter has no "="; ctx is the args. */
	int (*fn)(const char *value, size_t len, void *ctx,
		  const char **reply_r);
};

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
smtp_param_keyword_ok(const char *p, size_t len)
{
	if (len == 0 || !smtp_is_alnum((unsigned char)p[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!smtp_is_alnum((unsigned char)p[i]) && p[i] != '-')
			return false;
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126) */
static bool
smtp_param_value_ok(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 33 || p[i] > 126 || p[i] == '=')
			return false;
	return true;
}

/* RFC 1870 §3: SIZE=1*20DIGIT; past UINT64_MAX means "too big". */
static int
smtp_param_size(const char *value, size_t len, void *ctx,
		const char **reply_r)
{
	struct smtp_mail_args *m = ctx;
	uint64_t v = 0;

	if (value == NULL || len > SMTP_SIZE_DIGITS_MAX) {
		*reply_r = smtp_reply_size;
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		uint64_t d = (uint64_t)(value[i] - '0');

		if (value[i] < '0' || value[i] > '9') {
			*reply_r = smtp_reply_size;
			return -1;
		}
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	m->has_size = true;
	m->size = v;
	return 0;
}

/* RFC 6152 §2, RFC 3030 §3: BODY=7BIT / 8BITMIME / BINARYMIME. */
static int
smtp_param_body(const char *value, size_t len, void *ctx,
		const char **reply_r)
{
	static const struct {
		const char *name;
		enum smtp_body body;
	} bodies[] = {
		{ "7BIT", SMTP_BODY_7BIT },
		{ "8BITMIME", SMTP_BODY_8BITMIME },
		{ "BINARYMIME", SMTP_BODY_BINARYMIME },
	};
	struct smtp_mail_args *m = ctx;

	for (size_t i = 0; value != NULL && i < MF_ARRAY_LEN(bodies); i++) {
		if (strlen(bodies[i].name) == len &&
		    strncasecmp(value, bodies[i].name, len) == 0) {
			m->body = bodies[i].body;
			return 0;
		}
	}
	*reply_r = smtp_reply_body;
	return -1;
}

/* RFC 6531 §3.4: SMTPUTF8 takes no value. */
static int
smtp_param_smtputf8(const char *value, size_t len, void *ctx,
		    const char **reply_r)
{
	struct smtp_mail_args *m = ctx;

	if (value != NULL) {
		*reply_r = smtp_reply_param_syntax;
		return -1;
	}
	m->smtputf8 = true;
	return 0;
}

/* AUTH= (RFC 4954 §5), RET=, ENVID=, NOTIFY=, ORCPT= (RFC 3461 §4). */
static int
smtp_param_ignore(const char *value, size_t len, void *ctx,
		  const char **reply_r)
{
	if (value == NULL) {
		*reply_r = smtp_reply_param_syntax;
		return -1;
	}
	return 0;
}

static const struct smtp_param_row smtp_mail_params[] = {
	{ "SIZE", smtp_param_size },
	{ "BODY", smtp_param_body },
	{ "SMTPUTF8", smtp_param_smtputf8 },
	{ "AUTH", smtp_param_ignore },
	{ "RET", smtp_param_ignore },
	{ "ENVID", smtp_param_ignore },
};

static const struct smtp_param_row smtp_rcpt_params[] = {
	{ "NOTIFY", smtp_param_ignore },
	{ "ORCPT", smtp_param_ignore },
};

static const struct smtp_param_row *
smtp_param_find(const struct smtp_param_row *rows, size_t nrows,
		const char *keyword, size_t len, size_t *idx_r)
{
	for (size_t i = 0; i < nrows; i++) {
		if (strlen(rows[i].keyword) == len &&
		    strncasecmp(keyword, rows[i].keyword, len) == 0) {
			*idx_r = i;
			return &rows[i];
		}
	}
	return NULL;
}

/*
 * Mail-parameters = esmtp-param *(SP esmtp-param), each keyword at most
 * once; runs of spaces and trailing spaces are tolerated.
 */
static int
smtp_params(const char *p, const struct smtp_param_row *rows, size_t nrows,
	    void *ctx, const char **reply_r)
{
	uint32_t seen = 0;

	xassert(nrows < 32);
	for (;;) {
		const struct smtp_param_row *row;
		size_t tok, kw, idx;
		const char *eq;

		while (*p == ' ')
			p++;
		if (*p == '\0')
			return 0;
		tok = strcspn(p, " ");
		eq = memchr(p, '=', tok);
		kw = eq != NULL ? (size_t)(eq - p) : tok;
		if (!smtp_param_keyword_ok(p, kw) || (eq != NULL &&
		    !smtp_param_value_ok(eq + 1, tok - kw - 1))) {
			*reply_r = smtp_reply_param_syntax;
			return -1;
		}
		if ((row = smtp_param_find(rows, nrows, p, kw, &idx)) == NULL) {
			*reply_r = smtp_reply_param_unknown;
			return -1;
		}
		if ((seen & (1u << idx)) != 0) {
			*reply_r = smtp_reply_param_dup;
			return -1;
		}
		seen |= 1u << idx;
		if (row->fn(eq != NULL ? eq + 1 : NULL, eq != NULL ?
		    tok - kw - 1 : 0, ctx, reply_r) < 0)
			return -1;
		p += tok;
	}
}

/* ---- MAIL, RCPT ---- */

/* The path at args, then where its parameters start (or -1). */
static int
smtp_path_args(const char *args, char out[SMTP_PATH_MAX + 1],
	       const char **params_r, const char *reply_bad,
	       const char *reply_long, const char **reply_r)
{
	size_t len;

	switch (smtp_path(args, true, out, &len)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_LONG:
		*reply_r = reply_long;
		return -1;
	default:
		*reply_r = reply_bad;
		return -1;
	}
	/* RFC 5321 §4.1.1.2: parameters follow the path after a space. */
	if (args[len] != '\0' && args[len] != ' ') {
		*reply_r = reply_bad;
		return -1;
	}
	*params_r = args + len;
	return 0;
}

int
smtp_parse_mail(const char *args, struct smtp_mail_args *m_r,
		const char **reply_r)
{
	const char *params;

	memset(m_r, 0, sizeof(*m_r));
	m_r->body = SMTP_BODY_7BIT;
	if (smtp_path_args(args, m_r->addr, &params, smtp_reply_mail_syntax,
	    smtp_reply_mail_long, reply_r) < 0)
		return -1;
	if (smtp_params(params, smtp_mail_params,
	    MF_ARRAY_LEN(smtp_mail_params), m_r, reply_r) < 0)
		return -1;
	/* RFC 6531 §3.4: UTF-8 in the envelope only with SMTPUTF8. */
	if (!m_r->smtputf8 && smtp_has_8bit(args, (size_t)(params - args))) {
		*reply_r = smtp_reply_8bit;
		return -1;
	}
	return 0;
}

/* RFC 5321 §4.5.1: "Postmaster" without a domain, any case. */
#define SMTP_POSTMASTER "postmaster"

int
smtp_parse_rcpt(const char *args, bool smtputf8, struct smtp_rcpt_args *r_r,
		const char **reply_r)
{
	size_t pm = strlen(SMTP_POSTMASTER);
	const char *params;

	memset(r_r, 0, sizeof(*r_r));
	if (args[0] == '<' && strncasecmp(args + 1, SMTP_POSTMASTER, pm) == 0 &&
	    args[pm + 1] == '>') {
		str_lcpy(r_r->addr, SMTP_POSTMASTER, sizeof(r_r->addr));
		params = args + pm + 2;
		if (params[0] != '\0' && params[0] != ' ') {
			*reply_r = smtp_reply_rcpt_syntax;
			return -1;
		}
	} else if (smtp_path_args(args, r_r->addr, &params,
	    smtp_reply_rcpt_syntax, smtp_reply_rcpt_long, reply_r) < 0) {
		return -1;
	}
	if (r_r->addr[0] == '\0') {
		*reply_r = smtp_reply_rcpt_syntax;
		return -1;
	}
	if (smtp_params(params, smtp_rcpt_params,
	    MF_ARRAY_LEN(smtp_rcpt_params), NULL, reply_r) < 0)
		return -1;
	if (!smtputf8 && smtp_has_8bit(args, (size_t)(params - args))) {
		*reply_r = smtp_reply_8bit;
		return -1;
	}
	return 0;
}

/* ---- BDAT (RFC 3030 §2) ---- */

#define SMTP_BDAT_LAST "LAST"

int
smtp_parse_bdat(const char *args, uint64_t *size_r, bool *last_r)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; args[i] >= '0' && args[i] <= '9'; i++) {
		uint64_t d = (uint64_t)(args[i] - '0');

		if (i == SMTP_BDAT_DIGITS_MAX || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (i == 0)
		return -1;
	if (args[i] == '\0') {
		*last_r = false;
	} else if (args[i] == ' ' &&
	    strcasecmp(args + i + 1, SMTP_BDAT_LAST) == 0) {
		*last_r = true;
	} else {
		return -1;
	}
	*size_r = v;
	return 0;
}

/* ---- address helpers ---- */

int
smtp_addr_split(const char *addr, char *local, size_t local_size,
		char *domain, size_t domain_size)
{
	const char *at = NULL;
	bool quoted = false;
	size_t llen, dlen;

	for (const char *p = addr; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '@')
			at = p;
	}
	if (at == NULL)
		return -1;
	llen = (size_t)(at - addr);
	dlen = strlen(at + 1);
	if (llen >= local_size || dlen >= domain_size)
		return -1;
	memcpy(local, addr, llen);
	local[llen] = '\0';
	memcpy(domain, at + 1, dlen);
	domain[dlen] = '\0';
	return 0;
}
