/*
 * dkim_sign.c - the DKIM signer (RFC 6376 §5): splits the streamed
 * message into header fields and body, keeps the canonical form of the
 * header fields it will sign, hashes the canonical body as it passes, and
 * at the end writes one DKIM-Signature header field per key.
 *
 * Header section parsing (RFC 5322 §2.2, §2.2.3): a field starts at a line
 * that does not begin with WSP and runs until the next such line; the
 * header section ends at the first empty line (CRLF CRLF) or with the
 * message.  Lines that are no header field (no colon, bad name) are
 * skipped, never signed.  Only the first DKIM_FIELD_MAX bytes of a field
 * are kept: a longer field that should be signed makes the message
 * unsignable (better unsigned than signed wrongly).
 *
 * Which fields (RFC 6376 §5.4): every instance of each name of the list,
 * named in h= once per instance; the verifier takes instances bottom-up
 * (§5.4.2), so the hash input lists the instances last to first.  From is
 * listed once more than it occurs ("oversigning": a From added later in
 * transit, which a mail reader might show instead, breaks the signature;
 * the missing instance hashes as nothing, §5.4.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim/dkim_private.h"

#define DKIM_BH_LEN 44		/* base64 of a SHA-256 digest */

const char *const dkim_default_headers[] = {
	/* RFC 6376 §5.4.1's recommended set, plus Message-ID, Sender and
	 * the MIME fields that decide how the body is shown */
	"from", "to", "cc", "subject", "date", "message-id", "reply-to",
	"sender", "in-reply-to", "references", "mime-version",
	"content-type", "content-transfer-encoding", "resent-date",
	"resent-from", "resent-to", "resent-cc", "list-id", "list-help",
	"list-unsubscribe",
	"list-unsubscribe-post",	/* RFC 8058 §4: MUST be signed */
	"list-subscribe", "list-post", "list-owner", "list-archive",
	NULL
};

enum dkim_hdr_state {
	DKIM_HS_BOL,		/* at the start of a header line */
	DKIM_HS_BOL_CR,		/* CR starting a line: end of header? */
	DKIM_HS_LINE,		/* inside a line */
	DKIM_HS_CR,		/* CR inside a line */
	DKIM_HS_BODY,
};

struct dkim_signed_field {
	size_t name;		/* index into names */
	size_t at, len;		/* canonical text in canon */
};

struct dkim_signer {
	char *domain;
	char *selector;
	struct dkim_key *keys[DKIM_ALG_COUNT];	/* borrowed */
	size_t nkeys;
	char **names;		/* lower-case copies; [0] is "from" */
	size_t nnames;
	enum dkim_hdr_state state;
	struct buf field;	/* raw text of the current field */
	bool field_long;	/* it had more than DKIM_FIELD_MAX bytes */
	struct dkim_signed_field fields[DKIM_SIGNED_MAX];
	size_t nfields;
	struct buf canon;	/* canonical signed fields, in message order */
	unsigned from_count;
	const char *error;	/* first reason not to sign */
	struct dkim_body_canon *body;
	EVP_MD_CTX *bh;		/* SHA-256 of the canonical body */
	bool finished;
};

static void
dkim_signer_bh_sink(void *ctx, const void *data, size_t len)
{
	struct dkim_signer *s = ctx;

	xassert(EVP_DigestUpdate(s->bh, data, len) == 1);
}

static void
dkim_signer_add_name(struct dkim_signer *s, const char *name)
{
	xassert(*name != '\0' && strlen(name) <= DKIM_NAME_MAX &&
	    strpbrk(name, ": \t\r\n;") == NULL);
	for (size_t i = 0; i < s->nnames; i++)
		if (strcasecmp(s->names[i], name) == 0)
			return;
	s->names = xreallocarray(s->names, s->nnames + 1, sizeof(*s->names));
	s->names[s->nnames++] = str_lower(xstrdup(name));
}

struct dkim_signer *
dkim_signer_new(const char *domain, const char *selector,
    struct dkim_key *const *keys, size_t nkeys, const char *const *headers)
{
	struct dkim_signer *s = xmalloc(sizeof(*s));

	xassert(dkim_valid_name(domain) && dkim_valid_name(selector));
	xassert(nkeys >= 1 && nkeys <= DKIM_ALG_COUNT);
	for (size_t i = 0; i < nkeys; i++) {
		char sel[DKIM_NAME_MAX + 1];
		xassert(dkim_selector(selector, keys[i]->alg, sel));
	}
	s->domain = str_lower(xstrdup(domain));
	s->selector = xstrdup(selector);
	for (size_t i = 0; i < nkeys; i++)
		s->keys[i] = keys[i];
	s->nkeys = nkeys;
	dkim_signer_add_name(s, "from");
	if (headers == NULL)
		headers = dkim_default_headers;
	for (size_t i = 0; headers[i] != NULL; i++)
		dkim_signer_add_name(s, headers[i]);
	xassert(s->nnames < DKIM_SIGNED_MAX);
	s->state = DKIM_HS_BOL;
	buf_init(&s->field, 0);
	buf_init(&s->canon, 0);
	s->body = dkim_body_canon_new(dkim_signer_bh_sink, s);
	s->bh = EVP_MD_CTX_new();
	xassert(s->bh != NULL &&
	    EVP_DigestInit_ex(s->bh, EVP_sha256(), NULL) == 1);
	return s;
}

