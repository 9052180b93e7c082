/*
 * store_select.c - what the IMAP selected state needs of a store: change
 * listings by MODSEQ (SELECT, NOOP, IDLE; RFC 7162), single rows for
 * FETCH with the ENVELOPE/BODYSTRUCTURE cache, full listings for SEARCH,
 * flag changes (STORE, \Seen by FETCH), the \Deleted list for EXPUNGE,
 * and COPY and MOVE sharing message files.
 *
 * Every change of a message takes a new MODSEQ and raises the mailbox's
 * HIGHESTMODSEQ in the same transaction, so "modseq > since" finds every
 * change since a session's last look, and the expunged table the rest.
 * Statements are prepared per call, as in store_mailbox.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "store/store_private.h"

#define STORE_SEL_INITIAL 64	/* first allocation of a listing */

static char *
store_sel_text(sqlite3_stmt *stmt, int col)
{
	const char *t = (const char *)sqlite3_column_text(stmt, col);

	return t != NULL && *t != '\0' ? xstrdup(t) : NULL;
}

static int
store_sel_begin(struct store *store, const char *sql, const char **error_r)
{
	xassert(!store->batch);
	if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "begin");
	return 0;
}

static int
store_sel_commit(struct store *store, int ret, const char **error_r)
{
	if (ret >= 0 && sqlite3_exec(store->db, "COMMIT", NULL, NULL,
	    NULL) != SQLITE_OK)
		ret = store_fail_db(store, error_r, "commit");
	if (ret < 0)
		store_tx_rollback(store);
	return ret;
}

/* ---- change listings ---- */

static int
store_changes_head(struct store *store, const char *mailbox,
    struct store_changes *ch, int64_t *id_r, const char **error_r)
{
	struct store_mbox mbox;
	int ret = store_mbox_get(store, mailbox, &mbox, error_r);

	if (ret == 1) {
		*id_r = mbox.id;
		ch->uidvalidity = mbox.uidvalidity;
		ch->uidnext = mbox.uidnext;
		ch->highestmodseq = mbox.highestmodseq;
	}
	return ret;
}

static int
store_changes_msgs(struct store *store, int64_t id, uint64_t since,
    struct store_changes *ch, const char **error_r)
{
	sqlite3_stmt *stmt;
	size_t cap = 0;
	int rc, ret = 0;

