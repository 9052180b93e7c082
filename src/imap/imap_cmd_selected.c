/*
 * imap_cmd_selected.c - the selected state (RFC 9051 §6.4): SELECT and
 * EXAMINE (also from the authenticated state, with CONDSTORE and QRESYNC
 * parameters, RFC 7162), NOOP, CHECK, IDLE (RFC 2177), CLOSE, UNSELECT
 * (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), COPY and MOVE (RFC
 * 6851) with COPYUID; the command table of the state and the hooks the
 * session calls.  FETCH, STORE, SEARCH, SORT and THREAD have files of
 * their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_cmd_quota.h"
#include "imap/imap_selected.h"

static void imap_cmd_select(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_check(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_idle(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_close(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_expunge(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_copy(struct imap_session *s,
    const struct imap_command *cmd, bool uid);

static const struct imap_cmd imap_selected[] = {
	{ "SELECT", IMAP_CMD_AUTH | IMAP_CMD_SELECTED, imap_cmd_select },
	{ "EXAMINE", IMAP_CMD_AUTH | IMAP_CMD_SELECTED, imap_cmd_select },
	{ "IDLE", IMAP_CMD_AUTH | IMAP_CMD_SELECTED, imap_cmd_idle },
	{ "NOOP", IMAP_CMD_SELECTED, imap_cmd_check },
	{ "CHECK", IMAP_CMD_SELECTED, imap_cmd_check },
	{ "CLOSE", IMAP_CMD_SELECTED, imap_cmd_close },
	{ "UNSELECT", IMAP_CMD_SELECTED, imap_cmd_close },
	{ "EXPUNGE", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_expunge },
	{ "FETCH", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_fetch },
	{ "STORE", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_store },
	{ "SEARCH", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_search },
	{ "SORT", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_sort },
	{ "THREAD", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_thread },
	{ "COPY", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_copy },
	{ "MOVE", IMAP_CMD_SELECTED | IMAP_CMD_UID, imap_cmd_copy },
};

const struct imap_cmd_table imap_cmds_selected = {
	imap_selected, MF_ARRAY_LEN(imap_selected),
	"IDLE UIDPLUS MOVE UNSELECT CONDSTORE QRESYNC ESEARCH SEARCHRES "
	"SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES",
};

/* ---- hooks of the session ---- */

void
imap_mailbox_free(struct imap_mailbox **mboxp)
{
	struct imap_mailbox *mbox = *mboxp;

	if (mbox == NULL)
		return;
	for (size_t i = 0; i < mbox->count; i++)
		free(mbox->msgs[i].keywords);
	free(mbox->msgs);
	free(mbox->keywords);
	imap_fetch_free(&mbox->fetch);
	imap_seqset_free(&mbox->saved);
	free(mbox);
	*mboxp = NULL;
}

void
imap_selected_changed(struct imap_session *s)
{
	/* RFC 2177: an idling client hears news at once; others at their
	 * next command. */
	if (s->wait == IMAP_WAIT_IDLE && s->state == IMAP_ST_SELECTED &&
	    s->mbox != NULL && s->store != NULL)
		imap_sync_start(s, "IDLE", true);
}

void
imap_idle_done(struct imap_session *s)
{
	imap_tagged(s, s->tag, "OK", "IDLE terminated");
}

/* ---- SELECT, EXAMINE ---- */

struct imap_select_job {
	struct imap_job base;
	bool readonly;
	bool qresync;			/* QRESYNC parameter given */
	uint32_t q_uidvalidity;
	uint64_t q_modseq;
	struct imap_seqset q_known;	/* known-uids, parsed */
	bool q_have_known;
	struct store_changes all;
	struct store_changes since;	/* QRESYNC: changes since q_modseq */
	int ret;
};

static void
imap_select_free(struct imap_job *j)
{
	struct imap_select_job *sj = (struct imap_select_job *)j;

	store_changes_free(&sj->all);
	store_changes_free(&sj->since);
	if (sj->q_have_known)
		imap_seqset_free(&sj->q_known);
	free(sj);
}

