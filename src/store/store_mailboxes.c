/*
 * store_mailboxes.c - the mailbox tree of an account for IMAP's
 * authenticated state (RFC 9051 §6.3): the set LIST and LSUB read,
 * CREATE with its parents, DELETE, RENAME (INBOX too), subscriptions,
 * STATUS counts and APPEND of received messages.
 *
 * Invariant kept here: every parent of an existing mailbox exists.
 * CREATE and RENAME make missing parents, DELETE refuses a mailbox with
 * children, so no \Noselect placeholder ever exists; only subscriptions
 * may name what does not (RFC 9051 §6.3.7).
 * Statements run a few times per command: prepared per call, like
 * store_mailbox.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_private.h"

#define STORE_SET_MAX (STORE_MAILBOXES_MAX + STORE_SUBSCRIPTIONS_MAX)
#define STORE_TMP_PREFIX "tmp.a"

/* RFC 6154 §2 attributes the schema's CHECK allows. */
static const char *const store_special_uses[] = {
	"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent",
	"\\Trash",
};

static const char *
store_special_use_static(const char *text)
{
	for (size_t i = 0; text != NULL &&
	    i < MF_ARRAY_LEN(store_special_uses); i++)
		if (strcmp(text, store_special_uses[i]) == 0)
			return store_special_uses[i];
	return NULL;
}

bool
store_mailbox_name_valid(const char *name)
{
	size_t len = strnlen(name, STORE_MAILBOX_NAME_MAX + 1);
	size_t depth = 1, first = strcspn(name, "/");

	if (len == 0 || len > STORE_MAILBOX_NAME_MAX)
		return false;
	if (name[0] == STORE_MAILBOX_SEP || name[len - 1] == STORE_MAILBOX_SEP)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c != STORE_MAILBOX_SEP)
			continue;
		if (name[i + 1] == STORE_MAILBOX_SEP ||
		    ++depth > STORE_MAILBOX_DEPTH_MAX)
			return false;
	}
	/* "Inbox/x" would be a second INBOX tree (RFC 9051 §5.1). */
	return !(first == 5 && strncasecmp(name, "INBOX", 5) == 0 &&
	    strncmp(name, "INBOX", 5) != 0);
}

/* ---- small SQL helpers ---- */

/*
 * Runs sql with up to two text and one integer parameter (?1, ?2, ?3;
 * NULL texts stay unbound); the first column of a first row goes to
 * *value_r when not NULL.  Returns 1 row, 0 none, -1 error.
 */
static int
store_mb_run(struct store *store, const char *sql, const char *t1,
    const char *t2, int64_t i3, int64_t *value_r, const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc, ret;

	if (store_sql_prepare(store, sql, &stmt, error_r) < 0)
		return -1;
	if (t1 != NULL)
		sqlite3_bind_text(stmt, 1, t1, -1, SQLITE_STATIC);
	if (t2 != NULL)
		sqlite3_bind_text(stmt, 2, t2, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(stmt) >= 3)
		sqlite3_bind_int64(stmt, 3, i3);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		if (value_r != NULL)
			*value_r = sqlite3_column_int64(stmt, 0);
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_fail_db(store, error_r, "mailboxes");
	}
	sqlite3_finalize(stmt);
	return ret;
}

static int
store_mb_begin(struct store *store, const char **error_r)
{
	xassert(!store->batch);
	store_stmt(store, STORE_STMT_BEGIN);
	return store_stmt_exec(store, STORE_STMT_BEGIN, error_r);
}

/* Commits when ret is 1, else rolls back; returns ret (or -1). */
static int
store_mb_end(struct store *store, int ret, const char **error_r)
{
	if (ret == 1) {
		store_stmt(store, STORE_STMT_COMMIT);
		if (store_stmt_exec(store, STORE_STMT_COMMIT, error_r) == 0)
			return 1;
		ret = -1;
	}
	store_tx_rollback(store);
	return ret;
}

static int
store_mb_refuse(enum store_refusal *refusal_r, enum store_refusal why)
{
	*refusal_r = why;
	return 0;
}

/* 1 when name exists as a mailbox, 0 not, -1 error. */
static int
store_mb_exists(struct store *store, const char *name, const char **error_r)
{
	return store_mb_run(store, "SELECT 1 FROM mailboxes WHERE name = ?1",
	    name, NULL, 0, NULL, error_r);
}

