/*
 * store.h - the per-account mail store: one SQLite database (WAL) per
 * account for mailboxes, UIDs, flags and modseqs, plus the raw messages as
 * immutable files with CRLF line ends.  Lives under
 *   <data_dir>/mail/<domain>/<localpart>/{index.db,msg/}
 * The IMAP and POP3 issues extend this interface; the SQLite backend is
 * one implementation behind it (a PostgreSQL one may follow).
 */
#ifndef MAILFORT_STORE_H
#define MAILFORT_STORE_H

#include "core/core.h"

struct store;

/* Process-wide SQLite settings; call first thing in main(). */
void store_library_init(void);
/* Drops the connection's cached pages (an idle session keeps little). */
void store_release_memory(struct store *store);

/* Longest account we accept (RFC 5321 §4.5.3.1.1-2: 64 + "@" + 255). */
#define STORE_LOCAL_MAX 64
#define STORE_DOMAIN_MAX 255
#define STORE_ACCOUNT_MAX (STORE_LOCAL_MAX + 1 + STORE_DOMAIN_MAX)
/* Longest delivery id ("<queue id>/<recipient>"). */
#define STORE_DELIVERY_ID_MAX 512

/* System flags as stored in messages.flags (RFC 9051 §2.3.2). */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};

/* What SELECT and STATUS report about one mailbox. */
struct store_mailbox_status {
	uint32_t uidvalidity;
	uint64_t uidnext;	/* 2^32 once the UID space is used up */
	uint64_t highestmodseq;
	uint64_t messages;
};

/*
 * True when account is safe to use as a directory pair: lower-case ASCII
 * "local@domain", local part without '/', '\\', controls or a leading
 * '.', domain of LDH labels, both within the limits above.  A hostile
 * address can therefore never name a path outside data_dir.
 */
bool store_account_valid(const char *account);

/*
 * Opens the store of account (lower-case "user@domain"), creating the
 * directories, the database and the default mailboxes (INBOX, Drafts,
 * Sent, Trash, Junk, Archive with SPECIAL-USE, subscribed) on first use.
 * Returns 0 or -1 with *error_r (static text, or a per-thread buffer
 * valid until the next store_open() in this thread).
 * A store is used by one thread at a time; several processes may open the
 * same account at once (SQLite WAL, busy timeout).
 */
int store_open(const char *data_dir, const char *account,
    struct store **store_r, const char **error_r) MF_WUR;
/* Closes and frees *store, sets it to NULL; NULL is ignored. */
void store_close(struct store **store);

/* Age after which a temporary APPEND file is a crash's leftover: far
 * beyond the IMAP idle timeout, so no live APPEND still writes it. */
#define STORE_TMP_STALE (60 * 60)
/* Sweeps of one store are at least this far apart (all processes). */
#define STORE_SWEEP_INTERVAL (60 * 60)

/*
 * Unlinks the temporary APPEND files of msg/ older than STORE_TMP_STALE
 * that a crash left behind.  Reads the whole directory, so it runs only
 * when the last sweep (a stamp file in the store's directory) is
 * STORE_SWEEP_INTERVAL old or more: the queue runner calls it whenever
 * it opens a store.  Returns 1 swept with *removed_r, 0 not due, -1
 * error with *error_r (valid until the next call on store).
 */
int store_sweep_tmp(struct store *store, uint64_t *removed_r,
    const char **error_r) MF_WUR;

/*
 * Delivers a spooled message file into mailbox (normally "INBOX"): hard-
 * links spool_path into the store (copies if the link fails across file
 * systems), fsyncs, then records it in one transaction with the next UID.
 * spool_path stays in place: the queue removes it once every recipient
 * has the message.
 * Idempotent on delivery_id ("<queue id>/<recipient>"): delivering the same
 * id twice stores it once, also when retried after a crash at any point.
 * Returns 1 delivered, 0 already there, -1 error with *error_r (valid
 * until the next call on store).
 */
int store_deliver(struct store *store, const char *spool_path,
    const char *delivery_id, const char *mailbox, const char **error_r)
    MF_WUR;

