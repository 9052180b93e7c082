/*
 * pop3_private.h - shared by the POP3 session files only.  Pre-auth files
 * (pop3_session.c, pop3_cmd.c, pop3_auth.c) never see the store: the
 * maildrop of a logged-in session is a struct pop3_mailbox that only
 * pop3_txn.c opens.
 */
#ifndef MAILFORT_POP3_PRIVATE_H
#define MAILFORT_POP3_PRIVATE_H

#include "auth/auth.h"
#include "net/net.h"
#include "pop3/pop3.h"
#include "pop3/pop3_parse.h"

/* SASL response line (RFC 5034 §4 sets no limit; SMTP's RFC 4954 §4
 * 12288 is plenty for PLAIN). */
#define POP3_AUTH_LINE_MAX 12288
#define POP3_OUTPUT_MAX (256 * 1024)	/* unread output before we wait */
#define POP3_READ_CHUNK (64 * 1024)	/* message file read per step */
#define POP3_ERRORS_MAX 10		/* protocol errors, then close */
/* Idle timeouts in seconds: short before login, and at least the ten
 * minutes of RFC 1939 §3 after it. */
#define POP3_TIMEOUT_AUTH 60
#define POP3_TIMEOUT_TRANSACTION 600
#define POP3_TIMEOUT_CLOSING 10		/* to flush a last reply */
#define POP3_REPLY_MAX 1024		/* one status line */

enum pop3_state {
	POP3_ST_CONNECTED,	/* before the greeting (PROXY, TLS handshake) */
	POP3_ST_AUTHORIZATION,	/* RFC 1939 §4 */
	POP3_ST_SASL,		/* AUTH: waiting for a response line */
	POP3_ST_LOGIN,		/* pool: password check, then the maildrop */
	POP3_ST_TRANSACTION,	/* RFC 1939 §5 */
	POP3_ST_SENDING,	/* streaming a RETR/TOP/LIST/UIDL response */
	POP3_ST_UPDATE,		/* QUIT: pool expunges (RFC 1939 §6) */
	POP3_ST_TLS,		/* STLS handshake running */
	POP3_ST_CLOSING,	/* last reply being flushed */
	POP3_ST_COUNT
};

struct pop3_session;
struct pop3_mailbox;		/* pop3_txn.c */

struct pop3_server {
	struct event_base *base;
	const struct config *cfg;
	struct tls_ctx *tls;
	struct accounts *acc;
	struct lockout *lockout;
	struct pool *pool;		/* NULL once the worker freed it */
	uint64_t next_id;
	bool shutting_down;
	/* RETR/TOP scratch, used within one loop turn: the file chunk and
	 * its stuffed form (at most twice as long plus the end). */
	char *chunk;
	struct buf out;
	struct id_table *sessions;	/* by session id */
};

struct pop3_session {
	uint64_t id;
	char sid[20];			/* log prefix */
	struct pop3_server *srv;
	struct conn *conn;
	enum listener_kind kind;
	enum pop3_state state;
	unsigned errors;
	char *user;			/* from USER; after login the account */
	struct pop3_mailbox *mbox;	/* TRANSACTION and SENDING */
	int send_fd;			/* RETR/TOP file being sent, or -1 */
	struct pop3_stuff stuff;
	bool scan_uidl;			/* SENDING a LIST (false) or UIDL */
	size_t scan_next;		/* its next message index */
	char line[POP3_AUTH_LINE_MAX + 1];
};

/* One row of the command table (pop3_cmd.c). */
typedef void pop3_handler(struct pop3_session *s, const struct pop3_cmd *c);

/* pop3_session.c */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    MF_PRINTF(2, 3);
/* A reply that counts as a client error (closes past POP3_ERRORS_MAX). */
void pop3_reply_error(struct pop3_session *s, const char *fmt, ...)
    MF_PRINTF(2, 3);
void pop3_set_state(struct pop3_session *s, enum pop3_state st);
const char *pop3_state_name(enum pop3_state st);
void pop3_close_after_reply(struct pop3_session *s);
struct pop3_session *pop3_session_by_id(struct pop3_server *srv,
    uint64_t id);
/* Hands a job to the pool and stops reading until done(arg) resumes;
 * false when the pool is gone (worker exiting): then nothing ran. */
bool pop3_submit(struct pop3_session *s, void (*work)(void *arg),
    void (*done)(void *arg), void *arg);
/* After pool work: go on reading (and run what was pipelined); when the
 * server is draining and nothing is pipelined, close. */
void pop3_resume(struct pop3_session *s);
void pop3_process_input(struct pop3_session *s);

/* pop3_cmd.c */
void pop3_dispatch(struct pop3_session *s, const char *line, size_t len);
void pop3_greet(struct pop3_session *s);

/* pop3_auth.c */
pop3_handler pop3_cmd_user, pop3_cmd_pass, pop3_cmd_apop, pop3_cmd_auth;
void pop3_sasl_line(struct pop3_session *s, const char *line, size_t len);

/* pop3_txn.c */
pop3_handler pop3_cmd_stat, pop3_cmd_list, pop3_cmd_retr, pop3_cmd_dele,
    pop3_cmd_rset, pop3_cmd_top, pop3_cmd_uidl;
/* After a good password: opens, locks and lists the maildrop of s->user
 * on the pool, then TRANSACTION ("+OK") or back to AUTHORIZATION. */
void pop3_txn_open(struct pop3_session *s);
/* QUIT in TRANSACTION: UPDATE state, expunge on the pool, reply, close. */
void pop3_txn_quit(struct pop3_session *s);
/* Output drained while SENDING: the next chunk. */
void pop3_txn_send_more(struct pop3_session *s);
/* Session end: closes the file being sent; the maildrop is closed (and
 * its lock released) on the pool, or here when the pool is gone.
 * Nothing is expunged (RFC 1939 §6). */
void pop3_txn_release(struct pop3_session *s);

#endif
