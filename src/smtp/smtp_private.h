/*
 * smtp_private.h - shared by the SMTP session files only.
 */
#ifndef MAILFORT_SMTP_PRIVATE_H
#define MAILFORT_SMTP_PRIVATE_H

#include "auth/auth.h"
#include "net/net.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"

#define SMTP_LINE_MAX 2048		/* command line, without CRLF */
#define SMTP_AUTH_LINE_MAX 12288	/* SASL response line, RFC 4954 §4 */
#define SMTP_OUTPUT_MAX (256 * 1024)	/* unread replies before we pause */
#define SMTP_READ_CHUNK (64 * 1024)
#define SMTP_HELO_MAX 255

enum smtp_state {
	SMTP_ST_CONNECTED,	/* before the greeting (PROXY, TLS handshake) */
	SMTP_ST_HELO,		/* greeted, waiting for HELO/EHLO */
	SMTP_ST_READY,		/* may start a transaction */
	SMTP_ST_MAIL,		/* MAIL accepted */
	SMTP_ST_RCPT,		/* at least one RCPT accepted */
	SMTP_ST_DATA,		/* receiving DATA */
	SMTP_ST_BDAT,		/* receiving a BDAT chunk */
	SMTP_ST_BDAT_WAIT,	/* between BDAT chunks */
	SMTP_ST_AUTH,		/* waiting for a SASL response line */
	SMTP_ST_BUSY,		/* waiting for the pool (AUTH check, commit) */
	SMTP_ST_TLS,		/* STARTTLS handshake running */
	SMTP_ST_CLOSING,	/* last reply being flushed */
};

enum smtp_auth_step { SMTP_AUTH_PLAIN, SMTP_AUTH_LOGIN_USER,
    SMTP_AUTH_LOGIN_PASS };

struct smtp_server {
	struct event_base *base;
	const struct config *cfg;
	struct tls_ctx *tls;
	struct accounts *acc;
	struct lockout *lockout;
	struct queue_committer *qc;
	struct pool *pool;
	uint64_t next_id;
	bool shutting_down;
	struct id_table *sessions;	/* by session id */
};

struct smtp_session {
	uint64_t id;
	char sid[20];			/* log prefix */
	struct smtp_server *srv;
	struct conn *conn;
	enum listener_kind kind;
	enum smtp_state state;
	enum smtp_state resume_state;	/* after BUSY */
	bool esmtp;
	bool trusted;			/* trusted_networks */
	bool quit_after_flush;
	unsigned errors;
	char helo[SMTP_HELO_MAX + 1];
	char *auth_user;
	enum smtp_auth_step auth_step;
	char *auth_login_user;
	/* transaction */
	struct smtp_mail_args mail;
	size_t rcpt_count;		/* accepted RCPTs */
	char **rcpts;			/* final targets (for Received "for") */
	bool *rcpt_local;
	size_t target_count;
	struct spool_msg *msg;
	char qid[QUEUE_ID_LEN + 1];	/* of the message being committed */
	struct smtp_data data;
	bool data_active;
	uint64_t bdat_left;
	bool bdat_last;
	bool bdat_failed;
	char line[SMTP_AUTH_LINE_MAX + 1];
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    MF_PRINTF(2, 3);
/* A reply that counts as a client error (closes past max_errors). */
void smtp_reply_error(struct smtp_session *s, const char *fmt, ...)
    MF_PRINTF(2, 3);
void smtp_set_state(struct smtp_session *s, enum smtp_state st);
void smtp_close_after_reply(struct smtp_session *s);
void smtp_reset_transaction(struct smtp_session *s);
struct smtp_session *smtp_session_by_id(struct smtp_server *srv,
    uint64_t id);
bool smtp_is_submission(const struct smtp_session *s);
void smtp_process_input(struct smtp_session *s);

/* smtp_cmd.c */
void smtp_dispatch(struct smtp_session *s, const char *line, size_t len);
void smtp_greet(struct smtp_session *s);

/* smtp_txn.c */
void smtp_cmd_mail(struct smtp_session *s, const char *args);
void smtp_cmd_rcpt(struct smtp_session *s, const char *args);
void smtp_cmd_data(struct smtp_session *s, const char *args);
void smtp_cmd_bdat(struct smtp_session *s, const char *args);
/* Feeds input to DATA/BDAT; returns false when waiting for more. */
bool smtp_data_input(struct smtp_session *s);

/* smtp_auth.c */
void smtp_cmd_auth(struct smtp_session *s, const char *args);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);

#endif
