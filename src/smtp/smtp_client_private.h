/*
 * smtp_client_private.h - shared by the SMTP client's files only:
 * smtp_client.c (connection, greeting, EHLO, STARTTLS, AUTH, reading
 * and dispatching replies, closing) and smtp_client_txn.c (MAIL, RCPT,
 * DATA or BDAT, the body, the final reply, RSET, QUIT).
 */
#ifndef MAILFORT_SMTP_CLIENT_PRIVATE_H
#define MAILFORT_SMTP_CLIENT_PRIVATE_H

#include "net/net.h"
#include "smtp/smtp.h"

#define SMTPC_CHUNK (64 * 1024)		/* spool file read and BDAT size */
#define SMTPC_OUT_HIGH (256 * 1024)	/* unsent output before we wait */
#define SMTPC_TEXT_MAX 2048		/* reply text kept for logs, DSNs */
#define SMTPC_CMD_MAX 2048		/* one command line we send */
#define SMTPC_PATH_MAX 1000		/* sender or recipient we pass on */

enum smtpc_state {
	SMTPC_ST_CONNECT,
	SMTPC_ST_GREETING,
	SMTPC_ST_EHLO,
	SMTPC_ST_HELO,
	SMTPC_ST_STARTTLS,
	SMTPC_ST_TLS,
	SMTPC_ST_AUTH,		/* waiting for 235 */
	SMTPC_ST_AUTH_USER,	/* LOGIN: waiting for the user prompt */
	SMTPC_ST_AUTH_PASS,	/* LOGIN: waiting for the password prompt */
	SMTPC_ST_READY,
	SMTPC_ST_MAIL,
	SMTPC_ST_RCPT,
	SMTPC_ST_DATA,
	SMTPC_ST_BODY,
	SMTPC_ST_BDAT,
	SMTPC_ST_DOT,
	SMTPC_ST_RSET,
	SMTPC_ST_QUIT,
	SMTPC_ST_CLOSED,
};

/* What the peer's EHLO reply offered (RFC 5321 §4.1.1.1). */
struct smtpc_ext {
	bool pipelining, size, eightbit, smtputf8, starttls, chunking;
	bool binarymime, enhanced, auth, auth_plain, auth_login;
	uint64_t size_max;	/* 0: no limit given */
};

enum smtpc_notify {
	SMTPC_N_READY = 1,
	SMTPC_N_TXN = 2,
	SMTPC_N_CLOSE = 4,
};

struct smtpc {
	struct conn *conn;
	const struct smtpc_ops *ops;
	void *arg;
	enum smtpc_state state;
	/* parameters (copies) */
	char *helo, *peer_name, *auth_user, *auth_password;
	enum smtpc_tls tls_mode;
	struct tls_ctx *tls_ctx;
	bool verify;
	unsigned command_timeout, data_done_timeout;	/* seconds */
	char *peer;		/* "name[addr]" for made-up replies */
	char *addr;
	/* TLS, recorded when it comes up */
	bool tls_on, tls_verified, starttls_refused;
	char tls_version[32], tls_cipher[64];
	struct smtpc_ext ext, ext_new;
	/* the reply being read */
	char line[SMTPC_LINE_MAX + 1];
	int rcode;
	size_t rlines;
	struct buf rtext;
	char rstatus[16];
	/* the transaction */
	struct smtpc_txn *txn;
	bool txn_done;		/* results complete, on_txn_done pending */
	size_t *sent;		/* recipient indexes in RCPT order */
	size_t nsent, nreplied, naccepted;
	bool *accepted;
	bool pipelined, bdat, mail_failed, discard, prefix_done, bol;
	uint64_t off, body_len;
	char tail[2];
	char *chunk;
	/* callbacks */
	struct net_timer *notify_timer;
	unsigned notify;
	struct smtpc_reply why;
	bool tls_failed, close_told;
};

/* ---- smtp_client.c ---- */

void smtpc_reply_free(struct smtpc_reply *r);
void smtpc_reply_copy(struct smtpc_reply *dst, const struct smtpc_reply *src);
/* A reply we make up: text "<code> <status> <message>". */
void smtpc_reply_make(struct smtpc_reply *r, int code, const char *status,
    const char *fmt, ...) MF_PRINTF(4, 5);

/* The only place that assigns c->state; sets the state's timeout. */
void smtpc_set_state(struct smtpc *c, enum smtpc_state st);
/* "... while <doing>" text of the current state, for made-up replies. */
const char *smtpc_doing(const struct smtpc *c);
/* Queues a caller callback; it runs from a net_timer, never from here. */
void smtpc_notify(struct smtpc *c, enum smtpc_notify what);
/*
 * The end of the connection: a transaction in progress gets txn_r for
 * every recipient without a result (on_txn_done first), then on_close
 * gets why.
 */
void smtpc_close(struct smtpc *c, const struct smtpc_reply *why,
    const struct smtpc_reply *txn_r, bool tls_failed);
/* smtpc_close() with r for both. */
void smtpc_fail(struct smtpc *c, const struct smtpc_reply *r,
    bool tls_failed);
void smtpc_fail_make(struct smtpc *c, int code, const char *status,
    const char *fmt, ...) MF_PRINTF(4, 5);
/* One command line; CRLF is added.  Longer than SMTPC_CMD_MAX: panic. */
void smtpc_cmd(struct smtpc *c, const char *fmt, ...) MF_PRINTF(2, 3);

/* ---- smtp_client_txn.c ---- */

/* The transaction's internals; results stay with the caller. */
void smtpc_txn_reset(struct smtpc *c);
/* Every recipient without a result yet gets r. */
void smtpc_txn_fill(struct smtpc *c, const struct smtpc_reply *r);
/* Results complete: back to READY (unless closed), on_txn_done soon. */
void smtpc_txn_done(struct smtpc *c);
/* Writes body while the output is below SMTPC_OUT_HIGH (on_drained
 * calls again). */
void smtpc_body_pump(struct smtpc *c);
/* Reply handlers of the transaction states (smtpc_dispatch()). */
void smtpc_on_mail(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_on_rcpt(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_on_data(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_on_bdat(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_on_dot(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_on_rset(struct smtpc *c, const struct smtpc_reply *r);
void smtpc_on_quit(struct smtpc *c, const struct smtpc_reply *r);

#endif