static void
imap_select_work(struct imap_job *j)
{
	struct imap_select_job *sj = (struct imap_select_job *)j;
	const char *err = NULL;

	sj->ret = store_changes_get(j->store, j->mailbox, 0, false, &sj->all,
	    &err);
	if (sj->ret == 1 && sj->qresync && sj->q_modseq > 0 &&
	    sj->q_uidvalidity == sj->all.uidvalidity)
		sj->ret = store_changes_get(j->store, j->mailbox,
		    sj->q_modseq, true, &sj->since, &err);
	if (sj->ret < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
}

/* RFC 7162 §3.2.5.1: VANISHED (EARLIER) and the FETCH of changes. */
static void
imap_select_qresync(struct imap_session *s, struct imap_select_job *sj)
{
	struct imap_mailbox *mbox = s->mbox;
	uint32_t *v = xreallocarray(NULL, sj->since.nvanished + 1,
	    sizeof(*v));
	size_t n = 0;
	struct buf b;

	if (sj->q_have_known)
		imap_seqset_resolve(&sj->q_known, UINT32_MAX, NULL);
	for (size_t i = 0; i < sj->since.nvanished; i++)
		if (!sj->q_have_known || imap_seqset_contains(&sj->q_known,
		    sj->since.vanished[i]))
			v[n++] = sj->since.vanished[i];
	buf_init(&b, 0);
	if (n > 0) {
		imap_uidset_out(&b, v, n);
		imap_untagged(s, "VANISHED (EARLIER) %s", b.data);
	}
	free(v);
	for (size_t i = 0; i < sj->since.count; i++) {
		uint32_t seq = imap_mbox_seq(mbox, sj->since.msgs[i].uid);
		const struct imap_msg *m;
		if (seq == 0)
			continue;
		m = &mbox->msgs[seq - 1];
		buf_reset(&b);
		imap_flags_out(&b, m->flags, m->keywords);
		imap_untagged(s, "%u FETCH (UID %u FLAGS (%s) MODSEQ (%llu))",
		    seq, m->uid, b.data, (unsigned long long)m->modseq);
	}
	buf_free(&b);
}

/* A mailbox name as an IMAP quoted string. */
static void
imap_quote(struct buf *out, const char *s)
{
	buf_addc(out, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf_addc(out, '\\');
		buf_addc(out, *s);
	}
	buf_addc(out, '"');
}

static void
imap_select_report(struct imap_session *s, struct imap_select_job *sj)
{
	struct imap_mailbox *mbox = s->mbox;
	struct buf b;

	imap_send_flags(s);
	imap_untagged(s, "%zu EXISTS", mbox->count);
	if (!s->rev2)
		imap_untagged(s, "0 RECENT");
	/* RFC 3501 §6.3.1; gone from IMAP4rev2 (RFC 9051 §6.3.2) */
	for (size_t i = 0; !s->rev2 && i < mbox->count; i++)
		if (!(mbox->msgs[i].flags & STORE_FLAG_SEEN)) {
			imap_untagged(s, "OK [UNSEEN %zu] First unseen", i + 1);
			break;
		}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", mbox->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %llu] Predicted next UID",
	    (unsigned long long)mbox->uidnext);
	imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
	    (unsigned long long)mbox->highestmodseq);
	if (s->rev2) {
		/* RFC 9051 §6.3.2: the LIST response with the name */
		buf_init(&b, 0);
		imap_quote(&b, mbox->name);
		imap_untagged(s, "LIST () \"" IMAP_HIER_DELIM "\" %s", b.data);
		buf_free(&b);
	}
	if (sj->qresync && sj->q_uidvalidity == mbox->uidvalidity)
		imap_select_qresync(s, sj);
}

static void
imap_select_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_select_job *sj = (struct imap_select_job *)j;
	struct imap_mailbox *mbox;

	if (sj->ret <= 0) {
		if (sj->ret < 0)
			log_warnx("%s imap select: %s", s->sid, j->error);
		imap_job_end(s, j, false, "NO", sj->ret == 0 ?
		    "[NONEXISTENT] Mailbox does not exist" :
		    "[UNAVAILABLE] Mailbox not available, try again later");
		return;
	}
	mbox = xmalloc(sizeof(*mbox));
	str_lcpy(mbox->name, j->mailbox, sizeof(mbox->name));
	mbox->readonly = sj->readonly;
	mbox->uidvalidity = sj->all.uidvalidity;
	mbox->uidnext = sj->all.uidnext;
	mbox->highestmodseq = sj->all.highestmodseq;
	/* the listing becomes the snapshot: take its messages over */
	mbox->cap = mbox->count = sj->all.count;
	mbox->msgs = xreallocarray(NULL, mbox->count + 1,
	    sizeof(*mbox->msgs));
	for (size_t i = 0; i < mbox->count; i++) {
		struct store_sync_msg *m = &sj->all.msgs[i];
		mbox->msgs[i] = (struct imap_msg){ m->uid, m->flags,
		    m->modseq, m->keywords, false };
		m->keywords = NULL;
		(void)imap_mbox_learn(mbox, mbox->msgs[i].keywords);
	}
	s->mbox = mbox;
	imap_set_state(s, IMAP_ST_SELECTED);
	imap_select_report(s, sj);
	log_debug("%s imap select mailbox=%s messages=%zu", s->sid,
	    mbox->name, mbox->count);
	imap_job_end(s, j, false, "OK", "[%s] %s completed",
	    sj->readonly ? "READ-ONLY" : "READ-WRITE",
	    sj->readonly ? "EXAMINE" : "SELECT");
}