/*
 * Batched delivery: between begin and end, store_deliver() calls share
 * one transaction and one directory fsync.  Their return values are
 * provisional: only when store_batch_end() returns 0 are they stored;
 * -1 means none of them is (they may be retried, delivery ids keep
 * that safe).
 */
int store_batch_begin(struct store *store, const char **error_r) MF_WUR;
int store_batch_end(struct store *store, const char **error_r) MF_WUR;

/* Number of messages in mailbox (tests, CLI).  -1 on error. */
int store_count(struct store *store, const char *mailbox, uint64_t *count_r)
    MF_WUR;

/*
 * Fills *status_r for mailbox ("INBOX" in any case).  Returns 1, 0 when
 * there is no such mailbox, -1 on error.
 */
int store_mailbox_status(struct store *store, const char *mailbox,
    struct store_mailbox_status *status_r) MF_WUR;

/*
 * Account totals for quotas (RFC 9208 STORAGE in bytes, MESSAGE), kept in
 * the store as messages come and go.  -1 on error.
 */
int store_usage(struct store *store, uint64_t *bytes_r,
    uint64_t *messages_r) MF_WUR;

/* ---- quota checks (store_quota.c) ---- */

/*
 * The usage of account read from <data_dir>/mail/... without opening the
 * store: nothing is created (a root CLI must not make files the server
 * cannot write), a store that does not exist yet has none.  Thread-safe
 * (a connection of its own).  Returns 1 with the totals, 0 no store yet
 * (zeros), -1 with *error_r (static or per-thread text).
 */
int store_usage_peek(const char *data_dir, const char *account,
    uint64_t *bytes_r, uint64_t *messages_r, const char **error_r) MF_WUR;

/* Octets of the messages uids of mailbox (what COPY adds); UIDs that are
 * gone count nothing.  1, 0 no such mailbox, -1 error. */
int store_uids_size(struct store *store, const char *mailbox,
    const uint32_t *uids, size_t count, uint64_t *bytes_r,
    const char **error_r) MF_WUR;

/* Is delivery_id stored already?  1 yes, 0 no, -1 error. */
int store_delivered(struct store *store, const char *delivery_id,
    const char **error_r) MF_WUR;

/* ---- mailbox access for POP3 and IMAP (store_mailbox.c) ---- */

/* Longest message file name read back from the database; longer names
 * mean a damaged store. */
#define STORE_MSG_FILE_MAX 64
/* Messages one listing holds at most (about 100 bytes each). */
#define STORE_LIST_MAX 1000000
/* Longest lock name (store_lock_try()): [a-z0-9], 1 to this many. */
#define STORE_LOCK_NAME_MAX 16

/* One message as a listing sees it. */
struct store_msg {
	uint32_t uid;
	uint32_t flags;			/* enum store_flag bits */
	uint64_t modseq;
	uint64_t size;			/* octets of the file (CRLF) */
	int64_t internaldate;		/* Unix seconds */
	char file[STORE_MSG_FILE_MAX + 1];	/* for store_msg_open() */
};

/* A snapshot of one mailbox, messages in UID order. */
struct store_msg_list {
	uint32_t uidvalidity;
	uint64_t uidnext;
	uint64_t highestmodseq;
	size_t count;
	struct store_msg *msgs;		/* xmalloc'd, count entries */
};

/*
 * Lists mailbox ("INBOX" in any case) as one consistent snapshot (a read
 * transaction): what POP3 numbers its messages by, and what an IMAP SELECT
 * starts from.  Returns 1 with *list_r filled (free it with
 * store_msg_list_free()), 0 when there is no such mailbox, -1 on error
 * or beyond STORE_LIST_MAX messages, with *error_r valid until the next
 * call on store.
 */
int store_msg_list(struct store *store, const char *mailbox,
    struct store_msg_list *list_r, const char **error_r) MF_WUR;
void store_msg_list_free(struct store_msg_list *list);

