/*
 * imap_cmd_mailbox.h - shared by the files of the authenticated-state
 * commands (imap_cmd_mailbox.c, imap_cmd_list.c, imap_cmd_append.c): the
 * pool job every store-touching command runs as, mailbox names in and
 * out, and STATUS items (STATUS and LIST-STATUS).
 */
#ifndef MAILFORT_IMAP_CMD_MAILBOX_H
#define MAILFORT_IMAP_CMD_MAILBOX_H

#include "imap/imap_private.h"
#include "store/store.h"

_Static_assert(IMAP_MAILBOX_MAX == STORE_MAILBOX_NAME_MAX,
    "IMAP and the store agree on the longest mailbox name");

/* STATUS items of one request (RFC 9051 §6.3.11, RFC 7162 §3.1.6). */
#define IMAP_STATUS_ITEMS_MAX 16
/* A modified UTF-7 name is at most this much longer than its UTF-8. */
#define IMAP_MUTF7_NAME_MAX (IMAP_MAILBOX_MAX * 3 + 16)

enum imap_status_item {
	IMAP_STATUS_MESSAGES,
	IMAP_STATUS_UIDNEXT,
	IMAP_STATUS_UIDVALIDITY,
	IMAP_STATUS_UNSEEN,
	IMAP_STATUS_DELETED,
	IMAP_STATUS_SIZE,
	IMAP_STATUS_HIGHESTMODSEQ,
	IMAP_STATUS_RECENT,
};

struct imap_status_req {
	enum imap_status_item items[IMAP_STATUS_ITEMS_MAX];
	size_t count;
};

/*
 * A store command on the pool.  The session's store moves into the job
 * (imap_mjob_submit()) and back in the done callback, which finds the
 * session again by id; work() sees only the job.  A job that finds its
 * session gone closes the store.
 */
struct imap_mjob {
	struct imap_server *srv;
	uint64_t id;
	struct store *store;
	bool utf8;			/* names out as UTF-8, not mUTF-7 */
	const char *what;		/* command name, for replies */
	void (*work)(struct imap_mjob *j);
	void *ctx;			/* per command, freed by ctx_free */
	void (*ctx_free)(void *ctx);
	char name[IMAP_MAILBOX_MAX + 1];
	char name2[IMAP_MAILBOX_MAX + 1];
	/* results */
	int ret;			/* store result: 1, 0 refused, -1 */
	enum store_refusal refusal;
	char error[256];
	struct buf out;			/* untagged responses to send */
	char code[96];			/* "[APPENDUID ...] " or "" */
	bool changed;			/* tell the other sessions */
};

/* A job for s running work; submit it with imap_mjob_submit(). */
struct imap_mjob *imap_mjob_new(struct imap_session *s, const char *what,
    void (*work)(struct imap_mjob *j));
void imap_mjob_submit(struct imap_session *s, struct imap_mjob *j);
/* In work(): records a store error for the log. */
void imap_mjob_fail(struct imap_mjob *j, const char *error);

/*
 * The mailbox argument as the store names it: imap_arg_mailbox() (mUTF-7
 * decoded unless utf8) plus INBOX's children spelled "INBOX/...".
 * Returns -1 with *error_r static text.
 */
int imap_mbox_arg(const struct imap_session *s, const struct imap_arg *a,
    char name_r[IMAP_MAILBOX_MAX + 1], const char **error_r) MF_WUR;
/* Spells "INBOX" in name's first component upper case if it is INBOX in
 * any case (RFC 9051 §5.1); in place. */
void imap_mbox_canon(char *name);
/* Appends name as an IMAP quoted string, mUTF-7 encoded unless utf8. */
void imap_mbox_quote(struct buf *out, const char *name, bool utf8);

/* Parses "(MESSAGES UIDNEXT ...)"; -1 on anything unknown. */
int imap_status_parse(const struct imap_arg *list, bool rev2,
    struct imap_status_req *req_r) MF_WUR;
/* "STATUS <name> (<items>)" without "* " and CRLF. */
void imap_status_format(struct buf *out, const char *name, bool utf8,
    const struct imap_status_req *req, const struct store_status *st);

/* imap_cmd_list.c */
void imap_cmd_list(struct imap_session *s, const struct imap_command *cmd,
    bool uid);
void imap_cmd_lsub(struct imap_session *s, const struct imap_command *cmd,
    bool uid);

/* imap_cmd_append.c */
void imap_cmd_append(struct imap_session *s, const struct imap_command *cmd,
    bool uid);

#endif