/* 1 when a mailbox below name exists. */
static int
store_mb_has_children(struct store *store, const char *name,
    const char **error_r)
{
	return store_mb_run(store, "SELECT 1 FROM mailboxes WHERE"
	    " substr(name, 1, length(?1) + 1) = ?1 || '/' LIMIT 1", name,
	    NULL, 0, NULL, error_r);
}

/* ---- the set of names ---- */

static int
store_set_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_mailbox_info *)a)->name,
	    ((const struct store_mailbox_info *)b)->name);
}

/* Marks every existing mailbox's ancestors as having children. */
static void
store_set_children(struct store_mailbox_set *set)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];

	for (size_t i = 0; i < set->count; i++) {
		if (!set->items[i].exists)
			continue;
		str_lcpy(name, set->items[i].name, sizeof(name));
		for (char *sep = strrchr(name, STORE_MAILBOX_SEP); sep != NULL;
		    sep = strrchr(name, STORE_MAILBOX_SEP)) {
			struct store_mailbox_info key = { .name = name }, *p;
			*sep = '\0';
			p = bsearch(&key, set->items, set->count,
			    sizeof(*set->items), store_set_cmp);
			if (p != NULL)
				p->children = true;
		}
	}
}

static int
store_set_read(struct store *store, struct store_mailbox_set *set,
    const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc, ret = 0;

	if (store_sql_prepare(store, "SELECT n.name, m.special_use,"
	    " m.id IS NOT NULL, s.name IS NOT NULL FROM (SELECT name FROM"
	    " mailboxes UNION SELECT name FROM subscriptions) AS n"
	    " LEFT JOIN mailboxes m ON m.name = n.name"
	    " LEFT JOIN subscriptions s ON s.name = n.name ORDER BY n.name",
	    &stmt, error_r) < 0)
		return -1;
	set->items = xreallocarray(NULL, STORE_SET_MAX, sizeof(*set->items));
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_mailbox_info *m;
		const char *name = (const char *)sqlite3_column_text(stmt, 0);
		if (set->count == STORE_SET_MAX) {
			ret = store_fail(store, error_r, "too many mailboxes");
			break;
		}
		m = &set->items[set->count];
		memset(m, 0, sizeof(*m));
		m->name = xstrdup(name != NULL ? name : "");
		m->special_use = store_special_use_static(
		    (const char *)sqlite3_column_text(stmt, 1));
		m->exists = sqlite3_column_int(stmt, 2) != 0;
		m->subscribed = sqlite3_column_int(stmt, 3) != 0;
		set->count++;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = store_fail_db(store, error_r, "list mailboxes");
	sqlite3_finalize(stmt);
	return ret;
}

int
store_mailboxes(struct store *store, struct store_mailbox_set *set_r,
    const char **error_r)
{
	int ret;

	xassert(!store->batch);
	memset(set_r, 0, sizeof(*set_r));
	if (sqlite3_exec(store->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(store, error_r, "begin");
	ret = store_set_read(store, set_r, error_r);
	if (ret == 0 && sqlite3_exec(store->db, "COMMIT", NULL, NULL,
	    NULL) != SQLITE_OK)
		ret = store_fail_db(store, error_r, "commit");
	if (ret < 0) {
		store_tx_rollback(store);
		store_mailboxes_free(set_r);
		return -1;
	}
	store_set_children(set_r);
	return 0;
}

void
store_mailboxes_free(struct store_mailbox_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->items[i].name);
	x_free(&set->items);
	set->count = 0;
}

/* ---- CREATE ---- */

/*
 * Inside a transaction: creates the missing parents of name (and name
 * itself when self), checking STORE_MAILBOXES_MAX first.
 */
static int
store_mb_make(struct store *store, const char *name, bool self,
    const char *special_use, enum store_refusal *refusal_r,
    const char **error_r)
{
	char path[STORE_MAILBOX_NAME_MAX + 1];
	size_t missing[STORE_MAILBOX_DEPTH_MAX], n = 0, len = strlen(name);
	int64_t count = 0;
	int rc;

	str_lcpy(path, name, sizeof(path));
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != STORE_MAILBOX_SEP && path[i] != '\0')
			continue;
		if (path[i] == '\0' && !self)
			break;
		path[i] = '\0';
		rc = store_mb_exists(store, path, error_r);
		path[i] = name[i];
		if (rc < 0)
			return -1;
		if (rc == 0)
			missing[n++] = i;
	}
	if (store_mb_run(store, "SELECT count(*) FROM mailboxes", NULL, NULL,
	    0, &count, error_r) < 0)
		return -1;
	if (count + (int64_t)n > STORE_MAILBOXES_MAX)
		return store_mb_refuse(refusal_r, STORE_REFUSE_LIMIT);
	for (size_t k = 0; k < n; k++) {
		size_t i = missing[k];
		path[i] = '\0';
		rc = store_db_mailbox_add(store, path, i == len ? special_use :
		    NULL, false, NULL, error_r);
		path[i] = name[i];
		if (rc < 0)
			return -1;
	}
	return 1;
}