/*
 * Opens the file of msg for reading (O_RDONLY, no symlinks, close-on-
 * exec).  Message files never change, so reading needs no lock.  Returns
 * 1 with *fd_r (the caller closes it), 0 when the file is gone (expunged
 * by another session since the listing), -1 on error.
 */
int store_msg_open(struct store *store, const struct store_msg *msg,
    int *fd_r, const char **error_r) MF_WUR;

/*
 * Expunges the messages of mailbox with the given UIDs in one transaction:
 * their rows go, each UID is recorded in `expunged` with the new
 * HIGHESTMODSEQ (RFC 7162 §3.2.10 VANISHED for QRESYNC), the account usage
 * shrinks.  UIDs that are not there (expunged meanwhile, or listed twice)
 * are skipped.  After the commit, files no other row uses are unlinked
 * from msg/ (another store may hold a hard link: only our name goes).
 * Returns 0 with *expunged_r the number of messages removed, -1 on error
 * (then nothing was removed).
 */
int store_expunge(struct store *store, const char *mailbox,
    const uint32_t *uids, size_t count, uint64_t *expunged_r,
    const char **error_r) MF_WUR;

/*
 * An advisory lock of the account shared by all processes: flock() on
 * <store dir>/<name>.lock, held until store_unlock() or the process ends
 * (so a crash never leaves it behind).  POP3 takes "pop3" for its whole
 * session (RFC 1939 §8: exclusive access to the maildrop).  Returns 1 with
 * *fd_r, 0 when someone else holds it, -1 on error.
 */
int store_lock_try(struct store *store, const char *name, int *fd_r,
    const char **error_r) MF_WUR;
/* Releases the lock of store_lock_try(); -1 is ignored; sets *fd to -1. */
void store_unlock(int *fd);

/* ---- the IMAP selected state (store_select.c) ---- */

/* Keywords text of one message: atoms separated by single spaces. */
#define STORE_KEYWORDS_MAX 4096
/* Longest keyword (RFC 9051 flag-keyword is an atom; Dovecot: 250). */
#define STORE_KEYWORD_MAX 250
/* UIDs one COPY/MOVE or STORE takes at most. */
#define STORE_UIDS_MAX STORE_LIST_MAX

/* One message of a change listing (what a selected session keeps). */
struct store_sync_msg {
	uint32_t uid;
	uint32_t flags;			/* enum store_flag bits */
	uint64_t modseq;
	char *keywords;			/* xmalloc'd, NULL when none */
};

/* What changed in a mailbox since a MODSEQ (RFC 7162 §3.1). */
struct store_changes {
	uint32_t uidvalidity;
	uint64_t uidnext;
	uint64_t highestmodseq;
	struct store_sync_msg *msgs;	/* modseq > since, UID order */
	size_t count;
	uint32_t *vanished;		/* expunged with modseq > since */
	size_t nvanished;
};

/*
 * Lists the messages of mailbox changed (flags, keywords) or added after
 * MODSEQ since - all of them for since 0, as SELECT needs - and, when
 * vanished, the UIDs expunged after since, in one read transaction.
 * Returns 1 with *ch_r filled (store_changes_free()), 0 when there is no
 * such mailbox, -1 on error or beyond STORE_LIST_MAX rows.
 */
int store_changes_get(struct store *store, const char *mailbox,
    uint64_t since, bool vanished, struct store_changes *ch_r,
    const char **error_r) MF_WUR;
void store_changes_free(struct store_changes *ch);

/* One message as FETCH and SEARCH read it. */
struct store_row {
	uint32_t uid;
	uint32_t flags;
	uint64_t modseq;
	uint64_t size;
	int64_t internaldate;
	char *keywords;			/* xmalloc'd or NULL */
	char *envelope;			/* cached ENVELOPE or NULL */
	char *bodystructure;		/* cached BODYSTRUCTURE or NULL */
	void *mime_tree;		/* mime_tree_serialize() or NULL */
	size_t mime_tree_len;
	char file[STORE_MSG_FILE_MAX + 1];
};

