/*
 * imap_sync.c - keeping the selected mailbox's snapshot in step with the
 * store (RFC 9051 §7.5.1, RFC 7162 §3.2.10): the pool job every command
 * of the selected state runs through, reading what changed since the
 * snapshot's HIGHESTMODSEQ, and turning it into untagged EXISTS, EXPUNGE
 * (VANISHED under QRESYNC), FETCH FLAGS and FLAGS responses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_selected.h"

/* ---- jobs ---- */

void
imap_job_init(struct imap_session *s, struct imap_job *j,
    void (*work)(struct imap_job *), void (*done)(struct imap_session *,
    struct imap_job *), void (*freefn)(struct imap_job *))
{
	j->srv = s->srv;
	j->id = s->id;
	j->work = work;
	j->done = done;
	j->free = freefn;
	if (s->mbox != NULL) {
		str_lcpy(j->mailbox, s->mbox->name, sizeof(j->mailbox));
		j->sync = true;
		j->since = s->mbox->highestmodseq;
	}
}

static void
imap_job_work(void *arg)
{
	struct imap_job *j = arg;
	const char *err = NULL;

	if (j->work != NULL)
		j->work(j);
	if (!j->sync)
		return;
	store_changes_free(&j->changes);
	j->sync_ret = store_changes_get(j->store, j->mailbox, j->since, true,
	    &j->changes, &err);
	if (j->sync_ret < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
}

static void
imap_job_done(void *arg)
{
	struct imap_job *j = arg;
	struct imap_session *s = imap_session_by_id(j->srv, j->id);

	if (s == NULL) {
		/* The client left meanwhile: only the job remains. */
		store_close(&j->store);
		store_changes_free(&j->changes);
		j->free(j);
		return;
	}
	s->store = j->store;
	j->store = NULL;
	j->done(s, j);
}

void
imap_job_start(struct imap_session *s, struct imap_job *j)
{
	xassert(s->store != NULL);
	j->store = s->store;
	s->store = NULL;
	if (s->mbox != NULL && j->sync) {
		j->since = s->mbox->highestmodseq;
		/* news that come from here on start the next sync */
		s->changed = false;
	}
	imap_submit(s, imap_job_work, imap_job_done, j);
}

void
imap_job_end(struct imap_session *s, struct imap_job *j, bool expunge_ok,
    const char *status, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	if (j->sync && s->mbox != NULL) {
		if (j->sync_ret < 0)
			log_warnx("%s imap sync: %s", s->sid, j->error);
		else if (j->sync_ret == 0) {
			/* XXX: the selected mailbox was deleted or renamed
			 * by another session; RFC 9051 leaves the way open,
			 * we end the session like Dovecot does. */
			imap_untagged(s, "BYE Selected mailbox was removed");
			imap_close_after_reply(s);
		} else
			imap_sync_apply(s, &j->changes, expunge_ok);
	}
	if (status != NULL && s->state != IMAP_ST_LOGOUT) {
		buf_init(&b, 0);
		va_start(ap, fmt);
		buf_vprintf(&b, fmt, ap);
		va_end(ap);
		imap_tagged(s, s->tag, status, "%s", b.data);
		buf_free(&b);
	}
	store_changes_free(&j->changes);
	j->free(j);
	imap_resume(s);
}

/* ---- sync-only jobs: NOOP, CHECK, IDLE ---- */

struct imap_sync_job {
	struct imap_job base;
	bool idle;
	char text[160];		/* tagged OK text, with a response code */
};

static void
imap_sync_free(struct imap_job *j)
{
	free(j);
}

static void imap_sync_done(struct imap_session *s, struct imap_job *j);

void
imap_sync_start(struct imap_session *s, const char *text, bool idle)
{
	struct imap_sync_job *j = xmalloc(sizeof(*j));

	imap_job_init(s, &j->base, NULL, imap_sync_done, imap_sync_free);
	j->idle = idle;
	str_lcpy(j->text, text, sizeof(j->text));
	imap_job_start(s, &j->base);
}

static void
imap_sync_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_sync_job *sj = (struct imap_sync_job *)j;

	if (!sj->idle) {
		imap_job_end(s, j, true, "OK", "%s completed", sj->text);
		return;
	}
	/* IDLE: report, then wait for DONE or the next news. */
	if (sj->base.sync_ret == 1)
		imap_sync_apply(s, &j->changes, true);
	else if (sj->base.sync_ret < 0)
		log_warnx("%s imap sync: %s", s->sid, j->error);
	store_changes_free(&j->changes);
	j->free(j);
	if (s->changed && s->mbox != NULL) {
		imap_sync_start(s, "IDLE", true);
		return;
	}
	imap_set_wait(s, IMAP_WAIT_IDLE);
	conn_resume_read(s->conn);
}