/* QRESYNC (uidvalidity modseq [known-uids [seq-match]]), RFC 7162 §3.2.5. */
static int
imap_select_qresync_arg(struct imap_select_job *sj, const struct imap_arg *l)
{
	uint64_t v;
	const char *err;

	if (l == NULL || l->type != IMAP_ARG_LIST || l->count < 2 ||
	    l->count > 4 || imap_arg_number(l->list, 1, UINT32_MAX, &v) < 0)
		return -1;
	sj->q_uidvalidity = (uint32_t)v;
	if (imap_arg_number(l->list->next, 1, INT64_MAX, &sj->q_modseq) < 0)
		return -1;
	l = l->list->next->next;
	if (l != NULL && l->type == IMAP_ARG_ATOM) {
		if (imap_seqset_parse(l->str, l->len, &sj->q_known, &err) < 0)
			return -1;
		sj->q_have_known = true;
		l = l->next;
	}
	/* XXX: seq-match data only saves work; we answer without it. */
	return l == NULL || l->type == IMAP_ARG_LIST ? 0 : -1;
}

static int
imap_select_params(struct imap_session *s, struct imap_select_job *sj,
    const struct imap_arg *a, const char **error_r)
{
	*error_r = "Invalid SELECT parameters";
	if (a == NULL)
		return 0;
	if (a->type != IMAP_ARG_LIST || a->next != NULL)
		return -1;
	for (a = a->list; a != NULL; a = a->next) {
		if (imap_arg_is_atom(a, "CONDSTORE")) {
			s->condstore = true;
		} else if (imap_arg_is_atom(a, "QRESYNC")) {
			if (!s->qresync) {
				*error_r = "QRESYNC is not enabled";
				return -1;
			}
			a = a->next;
			if (imap_select_qresync_arg(sj, a) < 0)
				return -1;
			sj->qresync = true;
		} else {
			return -1;
		}
	}
	return 0;
}

static void
imap_cmd_select(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_select_job *sj;
	char name[IMAP_MAILBOX_MAX + 1];
	const char *err;

	if (cmd->count < 1 || cmd->count > 2 ||
	    imap_arg_mailbox(cmd->args, s->utf8, name, &err) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %s mailbox",
		    cmd->name);
		return;
	}
	sj = xmalloc(sizeof(*sj));
	if (imap_select_params(s, sj, cmd->args->next, &err) < 0) {
		imap_select_free(&sj->base);
		imap_tagged(s, cmd->tag, "BAD", "%s", err);
		return;
	}
	/* RFC 9051 §6.3.2: the old mailbox closes first, even if the new
	 * one cannot be selected; [CLOSED] marks the moment. */
	if (s->mbox != NULL) {
		imap_mailbox_free(&s->mbox);
		imap_set_state(s, IMAP_ST_AUTH);
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	imap_job_init(s, &sj->base, imap_select_work, imap_select_done,
	    imap_select_free);
	str_lcpy(sj->base.mailbox, name, sizeof(sj->base.mailbox));
	sj->readonly = strcmp(cmd->name, "EXAMINE") == 0;
	imap_job_start(s, &sj->base);
}

/* ---- NOOP, CHECK, IDLE ---- */

static void
imap_cmd_check(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", "%s takes no arguments",
		    cmd->name);
		return;
	}
	imap_sync_start(s, cmd->name, false);
}

static void
imap_cmd_idle(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", "IDLE takes no arguments");
		return;
	}
	imap_write(s, "+ idling\r\n", 10);
	if (s->state == IMAP_ST_SELECTED) {
		imap_sync_start(s, "IDLE", true);
		return;
	}
	imap_set_wait(s, IMAP_WAIT_IDLE);
}

/* ---- CLOSE, UNSELECT, EXPUNGE ---- */

struct imap_expunge_job {
	struct imap_job base;
	struct imap_seqset set;		/* UID EXPUNGE */
	bool have_set;
	uint64_t expunged;
	int ret;
};

static void
imap_expunge_free(struct imap_job *j)
{
	struct imap_expunge_job *ej = (struct imap_expunge_job *)j;

	if (ej->have_set)
		imap_seqset_free(&ej->set);
	free(ej);
}