/* The row of uid in mailbox: 1 found, 0 gone, -1 error.  Free the
 * strings with store_row_clear(). */
int store_row_get(struct store *store, const char *mailbox, uint32_t uid,
    struct store_row *row_r, const char **error_r) MF_WUR;
void store_row_clear(struct store_row *row);
/* Every row of mailbox without the cache columns, UID order (SEARCH):
 * 1 with *rows_r (store_rows_free()), 0 no mailbox, -1 error. */
int store_rows_list(struct store *store, const char *mailbox,
    struct store_row **rows_r, size_t *count_r, const char **error_r)
    MF_WUR;
void store_rows_free(struct store_row **rows, size_t count);
/* Opens the file of a row like store_msg_open(). */
int store_row_open(struct store *store, const struct store_row *row,
    int *fd_r, const char **error_r) MF_WUR;
/* Fills the ENVELOPE/BODYSTRUCTURE/part tree cache of uid (no MODSEQ
 * change: the message does not change); tree may be NULL (left as it
 * is).  Normally filled at delivery/APPEND already; this is for rows of
 * older stores.  0 or -1. */
int store_cache_set(struct store *store, const char *mailbox, uint32_t uid,
    const char *envelope, const char *bodystructure, const void *tree,
    size_t tree_len, const char **error_r) MF_WUR;

/* STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3). */
enum store_flags_op {
	STORE_FLAGS_SET,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};

struct store_flags_req {
	enum store_flags_op op;
	uint32_t flags;			/* enum store_flag bits */
	const char *keywords;		/* space-separated atoms or "" */
	bool conditional;		/* UNCHANGEDSINCE given */
	uint64_t unchangedsince;
};

enum store_flags_status {
	STORE_FLAGS_GONE,		/* no such UID (expunged) */
	STORE_FLAGS_SAME,		/* nothing to change */
	STORE_FLAGS_CHANGED,		/* new flags, new MODSEQ */
	STORE_FLAGS_MODIFIED,		/* modseq > unchangedsince: left */
};

struct store_flags_res {
	enum store_flags_status status;
	uint32_t flags;			/* now (not for GONE) */
	char *keywords;			/* now, xmalloc'd or NULL */
	uint64_t modseq;		/* now */
};

/*
 * Applies req to the messages uids[0..count) of mailbox in one
 * transaction; every message changed gets the same new MODSEQ (the
 * mailbox's HIGHESTMODSEQ + 1).  res (count entries) tells each one's
 * outcome; free it with store_flags_res_clear().  Keywords are kept
 * sorted and unique, at most STORE_KEYWORDS_MAX bytes per message.
 * Returns 1, 0 when there is no such mailbox, -1 on error (nothing
 * changed).
 */
int store_flags_change(struct store *store, const char *mailbox,
    const struct store_flags_req *req, const uint32_t *uids, size_t count,
    struct store_flags_res *res, const char **error_r) MF_WUR;
void store_flags_res_clear(struct store_flags_res *res, size_t count);

/* UIDs of mailbox flagged \Deleted now (EXPUNGE, CLOSE), UID order:
 * 1 with *uids_r (free()), 0 no mailbox, -1 error. */
int store_deleted_uids(struct store *store, const char *mailbox,
    uint32_t **uids_r, size_t *count_r, const char **error_r) MF_WUR;

/*
 * COPY (RFC 9051 §6.4.7): copies uids (ascending) of from into to in one
 * transaction, sharing the files; copies get new UIDs in the same order,
 * flags, keywords, internal date and cache, and a new MODSEQ.  UIDs that
 * are gone are skipped.  *src_r and *dst_r (xmalloc'd, *count_r entries)
 * pair the UIDs copied (COPYUID, RFC 4315 §3).  Returns 1, 0 when to
 * does not exist, -1 on error (nothing copied; also when to would run
 * out of UIDs).
 */
int store_copy(struct store *store, const char *from, const char *to,
    const uint32_t *uids, size_t count, uint32_t *uidvalidity_r,
    uint32_t **src_r, uint32_t **dst_r, size_t *count_r,
    const char **error_r) MF_WUR;

