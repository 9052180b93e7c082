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

#endif
