/*
 * imap_cmd_fetch.c - FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516
 * BINARY, RFC 7162 CHANGEDSINCE/MODSEQ and QRESYNC VANISHED).
 *
 * The command runs on the pool in slices of about IMAP_FETCH_SLICE
 * bytes of output: each slice reads the rows it needs, takes ENVELOPE,
 * BODYSTRUCTURE and the part tree (mime_tree_deserialize()) from the
 * cache the store filled at delivery/APPEND, parses a message (mime.h)
 * only for BODY or a row of an older store (then fills its cache), and
 * copies section bytes from the stored file by byte range (CRLF as
 * stored) in chunks, so a big message is never held in memory.
 * Between slices the output goes to the client; above IMAP_OUTPUT_MAX
 * the next slice waits until it drains.  Non-PEEK body items set \Seen,
 * reported with FLAGS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_selected.h"
#include "mime/mime.h"

#define IMAP_FETCH_SLICE (256 * 1024)	/* output per pool slice */
#define IMAP_FETCH_CHUNK (64 * 1024)	/* file bytes per read */
#define IMAP_FETCH_ITEMS_MAX 64		/* items of one FETCH */
/* Header bytes read for HEADER.FIELDS; the rest is left out (XXX). */
#define IMAP_FETCH_HEADER_MAX MIME_KEPT_MAX

enum imap_fi_kind {
	IMAP_FI_UID,
	IMAP_FI_FLAGS,
	IMAP_FI_INTERNALDATE,
	IMAP_FI_SIZE,
	IMAP_FI_MODSEQ,
	IMAP_FI_ENVELOPE,
	IMAP_FI_BODYSTRUCTURE,
	IMAP_FI_BODY,
	IMAP_FI_SECTION,	/* BODY[], BINARY[], BINARY.SIZE[], RFC822* */
};

struct imap_fitem {
	enum imap_fi_kind kind;
	struct imap_section sec;
	struct buf fields;		/* sec.fields point here */
	char *label;			/* response name of a section */
};

struct imap_fetch_job {
	struct imap_job base;
	struct imap_fitem items[IMAP_FETCH_ITEMS_MAX];
	size_t nitems;
	bool uid;
	bool set_seen;			/* a non-PEEK body item, read-write */
	uint64_t changedsince;		/* CHANGEDSINCE or 0 */
	bool vanished;			/* VANISHED modifier (QRESYNC) */
	struct imap_seqset uidset;	/* for VANISHED */
	bool have_uidset;
	uint32_t *seqs, *uids;		/* the messages, ascending */
	size_t n, next;
	/* the message being written */
	bool in_msg, first_item, report_flags;
	size_t item;
	struct store_row row;
	struct mime_message *mime;
	bool mime_parsed;		/* a parse, not a cached tree */
	int fd;
	uint64_t lit_off, lit_left;	/* file range still to copy */
	/* results */
	struct buf out;			/* this slice's output */
	char *chunk;
	bool finished, failed, unknown_cte;
	bool gone;			/* a message was expunged meanwhile */
	uint32_t *seen_uids, *seen_flags;
	uint64_t *seen_modseqs;
	size_t nseen;
};

static void imap_fetch_drained(struct imap_session *s);

/* ---- job lifetime ---- */

static void
imap_fetch_msg_end(struct imap_fetch_job *fj)
{
	store_row_clear(&fj->row);
	mime_message_free(&fj->mime);
	fj->mime_parsed = false;
	if (fj->fd >= 0)
		close(fj->fd);
	fj->fd = -1;
	fj->in_msg = false;
	fj->lit_left = 0;
}

static void
imap_fetch_job_free(struct imap_job *j)
{
	struct imap_fetch_job *fj = (struct imap_fetch_job *)j;

	imap_fetch_msg_end(fj);
	for (size_t i = 0; i < fj->nitems; i++) {
		buf_free(&fj->items[i].fields);
		free(fj->items[i].label);
	}
	if (fj->have_uidset)
		imap_seqset_free(&fj->uidset);
	free(fj->seqs);
	free(fj->uids);
	free(fj->seen_uids);
	free(fj->seen_flags);
	free(fj->seen_modseqs);
	free(fj->chunk);
	buf_free(&fj->out);
	free(fj);
}