int
store_mailbox_create(struct store *store, const char *name,
    const char *special_use, enum store_refusal *refusal_r,
    const char **error_r)
{
	const char *use = store_special_use_static(special_use);
	int ret;

	*refusal_r = STORE_REFUSE_NONE;
	if (!store_mailbox_name_valid(name))
		return store_mb_refuse(refusal_r, STORE_REFUSE_NAME);
	if (special_use != NULL && use == NULL)
		return store_mb_refuse(refusal_r, STORE_REFUSE_USEATTR);
	if (store_mb_begin(store, error_r) < 0)
		return -1;
	ret = store_mb_exists(store, name, error_r);
	if (ret == 1)
		ret = store_mb_refuse(refusal_r, STORE_REFUSE_EXISTS);
	else if (ret == 0)
		ret = store_mb_make(store, name, true, use, refusal_r,
		    error_r);
	return store_mb_end(store, ret, error_r);
}

/* ---- DELETE ---- */

/* Files the deleted rows used that no other row uses (unlinked after
 * the commit, as store_expunge() does). */
struct store_mb_files {
	char (*names)[STORE_MSG_FILE_MAX + 1];
	size_t count;
	uint64_t bytes;
	uint64_t messages;
};

static int
store_mb_collect(struct store *store, int64_t id, struct store_mb_files *f,
    const char **error_r)
{
	sqlite3_stmt *stmt;
	size_t cap = 0;
	int rc;

	if (store_sql_prepare(store, "SELECT file, size FROM messages"
	    " WHERE mailbox_id = ?1", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_int64(stmt, 1, id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *file = (const char *)sqlite3_column_text(stmt, 0);
		f->bytes += (uint64_t)sqlite3_column_int64(stmt, 1);
		f->messages++;
		if (file == NULL || strlen(file) > STORE_MSG_FILE_MAX ||
		    file[0] == '.' || strchr(file, '/') != NULL)
			continue;
		if (f->count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			f->names = xreallocarray(f->names, cap,
			    sizeof(*f->names));
		}
		str_lcpy(f->names[f->count++], file, STORE_MSG_FILE_MAX + 1);
	}
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 :
	    store_fail_db(store, error_r, "list messages");
}

/* After the rows went: keeps only the files nothing uses any more. */
static int
store_mb_unused(struct store *store, struct store_mb_files *f,
    const char **error_r)
{
	size_t keep = 0;

	for (size_t i = 0; i < f->count; i++) {
		int rc = store_mb_run(store, "SELECT 1 FROM messages WHERE"
		    " file = ?1 LIMIT 1", f->names[i], NULL, 0, NULL, error_r);
		if (rc < 0)
			return -1;
		if (rc == 0)
			memmove(f->names[keep++], f->names[i],
			    sizeof(f->names[i]));
	}
	f->count = keep;
	return 0;
}

static int
store_mb_usage(struct store *store, int64_t bytes, int64_t messages,
    const char **error_r)
{
	sqlite3_stmt *stmt = store_stmt(store, STORE_STMT_META_ADD);

	sqlite3_bind_text(stmt, 1, "usage_bytes", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, bytes);
	if (store_stmt_exec(store, STORE_STMT_META_ADD, error_r) < 0)
		return -1;
	stmt = store_stmt(store, STORE_STMT_META_ADD);
	sqlite3_bind_text(stmt, 1, "usage_messages", -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 2, messages);
	return store_stmt_exec(store, STORE_STMT_META_ADD, error_r);
}

static int
store_mb_delete_tx(struct store *store, const char *name,
    struct store_mb_files *f, enum store_refusal *refusal_r,
    const char **error_r)
{
	struct store_mbox mbox;
	int ret = store_mbox_get(store, name, &mbox, error_r);

	if (ret == 0)
		return store_mb_refuse(refusal_r, STORE_REFUSE_NONEXISTENT);
	if (ret < 0)
		return -1;
	ret = store_mb_has_children(store, name, error_r);
	if (ret != 0)
		return ret < 0 ? -1 :
		    store_mb_refuse(refusal_r, STORE_REFUSE_HASCHILDREN);
	if (store_mb_collect(store, mbox.id, f, error_r) < 0 ||
	    store_mb_run(store, "DELETE FROM messages WHERE mailbox_id = ?3",
	    NULL, NULL, mbox.id, NULL, error_r) < 0 ||
	    store_mb_run(store, "DELETE FROM mailboxes WHERE id = ?3", NULL,
	    NULL, mbox.id, NULL, error_r) < 0 ||
	    store_mb_usage(store, -(int64_t)f->bytes, -(int64_t)f->messages,
	    error_r) < 0 || store_mb_unused(store, f, error_r) < 0)
		return -1;
	return 1;
}

int
store_mailbox_delete(struct store *store, const char *name,
    enum store_refusal *refusal_r, const char **error_r)
{
	struct store_mb_files f = { 0 };
	int ret;

	*refusal_r = STORE_REFUSE_NONE;
	if (!store_mailbox_name_valid(name))
		return store_mb_refuse(refusal_r, STORE_REFUSE_NAME);
	if (strcmp(name, "INBOX") == 0)
		return store_mb_refuse(refusal_r, STORE_REFUSE_INBOX);
	if (store_mb_begin(store, error_r) < 0)
		return -1;
	ret = store_mb_delete_tx(store, name, &f, refusal_r, error_r);
	ret = store_mb_end(store, ret, error_r);
	for (size_t i = 0; ret == 1 && i < f.count; i++)
		if (unlinkat(store->msg_fd, f.names[i], 0) == -1 &&
		    errno != ENOENT)
			log_warn("store %s: unlink %s", store->account,
			    f.names[i]);
	free(f.names);
	return ret;
}

/* ---- RENAME ---- */

/* Every renamed name must still be valid (length, depth). */
static int
store_mb_rename_fits(struct store *store, const char *from, const char *to,
    enum store_refusal *refusal_r, const char **error_r)
{
	char name[STORE_MAILBOX_NAME_MAX + 1];
	sqlite3_stmt *stmt;
	size_t flen = strlen(from);
	int rc, ret = 1;

	if (store_sql_prepare(store, "SELECT name FROM mailboxes WHERE"
	    " substr(name, 1, length(?1) + 1) = ?1 || '/' UNION SELECT name"
	    " FROM subscriptions WHERE substr(name, 1, length(?1) + 1) ="
	    " ?1 || '/'", &stmt, error_r) < 0)
		return -1;
	sqlite3_bind_text(stmt, 1, from, -1, SQLITE_STATIC);
	while (ret == 1 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *old = (const char *)sqlite3_column_text(stmt, 0);
		int n = snprintf(name, sizeof(name), "%s%s", to,
		    old != NULL && strlen(old) > flen ? old + flen : "");
		if (n < 0 || (size_t)n >= sizeof(name) ||
		    !store_mailbox_name_valid(name))
			ret = store_mb_refuse(refusal_r, STORE_REFUSE_LIMIT);
	}
	if (ret == 1 && rc != SQLITE_DONE)
		ret = store_fail_db(store, error_r, "rename");
	sqlite3_finalize(stmt);
	return ret;
}

static int
store_mb_rename_rows(struct store *store, const char *from, const char *to,
    const char **error_r)
{
	static const char *const sql[] = {
		"UPDATE mailboxes SET name = ?2 || substr(name, length(?1) + 1)"
		" WHERE name = ?1 OR substr(name, 1, length(?1) + 1) ="
		" ?1 || '/'",
		/* OR REPLACE: the new name may be subscribed already */
		"UPDATE OR REPLACE subscriptions SET name = ?2 ||"
		" substr(name, length(?1) + 1) WHERE name = ?1 OR"
		" substr(name, 1, length(?1) + 1) = ?1 || '/'",
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(sql); i++)
		if (store_mb_run(store, sql[i], from, to, 0, NULL,
		    error_r) < 0)
			return -1;
	return 1;
}

/*
 * RFC 9051 §6.3.6: INBOX's messages move to a new mailbox to, INBOX
 * stays (empty, same UIDVALIDITY, UIDs not reused).  The moved UIDs are
 * INBOX expunges at one new MODSEQ (RFC 7162 §3.2.10).
 */
static int
store_mb_rename_inbox(struct store *store, const char *to,
    enum store_refusal *refusal_r, const char **error_r)
{
	struct store_mbox inbox, mbox;
	int64_t id, moved = 0;
	int ret;

	ret = store_mb_make(store, to, true, NULL, refusal_r, error_r);
	if (ret != 1)
		return ret;
	if (store_mbox_get(store, "INBOX", &inbox, error_r) != 1 ||
	    store_mbox_get(store, to, &mbox, error_r) != 1)
		return store_fail(store, error_r, "rename INBOX: lookup");
	id = mbox.id;
	if (store_mb_run(store, "SELECT count(*) FROM messages"
	    " WHERE mailbox_id = ?3", NULL, NULL, inbox.id, &moved,
	    error_r) < 0)
		return -1;
	if (moved == 0)
		return 1;
	char *sql = xasprintf("UPDATE mailboxes SET uidnext = %llu,"
	    " highestmodseq = %llu WHERE id = %lld;"
	    "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
	    " SELECT %lld, uid, %llu FROM messages WHERE mailbox_id = %lld;"
	    "UPDATE messages SET mailbox_id = %lld WHERE mailbox_id = %lld;"
	    "UPDATE mailboxes SET highestmodseq = %llu WHERE id = %lld",
	    (unsigned long long)inbox.uidnext,
	    (unsigned long long)inbox.highestmodseq, (long long)id,
	    (long long)inbox.id, (unsigned long long)inbox.highestmodseq + 1,
	    (long long)inbox.id, (long long)id, (long long)inbox.id,
	    (unsigned long long)inbox.highestmodseq + 1, (long long)inbox.id);
	ret = sqlite3_exec(store->db, sql, NULL, NULL, NULL) == SQLITE_OK ?
	    1 : store_fail_db(store, error_r, "rename INBOX");
	free(sql);
	return ret;
}

static int
store_mb_rename_tx(struct store *store, const char *from, const char *to,
    enum store_refusal *refusal_r, const char **error_r)
{
	int ret = store_mb_exists(store, from, error_r);

	if (ret == 0)
		return store_mb_refuse(refusal_r, STORE_REFUSE_NONEXISTENT);
	if (ret == 1)
		ret = store_mb_exists(store, to, error_r);
	if (ret == 1)
		return store_mb_refuse(refusal_r, STORE_REFUSE_EXISTS);
	if (ret < 0)
		return -1;
	if (strcmp(from, "INBOX") == 0)
		return store_mb_rename_inbox(store, to, refusal_r, error_r);
	ret = store_mb_rename_fits(store, from, to, refusal_r, error_r);
	if (ret == 1)
		ret = store_mb_make(store, to, false, NULL, refusal_r,
		    error_r);
	if (ret == 1)
		ret = store_mb_rename_rows(store, from, to, error_r);
	return ret;
}

int
store_mailbox_rename(struct store *store, const char *from, const char *to,
    enum store_refusal *refusal_r, const char **error_r)
{
	size_t flen = strlen(from);
	int ret;

	*refusal_r = STORE_REFUSE_NONE;
	if (!store_mailbox_name_valid(from) || !store_mailbox_name_valid(to))
		return store_mb_refuse(refusal_r, STORE_REFUSE_NAME);
	if (strcmp(to, "INBOX") == 0 || strcmp(from, to) == 0)
		return store_mb_refuse(refusal_r, strcmp(to, "INBOX") == 0 ?
		    STORE_REFUSE_INBOX : STORE_REFUSE_EXISTS);
	/* INBOX's children stay, so INBOX may move below itself. */
	if (strcmp(from, "INBOX") != 0 && strncmp(to, from, flen) == 0 &&
	    to[flen] == STORE_MAILBOX_SEP)
		return store_mb_refuse(refusal_r, STORE_REFUSE_INFERIOR);
	if (store_mb_begin(store, error_r) < 0)
		return -1;
	ret = store_mb_rename_tx(store, from, to, refusal_r, error_r);
	return store_mb_end(store, ret, error_r);
}

/* ---- subscriptions ---- */

static int
store_mb_subscribe_tx(struct store *store, const char *name, bool on,
    enum store_refusal *refusal_r, const char **error_r)
{
	int64_t count = 0;
	int ret;

	if (!on) {
		ret = store_mb_run(store, "DELETE FROM subscriptions"
		    " WHERE name = ?1 RETURNING 1", name, NULL, 0, NULL,
		    error_r);
		return ret == 0 ? store_mb_refuse(refusal_r,
		    STORE_REFUSE_NONEXISTENT) : ret;
	}
	ret = store_mb_run(store, "SELECT 1 FROM subscriptions"
	    " WHERE name = ?1", name, NULL, 0, NULL, error_r);
	if (ret != 0)
		return ret;
	if (store_mb_run(store, "SELECT count(*) FROM subscriptions", NULL,
	    NULL, 0, &count, error_r) < 0)
		return -1;
	if (count >= STORE_SUBSCRIPTIONS_MAX)
		return store_mb_refuse(refusal_r, STORE_REFUSE_LIMIT);
	return store_mb_run(store, "INSERT INTO subscriptions (name)"
	    " VALUES (?1)", name, NULL, 0, NULL, error_r) < 0 ? -1 : 1;
}

int
store_subscribe(struct store *store, const char *name, bool on,
    enum store_refusal *refusal_r, const char **error_r)
{
	int ret;

	*refusal_r = STORE_REFUSE_NONE;
	if (!store_mailbox_name_valid(name))
		return store_mb_refuse(refusal_r, STORE_REFUSE_NAME);
	if (store_mb_begin(store, error_r) < 0)
		return -1;
	ret = store_mb_subscribe_tx(store, name, on, refusal_r, error_r);
	return store_mb_end(store, ret, error_r);
}

/* ---- STATUS ---- */

int
store_status(struct store *store, const char *mailbox,
    struct store_status *status_r, const char **error_r)
{
	sqlite3_stmt *stmt;
	int rc, ret = 1;

	if (store_sql_prepare(store, "SELECT b.uidvalidity, b.uidnext,"
	    " b.highestmodseq, count(m.uid),"
	    " total(m.uid IS NOT NULL AND (m.flags & 1) = 0),"
	    " total((m.flags & 8) <> 0), total(m.size)"
	    " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id"
	    " WHERE b.name = ?1 GROUP BY b.id", &stmt, error_r) < 0)
		return -1;
	_Static_assert(STORE_FLAG_SEEN == 1 && STORE_FLAG_DELETED == 8,
	    "the STATUS query's flag masks");
	sqlite3_bind_text(stmt, 1, store_mailbox_canon(mailbox), -1,
	    SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		status_r->uidvalidity = (uint32_t)sqlite3_column_int64(stmt, 0);
		status_r->uidnext = (uint64_t)sqlite3_column_int64(stmt, 1);
		status_r->highestmodseq =
		    (uint64_t)sqlite3_column_int64(stmt, 2);
		status_r->messages = (uint64_t)sqlite3_column_int64(stmt, 3);
		status_r->unseen = (uint64_t)sqlite3_column_double(stmt, 4);
		status_r->deleted = (uint64_t)sqlite3_column_double(stmt, 5);
		status_r->size = (uint64_t)sqlite3_column_double(stmt, 6);
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_fail_db(store, error_r, "status");
	}
	sqlite3_finalize(stmt);
	return ret;
}

/* ---- APPEND ---- */

static int
store_random_hex(struct store *store, char *out, size_t bytes,
    const char **error_r)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];

	xassert(bytes <= sizeof(rnd));
	if (getrandom(rnd, bytes, 0) != (ssize_t)bytes)
		return store_fail_errno(store, error_r, "getrandom");
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 15];
	}
	out[2 * bytes] = '\0';
	return 0;
}

