/*
 * imap_selected.h - shared by the files of the selected state only
 * (imap_cmd_selected.c, imap_sync.c, imap_cmd_fetch.c, imap_cmd_store.c,
 * imap_cmd_search.c, imap_cmd_sort.c, imap_cmd_thread.c): the selected
 * mailbox, the pool job every command of this state runs through, and
 * the helpers they share.
 *
 * The selected mailbox is a snapshot of (UID, flags, keywords, MODSEQ) in
 * UID order; a message's sequence number is its index + 1.  Only
 * imap_sync_apply() changes which messages it holds, and only on the
 * loop between commands, so a command sees stable numbers throughout.
 * Expunges seen where RFC 9051 §7.5.1 forbids reporting them (during
 * FETCH, STORE, SEARCH) stay in the snapshot marked gone until the next
 * command that may report them.
 */
#ifndef MAILFORT_IMAP_SELECTED_H
#define MAILFORT_IMAP_SELECTED_H

#include "imap/imap_private.h"
#include "imap/imap_seqset.h"
#include "store/store.h"

#define IMAP_JOB_ERROR_MAX 160
/* Hierarchy delimiter shown in the LIST response of an IMAP4rev2 SELECT
 * (RFC 9051 §6.3.2); must agree with LIST. */
#define IMAP_HIER_DELIM "/"

struct imap_msg {
	uint32_t uid;
	uint32_t flags;			/* enum store_flag bits */
	uint64_t modseq;
	char *keywords;			/* xmalloc'd or NULL */
	bool gone;			/* expunged, not reported yet */
};

struct imap_fetch_job;

struct imap_mailbox {
	char name[IMAP_MAILBOX_MAX + 1];
	bool readonly;			/* EXAMINE */
	uint32_t uidvalidity;
	uint64_t uidnext;
	uint64_t highestmodseq;		/* as of the last sync */
	struct imap_msg *msgs;
	size_t count, cap;
	size_t ngone;
	char *keywords;		/* every keyword seen, for FLAGS, or NULL */
	/* A FETCH waiting for its output to drain (owned while here). */
	struct imap_fetch_job *fetch;
	/* RFC 5182 "$": the saved search result as UIDs, resolved (not
	 * resolved: empty); it dies with the selection, so SELECT,
	 * EXAMINE, CLOSE and UNSELECT reset it (§2.1). */
	struct imap_seqset saved;
};

/*
 * A command's pool job.  Specific jobs embed it first.  work() runs on
 * the pool with the store moved in; then, with sync set, the changes
 * since `since` are read into `changes`.  done() runs on the loop with
 * the store back in the session; it must finish with imap_job_end().
 * When the session is gone meanwhile, free() alone runs.
 */
struct imap_job {
	struct imap_server *srv;
	uint64_t id;
	struct store *store;
	char mailbox[IMAP_MAILBOX_MAX + 1];
	bool sync;
	uint64_t since;
	struct store_changes changes;
	int sync_ret;
	char error[IMAP_JOB_ERROR_MAX];	/* of work(), for the log */
	void (*work)(struct imap_job *j);
	void (*done)(struct imap_session *s, struct imap_job *j);
	void (*free)(struct imap_job *j);
};

/* imap_sync.c */
/* Fills the common part of j for s (mailbox, sync since the snapshot). */
void imap_job_init(struct imap_session *s, struct imap_job *j,
    void (*work)(struct imap_job *), void (*done)(struct imap_session *,
    struct imap_job *), void (*freefn)(struct imap_job *));
/* Moves s->store into j and runs it (session BUSY). */
void imap_job_start(struct imap_session *s, struct imap_job *j);
/* After done(): applies the sync (expunges reported when expunge_ok),
 * sends the tagged reply (status NULL: none), frees j and reads the next
 * command. */
void imap_job_end(struct imap_session *s, struct imap_job *j,
    bool expunge_ok, const char *status, const char *fmt, ...)
    MF_PRINTF(5, 6);
/* A sync-only job: NOOP, CHECK, IDLE; then the tagged OK with text (or,
 * idle, back to waiting for DONE). */
void imap_sync_start(struct imap_session *s, const char *text, bool idle);
/* Applies changes to the snapshot with the untagged responses. */
void imap_sync_apply(struct imap_session *s, const struct store_changes *ch,
    bool expunge_ok);
/* Sequence number (index + 1) of uid, 0 when not in the snapshot. */
uint32_t imap_mbox_seq(const struct imap_mailbox *mbox, uint32_t uid);
/* Flags as "\Seen kw" (no parentheses) appended to out. */
void imap_flags_out(struct buf *out, uint32_t flags, const char *keywords);
/* Adds new keywords to mbox->keywords; true when the list grew. */
bool imap_mbox_learn(struct imap_mailbox *mbox, const char *keywords);
/* "* FLAGS" and "* OK [PERMANENTFLAGS ...]". */
void imap_send_flags(struct imap_session *s);
/* Ascending UIDs as a compact sequence set ("1:3,7"). */
void imap_uidset_out(struct buf *out, const uint32_t *uids, size_t n);