/* ---- the snapshot ---- */

uint32_t
imap_mbox_seq(const struct imap_mailbox *mbox, uint32_t uid)
{
	size_t lo = 0, hi = mbox->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mbox->msgs[mid].uid == uid)
			return (uint32_t)mid + 1;
		if (mbox->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static const struct {
	uint32_t bit;
	const char *name;
} imap_sys_flags[] = {
	{ STORE_FLAG_ANSWERED, "\\Answered" },
	{ STORE_FLAG_FLAGGED, "\\Flagged" },
	{ STORE_FLAG_DELETED, "\\Deleted" },
	{ STORE_FLAG_SEEN, "\\Seen" },
	{ STORE_FLAG_DRAFT, "\\Draft" },
};

void
imap_flags_out(struct buf *out, uint32_t flags, const char *keywords)
{
	const char *sep = "";

	for (size_t i = 0; i < MF_ARRAY_LEN(imap_sys_flags); i++)
		if (flags & imap_sys_flags[i].bit) {
			buf_printf(out, "%s%s", sep, imap_sys_flags[i].name);
			sep = " ";
		}
	if (keywords != NULL && *keywords != '\0')
		buf_printf(out, "%s%s", sep, keywords);
}

int
imap_flag_parse(const char *atom, uint32_t *flag_r)
{
	*flag_r = 0;
	if (atom[0] != '\\') {
		size_t len = strlen(atom);
		if (len == 0 || len > STORE_KEYWORD_MAX)
			return -1;
		for (size_t i = 0; i < len; i++)
			if (strchr("(){%*\"\\]", atom[i]) != NULL ||
			    (unsigned char)atom[i] <= 0x20 ||
			    (unsigned char)atom[i] >= 0x7f)
				return -1;
		return 0;
	}
	for (size_t i = 0; i < MF_ARRAY_LEN(imap_sys_flags); i++)
		if (strcasecmp(atom, imap_sys_flags[i].name) == 0) {
			*flag_r = imap_sys_flags[i].bit;
			return 0;
		}
	return -1;
}

static bool
imap_kw_known(const char *list, const char *kw, size_t len)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ' ');
		size_t l = end != NULL ? (size_t)(end - p) : strlen(p);
		if (l == len && strncasecmp(p, kw, len) == 0)
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

bool
imap_mbox_learn(struct imap_mailbox *mbox, const char *keywords)
{
	const char *p = keywords;
	bool grew = false;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ' ');
		size_t l = end != NULL ? (size_t)(end - p) : strlen(p);
		if (l > 0 && !imap_kw_known(mbox->keywords, p, l) &&
		    (mbox->keywords == NULL ||
		    strlen(mbox->keywords) < STORE_KEYWORDS_MAX)) {
			char *n = xasprintf("%s%s%.*s", mbox->keywords ?
			    mbox->keywords : "", mbox->keywords ? " " : "",
			    (int)l, p);
			free(mbox->keywords);
			mbox->keywords = n;
			grew = true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return grew;
}

void
imap_send_flags(struct imap_session *s)
{
	struct imap_mailbox *mbox = s->mbox;
	struct buf b;

	buf_init(&b, 0);
	imap_flags_out(&b, STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED |
	    STORE_FLAG_DELETED | STORE_FLAG_SEEN | STORE_FLAG_DRAFT,
	    mbox->keywords);
	imap_untagged(s, "FLAGS (%s)", b.data);
	/* RFC 9051 §7.1: a read-only mailbox allows no permanent change */
	if (mbox->readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(s, "OK [PERMANENTFLAGS (%s \\*)] Flags "
		    "permitted", b.data);
	buf_free(&b);
}

void
imap_uidset_out(struct buf *out, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n; ) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		buf_printf(out, "%s%u", i > 0 ? "," : "", uids[i]);
		if (j > i)
			buf_printf(out, ":%u", uids[j]);
		i = j + 1;
	}
}

