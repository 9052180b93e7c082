/*
 * mime_addr.c - RFC 5322 §3.4 address lists (with §4.4 obsolete routes)
 * into IMAP address structures (RFC 9051 §7.5.2):
 *   ("name" "route" "mailbox" "host"), group start (NIL NIL "group" NIL),
 *   group end (NIL NIL NIL NIL).
 * Quoting is removed from names and local parts (RFC 3501 §9 addr-name,
 * addr-mailbox); comments are ignored, also as names; RFC 2047 words are
 * passed raw.  An address without mailbox or host gets "MISSING_MAILBOX"
 * or "MISSING_DOMAIN" as Dovecot writes (NIL would mean a group).  The
 * parser is lenient: a missing comma, "<" or ">" still yields addresses.
 */
#include <string.h>

#include "mime/mime_private.h"

enum mime_tok_type {
	MIME_TOK_END,
	MIME_TOK_WORD,		/* atom or dot-atom */
	MIME_TOK_QSTR,		/* quoted-string, quotes included */
	MIME_TOK_DLIT,		/* [domain literal] */
	MIME_TOK_SPECIAL,	/* one of < > @ , ; : */
};

struct mime_alex {
	const char *p, *end;
	enum mime_tok_type type;
	char c;			/* the special */
	const char *tp;		/* token text */
	size_t tlen;
	bool ws;		/* whitespace or comment before it */
};

struct mime_addr {
	struct buf name, route, local, domain;
	size_t words;		/* words read into name/local */
};

static void
mime_alex_next(struct mime_alex *x)
{
	const char *q;

	x->ws = mime_skip_cfws(&x->p, x->end);
	x->tp = q = x->p;
	x->type = MIME_TOK_END;
	if (q == x->end)
		return;
	x->c = *q;
	if (*q == '"') {
		for (q++; q < x->end && *q != '"'; q++)
			if (*q == '\\' && q + 1 < x->end)
				q++;
		q += q < x->end;
		x->type = MIME_TOK_QSTR;
	} else if (*q == '[') {
		while (q < x->end && *q != ']')
			q++;
		q += q < x->end;
		x->type = MIME_TOK_DLIT;
	} else if (strchr("<>@,;:", *q) != NULL) {
		q++;
		x->type = MIME_TOK_SPECIAL;
	} else {
		while (q < x->end && strchr(" \t\r\n()<>@,;:\"[", *q) == NULL)
			q++;
		if (q == x->p)
			q++;	/* a stray ")" */
		x->type = MIME_TOK_WORD;
	}
	x->tlen = (size_t)(q - x->p);
	x->p = q;
}

static bool
mime_alex_is(const struct mime_alex *x, char c)
{
	return x->type == MIME_TOK_SPECIAL && x->c == c;
}

static void
mime_word_add(const struct mime_alex *x, struct buf *b)
{
	const char *p = x->tp;

	if (x->type == MIME_TOK_QSTR)
		mime_unquote(&p, x->tp + x->tlen, b);
	else
		buf_add(b, x->tp, x->tlen);
}

/* Words: a display name (joined by one space where the source had
 * space) and, in case it turns out to be one, a local part. */
static void
mime_addr_words(struct mime_alex *x, struct mime_addr *a)
{
	while (x->type == MIME_TOK_WORD || x->type == MIME_TOK_QSTR ||
	    x->type == MIME_TOK_DLIT) {
		if (x->ws && a->name.len > 0)
			buf_addc(&a->name, ' ');
		mime_word_add(x, &a->name);
		mime_word_add(x, &a->local);
		a->words++;
		mime_alex_next(x);
	}
}

/* A domain: words and literals up to a special or a word after space. */
static void
mime_addr_domain(struct mime_alex *x, struct buf *b)
{
	size_t start = b->len;

	while (x->type == MIME_TOK_WORD || x->type == MIME_TOK_DLIT) {
		if (x->ws && b->len > start && b->data[b->len - 1] != '.' &&
		    x->tp[0] != '.')
			break;
		buf_add(b, x->tp, x->tlen);
		mime_alex_next(x);
	}
}

static void
mime_addr_nstr(struct buf *out, const struct buf *b, bool nil,
    const char *missing)
{
	if (nil) {
		buf_adds(out, "NIL");
	} else if (b->len == 0 && missing != NULL) {
		mime_imap_string(out, missing, strlen(missing));
	} else {
		mime_imap_string(out, b->data != NULL ? b->data : "", b->len);
	}
}

