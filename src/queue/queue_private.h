/*
 * queue_private.h - shared by the files of src/queue only.
 */
#ifndef MAILFORT_QUEUE_PRIVATE_H
#define MAILFORT_QUEUE_PRIVATE_H

#include <sqlite3.h>
#include <time.h>

#include "queue/queue.h"
#include "smtp/smtp.h"

#define SPOOL_WRITE_CHUNK (64 * 1024)

struct spool_rcpt {
	char *addr;
	bool local;
};

struct spool_msg {
	char id[QUEUE_ID_LEN + 1];
	char *tmp_path;
	char *msg_path;
	int fd;
	struct buf pending;	/* not yet written */
	uint64_t size;
	bool write_failed;
	char *sender;
	int body;		/* 0 7bit, 1 8bitmime, 2 binarymime */
	bool smtputf8;
	char *auth;		/* submitting user or NULL */
	struct spool_rcpt *rcpts;
	size_t rcpt_count;
	int64_t created;
};

/* Opens (creating the schema of) data_dir/queue/queue.db. */
int queue_db_open(const char *data_dir, sqlite3 **db_r, const char **error_r)
    MF_WUR;
/* Steps s once and resets it: 0 on SQLITE_DONE or SQLITE_ROW, else -1. */
int queue_step(sqlite3_stmt *s);
/*
 * Deletes message id when none of its recipients is pending any more,
 * with the caller's statements left ("SELECT count(*) FROM recipient
 * WHERE msg_id = ? AND status IN (0, 3)") and del ("DELETE FROM message
 * WHERE id = ?"), inside the caller's transaction.  True when its spool
 * file may go once that transaction commits.
 */
bool queue_finish_msg(sqlite3_stmt *left, sqlite3_stmt *del, const char *id);
/* Unlinks DATA_DIR/spool/msg/ID (after the queue forgot it). */
void queue_unlink_spool(const char *data_dir, const char *id);
/* Flushes buffered data; -1 on error. */
int spool_msg_flush(struct spool_msg *m) MF_WUR;
void spool_msg_free(struct spool_msg **m);

/* ---- delivery status notifications (bounce.c) ---- */
/* One recipient a DSN reports on (RFC 3464 §2.3). */
struct bounce_rcpt {
	const char *addr;		/* Final-Recipient (rfc822) */
	const char *status;		/* "5.1.1", "4.4.1" */
	const char *remote_mta;		/* host name, or NULL */
	const char *diagnostic;		/* the remote reply or our reason */
	time_t last_attempt;		/* 0: none */
};

struct bounce {
	const char *msg_id;		/* the original: its spool file */
	const char *sender;		/* the original envelope sender,
					 * never "" */
	time_t arrival;			/* when we received it */
	bool delayed;			/* a delay warning (action delayed,
					 * will retry until retry_until),
					 * else a failure report */
	time_t retry_until;
	const struct bounce_rcpt *rcpts;
	size_t nrcpts;
	/* where the DSN goes: the sender's final addresses, each with
	 * whether it is local (after alias expansion) */
	const char *const *to;
	const bool *to_local;
	size_t nto;
};

/*
 * Writes a DSN (multipart/report; report-type=delivery-status: a
 * human-readable part, message/delivery-status, and the original's header
 * as text/rfc822-headers) from MAILER-DAEMON@hostname with envelope sender
 * <> to the spool - fsync'd, renamed into spool/msg, directory fsync'd -
 * and records it with its recipients in db, inside the caller's
 * transaction.  *id_r (QUEUE_ID_LEN + 1) gets its queue id.  -1 and
 * *error_r on failure (nothing recorded; the caller rolls back).
 */
int bounce_queue(const struct config *cfg, sqlite3 *db, const struct bounce *b,
    char *id_r, const char **error_r) MF_WUR;

/* ---- remote delivery (outbound.c) ---- */
struct outbound;
/* Starts the outbound thread of the queue runner: it delivers remote
 * recipients until *stop becomes true.  NULL when it cannot start (logged;
 * remote mail stays queued). */
struct outbound *outbound_start(const struct config *cfg, volatile int *stop);
/* Any thread: new mail is queued, look now (NULL: nothing). */
void outbound_wake(struct outbound *ob);
/* Waits for the thread (after *stop was set) and frees everything. */
void outbound_wait(struct outbound **ob);

/* ---- relay hosts (outbound_relay.c) ---- */
struct ob_relay {
	char *name;		/* as configured: "[host]:port" */
	char *host;
	uint16_t port;
	enum smtpc_tls mode;	/* IMPLICIT or STARTTLS: never plaintext */
	char *user, *password;	/* NULL: no AUTH */
	struct ob_relay *next;
};
struct ob_relays;
/* relay.host, relay.sender_map, relay.password_map and friends.  -1 when
 * something is wrong (logged; what could be read is kept in *rs_r, which
 * the caller frees either way). */
int ob_relays_load(const struct config *cfg, struct ob_relays **rs_r) MF_WUR;
/* The relay for mail from sender; NULL: direct MX delivery. */
const struct ob_relay *ob_relays_route(const struct ob_relays *rs,
    const char *sender);
/* Any relay configured at all? */
bool ob_relays_any(const struct ob_relays *rs);
void ob_relays_free(struct ob_relays **rs);

#endif