static void
dkim_signer_fail(struct dkim_signer *s, const char *error)
{
	if (s->error == NULL)
		s->error = error;
}

static int
dkim_signer_find_name(const struct dkim_signer *s, const char *name,
    size_t len)
{
	for (size_t i = 0; i < s->nnames; i++)
		if (strlen(s->names[i]) == len &&
		    strncasecmp(s->names[i], name, len) == 0)
			return (int)i;
	return -1;
}

/* The current field is complete: keep it if it is to be signed. */
static void
dkim_signer_field_done(struct dkim_signer *s)
{
	size_t at = s->canon.len;
	int n, idx;

	if (s->field.len == 0)
		return;
	n = dkim_canon_header(s->field.data, s->field.len, &s->canon);
	idx = n < 0 ? -1 : dkim_signer_find_name(s, s->canon.data + at,
	    (size_t)n);
	if (idx == 0)
		s->from_count++;
	if (idx >= 0 && s->field_long)
		dkim_signer_fail(s, "header field to sign too long");
	else if (idx >= 0 && s->nfields == DKIM_SIGNED_MAX - 1)
		dkim_signer_fail(s, "too many header fields to sign");
	else if (idx >= 0 && s->canon.len > DKIM_SIGNED_BYTES_MAX)
		dkim_signer_fail(s, "header fields to sign too long");
	if (idx >= 0 && s->error == NULL) {
		s->fields[s->nfields].name = (size_t)idx;
		s->fields[s->nfields].at = at;
		s->fields[s->nfields].len = s->canon.len - at;
		s->nfields++;
	} else {
		s->canon.len = at;	/* drop it */
		if (s->canon.data != NULL)
			s->canon.data[at] = '\0';
	}
	buf_reset(&s->field);
	s->field_long = false;
}

static void
dkim_signer_field_add(struct dkim_signer *s, char c)
{
	if (s->field.len < DKIM_FIELD_MAX)
		buf_addc(&s->field, c);
	else
		s->field_long = true;
}

/* Feeds header bytes; returns how many were header (the rest is body). */
static size_t
dkim_signer_header(struct dkim_signer *s, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		switch (s->state) {
		case DKIM_HS_BOL:
			if (c == '\r') {
				s->state = DKIM_HS_BOL_CR;
				continue;
			}
			if (c != ' ' && c != '\t')	/* no continuation */
				dkim_signer_field_done(s);
			s->state = DKIM_HS_LINE;
			break;
		case DKIM_HS_BOL_CR:
			dkim_signer_field_done(s);
			if (c == '\n') {	/* the empty line */
				s->state = DKIM_HS_BODY;
				return i + 1;
			}
			dkim_signer_field_add(s, '\r');	/* junk line */
			s->state = DKIM_HS_LINE;
			break;
		case DKIM_HS_CR:
			if (c == '\n')
				s->state = DKIM_HS_BOL;
			else if (c != '\r')
				s->state = DKIM_HS_LINE;
			dkim_signer_field_add(s, c);
			continue;
		case DKIM_HS_LINE:
			break;
		case DKIM_HS_BODY:
			panic("dkim header state in body");
		}
		/* DKIM_HS_LINE */
		dkim_signer_field_add(s, c);
		if (c == '\r')
			s->state = DKIM_HS_CR;
	}
	return len;
}

void
dkim_signer_feed(struct dkim_signer *s, const void *data, size_t len)
{
	const char *p = data;
	size_t n = 0;

	xassert(!s->finished);
	if (s->state != DKIM_HS_BODY)
		n = dkim_signer_header(s, p, len);
	if (n < len)
		dkim_body_canon_feed(s->body, p + n, len - n);
}

/* Appends piece, first folding (CRLF TAB, RFC 5322 §2.2.3) if the line
 * would pass DKIM_FOLD_WIDTH; space puts one SP before it. */
static void
dkim_fold(struct buf *b, size_t *col, const char *piece, bool space)
{
	size_t len = strlen(piece);

	if (*col > 1 && *col + (space ? 1 : 0) + len > DKIM_FOLD_WIDTH) {
		buf_adds(b, "\r\n\t");
		*col = 1;
	} else if (space) {
		buf_addc(b, ' ');
		(*col)++;
	}
	buf_adds(b, piece);
	*col += len;
}

/* h= (RFC 6376 §3.5) and its hash input (§3.7, §5.4.2): instances of each
 * name bottom-up, From once more than present. */
static void
dkim_signer_hlist(const struct dkim_signer *s, struct buf *hdata,
    const char **hnames, size_t *nh)
{
	*nh = 0;
	for (size_t i = 0; i < s->nnames; i++) {
		for (size_t j = s->nfields; j-- > 0;) {
			const struct dkim_signed_field *f = &s->fields[j];
			if (f->name != i)
				continue;
			buf_add(hdata, s->canon.data + f->at, f->len);
			hnames[(*nh)++] = s->names[i];
		}
		if (i == 0)
			hnames[(*nh)++] = s->names[0];	/* oversigned */
	}
}