static bool
imap_str_eq(const char *a, const char *b)
{
	return (a == NULL ? "" : a)[0] == (b == NULL ? "" : b)[0] &&
	    strcmp(a == NULL ? "" : a, b == NULL ? "" : b) == 0;
}

/* A changed message we know: new flags, reported as FETCH. */
static void
imap_sync_msg(struct imap_session *s, uint32_t seq,
    const struct store_sync_msg *m)
{
	struct imap_msg *cur = &s->mbox->msgs[seq - 1];
	struct buf b;

	if (cur->gone || (cur->flags == m->flags &&
	    imap_str_eq(cur->keywords, m->keywords) &&
	    (!s->condstore || cur->modseq == m->modseq))) {
		cur->modseq = m->modseq;
		return;
	}
	cur->flags = m->flags;
	cur->modseq = m->modseq;
	free(cur->keywords);
	cur->keywords = m->keywords ? xstrdup(m->keywords) : NULL;
	buf_init(&b, 0);
	imap_flags_out(&b, cur->flags, cur->keywords);
	if (s->condstore)
		imap_untagged(s, "%u FETCH (UID %u FLAGS (%s) MODSEQ (%llu))",
		    seq, cur->uid, b.data, (unsigned long long)cur->modseq);
	else
		imap_untagged(s, "%u FETCH (UID %u FLAGS (%s))", seq,
		    cur->uid, b.data);
	buf_free(&b);
}

static void
imap_sync_append(struct imap_mailbox *mbox, const struct store_sync_msg *m)
{
	struct imap_msg *n;

	if (mbox->count == mbox->cap) {
		mbox->cap = mbox->cap == 0 ? 64 : mbox->cap * 2;
		mbox->msgs = xreallocarray(mbox->msgs, mbox->cap,
		    sizeof(*mbox->msgs));
	}
	n = &mbox->msgs[mbox->count++];
	memset(n, 0, sizeof(*n));
	n->uid = m->uid;
	n->flags = m->flags;
	n->modseq = m->modseq;
	n->keywords = m->keywords ? xstrdup(m->keywords) : NULL;
}

/* Reports and removes the messages marked gone. */
static void
imap_sync_expunge(struct imap_session *s)
{
	struct imap_mailbox *mbox = s->mbox;
	size_t k = 0;

	if (mbox->ngone == 0)
		return;
	if (s->qresync) {
		/* RFC 7162 §3.2.10: VANISHED instead of EXPUNGE */
		uint32_t *uids = xreallocarray(NULL, mbox->ngone,
		    sizeof(*uids));
		size_t n = 0;
		struct buf b;
		for (size_t i = 0; i < mbox->count; i++)
			if (mbox->msgs[i].gone)
				uids[n++] = mbox->msgs[i].uid;
		buf_init(&b, 0);
		imap_uidset_out(&b, uids, n);
		imap_untagged(s, "VANISHED %s", b.data);
		buf_free(&b);
		free(uids);
	} else {
		/* highest first: the lower numbers stay valid */
		for (size_t i = mbox->count; i-- > 0; )
			if (mbox->msgs[i].gone)
				imap_untagged(s, "%zu EXPUNGE", i + 1);
	}
	for (size_t i = 0; i < mbox->count; i++) {
		if (mbox->msgs[i].gone)
			free(mbox->msgs[i].keywords);
		else
			mbox->msgs[k++] = mbox->msgs[i];
	}
	mbox->count = k;
	mbox->ngone = 0;
}

void
imap_sync_apply(struct imap_session *s, const struct store_changes *ch,
    bool expunge_ok)
{
	struct imap_mailbox *mbox = s->mbox;
	size_t known = mbox->count, added;
	bool grew = false;

	for (size_t i = 0; i < ch->nvanished; i++) {
		uint32_t seq = imap_mbox_seq(mbox, ch->vanished[i]);
		if (seq != 0 && !mbox->msgs[seq - 1].gone) {
			mbox->msgs[seq - 1].gone = true;
			mbox->ngone++;
		}
	}
	for (size_t i = 0; i < ch->count; i++) {
		const struct store_sync_msg *m = &ch->msgs[i];
		uint32_t seq = imap_mbox_seq(mbox, m->uid);
		grew |= imap_mbox_learn(mbox, m->keywords);
		if (seq != 0 && seq <= known)
			imap_sync_msg(s, seq, m);
		else if (seq == 0 && (mbox->count == 0 ||
		    m->uid > mbox->msgs[mbox->count - 1].uid))
			imap_sync_append(mbox, m);
	}
	added = mbox->count - known;
	if (grew)
		imap_send_flags(s);
	if (expunge_ok)
		imap_sync_expunge(s);
	if (added > 0)
		imap_untagged(s, "%zu EXISTS", mbox->count);
	mbox->uidnext = ch->uidnext;
	if (ch->highestmodseq > mbox->highestmodseq)
		mbox->highestmodseq = ch->highestmodseq;
}