void
imap_fetch_free(struct imap_fetch_job **fp)
{
	struct imap_fetch_job *fj = *fp;

	if (fj == NULL)
		return;
	store_close(&fj->base.store);
	store_changes_free(&fj->base.changes);
	imap_fetch_job_free(&fj->base);
	*fp = NULL;
}

/* ---- reading the message (pool) ---- */

static bool
imap_fetch_open(struct imap_fetch_job *fj)
{
	const char *err = NULL;
	int rc;

	if (fj->fd >= 0)
		return true;
	rc = store_row_open(fj->base.store, &fj->row, &fj->fd, &err);
	if (rc <= 0) {
		str_lcpy(fj->base.error, rc == 0 ? "message file gone" :
		    err ? err : "?", sizeof(fj->base.error));
		fj->failed = true;
		return false;
	}
	return true;
}

/* len bytes at off into out; false (failed) on a short file. */
static bool
imap_fetch_read(struct imap_fetch_job *fj, uint64_t off, uint64_t len,
    struct buf *out)
{
	while (len > 0) {
		size_t want = len > IMAP_FETCH_CHUNK ? IMAP_FETCH_CHUNK :
		    (size_t)len;
		ssize_t n = pread(fj->fd, fj->chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			str_lcpy(fj->base.error, n < 0 ? strerror(errno) :
			    "message file too short", sizeof(fj->base.error));
			fj->failed = true;
			return false;
		}
		buf_add(out, fj->chunk, (size_t)n);
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return true;
}

/* Fills the cache columns of a row the store has none for (a store
 * older than schema 3, a damaged tree) from the parse. */
static void
imap_fetch_cache_fill(struct imap_fetch_job *fj)
{
	const char *err = NULL;
	struct buf env, bs, tree;

	buf_init(&env, 0);
	buf_init(&bs, 0);
	buf_init(&tree, 0);
	x_free(&fj->row.envelope);
	x_free(&fj->row.bodystructure);
	fj->row.envelope = xstrdup(mime_envelope(fj->mime, &env));
	fj->row.bodystructure = xstrdup(mime_bodystructure(fj->mime, true,
	    &bs));
	mime_tree_serialize(fj->mime, &tree);
	if (store_cache_set(fj->base.store, fj->base.mailbox, fj->row.uid,
	    fj->row.envelope, fj->row.bodystructure,
	    tree.data ? tree.data : "", tree.len, &err) < 0)
		log_warnx("imap fetch: cache: %s", err ? err : "?");
	buf_free(&env);
	buf_free(&bs);
	buf_free(&tree);
}

/* Parses the message once per message, filling the cache if empty. */
static bool
imap_fetch_mime(struct imap_fetch_job *fj)
{
	struct mime_parser *p;
	uint64_t off = 0;

	if (fj->mime != NULL && fj->mime_parsed)
		return true;
	if (!imap_fetch_open(fj))
		return false;
	mime_message_free(&fj->mime);
	p = mime_parser_new();
	for (;;) {
		ssize_t n = pread(fj->fd, fj->chunk, IMAP_FETCH_CHUNK,
		    (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		mime_parser_feed(p, fj->chunk, (size_t)n);
		off += (uint64_t)n;
	}
	fj->mime = mime_parser_finish(&p);
	fj->mime_parsed = true;
	if (fj->row.envelope == NULL || fj->row.bodystructure == NULL ||
	    fj->row.mime_tree == NULL)
		imap_fetch_cache_fill(fj);
	return true;
}

/* The part tree for section ranges: the cached one, else a parse (which
 * stores it for next time). */
static bool
imap_fetch_tree(struct imap_fetch_job *fj)
{
	const char *err = NULL;

	if (fj->mime != NULL)
		return true;
	if (fj->row.mime_tree != NULL) {
		if (mime_tree_deserialize(fj->row.mime_tree,
		    fj->row.mime_tree_len, &fj->mime, &err) == 1)
			return true;
		log_warnx("imap fetch: UID %u: cached tree: %s", fj->row.uid,
		    err ? err : "?");
		x_free(&fj->row.mime_tree);	/* the parse replaces it */
		fj->row.mime_tree_len = 0;
	}
	return imap_fetch_mime(fj);
}

/* ---- items (pool) ---- */

static void
imap_fetch_sep(struct imap_fetch_job *fj)
{
	if (!fj->first_item)
		buf_addc(&fj->out, ' ');
	fj->first_item = false;
}

static void
imap_fetch_date(struct buf *out, int64_t t)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(out, "INTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d +0000\"",
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "1.2.HEADER": the section as mime_section_range() wants it. */
static void
imap_fetch_spec(const struct imap_section *sec, char *out, size_t size)
{
	static const char *const specs[] = {
		[IMAP_SPEC_NONE] = "", [IMAP_SPEC_HEADER] = "HEADER",
		[IMAP_SPEC_HEADER_FIELDS] = "HEADER",
		[IMAP_SPEC_HEADER_FIELDS_NOT] = "HEADER",
		[IMAP_SPEC_TEXT] = "TEXT", [IMAP_SPEC_MIME] = "MIME",
	};
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sec->nparts && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%u",
		    i > 0 ? "." : "", sec->parts[i]);
	if (sec->spec != IMAP_SPEC_NONE && len < size)
		snprintf(out + len, size - len, "%s%s", len > 0 ? "." : "",
		    specs[sec->spec]);
}

/* Decodes base64 content (line breaks and junk skipped, RFC 2045
 * §6.8) into out. */
static void
imap_fetch_unbase64(const char *in, size_t len, struct buf *out)
{
	char quad[4];
	unsigned char dec[4];
	size_t q = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		    c == '='))
			continue;
		quad[q++] = c;
		if (q == 4) {
			ssize_t n = base64_decode(quad, 4, dec);
			if (n > 0)
				buf_add(out, dec, (size_t)n);
			q = 0;
		}
	}
}