static void
imap_expunge_work(struct imap_job *j)
{
	struct imap_expunge_job *ej = (struct imap_expunge_job *)j;
	const char *err = NULL;
	uint32_t *uids = NULL;
	size_t n = 0, k = 0;

	ej->ret = store_deleted_uids(j->store, j->mailbox, &uids, &n, &err);
	for (size_t i = 0; ej->ret == 1 && i < n; i++)
		if (!ej->have_set || imap_seqset_contains(&ej->set, uids[i]))
			uids[k++] = uids[i];
	if (ej->ret == 1 && store_expunge(j->store, j->mailbox, uids, k,
	    &ej->expunged, &err) < 0)
		ej->ret = -1;
	if (ej->ret < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
	free(uids);
}

static void
imap_expunge_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_expunge_job *ej = (struct imap_expunge_job *)j;
	bool close = !j->sync;

	if (ej->ret < 0)
		log_warnx("%s imap expunge: %s", s->sid, j->error);
	if (ej->expunged > 0) {
		log_info("%s imap expunge mailbox=%s count=%llu", s->sid,
		    j->mailbox, (unsigned long long)ej->expunged);
		ipc_notify_changed(s->user);
	}
	if (close) {
		/* RFC 9051 §6.4.1: CLOSE expunges silently */
		imap_mailbox_free(&s->mbox);
		imap_set_state(s, IMAP_ST_AUTH);
	}
	if (ej->ret < 0)
		imap_job_end(s, j, true, "NO", "[UNAVAILABLE] Expunge failed");
	else
		imap_job_end(s, j, true, "OK", "%s completed",
		    close ? "CLOSE" : "EXPUNGE");
}

static void
imap_cmd_close(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_expunge_job *ej;

	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", "%s takes no arguments",
		    cmd->name);
		return;
	}
	if (strcmp(cmd->name, "UNSELECT") == 0 || s->mbox->readonly) {
		imap_mailbox_free(&s->mbox);
		imap_set_state(s, IMAP_ST_AUTH);
		imap_tagged(s, cmd->tag, "OK", "%s completed", cmd->name);
		return;
	}
	ej = xmalloc(sizeof(*ej));
	imap_job_init(s, &ej->base, imap_expunge_work, imap_expunge_done,
	    imap_expunge_free);
	ej->base.sync = false;		/* no responses: see done */
	imap_job_start(s, &ej->base);
}

static void
imap_cmd_expunge(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_expunge_job *ej;
	const char *err;

	if (cmd->count != (uid ? 1 : 0) || (uid &&
	    cmd->args->type != IMAP_ARG_ATOM)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %sEXPUNGE%s",
		    uid ? "UID " : "", uid ? " uid-set" : "");
		return;
	}
	if (s->mbox->readonly) {
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] Mailbox is "
		    "read-only");
		return;
	}
	ej = xmalloc(sizeof(*ej));
	if (uid) {
		if (imap_seqset_parse(cmd->args->str, cmd->args->len,
		    &ej->set, &err) < 0) {
			free(ej);
			imap_tagged(s, cmd->tag, "BAD", "%s", err);
			return;
		}
		ej->have_set = true;
		imap_mbox_resolve(s->mbox, &ej->set, true);
	}
	imap_job_init(s, &ej->base, imap_expunge_work, imap_expunge_done,
	    imap_expunge_free);
	imap_job_start(s, &ej->base);
}

/* ---- COPY, MOVE ---- */

struct imap_copy_job {
	struct imap_job base;
	bool move;
	char to[IMAP_MAILBOX_MAX + 1];
	uint32_t *uids;
	size_t n;
	uint32_t uidvalidity;
	uint32_t *src, *dst;
	size_t ncopied;
	int ret;
	uint64_t quota;			/* bytes; 0: unlimited or MOVE */
	bool over_quota;		/* refused: ret 0 */
};

static void
imap_copy_free(struct imap_job *j)
{
	struct imap_copy_job *cj = (struct imap_copy_job *)j;

	free(cj->uids);
	free(cj->src);
	free(cj->dst);
	free(cj);
}

/*
 * RFC 9208 §4.4: 1 when the copies fit the quota, 0 (over_quota) when
 * not, -1 on error.  MOVE is never refused: within our one quota root it
 * adds nothing, and a full account must still be able to file its mail.
 * XXX: outside store_copy()'s transaction, so concurrent deliveries may
 * overshoot by what they add meanwhile.
 */