static void
mime_addr_write(struct buf *out, const struct mime_addr *a, bool name)
{
	buf_addc(out, '(');
	mime_addr_nstr(out, &a->name, !name, NULL);
	buf_addc(out, ' ');
	mime_addr_nstr(out, &a->route, a->route.len == 0, NULL);
	buf_addc(out, ' ');
	mime_addr_nstr(out, &a->local, false, "MISSING_MAILBOX");
	buf_addc(out, ' ');
	mime_addr_nstr(out, &a->domain, false, "MISSING_DOMAIN");
	buf_addc(out, ')');
}

/* "<" seen: [obs-route] local "@" domain ">" (RFC 5322 §3.4, §4.4). */
static void
mime_addr_angle(struct mime_alex *x, struct mime_addr *a, struct buf *out)
{
	bool name = a->words > 0;

	buf_reset(&a->local);
	mime_alex_next(x);
	while (mime_alex_is(x, '@') || mime_alex_is(x, ',')) {
		buf_addc(&a->route, x->c);
		mime_alex_next(x);
		if (a->route.data[a->route.len - 1] == '@')
			mime_addr_domain(x, &a->route);
	}
	if (a->route.len > 0 && mime_alex_is(x, ':'))
		mime_alex_next(x);
	while (x->type == MIME_TOK_WORD || x->type == MIME_TOK_QSTR) {
		mime_word_add(x, &a->local);
		mime_alex_next(x);
	}
	if (mime_alex_is(x, '@')) {
		mime_alex_next(x);
		mime_addr_domain(x, &a->domain);
	}
	while (x->type != MIME_TOK_END && !mime_alex_is(x, '>') &&
	    !mime_alex_is(x, ',') && !mime_alex_is(x, ';'))
		mime_alex_next(x);
	if (mime_alex_is(x, '>'))
		mime_alex_next(x);
	mime_addr_write(out, a, name);
}

static void
mime_addr_reset(struct mime_addr *a)
{
	buf_reset(&a->name);
	buf_reset(&a->route);
	buf_reset(&a->local);
	buf_reset(&a->domain);
	a->words = 0;
}

/* One element of the list; returns addresses written, -1 at the end. */
static int
mime_addr_one(struct mime_alex *x, struct mime_addr *a, bool *group,
    struct buf *out)
{
	int n = 0;

	mime_addr_reset(a);
	mime_addr_words(x, a);
	if (mime_alex_is(x, '<')) {
		mime_addr_angle(x, a, out);
		return 1;
	}
	if (mime_alex_is(x, '@')) {
		mime_alex_next(x);
		mime_addr_domain(x, &a->domain);
		mime_addr_write(out, a, false);
		return 1;
	}
	if (mime_alex_is(x, ':') && !*group) {
		mime_alex_next(x);
		buf_adds(out, "(NIL NIL ");
		mime_imap_string(out, a->name.data != NULL ? a->name.data :
		    "", a->name.len);
		buf_adds(out, " NIL)");
		*group = true;
		return 1;
	}
	if (a->words > 0) {	/* a bare local part */
		mime_addr_write(out, a, false);
		n++;
	}
	if (x->type == MIME_TOK_END)
		return n > 0 ? n : -1;
	if (mime_alex_is(x, ';') && *group) {
		buf_adds(out, "(NIL NIL NIL NIL)");
		*group = false;
		n++;
	}
	mime_alex_next(x);	/* "," or a stray special */
	return n;
}

size_t
mime_addr_list(struct mime_value v, struct buf *out)
{
	struct mime_alex x = { .p = v.p, .end = v.p + v.len };
	struct mime_addr a;
	size_t start = out->len, count = 0;
	bool group = false;
	int n;

	buf_init(&a.name, 0);
	buf_init(&a.route, 0);
	buf_init(&a.local, 0);
	buf_init(&a.domain, 0);
	buf_addc(out, '(');
	mime_alex_next(&x);
	while ((n = mime_addr_one(&x, &a, &group, out)) >= 0)
		count += (size_t)n;
	if (group) {
		buf_adds(out, "(NIL NIL NIL NIL)");
		count++;
	}
	buf_addc(out, ')');
	if (count == 0) {
		out->len = start;
		buf_adds(out, "NIL");
	}
	buf_free(&a.name);
	buf_free(&a.route);
	buf_free(&a.local);
	buf_free(&a.domain);
	return count;
}