static int
imap_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Quoted-printable (RFC 2045 §6.7): soft breaks go, =XX decodes. */
static void
imap_fetch_unqp(const char *in, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '=') {
			buf_addc(out, in[i]);
			continue;
		}
		if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
			i += 2;
		} else if (i + 1 < len && in[i + 1] == '\n') {
			i += 1;
		} else if (i + 2 < len && imap_hex(in[i + 1]) >= 0 &&
		    imap_hex(in[i + 2]) >= 0) {
			buf_addc(out, (char)(imap_hex(in[i + 1]) * 16 +
			    imap_hex(in[i + 2])));
			i += 2;
		} else {
			buf_addc(out, '=');
		}
	}
}

/* Writes label, partial origin and the literal of data[0..len). */
static void
imap_fetch_literal(struct imap_fetch_job *fj, const struct imap_fitem *it,
    const char *data, size_t len)
{
	const struct imap_section *sec = &it->sec;
	size_t off = 0;
	bool nul;

	if (sec->partial) {
		off = sec->offset < len ? sec->offset : len;
		len = len - off < sec->count ? len - off : sec->count;
	}
	nul = memchr(data + off, '\0', len) != NULL;
	buf_printf(&fj->out, "%s %s{%zu}\r\n", it->label, nul ? "~" : "",
	    len);
	buf_add(&fj->out, data + off, len);
}

/* HEADER.FIELDS(.NOT) and decoded BINARY: built in memory. */
static void
imap_fetch_built(struct imap_fetch_job *fj, const struct imap_fitem *it,
    uint64_t start, uint64_t len, enum mime_cte cte)
{
	struct buf raw, res;
	bool binary = it->sec.att >= IMAP_SECTION_BINARY;

	buf_init(&raw, 0);
	buf_init(&res, 0);
	if (!binary && len > IMAP_FETCH_HEADER_MAX)
		len = IMAP_FETCH_HEADER_MAX;
	if (!imap_fetch_read(fj, start, len, &raw))
		goto out;
	if (!binary)
		mime_header_filter(raw.data ? raw.data : "", raw.len,
		    it->sec.fields, it->sec.nfields,
		    it->sec.spec == IMAP_SPEC_HEADER_FIELDS_NOT, &res);
	else if (cte == MIME_CTE_BASE64)
		imap_fetch_unbase64(raw.data ? raw.data : "", raw.len, &res);
	else
		imap_fetch_unqp(raw.data ? raw.data : "", raw.len, &res);
	if (it->sec.att == IMAP_SECTION_BINARY_SIZE)
		buf_printf(&fj->out, "%s %zu", it->label, res.len);
	else
		imap_fetch_literal(fj, it, res.data ? res.data : "", res.len);
out:
	buf_free(&raw);
	buf_free(&res);
}

