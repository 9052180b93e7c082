/*
 * queue.h - the spool and the queue database.
 *
 * "250 means it is on disk": a session writes the message to
 * <data_dir>/spool/tmp/<id>; at the end of DATA the committer thread
 * fsyncs it, renames it to spool/msg/<id>, fsyncs the directory and records
 * the message and its recipients in <data_dir>/queue/queue.db in one
 * transaction (WAL, synchronous=FULL) - many messages per transaction when
 * they arrive together (group commit).  Only then is the session told to
 * answer 250.  The queue runner delivers local recipients into their
 * stores (idempotently) and keeps remote ones for outbound delivery.
 */
#ifndef MAILFORT_QUEUE_H
#define MAILFORT_QUEUE_H

#include "core/config.h"

struct pool;
struct spool_msg;
struct queue_committer;

#define QUEUE_ID_LEN 20		/* hex characters */

/* Creates data_dir/{spool/tmp,spool/msg,queue} (mode 0700). */
int queue_dirs_create(const char *data_dir, const char **error_r) MF_WUR;
/* Removes leftovers of sessions that never committed (startup only). */
void queue_clean_tmp(const char *data_dir);
/* Removes spool files the queue has no record of (startup only). */
void queue_clean_orphans(const char *data_dir);

/* A new message being received.  NULL and *error_r on failure. */
struct spool_msg *spool_msg_new(const char *data_dir, const char **error_r);
const char *spool_msg_id(const struct spool_msg *m);
/* Buffered append; -1 on a write error (disk full...). */
int spool_msg_write(struct spool_msg *m, const void *data, size_t len)
    MF_WUR;
uint64_t spool_msg_size(const struct spool_msg *m);
void spool_msg_set_sender(struct spool_msg *m, const char *sender);
/* MAIL FROM's BODY= (0 7bit, 1 8BITMIME, 2 BINARYMIME) and SMTPUTF8, and
 * the authenticated user (NULL: not submitted): outbound delivery needs
 * them (peer extensions, DKIM signing). */
void spool_msg_set_flags(struct spool_msg *m, int body, bool smtputf8,
    const char *auth_user);
/* A final recipient (after alias expansion), local or remote. */
void spool_msg_add_rcpt(struct spool_msg *m, const char *rcpt, bool local);
/* Throws the message away (unlinks the temporary file). */
void spool_msg_abort(struct spool_msg **m);

/*
 * The committer: one thread per worker with its own database connection.
 * wake_fd (or -1) gets one byte after each commit to wake the queue runner.
 */
struct queue_committer *queue_committer_new(const char *data_dir,
    struct pool *pool, int wake_fd, const char **error_r);
/* Waits for pending commits, then stops the thread. */
void queue_committer_free(struct queue_committer **qc);
/*
 * Takes ownership of m.  done(arg, ok) runs later on the loop thread of
 * pool: ok true means the message is durably queued.
 */
void queue_commit(struct queue_committer *qc, struct spool_msg *m,
    void (*done)(void *arg, bool ok), void *arg);

/*
 * The queue runner process body: delivers local recipients from the
 * queue into the stores, waking on wake_fd and every second; returns when
 * *stop becomes true (set from a signal handler).
 */
void queue_runner_run(const struct config *cfg, int wake_fd,
    volatile int *stop);

/* Reads the relay settings and maps as the queue runner will
 * (`mailfort check-config`); -1 when they have errors (logged). */
int queue_check_relays(const struct config *cfg);

/* Delivers everything due once (tests, `mailfort queue flush`).
 * Returns the number of recipients delivered, -1 on error. */
int queue_deliver_pending(const struct config *cfg);

#endif
