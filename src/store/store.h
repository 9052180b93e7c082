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

/*
 * Opens the store of account (lower-case "user@domain"), creating the
 * directories, the database and the default mailboxes (INBOX, Drafts,
 * Sent, Trash, Junk, Archive with SPECIAL-USE, subscribed) on first use.
 * Returns 0 or -1 with *error_r (static text).
 */
int store_open(const char *data_dir, const char *account,
    struct store **store_r, const char **error_r) MF_WUR;
void store_close(struct store **store);

/*
 * Delivers a spooled message file into mailbox (normally "INBOX"): hard-
 * links spool_path into the store (copies if the link fails across file
 * systems), fsyncs, then records it in one transaction with the next UID.
 * Idempotent on delivery_id ("<queue id>/<recipient>"): delivering the same
 * id twice stores it once.  Returns 1 delivered, 0 already there, -1 error
 * with *error_r.
 */
int store_deliver(struct store *store, const char *spool_path,
    const char *delivery_id, const char *mailbox, const char **error_r)
    MF_WUR;

/* Number of messages in mailbox (tests, CLI).  -1 on error. */
int store_count(struct store *store, const char *mailbox, uint64_t *count_r)
    MF_WUR;

#endif