/* Writes "DKIM-Signature: ...; b=" (folded) into h, ready for b=. */
static void
dkim_signer_head(const struct dkim_signer *s, enum dkim_alg alg,
    time_t now, const char *bh, const char **hnames, size_t nh,
    struct buf *h, size_t *col)
{
	char piece[DKIM_NAME_MAX + 16], sel[DKIM_NAME_MAX + 1];

	buf_adds(h, "DKIM-Signature:");
	*col = strlen("DKIM-Signature:");
	dkim_fold(h, col, "v=1;", true);
	snprintf(piece, sizeof(piece), "a=%s;", dkim_alg_name(alg));
	dkim_fold(h, col, piece, true);
	dkim_fold(h, col, "c=relaxed/relaxed;", true);
	snprintf(piece, sizeof(piece), "d=%s;", s->domain);
	dkim_fold(h, col, piece, true);
	xassert(dkim_selector(s->selector, alg, sel));
	snprintf(piece, sizeof(piece), "s=%s;", sel);
	dkim_fold(h, col, piece, true);
	snprintf(piece, sizeof(piece), "t=%lld;", (long long)now);
	dkim_fold(h, col, piece, true);
	for (size_t i = 0; i < nh; i++) {
		snprintf(piece, sizeof(piece), "%s%s%s", i == 0 ? "h=" : "",
		    hnames[i], i + 1 < nh ? ":" : ";");
		dkim_fold(h, col, piece, i == 0);
	}
	snprintf(piece, sizeof(piece), "bh=%s;", bh);
	dkim_fold(h, col, piece, true);
	dkim_fold(h, col, "b=", true);
}

/* One DKIM-Signature field for key, appended to out. */
static int
dkim_signer_sign_one(const struct dkim_signer *s, const struct dkim_key *key,
    time_t now, const char *bh, const struct buf *hdata,
    const char **hnames, size_t nh, struct buf *out, const char **error_r)
{
	struct buf h, data, sig;
	size_t col, at;
	int rc;

	buf_init(&h, 0);
	buf_init(&data, 0);
	buf_init(&sig, 0);
	dkim_signer_head(s, key->alg, now, bh, hnames, nh, &h, &col);
	/* §3.7: the signed fields, then this field canonicalized with an
	 * empty b= and without its final CRLF */
	buf_add(&data, hdata->data, hdata->len);
	xassert(dkim_canon_header(h.data, h.len, &data) > 0);
	data.len -= 2;
	rc = dkim_key_sign(key, data.data, data.len, &sig, error_r);
	for (at = 0; rc == 0 && at < sig.len;) {
		size_t n = col < DKIM_FOLD_WIDTH ? DKIM_FOLD_WIDTH - col : 0;
		if (n == 0) {
			/* FWS inside b= (RFC 6376 §3.5) */
			buf_adds(&h, "\r\n\t");
			col = 1;
			continue;
		}
		if (n > sig.len - at)
			n = sig.len - at;
		buf_add(&h, sig.data + at, n);
		col += n;
		at += n;
	}
	buf_adds(&h, "\r\n");
	if (rc == 0)
		buf_add(out, h.data, h.len);
	buf_free(&h);
	buf_free(&data);
	buf_free(&sig);
	return rc;
}

int
dkim_signer_finish(struct dkim_signer *s, time_t now, struct buf *out,
    const char **error_r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char bh[DKIM_BH_LEN + 1];
	const char *hnames[DKIM_SIGNED_MAX + 1];
	struct buf hdata;
	size_t nh;
	int rc = 0;

	xassert(!s->finished);
	s->finished = true;
	if (s->state == DKIM_HS_BOL_CR) {	/* a last lone CR: junk */
		dkim_signer_field_done(s);
		dkim_signer_field_add(s, '\r');
	}
	if (s->state != DKIM_HS_BODY)
		dkim_signer_field_done(s);
	dkim_body_canon_finish(s->body);
	xassert(EVP_DigestFinal_ex(s->bh, md, &md_len) == 1 && md_len == 32);
	base64_encode(md, md_len, bh);
	/* RFC 5322 §3.6: exactly one From; RFC 6376 §5.4: it is signed */
	if (s->from_count != 1)
		dkim_signer_fail(s, s->from_count == 0 ?
		    "no From header field" : "more than one From header field");
	if (s->error != NULL) {
		*error_r = s->error;
		return -1;
	}
	buf_init(&hdata, 0);
	dkim_signer_hlist(s, &hdata, hnames, &nh);
	for (size_t i = 0; i < s->nkeys && rc == 0; i++)
		rc = dkim_signer_sign_one(s, s->keys[i], now, bh, &hdata,
		    hnames, nh, out, error_r);
	buf_free(&hdata);
	return rc;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	free(s->domain);
	free(s->selector);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
	buf_free(&s->field);
	buf_free(&s->canon);
	dkim_body_canon_free(&s->body);
	EVP_MD_CTX_free(s->bh);
	x_free(sp);
}