static void
imap_fetch_section(struct imap_fetch_job *fj, const struct imap_fitem *it)
{
	const struct imap_section *sec = &it->sec;
	char spec[MIME_SECTION_MAX + 1];
	uint64_t start = 0, len = fj->row.size;
	enum mime_cte cte = MIME_CTE_7BIT;
	int rc = 1;

	if (sec->nparts > 0 || sec->spec != IMAP_SPEC_NONE) {
		if (!imap_fetch_tree(fj))
			return;
		imap_fetch_spec(sec, spec, sizeof(spec));
		rc = mime_section_range(fj->mime, spec, &start, &len, &cte);
	}
	if (rc <= 0) {
		/* RFC 9051 §6.4.5: no such part, an empty string */
		buf_printf(&fj->out, "%s \"\"", it->label);
		return;
	}
	if (sec->att >= IMAP_SECTION_BINARY && (cte == MIME_CTE_OTHER)) {
		/* RFC 3516 §4.2: NO [UNKNOWN-CTE] for what we cannot do */
		buf_printf(&fj->out, "%s NIL", it->label);
		fj->unknown_cte = true;
		return;
	}
	if (sec->spec == IMAP_SPEC_HEADER_FIELDS ||
	    sec->spec == IMAP_SPEC_HEADER_FIELDS_NOT ||
	    (sec->att >= IMAP_SECTION_BINARY && (cte == MIME_CTE_BASE64 ||
	    cte == MIME_CTE_QP))) {
		if (imap_fetch_open(fj))
			imap_fetch_built(fj, it, start, len, cte);
		return;
	}
	if (sec->att == IMAP_SECTION_BINARY_SIZE) {
		buf_printf(&fj->out, "%s %llu", it->label,
		    (unsigned long long)len);
		return;
	}
	if (sec->partial) {
		uint64_t off = sec->offset < len ? sec->offset : len;
		start += off;
		len = len - off < sec->count ? len - off : sec->count;
	}
	if (!imap_fetch_open(fj))
		return;
	/* XXX: literal8 only when we know of a NUL; a BINARY[] of
	 * identity-encoded content is sent as a plain literal. */
	buf_printf(&fj->out, "%s {%llu}\r\n", it->label,
	    (unsigned long long)len);
	fj->lit_off = start;
	fj->lit_left = len;
}

static void
imap_fetch_cached(struct imap_fetch_job *fj, const char *name, char **val)
{
	if (*val == NULL && !imap_fetch_mime(fj))
		return;
	buf_printf(&fj->out, "%s %s", name, *val);
}

static void
imap_fetch_item(struct imap_fetch_job *fj, const struct imap_fitem *it)
{
	struct buf b;

	imap_fetch_sep(fj);
	switch (it->kind) {
	case IMAP_FI_UID:
		buf_printf(&fj->out, "UID %u", fj->row.uid);
		break;
	case IMAP_FI_FLAGS:
		buf_adds(&fj->out, "FLAGS (");
		imap_flags_out(&fj->out, fj->row.flags, fj->row.keywords);
		buf_addc(&fj->out, ')');
		fj->report_flags = false;
		break;
	case IMAP_FI_INTERNALDATE:
		imap_fetch_date(&fj->out, fj->row.internaldate);
		break;
	case IMAP_FI_SIZE:
		buf_printf(&fj->out, "RFC822.SIZE %llu",
		    (unsigned long long)fj->row.size);
		break;
	case IMAP_FI_MODSEQ:
		buf_printf(&fj->out, "MODSEQ (%llu)",
		    (unsigned long long)fj->row.modseq);
		break;
	case IMAP_FI_ENVELOPE:
		imap_fetch_cached(fj, "ENVELOPE", &fj->row.envelope);
		break;
	case IMAP_FI_BODYSTRUCTURE:
		imap_fetch_cached(fj, "BODYSTRUCTURE",
		    &fj->row.bodystructure);
		break;
	case IMAP_FI_BODY:
		if (!imap_fetch_mime(fj))
			break;
		buf_init(&b, 0);
		buf_printf(&fj->out, "BODY %s",
		    mime_bodystructure(fj->mime, false, &b));
		buf_free(&b);
		break;
	case IMAP_FI_SECTION:
		imap_fetch_section(fj, it);
		break;
	}
}