static int
imap_copy_quota(struct imap_copy_job *cj, const char **err_r)
{
	uint64_t add = 0, used = 0, messages = 0;
	int ret;

	if (cj->quota == 0)
		return 1;
	ret = store_uids_size(cj->base.store, cj->base.mailbox, cj->uids,
	    cj->n, &add, err_r);
	if (ret <= 0)	/* 0: the mailbox went; store_copy() tells */
		return ret < 0 ? -1 : 1;
	if (store_usage(cj->base.store, &used, &messages) < 0) {
		*err_r = "read usage";
		return -1;
	}
	cj->over_quota = imap_quota_exceeded(cj->quota, used, add);
	return cj->over_quota ? 0 : 1;
}

static void
imap_copy_work(struct imap_job *j)
{
	struct imap_copy_job *cj = (struct imap_copy_job *)j;
	const char *err = NULL;

	cj->ret = imap_copy_quota(cj, &err);
	/* MOVE is one store transaction: a crash never leaves the
	 * messages in both mailboxes (RFC 6851 §3.3 atomicity). */
	if (cj->ret == 1 && cj->move)
		cj->ret = store_move(j->store, j->mailbox, cj->to, cj->uids,
		    cj->n, &cj->uidvalidity, &cj->src, &cj->dst,
		    &cj->ncopied, &err);
	else if (cj->ret == 1)
		cj->ret = store_copy(j->store, j->mailbox, cj->to, cj->uids,
		    cj->n, &cj->uidvalidity, &cj->src, &cj->dst,
		    &cj->ncopied, &err);
	if (cj->ret < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
}

static void
imap_copy_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_copy_job *cj = (struct imap_copy_job *)j;
	const char *what = cj->move ? "MOVE" : "COPY";
	struct buf b;

	if (cj->ret <= 0) {
		if (cj->ret < 0)
			log_warnx("%s imap %s: %s", s->sid, what, j->error);
		if (cj->over_quota)
			imap_job_end(s, j, false, "NO", "%s",
			    IMAP_QUOTA_OVER_TEXT);
		else if (cj->ret == 0)
			imap_job_end(s, j, false, "NO", "[TRYCREATE] Mailbox "
			    "does not exist");
		else
			imap_job_end(s, j, false, "NO", "[UNAVAILABLE] %s "
			    "failed", what);
		return;
	}
	if (cj->ncopied > 0)
		ipc_notify_changed(s->user);
	buf_init(&b, 0);
	if (cj->ncopied > 0) {
		/* RFC 4315 §3 COPYUID; RFC 6851 §4.3: untagged for MOVE */
		buf_printf(&b, "[COPYUID %u ", cj->uidvalidity);
		imap_uidset_out(&b, cj->src, cj->ncopied);
		buf_addc(&b, ' ');
		imap_uidset_out(&b, cj->dst, cj->ncopied);
		buf_adds(&b, "] ");
	}
	if (cj->move && cj->ncopied > 0) {
		imap_untagged(s, "OK %sMoved", b.data);
		buf_reset(&b);
	}
	imap_job_end(s, j, cj->move, "OK", "%s%s completed",
	    b.len > 0 ? b.data : "", what);
	buf_free(&b);
}

static void
imap_cmd_copy(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_copy_job *cj;
	char name[IMAP_MAILBOX_MAX + 1];
	const char *err = "Syntax: COPY sequence-set mailbox";
	uint32_t *idx;
	size_t n;

	if (cmd->count != 2 ||
	    imap_arg_mailbox(cmd->args->next, s->utf8, name, &err) < 0 ||
	    imap_seq_select(s->mbox, cmd->args, uid, &idx, &n, &err) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "%s", err);
		return;
	}
	if (strcmp(cmd->name, "MOVE") == 0 && s->mbox->readonly) {
		free(idx);
		imap_tagged(s, cmd->tag, "NO", "[READ-ONLY] Mailbox is "
		    "read-only");
		return;
	}
	cj = xmalloc(sizeof(*cj));
	cj->move = strcmp(cmd->name, "MOVE") == 0;
	cj->quota = cj->move ? 0 : imap_quota_limit(s);
	str_lcpy(cj->to, name, sizeof(cj->to));
	cj->uids = xreallocarray(NULL, n + 1, sizeof(*cj->uids));
	for (size_t i = 0; i < n; i++)
		cj->uids[i] = s->mbox->msgs[idx[i]].uid;
	cj->n = n;
	free(idx);
	imap_job_init(s, &cj->base, imap_copy_work, imap_copy_done,
	    imap_copy_free);
	imap_job_start(s, &cj->base);
}
