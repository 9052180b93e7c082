/*
 * imap_cmd_store.c - STORE and UID STORE (RFC 9051 §6.4.6): FLAGS,
 * +FLAGS, -FLAGS with .SILENT, system flags and keywords, and
 * UNCHANGEDSINCE with the MODIFIED response code (RFC 7162 §3.1.3).
 * The change is one store transaction on the pool; every changed message
 * gets a new MODSEQ, and the other sessions hear of it (IPC).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_selected.h"

struct imap_store_job {
	struct imap_job base;
	bool uid, silent;
	struct store_flags_req req;
	char keywords[STORE_KEYWORDS_MAX + 1];
	uint32_t *seqs, *uids;
	size_t n;
	struct store_flags_res *res;
	int ret;
};

static void
imap_store_free(struct imap_job *j)
{
	struct imap_store_job *sj = (struct imap_store_job *)j;

	if (sj->res != NULL)
		store_flags_res_clear(sj->res, sj->n);
	free(sj->res);
	free(sj->seqs);
	free(sj->uids);
	free(sj);
}

static void
imap_store_work(struct imap_job *j)
{
	struct imap_store_job *sj = (struct imap_store_job *)j;
	const char *err = NULL;

	sj->res = xreallocarray(NULL, sj->n + 1, sizeof(*sj->res));
	sj->ret = store_flags_change(j->store, j->mailbox, &sj->req, sj->uids,
	    sj->n, sj->res, &err);
	if (sj->ret < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
}

/* One message's outcome: snapshot and FETCH response. */
static void
imap_store_report(struct imap_session *s, struct imap_store_job *sj,
    size_t i, struct buf *b)
{
	const struct store_flags_res *r = &sj->res[i];
	uint32_t seq = sj->seqs[i];
	struct imap_msg *m = &s->mbox->msgs[seq - 1];

	if (r->status == STORE_FLAGS_GONE || r->status ==
	    STORE_FLAGS_MODIFIED)
		return;
	if (r->status == STORE_FLAGS_CHANGED) {
		m->flags = r->flags;
		m->modseq = r->modseq;
		free(m->keywords);
		m->keywords = r->keywords ? xstrdup(r->keywords) : NULL;
		if (imap_mbox_learn(s->mbox, r->keywords))
			imap_send_flags(s);
	}
	buf_reset(b);
	if (!sj->silent) {
		buf_adds(b, "FLAGS (");
		imap_flags_out(b, r->flags, r->keywords);
		buf_addc(b, ')');
	}
	/* RFC 7162 §3.1.3: MODSEQ even with .SILENT once CONDSTORE is on */
	if (s->condstore && (!sj->silent ||
	    r->status == STORE_FLAGS_CHANGED))
		buf_printf(b, "%sMODSEQ (%llu)", b->len > 0 ? " " : "",
		    (unsigned long long)r->modseq);
	if (b->len == 0)
		return;
	imap_untagged(s, "%u FETCH (UID %u %s)", seq, sj->uids[i], b->data);
}

static void
imap_store_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_store_job *sj = (struct imap_store_job *)j;
	struct buf b, modified;
	bool changed = false;
	uint32_t *mod;
	size_t nmod = 0;

	if (sj->ret <= 0) {
		if (sj->ret < 0)
			log_warnx("%s imap store: %s", s->sid, j->error);
		imap_job_end(s, j, false, "NO", "[UNAVAILABLE] STORE failed");
		return;
	}
	buf_init(&b, 0);
	mod = xreallocarray(NULL, sj->n + 1, sizeof(*mod));
	for (size_t i = 0; i < sj->n; i++) {
		imap_store_report(s, sj, i, &b);
		changed |= sj->res[i].status == STORE_FLAGS_CHANGED;
		if (sj->res[i].status == STORE_FLAGS_MODIFIED)
			mod[nmod++] = sj->uid ? sj->uids[i] : sj->seqs[i];
	}
	buf_free(&b);
	if (changed)
		ipc_notify_changed(s->user);
	buf_init(&modified, 0);
	if (nmod > 0) {
		buf_adds(&modified, "[MODIFIED ");
		imap_uidset_out(&modified, mod, nmod);
		buf_adds(&modified, "] Conditional ");
	}
	free(mod);
	imap_job_end(s, j, false, "OK", "%s%sSTORE completed",
	    modified.len > 0 ? modified.data : "", sj->uid ? "UID " : "");
	buf_free(&modified);
}