/* ---- sequence sets ---- */

/* Appends n to the ranges of set (ascending input), merging neighbours;
 * set->ranges has room for one more range. */
static void
imap_saved_add(struct imap_seqset *set, uint32_t n)
{
	struct imap_seq_range *last = set->count > 0 ?
	    &set->ranges[set->count - 1] : NULL;

	if (last != NULL && (uint64_t)last->hi + 1 == n)
		last->hi = n;
	else
		set->ranges[set->count++] = (struct imap_seq_range){ n, n };
}

void
imap_saved_set(struct imap_mailbox *mbox, const uint32_t *uids, size_t n)
{
	imap_seqset_free(&mbox->saved);
	mbox->saved.ranges = xreallocarray(NULL, n + 1,
	    sizeof(*mbox->saved.ranges));
	for (size_t i = 0; i < n; i++)
		imap_saved_add(&mbox->saved, uids[i]);
	mbox->saved.resolved = true;
}

void
imap_mbox_resolve(const struct imap_mailbox *mbox, struct imap_seqset *set,
    bool uid)
{
	uint32_t max = uid ? (mbox->count > 0 ?
	    mbox->msgs[mbox->count - 1].uid : 0) : (uint32_t)mbox->count;
	struct imap_seqset saved = { .resolved = true };

	if (!set->saved || !mbox->saved.resolved) {
		imap_seqset_resolve(set, max, NULL);
		return;
	}
	/* RFC 5182 §2.1: expunged messages leave "$"; UIDs never come
	 * back, so the snapshot's members are what is left. */
	saved.ranges = xreallocarray(NULL, mbox->count + 1,
	    sizeof(*saved.ranges));
	for (size_t i = 0; i < mbox->count; i++)
		if (imap_seqset_contains(&mbox->saved, mbox->msgs[i].uid))
			imap_saved_add(&saved, uid ? mbox->msgs[i].uid :
			    (uint32_t)i + 1);
	imap_seqset_resolve(set, max, &saved);
	imap_seqset_free(&saved);
}

int
imap_seq_select(const struct imap_mailbox *mbox, const struct imap_arg *arg,
    bool uid, uint32_t **idx_r, size_t *n_r, const char **error_r)
{
	struct imap_seqset set;
	bool star = false;
	size_t n = 0;

	*idx_r = NULL;
	*n_r = 0;
	if (arg == NULL || arg->type != IMAP_ARG_ATOM) {
		*error_r = "Missing sequence set";
		return -1;
	}
	if (imap_seqset_parse(arg->str, arg->len, &set, error_r) < 0)
		return -1;
	for (size_t i = 0; i < set.count; i++)
		star |= set.ranges[i].lo == 0 || set.ranges[i].hi == 0;
	imap_mbox_resolve(mbox, &set, uid);
	if (!uid && imap_seqset_last(&set) > mbox->count &&
	    !(star && mbox->count == 0)) {
		imap_seqset_free(&set);
		*error_r = "Invalid sequence number";
		return -1;
	}
	*idx_r = xreallocarray(NULL, mbox->count + 1, sizeof(**idx_r));
	if (uid) {
		for (size_t i = 0; i < mbox->count; i++)
			if (imap_seqset_contains(&set, mbox->msgs[i].uid))
				(*idx_r)[n++] = (uint32_t)i;
	} else {
		struct imap_seqset_iter it;
		uint32_t seq;
		imap_seqset_iter_init(&it);
		while (imap_seqset_iter_next(&set, (uint32_t)mbox->count, &it,
		    &seq))
			(*idx_r)[n++] = seq - 1;
	}
	imap_seqset_free(&set);
	*n_r = n;
	return 0;
}