	if (store_sql_prepare(store, "SELECT uid, flags, modseq, keywords"
	    " FROM messages WHERE mailbox_id = ?1 AND modseq > ?2"
	    " ORDER BY uid", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, (int64_t)since);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_sync_msg *m;
		if (ch->count == STORE_LIST_MAX) {
			ret = store_fail(store, error_r, "more than %d "
			    "messages", STORE_LIST_MAX);
			break;
		}
		if (ch->count == cap) {
			cap = cap == 0 ? STORE_SEL_INITIAL : cap * 2;
			ch->msgs = xreallocarray(ch->msgs, cap,
			    sizeof(*ch->msgs));
		}
		m = &ch->msgs[ch->count++];
		m->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
		m->flags = (uint32_t)sqlite3_column_int64(stmt, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(stmt, 2);
		m->keywords = store_sel_text(stmt, 3);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_db(store, error_r, "list changes");
	sqlite3_finalize(stmt);
	return ret;
}

static int
store_changes_vanished(struct store *store, int64_t id, uint64_t since,
    struct store_changes *ch, const char **error_r)
{
	sqlite3_stmt *stmt;
	size_t cap = 0;
	int rc, ret = 0;

	if (store_sql_prepare(store, "SELECT uid FROM expunged"
	    " WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid", &stmt,
	    error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, (int64_t)since);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (ch->nvanished == STORE_LIST_MAX) {
			ret = store_fail(store, error_r, "too many expunges");
			break;
		}
		if (ch->nvanished == cap) {
			cap = cap == 0 ? STORE_SEL_INITIAL : cap * 2;
			ch->vanished = xreallocarray(ch->vanished, cap,
			    sizeof(*ch->vanished));
		}
		ch->vanished[ch->nvanished++] =
		    (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_db(store, error_r, "list expunges");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_changes_get(struct store *store, const char *mailbox, uint64_t since,
    bool vanished, struct store_changes *ch_r, const char **error_r)
{
	int64_t id = 0;
	int ret;

	memset(ch_r, 0, sizeof(*ch_r));
	if (store_sel_begin(store, "BEGIN", error_r) < 0)
		return -1;
	ret = store_changes_head(store, mailbox, ch_r, &id, error_r);
	/* Nothing changed: the common NOOP costs one lookup. */
	if (ret == 1 && (since == 0 || ch_r->highestmodseq > since) &&
	    store_changes_msgs(store, id, since, ch_r, error_r) < 0)
		ret = -1;
	if (ret == 1 && vanished && since > 0 &&
	    ch_r->highestmodseq > since &&
	    store_changes_vanished(store, id, since, ch_r, error_r) < 0)
		ret = -1;
	ret = store_sel_commit(store, ret, error_r);
	if (ret < 0)
		store_changes_free(ch_r);
	return ret;
}

void
store_changes_free(struct store_changes *ch)
{
	for (size_t i = 0; i < ch->count; i++)
		free(ch->msgs[i].keywords);
	x_free(&ch->msgs);
	x_free(&ch->vanished);
	ch->count = ch->nvanished = 0;
}

/* ---- rows ---- */

/* Columns 0..5 of a row query: uid, flags, modseq, size, internaldate,
 * file; then keywords. */
static int
store_row_fill(struct store *store, sqlite3_stmt *stmt,
    struct store_row *row, const char **error_r)
{
	const char *file = (const char *)sqlite3_column_text(stmt, 5);
	size_t len = file != NULL ? strlen(file) : 0;

	row->uid = (uint32_t)sqlite3_column_int64(stmt, 0);
	row->flags = (uint32_t)sqlite3_column_int64(stmt, 1);
	row->modseq = (uint64_t)sqlite3_column_int64(stmt, 2);
	row->size = (uint64_t)sqlite3_column_int64(stmt, 3);
	row->internaldate = sqlite3_column_int64(stmt, 4);
	row->keywords = store_sel_text(stmt, 6);
	if (len == 0 || len > STORE_MSG_FILE_MAX || file[0] == '.' ||
	    strchr(file, '/') != NULL)
		return store_fail(store, error_r, "bad file name of UID %u",
		    row->uid);
	memcpy(row->file, file, len + 1);
	return 0;
}

/* The cached part tree of column col, copied (NULL when none). */
static void
store_row_tree(sqlite3_stmt *stmt, int col, struct store_row *row)
{
	const void *blob = sqlite3_column_blob(stmt, col);
	int len = sqlite3_column_bytes(stmt, col);

	if (blob == NULL || len <= 0)
		return;
	row->mime_tree = xmalloc((size_t)len);
	memcpy(row->mime_tree, blob, (size_t)len);
	row->mime_tree_len = (size_t)len;
}

int
store_row_get(struct store *store, const char *mailbox, uint32_t uid,
    struct store_row *row_r, const char **error_r)
{
	struct store_mbox mbox;
	sqlite3_stmt *stmt;
	int rc, ret;

	memset(row_r, 0, sizeof(*row_r));
	ret = store_mbox_get(store, mailbox, &mbox, error_r);
	if (ret <= 0)
		return ret;
	if (store_sql_prepare(store, "SELECT uid, flags, modseq, size,"
	    " internaldate, file, keywords, envelope, bodystructure,"
	    " mime_tree FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
	    &stmt,
	    error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, mbox.id);
	sqlite3_bind_int64(stmt, 2, uid);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		ret = store_row_fill(store, stmt, row_r, error_r) < 0 ? -1 : 1;
		row_r->envelope = store_sel_text(stmt, 7);
		row_r->bodystructure = store_sel_text(stmt, 8);
		store_row_tree(stmt, 9, row_r);
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_fail_db(store, error_r, "read message");
	}
	sqlite3_finalize(stmt);
	if (ret < 0)
		store_row_clear(row_r);
	return ret;
}

void
store_row_clear(struct store_row *row)
{
	x_free(&row->keywords);
	x_free(&row->envelope);
	x_free(&row->bodystructure);
	x_free(&row->mime_tree);
	row->mime_tree_len = 0;
}

static int
store_rows_read(struct store *store, int64_t id, struct store_row **rows_r,
    size_t *count_r, const char **error_r)
{
	sqlite3_stmt *stmt;
	size_t cap = 0;
	int rc, ret = 0;

	if (store_sql_prepare(store, "SELECT uid, flags, modseq, size,"
	    " internaldate, file, keywords FROM messages"
	    " WHERE mailbox_id = ?1 ORDER BY uid", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	while (ret == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (*count_r == STORE_LIST_MAX) {
			ret = store_fail(store, error_r, "more than %d "
			    "messages", STORE_LIST_MAX);
			break;
		}
		if (*count_r == cap) {
			cap = cap == 0 ? STORE_SEL_INITIAL : cap * 2;
			*rows_r = xreallocarray(*rows_r, cap,
			    sizeof(**rows_r));
		}
		memset(&(*rows_r)[*count_r], 0, sizeof(**rows_r));
		ret = store_row_fill(store, stmt, &(*rows_r)[*count_r],
		    error_r);
		(*count_r)++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_db(store, error_r, "list messages");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_rows_list(struct store *store, const char *mailbox,
    struct store_row **rows_r, size_t *count_r, const char **error_r)
{
	struct store_mbox mbox;
	int ret;

	*rows_r = NULL;
	*count_r = 0;
	if (store_sel_begin(store, "BEGIN", error_r) < 0)
		return -1;
	ret = store_mbox_get(store, mailbox, &mbox, error_r);
	if (ret == 1 && store_rows_read(store, mbox.id, rows_r, count_r,
	    error_r) < 0)
		ret = -1;
	ret = store_sel_commit(store, ret, error_r);
	if (ret < 0)
		store_rows_free(rows_r, *count_r);
	return ret;
}

void
store_rows_free(struct store_row **rows, size_t count)
{
	for (size_t i = 0; *rows != NULL && i < count; i++)
		store_row_clear(&(*rows)[i]);
	x_free(rows);
}

int
store_row_open(struct store *store, const struct store_row *row, int *fd_r,
    const char **error_r)
{
	int fd = openat(store->msg_fd, row->file,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1 && errno == ENOENT)
		return 0;
	if (fd == -1)
		return store_fail_errno(store, error_r, "open message file");
	*fd_r = fd;
	return 1;
}

int
store_cache_set(struct store *store, const char *mailbox, uint32_t uid,
    const char *envelope, const char *bodystructure, const void *tree,
    size_t tree_len, const char **error_r)
{
	struct store_mbox mbox;
	sqlite3_stmt *stmt;
	int ret;

	ret = store_mbox_get(store, mailbox, &mbox, error_r);
	if (ret <= 0)
		return ret;
	if (store_sql_prepare(store, "UPDATE messages SET envelope = ?3,"
	    " bodystructure = ?4, mime_tree = coalesce(?5, mime_tree)"
	    " WHERE mailbox_id = ?1 AND uid = ?2", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, mbox.id);
	sqlite3_bind_int64(stmt, 2, uid);
	sqlite3_bind_text(stmt, 3, envelope, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, bodystructure, -1, SQLITE_STATIC);
	if (tree != NULL)
		sqlite3_bind_blob64(stmt, 5, tree, (sqlite3_uint64)tree_len,
		    SQLITE_STATIC);
	ret = sqlite3_step(stmt) == SQLITE_DONE ? 0 :
	    store_fail_db(store, error_r, "cache");
	sqlite3_finalize(stmt);
	return ret;
}

/* ---- flags ---- */

static int
store_kw_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits a keywords text into xmalloc'd words (at most max). */
static size_t
store_kw_split(const char *text, char **words, size_t max)
{
	size_t n = 0;

	while (text != NULL && *text != '\0' && n < max) {
		const char *end = strchr(text, ' ');
		size_t len = end != NULL ? (size_t)(end - text) : strlen(text);
		if (len > 0)
			words[n++] = xstrndup(text, len);
		text += len;
		while (*text == ' ')
			text++;
	}
	return n;
}

static bool
store_kw_has(char **words, size_t n, const char *w)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(words[i], w) == 0)
			return true;
	return false;
}

#define STORE_KW_COUNT_MAX 256	/* keywords per message */

/* The keywords after applying op; xmalloc'd text or NULL for none. */
static char *
store_kw_apply(const char *old, enum store_flags_op op, const char *req)
{
	char *cur[STORE_KW_COUNT_MAX], *chg[STORE_KW_COUNT_MAX];
	size_t ncur = 0, nchg = store_kw_split(req, chg, STORE_KW_COUNT_MAX);
	struct buf out;

	if (op != STORE_FLAGS_SET)
		ncur = store_kw_split(old, cur, STORE_KW_COUNT_MAX);
	for (size_t i = 0; i < nchg; i++) {
		if (op == STORE_FLAGS_REMOVE) {
			for (size_t j = 0; j < ncur; j++)
				if (cur[j] != NULL &&
				    strcasecmp(cur[j], chg[i]) == 0)
					x_free(&cur[j]);
			free(chg[i]);
		} else if (!store_kw_has(cur, ncur, chg[i]) &&
		    ncur < STORE_KW_COUNT_MAX) {
			cur[ncur++] = chg[i];
		} else {
			free(chg[i]);
		}
		/* REMOVE leaves holes: compact below */
	}
	size_t k = 0;
	for (size_t j = 0; j < ncur; j++)
		if (cur[j] != NULL)
			cur[k++] = cur[j];
	qsort(cur, k, sizeof(*cur), store_kw_cmp);
	buf_init(&out, 0);
	for (size_t j = 0; j < k; j++) {
		if (out.len + strlen(cur[j]) + 1 <= STORE_KEYWORDS_MAX)
			buf_printf(&out, "%s%s", out.len > 0 ? " " : "",
			    cur[j]);
		free(cur[j]);
	}
	if (out.len == 0) {
		buf_free(&out);
		return NULL;
	}
	return out.data;
}

static uint32_t
store_flags_apply(uint32_t old, enum store_flags_op op, uint32_t flags)
{
	switch (op) {
	case STORE_FLAGS_SET:
		return flags;
	case STORE_FLAGS_ADD:
		return old | flags;
	case STORE_FLAGS_REMOVE:
		return old & ~flags;
	}
	return old;
}

struct store_fl {
	struct store *store;
	sqlite3_stmt *get, *set;
	int64_t id;
	uint64_t modseq;	/* the new one */
	bool changed;
};

static int
store_fl_one(struct store_fl *fl, const struct store_flags_req *req,
    uint32_t uid, struct store_flags_res *res, const char **error_r)
{
	const char *kw;
	uint64_t modseq;
	uint32_t flags;
	char *nkw;
	int rc;

	sqlite3_reset(fl->get);
	sqlite3_bind_int64(fl->get, 1, fl->id);
	sqlite3_bind_int64(fl->get, 2, uid);
	rc = sqlite3_step(fl->get);
	if (rc == SQLITE_DONE) {
		res->status = STORE_FLAGS_GONE;
		return 0;
	}
	if (rc != SQLITE_ROW)
		return store_fail_db(fl->store, error_r, "read flags");
	flags = (uint32_t)sqlite3_column_int64(fl->get, 0);
	kw = (const char *)sqlite3_column_text(fl->get, 1);
	modseq = (uint64_t)sqlite3_column_int64(fl->get, 2);
	res->flags = store_flags_apply(flags, req->op, req->flags);
	res->keywords = store_kw_apply(kw, req->op, req->keywords);
	res->modseq = modseq;
	nkw = kw != NULL && *kw != '\0' ? xstrdup(kw) : NULL;
	if (req->conditional && modseq > req->unchangedsince) {
		/* RFC 7162 §3.1.3: left alone, reported MODIFIED */
		free(res->keywords);
		res->keywords = nkw;
		res->flags = flags;
		res->status = STORE_FLAGS_MODIFIED;
		return 0;
	}
	if (res->flags == flags && ((res->keywords == NULL && nkw == NULL) ||
	    (res->keywords != NULL && nkw != NULL &&
	    strcmp(res->keywords, nkw) == 0))) {
		free(nkw);
		res->status = STORE_FLAGS_SAME;
		return 0;
	}
	free(nkw);
	sqlite3_reset(fl->set);
	sqlite3_bind_int64(fl->set, 1, fl->id);
	sqlite3_bind_int64(fl->set, 2, uid);
	sqlite3_bind_int64(fl->set, 3, res->flags);
	sqlite3_bind_text(fl->set, 4, res->keywords ? res->keywords : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(fl->set, 5, (int64_t)fl->modseq);
	if (sqlite3_step(fl->set) != SQLITE_DONE)
		return store_fail_db(fl->store, error_r, "set flags");
	res->modseq = fl->modseq;
	res->status = STORE_FLAGS_CHANGED;
	fl->changed = true;
	return 0;
}

static int
store_fl_run(struct store_fl *fl, const char *mailbox,
    const struct store_flags_req *req, const uint32_t *uids, size_t count,
    struct store_flags_res *res, const char **error_r)
{
	struct store *store = fl->store;
	struct store_mbox mbox;
	sqlite3_stmt *bump;
	int ret;

	ret = store_mbox_get(store, mailbox, &mbox, error_r);
	if (ret <= 0)
		return ret;
	fl->id = mbox.id;
	fl->modseq = mbox.highestmodseq + 1;
	if (store_sql_prepare(store, "SELECT flags, keywords, modseq FROM"
	    " messages WHERE mailbox_id = ?1 AND uid = ?2", &fl->get,
	    error_r) < 0 || store_sql_prepare(store, "UPDATE messages SET"
	    " flags = ?3, keywords = ?4, modseq = ?5 WHERE mailbox_id = ?1"
	    " AND uid = ?2", &fl->set, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (store_fl_one(fl, req, uids[i], &res[i], error_r) < 0)
			return -1;
	if (!fl->changed)
		return 1;
	bump = store_stmt(store, STORE_STMT_MAILBOX_BUMP);
	sqlite3_bind_int64(bump, 1, mbox.id);
	sqlite3_bind_int64(bump, 2, (int64_t)mbox.uidnext);
	sqlite3_bind_int64(bump, 3, (int64_t)fl->modseq);
	return store_stmt_exec(store, STORE_STMT_MAILBOX_BUMP, error_r) < 0 ?
	    -1 : 1;
}

int
store_flags_change(struct store *store, const char *mailbox,
    const struct store_flags_req *req, const uint32_t *uids, size_t count,
    struct store_flags_res *res, const char **error_r)
{
	struct store_fl fl = { .store = store };
	int ret;

	memset(res, 0, count * sizeof(*res));
	if (store_sel_begin(store, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	ret = store_fl_run(&fl, mailbox, req, uids, count, res, error_r);
	sqlite3_finalize(fl.get);
	sqlite3_finalize(fl.set);
	ret = store_sel_commit(store, ret, error_r);
	if (ret < 0)
		store_flags_res_clear(res, count);
	return ret;
}

void
store_flags_res_clear(struct store_flags_res *res, size_t count)
{
	for (size_t i = 0; i < count; i++)
		x_free(&res[i].keywords);
}

int
store_deleted_uids(struct store *store, const char *mailbox,
    uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	struct store_mbox mbox;
	sqlite3_stmt *stmt;
	size_t cap = 0;
	int rc, ret;

	*uids_r = NULL;
	*count_r = 0;
	ret = store_mbox_get(store, mailbox, &mbox, error_r);
	if (ret <= 0)
		return ret;
	if (store_sql_prepare(store, "SELECT uid FROM messages WHERE"
	    " mailbox_id = ?1 AND (flags & ?2) <> 0 ORDER BY uid", &stmt,
	    error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, mbox.id);
	sqlite3_bind_int64(stmt, 2, STORE_FLAG_DELETED);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW &&
	    *count_r < STORE_LIST_MAX) {
		if (*count_r == cap) {
			cap = cap == 0 ? STORE_SEL_INITIAL : cap * 2;
			*uids_r = xreallocarray(*uids_r, cap, sizeof(**uids_r));
		}
		(*uids_r)[(*count_r)++] =
		    (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		ret = store_fail_db(store, error_r, "list deleted");
		x_free(uids_r);
		*count_r = 0;
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* ---- copy ---- */

struct store_cp {
	struct store *store;
	bool move;			/* store_move(): usage stays */
	struct store_mbox from, to;
	sqlite3_stmt *ins;
	uint64_t bytes;
	uint32_t *src, *dst;
	size_t n;
};

static int
store_cp_one(struct store_cp *cp, uint32_t uid, const char **error_r)
{
	sqlite3_stmt *ins = cp->ins;
	int rc;

	if (cp->to.uidnext > UINT32_MAX)
		return store_fail(cp->store, error_r, "mailbox UIDs used up");
	sqlite3_reset(ins);
	sqlite3_bind_int64(ins, 1, cp->to.id);
	sqlite3_bind_int64(ins, 2, (int64_t)cp->to.uidnext);
	sqlite3_bind_int64(ins, 3, (int64_t)cp->to.highestmodseq + 1);
	sqlite3_bind_int64(ins, 4, cp->from.id);
	sqlite3_bind_int64(ins, 5, uid);
	rc = sqlite3_step(ins);
	if (rc == SQLITE_DONE)
		return 0;		/* gone meanwhile */
	if (rc != SQLITE_ROW)
		return store_fail_db(cp->store, error_r, "copy message");
	cp->bytes += (uint64_t)sqlite3_column_int64(ins, 0);
	while ((rc = sqlite3_step(ins)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return store_fail_db(cp->store, error_r, "copy message");
	cp->src[cp->n] = uid;
	cp->dst[cp->n++] = (uint32_t)cp->to.uidnext++;
	return 0;
}

static int
store_cp_usage(struct store *store, const char *key, int64_t add,
    const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_META_ADD);

	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, add);
	return store_stmt_exec(store, STORE_STMT_META_ADD, error_r);
}

static int
store_cp_run(struct store_cp *cp, const char *from, const char *to,
    const uint32_t *uids, size_t count, const char **error_r)
{
	struct store *store = cp->store;
	sqlite3_stmt *bump;
	int ret;

	if ((ret = store_mbox_get(store, from, &cp->from, error_r)) == 0)
		return store_fail(store, error_r, "no such mailbox");
	if (ret < 0 || (ret = store_mbox_get(store, to, &cp->to,
	    error_r)) <= 0)
		return ret;
	if (store_sql_prepare(store, "INSERT INTO messages (mailbox_id,"
	    " uid, modseq, flags, keywords, internaldate, size, file,"
	    " envelope, bodystructure, mime_tree) SELECT ?1, ?2, ?3, flags,"
	    " keywords, internaldate, size, file, envelope, bodystructure,"
	    " mime_tree FROM messages"
	    " WHERE mailbox_id = ?4 AND uid = ?5 RETURNING size", &cp->ins,
	    error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (store_cp_one(cp, uids[i], error_r) < 0)
			return -1;
	if (cp->n == 0)
		return 1;
	bump = store_stmt(store, STORE_STMT_MAILBOX_BUMP);
	sqlite3_bind_int64(bump, 1, cp->to.id);
	sqlite3_bind_int64(bump, 2, (int64_t)cp->to.uidnext);
	sqlite3_bind_int64(bump, 3, (int64_t)cp->to.highestmodseq + 1);
	if (store_stmt_exec(store, STORE_STMT_MAILBOX_BUMP, error_r) < 0)
		return -1;
	if (cp->move)	/* the sources go in the same transaction */
		return 1;
	if (store_cp_usage(store, "usage_bytes", (int64_t)cp->bytes,
	    error_r) < 0 || store_cp_usage(store, "usage_messages",
	    (int64_t)cp->n, error_r) < 0)
		return -1;
	return 1;
}

/* ---- move ---- */

/*
 * The second half of a move, in the copy's transaction: the copied source
 * rows go, each recorded in `expunged` with one new MODSEQ of from (RFC
 * 7162 §3.2.10).  When from is to, the copies' MODSEQ serves both.
 * No file is unlinked: store_expunge() unlinks only what no row names
 * any more, and each source file is named by its copy.
 */
static int
store_mv_expunge(struct store_cp *cp, const char **error_r)
{
	static const char *const sql[] = {
		"DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
		"INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
		    " VALUES (?1, ?2, ?3)",
		"UPDATE mailboxes SET highestmodseq = max(highestmodseq, ?2)"
		    " WHERE id = ?1",
	};
	sqlite3_stmt *st[3] = { NULL, NULL, NULL };
	uint64_t modseq = cp->from.id == cp->to.id ?
	    cp->to.highestmodseq + 1 : cp->from.highestmodseq + 1;
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < 3; i++)
		ret = store_sql_prepare(cp->store, sql[i], &st[i], error_r);
	for (size_t i = 0; ret == 0 && i < cp->n; i++) {
		sqlite3_reset(st[0]);
		sqlite3_bind_int64(st[0], 1, cp->from.id);
		sqlite3_bind_int64(st[0], 2, cp->src[i]);
		if (sqlite3_step(st[0]) != SQLITE_DONE) {
			ret = store_fail_db(cp->store, error_r, "move delete");
			break;
		}
		/* The copy just read this row in our transaction. */
		xassert(sqlite3_changes(cp->store->db) == 1);
		sqlite3_reset(st[1]);
		sqlite3_bind_int64(st[1], 1, cp->from.id);
		sqlite3_bind_int64(st[1], 2, cp->src[i]);
		sqlite3_bind_int64(st[1], 3, (int64_t)modseq);
		if (sqlite3_step(st[1]) != SQLITE_DONE)
			ret = store_fail_db(cp->store, error_r,
			    "record expunge");
	}
	if (ret == 0) {
		sqlite3_bind_int64(st[2], 1, cp->from.id);
		sqlite3_bind_int64(st[2], 2, (int64_t)modseq);
		if (sqlite3_step(st[2]) != SQLITE_DONE)
			ret = store_fail_db(cp->store, error_r, "bump modseq");
	}
	for (size_t i = 0; i < 3; i++)
		sqlite3_finalize(st[i]);
	return ret < 0 ? -1 : 1;
}

/* store_copy() and store_move(): one IMMEDIATE transaction each. */
static int
store_cp_main(struct store_cp *cp, const char *from, const char *to,
    const uint32_t *uids, size_t count, uint32_t *uidvalidity_r,
    const char **error_r)
{
	struct store *store = cp->store;
	struct store_mailbox_status st;
	int ret;

	if (count > STORE_UIDS_MAX)
		return store_fail(store, error_r, "too many messages");
	cp->src = xreallocarray(NULL, count + 1, sizeof(*cp->src));
	cp->dst = xreallocarray(NULL, count + 1, sizeof(*cp->dst));
	if (store_sel_begin(store, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	ret = store_cp_run(cp, from, to, uids, count, error_r);
	sqlite3_finalize(cp->ins);
	if (ret == 1 && cp->move && cp->n > 0)
		ret = store_mv_expunge(cp, error_r);
	ret = store_sel_commit(store, ret, error_r);
	if (ret == 1 && store_mailbox_status(store, to, &st) == 1)
		*uidvalidity_r = st.uidvalidity;
	else if (ret == 1)
		ret = store_fail(store, error_r, "mailbox status");
	return ret;
}

static int
store_cp_do(struct store *store, bool move, const char *from,
    const char *to, const uint32_t *uids, size_t count,
    uint32_t *uidvalidity_r, uint32_t **src_r, uint32_t **dst_r,
    size_t *count_r, const char **error_r)
{
	struct store_cp cp = { .store = store, .move = move };
	int ret;

	*src_r = *dst_r = NULL;
	*count_r = 0;
	ret = store_cp_main(&cp, from, to, uids, count, uidvalidity_r,
	    error_r);
	if (ret != 1) {
		free(cp.src);
		free(cp.dst);
		return ret;
	}
	*src_r = cp.src;
	*dst_r = cp.dst;
	*count_r = cp.n;
	return 1;
}

int
store_copy(struct store *store, const char *from, const char *to,
    const uint32_t *uids, size_t count, uint32_t *uidvalidity_r,
    uint32_t **src_r, uint32_t **dst_r, size_t *count_r,
    const char **error_r)
{
	return store_cp_do(store, false, from, to, uids, count,
	    uidvalidity_r, src_r, dst_r, count_r, error_r);
}

int
store_move(struct store *store, const char *from, const char *to,
    const uint32_t *uids, size_t count, uint32_t *uidvalidity_r,
    uint32_t **src_r, uint32_t **dst_r, size_t *count_r,
    const char **error_r)
{
	return store_cp_do(store, true, from, to, uids, count,
	    uidvalidity_r, src_r, dst_r, count_r, error_r);
}