/* \Seen for a non-PEEK body fetch (RFC 9051 §6.4.5). */
static void
imap_fetch_seen(struct imap_fetch_job *fj)
{
	struct store_flags_req req = { .op = STORE_FLAGS_ADD,
	    .flags = STORE_FLAG_SEEN, .keywords = "" };
	struct store_flags_res res;
	const char *err = NULL;
	size_t k = fj->nseen;

	if (store_flags_change(fj->base.store, fj->base.mailbox, &req,
	    &fj->row.uid, 1, &res, &err) != 1) {
		log_warnx("imap fetch: set \\Seen: %s", err ? err : "?");
		return;
	}
	if (res.status == STORE_FLAGS_CHANGED) {
		fj->row.flags = res.flags;
		fj->row.modseq = res.modseq;
		fj->seen_uids[k] = fj->row.uid;
		fj->seen_flags[k] = res.flags;
		fj->seen_modseqs[k] = res.modseq;
		fj->nseen++;
		fj->report_flags = true;
	}
	store_flags_res_clear(&res, 1);
}

/* Reads the next message's row; false when it is to be skipped. */
static bool
imap_fetch_begin(struct imap_fetch_job *fj)
{
	const char *err = NULL;
	int rc = store_row_get(fj->base.store, fj->base.mailbox,
	    fj->uids[fj->next], &fj->row, &err);

	if (rc < 0) {
		str_lcpy(fj->base.error, err ? err : "?",
		    sizeof(fj->base.error));
		fj->failed = true;
	}
	fj->gone |= rc == 0;
	if (rc <= 0)
		return false;	/* expunged meanwhile: nothing to say */
	if (fj->changedsince > 0 && fj->row.modseq <= fj->changedsince) {
		store_row_clear(&fj->row);
		return false;
	}
	fj->report_flags = false;
	if (fj->set_seen && !(fj->row.flags & STORE_FLAG_SEEN))
		imap_fetch_seen(fj);
	buf_printf(&fj->out, "* %u FETCH (", fj->seqs[fj->next]);
	fj->in_msg = true;
	fj->first_item = true;
	fj->item = 0;
	return true;
}

/* Copies the next chunk of a big literal. */
static void
imap_fetch_stream(struct imap_fetch_job *fj)
{
	uint64_t want = fj->lit_left > IMAP_FETCH_CHUNK ? IMAP_FETCH_CHUNK :
	    fj->lit_left;

	if (imap_fetch_read(fj, fj->lit_off, want, &fj->out)) {
		fj->lit_off += want;
		fj->lit_left -= want;
	}
}

/* RFC 7162 §3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED). */
static void
imap_fetch_vanished(struct imap_fetch_job *fj)
{
	struct store_changes ch;
	const char *err = NULL;
	uint32_t *v;
	size_t n = 0;

	if (store_changes_get(fj->base.store, fj->base.mailbox,
	    fj->changedsince, true, &ch, &err) != 1)
		return;
	v = xreallocarray(NULL, ch.nvanished + 1, sizeof(*v));
	for (size_t i = 0; i < ch.nvanished; i++)
		if (imap_seqset_contains(&fj->uidset, ch.vanished[i]))
			v[n++] = ch.vanished[i];
	if (n > 0) {
		buf_adds(&fj->out, "* VANISHED (EARLIER) ");
		imap_uidset_out(&fj->out, v, n);
		buf_adds(&fj->out, "\r\n");
	}
	free(v);
	store_changes_free(&ch);
}