int
store_append_file(struct store *store, int *fd_r,
    char name_r[STORE_MSG_FILE_MAX + 1], const char **error_r)
{
	char hex[33];
	int fd;

	if (store_random_hex(store, hex, 16, error_r) < 0)
		return -1;
	snprintf(name_r, STORE_MSG_FILE_MAX + 1, STORE_TMP_PREFIX "%s", hex);
	fd = openat(store->msg_fd, name_r, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, STORE_FILE_MODE);
	if (fd == -1)
		return store_fail_errno(store, error_r, "create message file");
	*fd_r = fd;
	return 0;
}

static bool
store_tmp_name_valid(const char *name)
{
	return strncmp(name, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) ==
	    0 && strchr(name, '/') == NULL &&
	    strlen(name) <= STORE_MSG_FILE_MAX;
}

void
store_append_discard(struct store *store, const char *name)
{
	if (store_tmp_name_valid(name) &&
	    unlinkat(store->msg_fd, name, 0) == -1 && errno != ENOENT)
		log_warn("store %s: unlink %s", store->account, name);
}

/*
 * fsyncs the temporary file tmp and links it to a fresh name "a<hex>"
 * (final_r, STORE_FILE_NAME_MAX bytes), so it never collides with a
 * delivery's "d<hex>".
 */
