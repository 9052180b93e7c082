/*
 * imap_private.h - shared by the IMAP session files only.
 *
 * Commands come in tables (imap_cmd.c: any state and not authenticated;
 * imap_cmd_mailbox.c: authenticated state; imap_cmd_selected.c: selected
 * state); the dispatcher alone checks state and TLS, handlers validate
 * arguments and answer with imap_tagged()/imap_untagged().  Store work
 * runs on the pool: the session moves its store handle into the job
 * (s->store becomes NULL, state BUSY) and gets it back in the done
 * callback, which finds the session again by id.
 */
#ifndef MAILFORT_IMAP_PRIVATE_H
#define MAILFORT_IMAP_PRIVATE_H

#include "auth/auth.h"
#include "imap/imap.h"
#include "imap/imap_parse.h"
#include "net/net.h"

#define IMAP_READ_CHUNK (64 * 1024)
#define IMAP_OUTPUT_MAX (1024 * 1024)	/* unread output before we pause */
#define IMAP_MAX_ERRORS 20		/* BAD replies before BYE */
#define IMAP_TIMEOUT_PREAUTH 60		/* seconds before login */
#define IMAP_TIMEOUT_AUTH 1800		/* RFC 9051 §5.4: at least 30 min */
#define IMAP_SASL_LINE_MAX 12288	/* AUTHENTICATE response line */

enum imap_state {
	IMAP_ST_GREETING,	/* before the greeting (PROXY, TLS) */
	IMAP_ST_NOTAUTH,	/* RFC 9051 §3.1 */
	IMAP_ST_AUTH,		/* §3.2 */
	IMAP_ST_SELECTED,	/* §3.3 */
	IMAP_ST_LOGOUT,		/* §3.4: last reply being flushed */
};

/* What the session waits for besides the next command. */
enum imap_wait {
	IMAP_WAIT_NONE,
	IMAP_WAIT_BUSY,		/* pool job running */
	IMAP_WAIT_TLS,		/* STARTTLS handshake */
	IMAP_WAIT_SASL,		/* AUTHENTICATE continuation line */
	IMAP_WAIT_IDLE,		/* IDLE until DONE (RFC 2177) */
};

/* Command flags. */
#define IMAP_CMD_NOTAUTH	0x01	/* allowed in NOTAUTH */
#define IMAP_CMD_AUTH		0x02	/* allowed in AUTH */
#define IMAP_CMD_SELECTED	0x04	/* allowed in SELECTED */
#define IMAP_CMD_PRE_TLS	0x08	/* allowed before TLS on 143 */
#define IMAP_CMD_UID		0x10	/* has a "UID <name>" form */
#define IMAP_CMD_ANY (IMAP_CMD_NOTAUTH | IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

struct imap_session;
struct imap_command;

struct imap_cmd {
	const char *name;
	unsigned flags;
	/* uid: called as "UID <name>". */
	void (*handler)(struct imap_session *s, const struct imap_command *cmd,
	    bool uid);
};

struct imap_cmd_table {
	const struct imap_cmd *cmds;
	size_t count;
	/* capabilities this table adds once authenticated, or "" */
	const char *caps;
};

extern const struct imap_cmd_table imap_cmds_core;
extern const struct imap_cmd_table imap_cmds_mailbox;
extern const struct imap_cmd_table imap_cmds_selected;

struct imap_server {
	struct event_base *base;
	const struct config *cfg;
	struct tls_ctx *tls;
	struct accounts *acc;
	struct lockout *lockout;
	struct pool *pool;		/* NULL after detach: run inline */
	uint64_t next_id;
	bool shutting_down;
	struct id_table *sessions;	/* by session id */
};

struct store;
struct imap_mailbox;	/* the selected mailbox, imap_cmd_selected.c */