static void
imap_fetch_work(struct imap_job *j)
{
	struct imap_fetch_job *fj = (struct imap_fetch_job *)j;

	buf_reset(&fj->out);
	if (fj->vanished) {
		imap_fetch_vanished(fj);
		fj->vanished = false;
	}
	while (fj->out.len < IMAP_FETCH_SLICE && !fj->failed) {
		if (fj->lit_left > 0) {
			imap_fetch_stream(fj);
		} else if (!fj->in_msg) {
			if (fj->next == fj->n) {
				fj->finished = true;
				break;
			}
			if (!imap_fetch_begin(fj))
				fj->next++;
		} else if (fj->item < fj->nitems) {
			imap_fetch_item(fj, &fj->items[fj->item++]);
		} else {
			if (fj->report_flags) {
				imap_fetch_sep(fj);
				buf_adds(&fj->out, "FLAGS (");
				imap_flags_out(&fj->out, fj->row.flags,
				    fj->row.keywords);
				buf_addc(&fj->out, ')');
			}
			buf_adds(&fj->out, ")\r\n");
			imap_fetch_msg_end(fj);
			fj->next++;
		}
	}
	/* the changes of others only once, at the end */
	j->sync = fj->finished;
}

/* ---- on the loop ---- */

static void
imap_fetch_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_fetch_job *fj = (struct imap_fetch_job *)j;
	struct imap_mailbox *mbox = s->mbox;

	if (fj->out.len > 0)
		imap_write(s, fj->out.data, fj->out.len);
	if (fj->failed) {
		/* Half a response is out: only closing is honest. */
		log_warnx("%s imap fetch: %s", s->sid, j->error);
		imap_close_after_reply(s);
		imap_job_end(s, j, false, NULL, "%s", "");
		return;
	}
	if (!fj->finished) {
		if (conn_output_len(s->conn) > IMAP_OUTPUT_MAX) {
			mbox->fetch = fj;
			s->drained = imap_fetch_drained;
			conn_notify_drained(s->conn);
			return;
		}
		imap_job_start(s, j);
		return;
	}
	for (size_t i = 0; i < fj->nseen; i++) {
		uint32_t seq = imap_mbox_seq(mbox, fj->seen_uids[i]);
		if (seq == 0)
			continue;
		mbox->msgs[seq - 1].flags = fj->seen_flags[i];
		mbox->msgs[seq - 1].modseq = fj->seen_modseqs[i];
	}
	if (fj->nseen > 0)
		ipc_notify_changed(s->user);
	if (fj->unknown_cte)
		imap_job_end(s, j, false, "NO", "[UNKNOWN-CTE] Cannot decode "
		    "a part's content transfer encoding");
	else if (fj->gone && !fj->uid)
		/* RFC 5530 §3; a UID FETCH just leaves them out (RFC 9051
		 * §6.4.9) */
		imap_job_end(s, j, false, "NO", "[EXPUNGEISSUED] Some "
		    "messages were expunged");
	else
		imap_job_end(s, j, false, "OK", "%sFETCH completed",
		    fj->uid ? "UID " : "");
}

static void
imap_fetch_drained(struct imap_session *s)
{
	struct imap_fetch_job *fj = s->mbox->fetch;

	s->mbox->fetch = NULL;
	imap_job_start(s, &fj->base);
}

/* ---- parsing the command (loop) ---- */

static const struct {
	const char *name;
	enum imap_fi_kind kind;
} imap_fetch_atts[] = {
	{ "UID", IMAP_FI_UID },
	{ "FLAGS", IMAP_FI_FLAGS },
	{ "INTERNALDATE", IMAP_FI_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_FI_SIZE },
	{ "MODSEQ", IMAP_FI_MODSEQ },
	{ "ENVELOPE", IMAP_FI_ENVELOPE },
	{ "BODYSTRUCTURE", IMAP_FI_BODYSTRUCTURE },
	{ "BODY", IMAP_FI_BODY },
};

static struct imap_fitem *
imap_fetch_add(struct imap_fetch_job *fj, enum imap_fi_kind kind)
{
	struct imap_fitem *it;

	for (size_t i = 0; i < fj->nitems && kind != IMAP_FI_SECTION; i++)
		if (fj->items[i].kind == kind)
			return &fj->items[i];
	if (fj->nitems == IMAP_FETCH_ITEMS_MAX)
		return NULL;
	it = &fj->items[fj->nitems++];
	it->kind = kind;
	buf_init(&it->fields, IMAP_LINE_MAX);
	return it;
}