static int
store_append_place(struct store *store, const char *tmp, char *final_r,
    uint64_t *size_r, const char **error_r)
{
	struct stat st;
	int fd, ret = 0;

	if (!store_tmp_name_valid(tmp))
		return store_fail(store, error_r, "bad temporary name");
	fd = openat(store->msg_fd, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return store_fail_errno(store, error_r, "open message file");
	if (fstat(fd, &st) == -1 || fsync(fd) == -1)
		ret = store_fail_errno(store, error_r, "fsync message file");
	close(fd);
	if (ret < 0)
		return -1;
	final_r[0] = 'a';
	if (store_random_hex(store, final_r + 1,
	    (STORE_FILE_NAME_MAX - 2) / 2, error_r) < 0)
		return -1;
	if (linkat(store->msg_fd, tmp, store->msg_fd, final_r, 0) == -1)
		return store_fail_errno(store, error_r, "link message file");
	*size_r = (uint64_t)st.st_size;
	return 0;
}

static bool
store_keywords_valid(const char *kw)
{
	size_t len = strnlen(kw, STORE_KEYWORDS_MAX + 1);

	if (len > STORE_KEYWORDS_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)kw[i] < 0x20 || kw[i] == 0x7f)
			return false;
	return true;
}

/* Inside the transaction: rows, the mailbox's counters, the usage. */
static int
store_append_rows(struct store *store, const struct store_mbox *mbox,
    const struct store_append_msg *msgs, char (*files)[STORE_FILE_NAME_MAX],
    const uint64_t *sizes, const struct store_mime *mimes, size_t count,
    const char **error_r)
{
	uint64_t modseq = mbox->highestmodseq + 1, bytes = 0;
	sqlite3_stmt *stmt;
	int ret = 0;

	if (store_sql_prepare(store, "INSERT INTO messages (mailbox_id, uid,"
	    " modseq, flags, keywords, internaldate, size, file, envelope,"
	    " bodystructure, mime_tree) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
	    " ?8, ?9, ?10, ?11)", &stmt, error_r) < 0)
		return -1;
	for (size_t i = 0; ret == 0 && i < count; i++) {
		sqlite3_reset(stmt);
		sqlite3_bind_int64(stmt, 1, mbox->id);
		sqlite3_bind_int64(stmt, 2, (int64_t)(mbox->uidnext + i));
		sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
		sqlite3_bind_int64(stmt, 4, msgs[i].flags);
		sqlite3_bind_text(stmt, 5, msgs[i].keywords, -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 6, msgs[i].internaldate);
		sqlite3_bind_int64(stmt, 7, (int64_t)sizes[i]);
		sqlite3_bind_text(stmt, 8, files[i], -1, SQLITE_STATIC);
		store_mime_bind(stmt, 9, &mimes[i]);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			ret = store_fail_db(store, error_r, "add message");
		bytes += sizes[i];
	}
	sqlite3_finalize(stmt);
	if (ret < 0)
		return -1;
	stmt = store_stmt(store, STORE_STMT_MAILBOX_BUMP);
	sqlite3_bind_int64(stmt, 1, mbox->id);
	sqlite3_bind_int64(stmt, 2, (int64_t)(mbox->uidnext + count));
	sqlite3_bind_int64(stmt, 3, (int64_t)modseq);
	if (store_stmt_exec(store, STORE_STMT_MAILBOX_BUMP, error_r) < 0)
		return -1;
	return store_mb_usage(store, (int64_t)bytes, (int64_t)count, error_r);
}