/* FLAGS, +FLAGS, -FLAGS, each with .SILENT. */
static int
imap_store_item(struct imap_store_job *sj, const struct imap_arg *a)
{
	const char *p;

	if (a == NULL || a->type != IMAP_ARG_ATOM)
		return -1;
	p = a->str;
	sj->req.op = STORE_FLAGS_SET;
	if (*p == '+' || *p == '-')
		sj->req.op = *p++ == '+' ? STORE_FLAGS_ADD :
		    STORE_FLAGS_REMOVE;
	if (strcasecmp(p, "FLAGS.SILENT") == 0)
		sj->silent = true;
	else if (strcasecmp(p, "FLAGS") != 0)
		return -1;
	return 0;
}

/* One flag into the request; -1 for anything we cannot store. */
static int
imap_store_flag(struct imap_store_job *sj, const struct imap_arg *a,
    size_t *kwlen)
{
	uint32_t bit;
	size_t len;

	if (a->type != IMAP_ARG_ATOM || imap_flag_parse(a->str, &bit) < 0)
		return strcasecmp(a->str ? a->str : "", "\\Recent") == 0 ?
		    0 : -1;	/* \Recent is not ours to set (§2.3.2) */
	if (bit != 0) {
		sj->req.flags |= bit;
		return 0;
	}
	len = strlen(a->str);
	if (*kwlen + len + 1 > STORE_KEYWORDS_MAX)
		return -1;
	if (*kwlen > 0)
		sj->keywords[(*kwlen)++] = ' ';
	memcpy(sj->keywords + *kwlen, a->str, len + 1);
	*kwlen += len;
	return 0;
}

static int
imap_store_parse(struct imap_session *s, struct imap_store_job *sj,
    const struct imap_command *cmd, const struct imap_arg **a_r)
{
	const struct imap_arg *a = cmd->args->next, *f;
	size_t kwlen = 0;

	if (a != NULL && a->type == IMAP_ARG_LIST) {
		/* (UNCHANGEDSINCE n), RFC 7162 §3.1.3 */
		if (a->count != 2 || !imap_arg_is_atom(a->list,
		    "UNCHANGEDSINCE") || imap_arg_number(a->list->next, 0,
		    INT64_MAX, &sj->req.unchangedsince) < 0)
			return -1;
		sj->req.conditional = true;
		s->condstore = true;
		a = a->next;
	}
	if (imap_store_item(sj, a) < 0 || a->next == NULL)
		return -1;
	f = a->next;
	if (f->type == IMAP_ARG_LIST) {
		if (f->next != NULL)
			return -1;
		f = f->list;
	}
	for (; f != NULL; f = f->next)
		if (imap_store_flag(sj, f, &kwlen) < 0)
			return -1;
	sj->req.keywords = sj->keywords;
	*a_r = a;
	return 0;
}

void
imap_cmd_store(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_store_job *sj;
	const struct imap_arg *item;
	const char *err;
	uint32_t *idx;

	if (cmd->count < 3) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: STORE sequence-set "
		    "[(UNCHANGEDSINCE n)] item flags");
		return;
	}
	sj = xmalloc(sizeof(*sj));
	sj->uid = uid;
	if (imap_store_parse(s, sj, cmd, &item) < 0) {
		free(sj);
		imap_tagged(s, cmd->tag, "BAD", "Invalid STORE arguments");
		return;
	}
	if (s->mbox->readonly) {
		free(sj);
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] Mailbox is "
		    "read-only");
		return;
	}
	if (imap_seq_select(s->mbox, cmd->args, uid, &idx, &sj->n,
	    &err) < 0) {
		free(sj);
		imap_tagged(s, cmd->tag, "BAD", "%s", err);
		return;
	}
	sj->seqs = xreallocarray(NULL, sj->n + 1, sizeof(*sj->seqs));
	sj->uids = xreallocarray(NULL, sj->n + 1, sizeof(*sj->uids));
	for (size_t i = 0; i < sj->n; i++) {
		sj->seqs[i] = idx[i] + 1;
		sj->uids[i] = s->mbox->msgs[idx[i]].uid;
	}
	free(idx);
	imap_job_init(s, &sj->base, imap_store_work, imap_store_done,
	    imap_store_free);
	imap_job_start(s, &sj->base);
}