/* RFC822, RFC822.HEADER, RFC822.TEXT (RFC 3501 §6.4.5). */
static int
imap_fetch_rfc822(struct imap_fetch_job *fj, const char *name)
{
	static const struct {
		const char *name;
		enum imap_section_spec spec;
		bool peek;
	} rows[] = {
		{ "RFC822", IMAP_SPEC_NONE, false },
		{ "RFC822.HEADER", IMAP_SPEC_HEADER, true },
		{ "RFC822.TEXT", IMAP_SPEC_TEXT, false },
	};
	struct imap_fitem *it;

	for (size_t i = 0; i < MF_ARRAY_LEN(rows); i++) {
		if (strcasecmp(name, rows[i].name) != 0)
			continue;
		if ((it = imap_fetch_add(fj, IMAP_FI_SECTION)) == NULL)
			return -1;
		it->sec.att = rows[i].peek ? IMAP_SECTION_BODY_PEEK :
		    IMAP_SECTION_BODY;
		it->sec.spec = rows[i].spec;
		it->label = xstrdup(rows[i].name);
		fj->set_seen |= !rows[i].peek;
		return 0;
	}
	return -1;
}

/* "BODY.PEEK[1.HEADER]<0.10>" -> "BODY[1.HEADER]<0>". */
static char *
imap_fetch_label(const char *atom, const struct imap_section *sec)
{
	const char *open = strchr(atom, '['), *close = strrchr(atom, ']');
	const char *name = sec->att == IMAP_SECTION_BINARY_SIZE ?
	    "BINARY.SIZE" : sec->att >= IMAP_SECTION_BINARY ? "BINARY" :
	    "BODY";

	if (sec->partial)
		return xasprintf("%s%.*s<%u>", name, (int)(close - open + 1),
		    open, sec->offset);
	return xasprintf("%s%.*s", name, (int)(close - open + 1), open);
}

static int
imap_fetch_att(struct imap_fetch_job *fj, const struct imap_arg *a,
    const char **error_r)
{
	struct imap_fitem *it;

	*error_r = "Invalid fetch attribute";
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	if (a->flags & IMAP_ARG_F_SECTION) {
		if ((it = imap_fetch_add(fj, IMAP_FI_SECTION)) == NULL)
			return -1;
		if (imap_section_parse(a->str, &it->fields, &it->sec,
		    error_r) < 0)
			return -1;
		it->label = imap_fetch_label(a->str, &it->sec);
		fj->set_seen |= it->sec.att == IMAP_SECTION_BODY ||
		    it->sec.att == IMAP_SECTION_BINARY;
		return 0;
	}
	for (size_t i = 0; i < MF_ARRAY_LEN(imap_fetch_atts); i++)
		if (strcasecmp(a->str, imap_fetch_atts[i].name) == 0)
			return imap_fetch_add(fj, imap_fetch_atts[i].kind) ?
			    0 : -1;
	return imap_fetch_rfc822(fj, a->str);
}

/* The attribute list, macros expanded (RFC 9051 §6.4.5). */
static int
imap_fetch_atts_parse(struct imap_fetch_job *fj, const struct imap_arg *a,
    const char **error_r)
{
	static const enum imap_fi_kind fast[] = { IMAP_FI_FLAGS,
	    IMAP_FI_INTERNALDATE, IMAP_FI_SIZE, IMAP_FI_ENVELOPE,
	    IMAP_FI_BODY };
	size_t nmacro = 0;

	if (imap_arg_is_atom(a, "FAST"))
		nmacro = 3;
	else if (imap_arg_is_atom(a, "ALL"))
		nmacro = 4;
	else if (imap_arg_is_atom(a, "FULL"))
		nmacro = 5;
	for (size_t i = 0; i < nmacro; i++)
		(void)imap_fetch_add(fj, fast[i]);
	if (nmacro > 0)
		return 0;
	if (a->type != IMAP_ARG_LIST)
		return imap_fetch_att(fj, a, error_r);
	*error_r = "Empty fetch attribute list";
	if (a->list == NULL)
		return -1;
	for (a = a->list; a != NULL; a = a->next)
		if (imap_fetch_att(fj, a, error_r) < 0)
			return -1;
	return 0;
}