static int
store_append_tx(struct store *store, const char *mailbox,
    const struct store_append_msg *msgs, char (*files)[STORE_FILE_NAME_MAX],
    const uint64_t *sizes, const struct store_mime *mimes, size_t count,
    uint32_t *uidvalidity_r,
    uint32_t *uid_r, enum store_refusal *refusal_r, const char **error_r)
{
	struct store_mailbox_status st;
	struct store_mbox mbox;
	int ret = store_mbox_get(store, mailbox, &mbox, error_r);

	if (ret == 0)
		return store_mb_refuse(refusal_r, STORE_REFUSE_NONEXISTENT);
	if (ret < 0)
		return -1;
	/* RFC 9051 §2.3.1.1: UIDs are 32-bit and never reused. */
	if (mbox.uidnext + count - 1 > UINT32_MAX)
		return store_mb_refuse(refusal_r, STORE_REFUSE_LIMIT);
	if (store_append_rows(store, &mbox, msgs, files, sizes, mimes, count,
	    error_r) < 0)
		return -1;
	if (store_mailbox_status(store, mailbox, &st) != 1)
		return store_fail(store, error_r, "mailbox status");
	*uidvalidity_r = st.uidvalidity;
	*uid_r = (uint32_t)mbox.uidnext;
	return 1;
}