/*
 * MOVE (RFC 6851): store_copy() and the expunge of the copied sources
 * (recorded for VANISHED with one new MODSEQ of from) in one transaction,
 * so a crash leaves the messages in one mailbox, never in both.  The
 * usage does not change and no file is unlinked (the copies name them).
 * Same arguments and returns as store_copy().
 */
int store_move(struct store *store, const char *from, const char *to,
    const uint32_t *uids, size_t count, uint32_t *uidvalidity_r,
    uint32_t **src_r, uint32_t **dst_r, size_t *count_r,
    const char **error_r) MF_WUR;

/* ---- mailbox management for IMAP (store_mailboxes.c) ---- */

/* Hierarchy delimiter of mailbox names (RFC 9051 §5.1.1). */
#define STORE_MAILBOX_SEP '/'
/* Longest mailbox name in bytes of UTF-8 (IMAP_MAILBOX_MAX agrees). */
#define STORE_MAILBOX_NAME_MAX 1024
/* Levels of a name: "a/b/c" has 3. */
#define STORE_MAILBOX_DEPTH_MAX 16
/* Mailboxes per account, parents made by CREATE counted. */
#define STORE_MAILBOXES_MAX 1000
/* Subscribed names per account, existing or not. */
#define STORE_SUBSCRIPTIONS_MAX 1000
/* Messages of one (MULTI)APPEND (RFC 3502). */
#define STORE_APPEND_MAX 64

/* Why a mailbox operation was refused (answers, not errors). */
enum store_refusal {
	STORE_REFUSE_NONE,
	STORE_REFUSE_NONEXISTENT,	/* no such mailbox (or subscription) */
	STORE_REFUSE_EXISTS,		/* the new name is taken */
	STORE_REFUSE_HASCHILDREN,	/* DELETE of a mailbox with children */
	STORE_REFUSE_INBOX,		/* DELETE INBOX, RENAME to INBOX */
	STORE_REFUSE_NAME,		/* not a valid name */
	STORE_REFUSE_INFERIOR,		/* RENAME below itself */
	STORE_REFUSE_LIMIT,		/* over a limit above */
	STORE_REFUSE_USEATTR,		/* not a special-use we store */
	STORE_REFUSE_OVERQUOTA,		/* would exceed the account quota */
};

/*
 * A valid name: 1 to STORE_MAILBOX_NAME_MAX bytes, no controls (below
 * 0x20, 0x7f), components separated by single STORE_MAILBOX_SEP (none
 * empty: no leading, trailing or doubled separator), at most
 * STORE_MAILBOX_DEPTH_MAX of them, and a first component spelled like
 * INBOX only as "INBOX".  UTF-8 validity is the protocol's job.
 */
bool store_mailbox_name_valid(const char *name);

/* One name of store_mailboxes(). */
struct store_mailbox_info {
	char *name;			/* UTF-8, owned by the set */
	const char *special_use;	/* static ("\\Sent"...) or NULL */
	bool exists;			/* a mailbox, not just subscribed */
	bool subscribed;
	bool children;			/* an existing mailbox below it */
};

/* Every mailbox and every subscription, sorted by name (bytewise). */
struct store_mailbox_set {
	size_t count;
	struct store_mailbox_info *items;	/* xmalloc'd */
};

/*
 * Reads the set in one read transaction (LIST, LSUB).  Returns 0 (free it
 * with store_mailboxes_free()) or -1 with *error_r valid until the next
 * call on store.
 */
int store_mailboxes(struct store *store, struct store_mailbox_set *set_r,
    const char **error_r) MF_WUR;
void store_mailboxes_free(struct store_mailbox_set *set);

/*
 * The mutations below each run in one IMMEDIATE transaction and return
 * 1 done, 0 refused with *refusal_r, -1 error with *error_r (valid until
 * the next call on store).  Names are valid (store_mailbox_name_valid())
 * or refused with STORE_REFUSE_NAME.
 */