/* (CHANGEDSINCE n [VANISHED]), RFC 7162 §3.1.4, §3.2.6. */
static int
imap_fetch_modifiers(struct imap_session *s, struct imap_fetch_job *fj,
    const struct imap_arg *a, const char **error_r)
{
	*error_r = "Invalid FETCH modifiers";
	if (a == NULL)
		return 0;
	if (a->type != IMAP_ARG_LIST || a->next != NULL)
		return -1;
	for (a = a->list; a != NULL; a = a->next) {
		if (imap_arg_is_atom(a, "CHANGEDSINCE")) {
			a = a->next;
			if (a == NULL || imap_arg_number(a, 1, INT64_MAX,
			    &fj->changedsince) < 0)
				return -1;
		} else if (imap_arg_is_atom(a, "VANISHED") && fj->uid &&
		    s->qresync) {
			fj->vanished = true;
		} else {
			return -1;
		}
	}
	if (fj->vanished && fj->changedsince == 0)
		return -1;
	if (fj->changedsince > 0) {
		s->condstore = true;
		(void)imap_fetch_add(fj, IMAP_FI_MODSEQ);
	}
	return 0;
}

static int
imap_fetch_prepare(struct imap_session *s, struct imap_fetch_job *fj,
    const struct imap_command *cmd, const char **error_r)
{
	uint32_t *idx;

	*error_r = "Syntax: FETCH sequence-set items [modifiers]";
	if (cmd->count < 2 || cmd->count > 3)
		return -1;
	if (fj->uid)
		(void)imap_fetch_add(fj, IMAP_FI_UID);
	if (imap_fetch_atts_parse(fj, cmd->args->next, error_r) < 0 ||
	    imap_fetch_modifiers(s, fj, cmd->args->next->next, error_r) < 0)
		return -1;
	for (size_t i = 0; i < fj->nitems; i++)
		if (fj->items[i].kind == IMAP_FI_MODSEQ)
			s->condstore = true;	/* RFC 7162 §3.1 */
	if (imap_seq_select(s->mbox, cmd->args, fj->uid, &idx, &fj->n,
	    error_r) < 0)
		return -1;
	fj->seqs = xreallocarray(NULL, fj->n + 1, sizeof(*fj->seqs));
	fj->uids = xreallocarray(NULL, fj->n + 1, sizeof(*fj->uids));
	for (size_t i = 0; i < fj->n; i++) {
		fj->seqs[i] = idx[i] + 1;
		fj->uids[i] = s->mbox->msgs[idx[i]].uid;
	}
	free(idx);
	if (fj->vanished) {
		if (imap_seqset_parse(cmd->args->str, cmd->args->len,
		    &fj->uidset, error_r) < 0)
			return -1;
		fj->have_uidset = true;
		imap_mbox_resolve(s->mbox, &fj->uidset, true);
	}
	return 0;
}

void
imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_fetch_job *fj = xmalloc(sizeof(*fj));
	const char *err;

	fj->fd = -1;
	fj->uid = uid;
	buf_init(&fj->out, 0);
	if (imap_fetch_prepare(s, fj, cmd, &err) < 0) {
		imap_fetch_job_free(&fj->base);
		imap_tagged(s, cmd->tag, "BAD", "%s", err);
		return;
	}
	fj->set_seen &= !s->mbox->readonly;
	fj->chunk = xmalloc(IMAP_FETCH_CHUNK);
	fj->seen_uids = xreallocarray(NULL, fj->n + 1,
	    sizeof(*fj->seen_uids));
	fj->seen_flags = xreallocarray(NULL, fj->n + 1,
	    sizeof(*fj->seen_flags));
	fj->seen_modseqs = xreallocarray(NULL, fj->n + 1,
	    sizeof(*fj->seen_modseqs));
	imap_job_init(s, &fj->base, imap_fetch_work, imap_fetch_done,
	    imap_fetch_job_free);
	imap_job_start(s, &fj->base);
}