int
store_append(struct store *store, const char *mailbox,
    const struct store_append_msg *msgs, size_t count,
    uint32_t *uidvalidity_r, uint32_t *uid_r, enum store_refusal *refusal_r,
    const char **error_r)
{
	char files[STORE_APPEND_MAX][STORE_FILE_NAME_MAX];
	uint64_t sizes[STORE_APPEND_MAX];
	struct store_mime mimes[STORE_APPEND_MAX];
	size_t placed = 0;
	int ret = 1;

	*refusal_r = STORE_REFUSE_NONE;
	xassert(count > 0 && count <= STORE_APPEND_MAX);
	for (size_t i = 0; ret == 1 && i < count; i++) {
		xassert(msgs[i].keywords != NULL);
		if (!store_keywords_valid(msgs[i].keywords))
			ret = store_fail(store, error_r, "bad keywords");
		else if (store_append_place(store, msgs[i].file, files[i],
		    &sizes[i], error_r) < 0)
			ret = -1;
		else
			placed++;
	}
	/* The FETCH cache, parsed once here (we are on the pool). */
	memset(mimes, 0, sizeof(mimes));
	for (size_t i = 0; ret == 1 && i < placed; i++)
		store_mime_compute(store, files[i], &mimes[i]);
	for (size_t i = 0; i < count; i++)
		store_append_discard(store, msgs[i].file);
	if (ret == 1 && fsync(store->msg_fd) == -1)
		ret = store_fail_errno(store, error_r, "fsync msg directory");
	if (ret == 1 && store_mb_begin(store, error_r) < 0)
		ret = -1;
	else if (ret == 1)
		ret = store_mb_end(store, store_append_tx(store, mailbox, msgs,
		    files, sizes, mimes, count, uidvalidity_r, uid_r,
		    refusal_r, error_r), error_r);
	for (size_t i = 0; i < placed; i++)
		store_mime_clear(&mimes[i]);
	for (size_t i = 0; ret != 1 && i < placed; i++)
		if (unlinkat(store->msg_fd, files[i], 0) == -1)
			log_warn("store %s: unlink %s", store->account,
			    files[i]);
	return ret;
}