/*
 * CREATE (RFC 9051 §6.3.4): name and every missing parent, not
 * subscribed; special_use NULL or one of the RFC 6154 attributes
 * ("\\Archive"...; others: STORE_REFUSE_USEATTR) for name itself.
 */
int store_mailbox_create(struct store *store, const char *name,
    const char *special_use, enum store_refusal *refusal_r,
    const char **error_r) MF_WUR;

/*
 * DELETE (§6.3.5): refused for INBOX and for a mailbox with children
 * (STORE_REFUSE_HASCHILDREN: we never leave \Noselect names behind).
 * Its messages go with it (usage shrinks, files no other row uses are
 * unlinked after the commit); its subscription stays (§6.3.9).
 */
int store_mailbox_delete(struct store *store, const char *name,
    enum store_refusal *refusal_r, const char **error_r) MF_WUR;

/*
 * RENAME (§6.3.6): from and all its children become to (missing parents
 * of to are created); subscriptions of the renamed names follow them.
 * UIDVALIDITY and UIDs stay.  RENAME INBOX moves INBOX's messages into a
 * new mailbox to (new UIDVALIDITY, same UIDs) and leaves INBOX empty,
 * the moves recorded as INBOX expunges; INBOX's children stay.
 */
int store_mailbox_rename(struct store *store, const char *from,
    const char *to, enum store_refusal *refusal_r, const char **error_r)
    MF_WUR;

/*
 * SUBSCRIBE / UNSUBSCRIBE (§6.3.7, §6.3.8) of any valid name, existing
 * or not.  Subscribing twice is fine; unsubscribing a name that is not
 * subscribed is STORE_REFUSE_NONEXISTENT.
 */
int store_subscribe(struct store *store, const char *name, bool on,
    enum store_refusal *refusal_r, const char **error_r) MF_WUR;

/* What STATUS reports (RFC 9051 §6.3.11, RFC 7162 §3.1.6). */
struct store_status {
	uint32_t uidvalidity;
	uint64_t uidnext;
	uint64_t highestmodseq;
	uint64_t messages;
	uint64_t unseen;		/* without \Seen */
	uint64_t deleted;		/* with \Deleted */
	uint64_t size;			/* octets of all messages */
};

/* 1 with *status_r, 0 no such mailbox, -1 error. */
int store_status(struct store *store, const char *mailbox,
    struct store_status *status_r, const char **error_r) MF_WUR;

/*
 * APPEND (§6.3.12) in two steps.  store_append_file() creates an empty
 * temporary file under msg/ for the message being received (fd open for
 * writing; the caller closes it when the data is written).  Then
 * store_append() fsyncs the files, gives them their final names and
 * records them in one transaction with consecutive UIDs (MULTIAPPEND,
 * RFC 3502: all or nothing); the temporary names are gone afterwards
 * whatever it returns.  A message never used goes with
 * store_append_discard().  A crash while a message is received leaves
 * its "tmp.a..." file for store_sweep_tmp().
 */
int store_append_file(struct store *store, int *fd_r,
    char name_r[STORE_MSG_FILE_MAX + 1], const char **error_r) MF_WUR;
void store_append_discard(struct store *store, const char *name);

struct store_append_msg {
	char file[STORE_MSG_FILE_MAX + 1];	/* from store_append_file() */
	uint32_t flags;			/* enum store_flag bits */
	/* sorted, unique atoms separated by single spaces (as store_flags_
	 * change() keeps them), at most STORE_KEYWORDS_MAX bytes, or "" */
	const char *keywords;
	int64_t internaldate;		/* Unix seconds */
};

/* 1 with the UIDVALIDITY and the first UID (the others follow it), 0
 * refused (STORE_REFUSE_NONEXISTENT, _LIMIT: UIDs used up), -1 error. */
int store_append(struct store *store, const char *mailbox,
    const struct store_append_msg *msgs, size_t count,
    uint32_t *uidvalidity_r, uint32_t *uid_r, enum store_refusal *refusal_r,
    const char **error_r) MF_WUR;

#endif