/* RFC 5182 §2.1: replaces the saved result by n ascending UIDs (n 0:
 * the empty set). */
void imap_saved_set(struct imap_mailbox *mbox, const uint32_t *uids,
    size_t n);
/* Resolves a parsed set (imap_seqset_resolve()) as UIDs or sequence
 * numbers of the snapshot: "*" is the highest, "$" the messages of the
 * snapshot in the saved result. */
void imap_mbox_resolve(const struct imap_mailbox *mbox,
    struct imap_seqset *set, bool uid);

/*
 * Resolves a sequence set argument against the snapshot: the messages
 * (indexes into mbox->msgs, ascending) it names.  Sequence numbers past
 * the end are an error (RFC 9051 §6.4.5 answers BAD); UIDs that are not
 * there are left out.  Returns 0 with *idx_r (free()) or -1 with
 * *error_r static text.
 */
int imap_seq_select(const struct imap_mailbox *mbox,
    const struct imap_arg *arg, bool uid, uint32_t **idx_r, size_t *n_r,
    const char **error_r) MF_WUR;

/* imap_cmd_fetch.c */
void imap_cmd_fetch(struct imap_session *s, const struct imap_command *cmd,
    bool uid);
void imap_fetch_free(struct imap_fetch_job **fp);

/* imap_cmd_store.c */
void imap_cmd_store(struct imap_session *s, const struct imap_command *cmd,
    bool uid);
/* A flag atom: system flag bit, or 0 and a keyword; -1 invalid. */
int imap_flag_parse(const char *atom, uint32_t *flag_r) MF_WUR;

/* imap_cmd_search.c; the search program is shared with SORT and THREAD */
#define IMAP_SEARCH_HEADER_MAX (1024 * 1024)	/* header block read */
#define IMAP_SEARCH_CHUNK (64 * 1024)		/* file read size */

void imap_cmd_search(struct imap_session *s, const struct imap_command *cmd,
    bool uid);

struct imap_sk;

/* Search keys parsed on the loop and the snapshot they run over. */
struct imap_search_prog {
	struct imap_sk *root;
	bool modseq_key;		/* answers carry MODSEQ (RFC 7162) */
	uint32_t *uids;			/* snapshot: index + 1 = seq */
	size_t n;
};

/* One message on the pool; its file opens on first need. */
struct imap_search_msg {
	struct store *store;
	const struct store_row *row;
	uint32_t seq;
	char *chunk;			/* IMAP_SEARCH_CHUNK bytes */
	int fd;
	struct buf hdr;		/* imap_search_msg_header() */
	bool hdr_read, failed;
};

/*
 * Parses a search-key list (RFC 9051 §6.4.4) of the charset (NULL: none
 * given; UTF-8 and US-ASCII known) into p for s->mbox: sequence sets
 * resolved, the snapshot's UIDs copied, CONDSTORE enabled by a MODSEQ
 * key.  0, or -1 with *status_r "BAD" or "NO" and *error_r static text
 * (free p with imap_search_prog_free() either way).
 */
int imap_search_prog_parse(struct imap_session *s, const char *charset,
    const struct imap_arg *keys, struct imap_search_prog *p,
    const char **status_r, const char **error_r) MF_WUR;
void imap_search_prog_free(struct imap_search_prog *p);
/*
 * Pool: runs p over the rows of mailbox, calling hit() in sequence order
 * for each message of the snapshot that still exists and matches; m and
 * its row live for that call only.  1 done, 0 no mailbox, -1 error with
 * *error_r (valid until the next store call).
 */
int imap_search_prog_run(const struct imap_search_prog *p,
    struct store *store, const char *mailbox,
    void (*hit)(void *arg, struct imap_search_msg *m), void *arg,
    const char **error_r) MF_WUR;
/* Reads the header block of m, up to and with the blank line, at most
 * IMAP_SEARCH_HEADER_MAX bytes, into m->hdr (data NULL when empty);
 * false when the file cannot be read.  Reads once. */
bool imap_search_msg_header(struct imap_search_msg *m);

/* imap_cmd_sort.c: SORT (RFC 5256 §3) and what THREAD shares */
void imap_cmd_sort(struct imap_session *s, const struct imap_command *cmd,
    bool uid);
/* The first field name of the header block hdr, unfolded, into out
 * (reset first); false when there is none. */
bool imap_header_get(const struct buf *hdr, const char *name,
    struct buf *out);
/* RFC 5256 §2.2 sent date: Date: in UTC seconds, else internaldate. */
int64_t imap_sort_sent_date(const struct buf *hdr, int64_t internaldate);
/* RFC 5256 §2.1 base subject of a raw Subject: value, upper-cased for
 * i;ascii-casemap comparison; xmalloc'd.  *refwd_r: a reply or forward
 * marker was removed. */
char *imap_base_subject(const char *subject, bool *refwd_r);

/* imap_cmd_thread.c: THREAD (RFC 5256 §3) */
void imap_cmd_thread(struct imap_session *s, const struct imap_command *cmd,
    bool uid);

#endif