struct imap_session {
	uint64_t id;
	char sid[20];
	struct imap_server *srv;
	struct conn *conn;
	struct imap_parser *parser;
	enum listener_kind kind;
	enum imap_state state;
	enum imap_wait wait;
	unsigned errors;
	bool rev2;			/* ENABLE IMAP4rev2 */
	bool utf8;			/* ENABLE UTF8=ACCEPT or rev2 */
	bool condstore;			/* ENABLE CONDSTORE / used */
	bool qresync;			/* ENABLE QRESYNC */
	char *user;			/* after login */
	struct store *store;		/* after login; NULL while BUSY */
	struct imap_mailbox *mbox;	/* SELECTED */
	bool changed;			/* account changed since last sync */
	char tag[IMAP_TAG_MAX + 1];	/* of the command waiting (BUSY...) */
	/* AUTHENTICATE/IDLE line; allocated only while one is awaited, so
	 * idle sessions don't carry 12 KiB each */
	char *line;
	/* APPEND messages being received as files (imap_cmd_append.c) */
	struct imap_append_in *append;
	/* imap_cmd_fetch.c: set while a FETCH waits for its output to
	 * drain; imap_on_drained() calls it (once) instead of reading. */
	void (*drained)(struct imap_session *s);
};

/* imap_session.c */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    MF_PRINTF(2, 3);
/* "<tag> <status> <text>"; status "OK", "NO" or "BAD". BAD counts as an
 * error (BYE past IMAP_MAX_ERRORS). */
void imap_tagged(struct imap_session *s, const char *tag,
    const char *status, const char *fmt, ...) MF_PRINTF(4, 5);
/* Raw bytes (literals of FETCH responses). */
void imap_write(struct imap_session *s, const void *data, size_t len);
void imap_set_state(struct imap_session *s, enum imap_state st);
void imap_set_wait(struct imap_session *s, enum imap_wait w);
/* Ends the session after the output drains (LOGOUT, BYE). */
void imap_close_after_reply(struct imap_session *s);
struct imap_session *imap_session_by_id(struct imap_server *srv,
    uint64_t id);
/* Back from BUSY: reads the next commands. */
void imap_resume(struct imap_session *s);
/* Runs work on the pool (inline after detach), done on the loop. */
void imap_submit(struct imap_session *s, void (*work)(void *),
    void (*done)(void *), void *arg);
bool imap_tls_required(const struct imap_session *s);
/* The CAPABILITY list for the session's state (no "* CAPABILITY"). */
void imap_capabilities(const struct imap_session *s, struct buf *out);

/* imap_cmd.c */
void imap_dispatch(struct imap_session *s, const struct imap_command *cmd);
void imap_greet(struct imap_session *s);

/* imap_auth.c */
void imap_cmd_login(struct imap_session *s, const struct imap_command *cmd,
    bool uid);
void imap_cmd_authenticate(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
void imap_sasl_line(struct imap_session *s, const char *line, size_t len);

/* imap_cmd_selected.c: the selected mailbox */
/* Leaves the selected mailbox (CLOSE/UNSELECT/SELECT/LOGOUT); frees it. */
void imap_mailbox_free(struct imap_mailbox **mbox);
/* Something changed in the account: report news if allowed now. */
void imap_selected_changed(struct imap_session *s);
/* IDLE ended (DONE). */
void imap_idle_done(struct imap_session *s);

/* imap_cmd_append.c: APPEND literals streamed to files (RFC 9051
 * §6.3.12), called from the session's input loop. */
struct imap_append_in;
/* A literal was announced: true when APPEND took it (accepted with
 * IMAP_LIT_STREAM or rejected), false for the session's default. */
bool imap_append_literal(struct imap_session *s,
    const struct imap_literal *lit);
/* IMAP_PARSE_LITERAL_DATA: the chunk goes to the message's file. */
void imap_append_chunk(struct imap_session *s);
/* IMAP_PARSE_ERROR: drops the files; true when the reply was given
 * (NO [TOOBIG], NO [UNKNOWN-CTE]). */
bool imap_append_parse_error(struct imap_session *s);
/* Session end: drops the files. */
void imap_append_abort(struct imap_session *s);

#endif
