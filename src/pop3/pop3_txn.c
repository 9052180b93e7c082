/*
 * pop3_txn.c - the maildrop of a logged-in POP3 session: the INBOX of
 * the account's store, locked for the session (flock on the store's
 * pop3.lock, so a second login anywhere gets [IN-USE], RFC 2449 §8.1.1)
 * and numbered by a snapshot taken at login (RFC 1939 §5: numbering
 * does not change during the session; new mail shows at the next one).
 * STAT, LIST, UIDL, RETR, TOP, DELE, RSET here; QUIT expunges the marked
 * messages in one store transaction (RFC 1939 §6) and flags \Seen those
 * retrieved by RETR and kept (as Dovecot does; TOP only peeks, and a
 * session that ends without QUIT changes nothing).  Opening, expunging
 * and closing the store run on the thread pool; RETR/TOP stream the file
 * in chunks as the output drains, never holding a message in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pop3/pop3_private.h"
#include "store/store.h"

#define POP3_LOCK_NAME "pop3"
#define POP3_MAILBOX "INBOX"
#define POP3_ERROR_MAX 256	/* store error text carried back */

struct pop3_mailbox {
	struct store *store;
	int lock_fd;
	struct store_msg_list list;	/* message n is msgs[n - 1] */
	bool *deleted;			/* DELE marks, per message */
	size_t ndeleted;
	bool *retrieved;		/* RETR'd: \Seen at QUIT */
	uint64_t deleted_bytes;
	uint64_t total_bytes;
};

/* A store handed to the pool with its lock, and what came back. */
struct pop3_job {
	struct pop3_server *srv;
	uint64_t id;
	char sid[20];
	char *data_dir;
	char *user;
	struct pop3_mailbox *mbox;
	uint32_t *uids;			/* QUIT: to expunge */
	size_t nuids;
	uint32_t *seen;			/* QUIT: to flag \Seen */
	size_t nseen;
	int ret;			/* 1 done, 0 [IN-USE], -1 error */
	uint64_t expunged;
	uint64_t seen_set;		/* \Seen newly set */
	char error[POP3_ERROR_MAX];
};

/* Any thread: closes the store, then drops the lock (in that order, so
 * the next session finds the database closed). */
static void
pop3_mailbox_close(struct pop3_mailbox **mboxp)
{
	struct pop3_mailbox *mbox = *mboxp;

	if (mbox == NULL)
		return;
	store_close(&mbox->store);
	store_unlock(&mbox->lock_fd);
	store_msg_list_free(&mbox->list);
	free(mbox->deleted);
	free(mbox->retrieved);
	free(mbox);
	*mboxp = NULL;
}

static void
pop3_job_free(struct pop3_job *j)
{
	pop3_mailbox_close(&j->mbox);
	free(j->uids);
	free(j->seen);
	free(j->user);
	free(j->data_dir);
	free(j);
}

static struct pop3_job *
pop3_job_new(struct pop3_session *s)
{
	struct pop3_job *j = xmalloc(sizeof(*j));

	j->srv = s->srv;
	j->id = s->id;
	str_lcpy(j->sid, s->sid, sizeof(j->sid));
	return j;
}

/* ---- login: open, lock, list (pool) ---- */

static void
pop3_open_work(void *arg)
{
	struct pop3_job *j = arg;
	struct pop3_mailbox *mbox = xmalloc(sizeof(*mbox));
	const char *err = NULL;

	mbox->lock_fd = -1;
	j->mbox = mbox;
	j->ret = -1;
	if (store_open(j->data_dir, j->user, &mbox->store, &err) < 0)
		goto fail;
	/* The lock first: the snapshot is then ours alone to change. */
	j->ret = store_lock_try(mbox->store, POP3_LOCK_NAME, &mbox->lock_fd,
	    &err);
	if (j->ret != 1)
		goto fail;
	j->ret = store_msg_list(mbox->store, POP3_MAILBOX, &mbox->list, &err);
	if (j->ret == 0)
		err = "no INBOX";
	if (j->ret != 1) {
		j->ret = -1;
		goto fail;
	}
	mbox->deleted = xcalloc(mbox->list.count + 1, sizeof(bool));
	mbox->retrieved = xcalloc(mbox->list.count + 1, sizeof(bool));
	for (size_t i = 0; i < mbox->list.count; i++)
		mbox->total_bytes += mbox->list.msgs[i].size;
	return;
fail:
	if (err != NULL)
		str_lcpy(j->error, err, sizeof(j->error));
	pop3_mailbox_close(&j->mbox);
}

static void
pop3_open_done(void *arg)
{
	struct pop3_job *j = arg;
	struct pop3_session *s = pop3_session_by_id(j->srv, j->id);

	if (s == NULL) {
		/* Gone meanwhile: close here, it is rare. */
		pop3_job_free(j);
		return;
	}
	if (j->ret == 1) {
		s->mbox = j->mbox;
		j->mbox = NULL;
		log_info("%s pop3 login client=%s user=%s messages=%zu "
		    "bytes=%llu", s->sid, conn_peer_addr(s->conn), s->user,
		    s->mbox->list.count,
		    (unsigned long long)s->mbox->total_bytes);
		pop3_set_state(s, POP3_ST_TRANSACTION);
		pop3_reply(s, "+OK Logged in, %zu messages (%llu octets)",
		    s->mbox->list.count,
		    (unsigned long long)s->mbox->total_bytes);
	} else {
		log_info("%s pop3 login client=%s user=%s result=%s%s%s",
		    s->sid, conn_peer_addr(s->conn), s->user,
		    j->ret == 0 ? "in-use" : "error",
		    j->ret == 0 ? "" : " error=", j->ret == 0 ? "" : j->error);
		x_free(&s->user);
		pop3_set_state(s, POP3_ST_AUTHORIZATION);
		/* RFC 2449 §8.1.1 and RFC 3206 §4. */
		pop3_reply(s, j->ret == 0 ? "-ERR [IN-USE] Mailbox is locked "
		    "by another POP3 session" : "-ERR [SYS/TEMP] Cannot open "
		    "mailbox, try again later");
	}
	pop3_job_free(j);
	pop3_resume(s);
}

void
pop3_txn_open(struct pop3_session *s)
{
	struct pop3_job *j = pop3_job_new(s);

	xassert(s->user != NULL && s->mbox == NULL);
	j->data_dir = xstrdup(s->srv->cfg->data_dir);
	j->user = xstrdup(s->user);
	pop3_set_state(s, POP3_ST_LOGIN);
	if (!pop3_submit(s, pop3_open_work, pop3_open_done, j)) {
		pop3_job_free(j);
		x_free(&s->user);
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3_close_after_reply(s);
	}
}

/* ---- QUIT: UPDATE (pool) ---- */

/* \Seen for the messages retrieved and kept, one MODSEQ for all
 * (store_flags_change()); a failure only costs the flag. */
static void
pop3_quit_seen(struct pop3_job *j)
{
	const struct store_flags_req req = {
		.op = STORE_FLAGS_ADD,
		.flags = STORE_FLAG_SEEN,
		.keywords = "",
	};
	struct store_flags_res *res;
	const char *err = NULL;

	if (j->nseen == 0)
		return;
	res = xreallocarray(NULL, j->nseen, sizeof(*res));
	if (store_flags_change(j->mbox->store, POP3_MAILBOX, &req, j->seen,
	    j->nseen, res, &err) < 0) {
		log_warnx("%s pop3 quit seen failed: %s", j->sid, err);
		free(res);
		return;
	}
	for (size_t i = 0; i < j->nseen; i++)
		if (res[i].status == STORE_FLAGS_CHANGED)
			j->seen_set++;
	store_flags_res_clear(res, j->nseen);
	free(res);
}

static void
pop3_quit_work(void *arg)
{
	struct pop3_job *j = arg;
	const char *err = NULL;

	j->ret = 1;
	if (j->nuids > 0 && store_expunge(j->mbox->store, POP3_MAILBOX,
	    j->uids, j->nuids, &j->expunged, &err) < 0) {
		j->ret = -1;
		str_lcpy(j->error, err, sizeof(j->error));
	}
	pop3_quit_seen(j);
	pop3_mailbox_close(&j->mbox);
}

static void
pop3_quit_done(void *arg)
{
	struct pop3_job *j = arg;
	struct pop3_session *s = pop3_session_by_id(j->srv, j->id);

	/* Logged even when the client is gone: the expunge happened. */
	if (j->ret == 1)
		log_info("%s pop3 quit expunged=%llu seen=%llu", j->sid,
		    (unsigned long long)j->expunged,
		    (unsigned long long)j->seen_set);
	else
		log_warnx("%s pop3 quit expunge failed: %s", j->sid,
		    j->error);
	if ((j->expunged > 0 || j->seen_set > 0) && j->user != NULL)
		ipc_notify_changed(j->user);
	if (s != NULL) {
		if (j->ret == 1)
			pop3_reply(s, "+OK Bye, %llu messages deleted",
			    (unsigned long long)j->expunged);
		else	/* RFC 1939 §6 */
			pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages "
			    "not removed");
		pop3_close_after_reply(s);
	}
	pop3_job_free(j);
}

void
pop3_txn_quit(struct pop3_session *s)
{
	struct pop3_mailbox *mbox = s->mbox;
	struct pop3_job *j = pop3_job_new(s);

	j->uids = xreallocarray(NULL, mbox->ndeleted + 1, sizeof(*j->uids));
	j->seen = xreallocarray(NULL, mbox->list.count + 1,
	    sizeof(*j->seen));
	for (size_t i = 0; i < mbox->list.count; i++) {
		const struct store_msg *m = &mbox->list.msgs[i];
		if (mbox->deleted[i])
			j->uids[j->nuids++] = m->uid;
		else if (mbox->retrieved[i] &&
		    (m->flags & STORE_FLAG_SEEN) == 0)
			j->seen[j->nseen++] = m->uid;
	}
	j->mbox = mbox;
	j->user = xstrdup(s->user);	/* for the change notice */
	s->mbox = NULL;
	pop3_set_state(s, POP3_ST_UPDATE);
	if (!pop3_submit(s, pop3_quit_work, pop3_quit_done, j)) {
		/* The loop has ended: the client asked, so expunge here. */
		pop3_quit_work(j);
		pop3_quit_done(j);
	}
}

/* ---- session end without QUIT ---- */

static void
pop3_release_work(void *arg)
{
	struct pop3_job *j = arg;

	pop3_mailbox_close(&j->mbox);
}

static void
pop3_release_done(void *arg)
{
	pop3_job_free(arg);
}

void
pop3_txn_release(struct pop3_session *s)
{
	struct pop3_job *j;

	if (s->send_fd >= 0) {
		close(s->send_fd);
		s->send_fd = -1;
	}
	if (s->mbox == NULL)
		return;
	if (s->srv->pool == NULL) {
		/* The worker is exiting: its pool is gone. */
		pop3_mailbox_close(&s->mbox);
		return;
	}
	j = pop3_job_new(s);
	j->mbox = s->mbox;
	s->mbox = NULL;
	pool_submit(s->srv->pool, pop3_release_work, pop3_release_done, j);
}

static void pop3_send(struct pop3_session *s, bool async);

/* ---- the numbered messages ---- */

/* Message n of the snapshot, or NULL after the -ERR reply.  Not counted
 * as client errors: asking for a deleted message is normal. */
static const struct store_msg *
pop3_msg(struct pop3_session *s, uint64_t n)
{
	struct pop3_mailbox *mbox = s->mbox;

	if (n == 0 || n > mbox->list.count) {
		pop3_reply(s, "-ERR No such message, only %zu in maildrop",
		    mbox->list.count);
		return NULL;
	}
	if (mbox->deleted[n - 1]) {
		pop3_reply(s, "-ERR Message %llu already deleted",
		    (unsigned long long)n);
		return NULL;
	}
	return &mbox->list.msgs[n - 1];
}

void
pop3_cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_mailbox *mbox = s->mbox;

	pop3_reply(s, "+OK %zu %llu", mbox->list.count - mbox->ndeleted,
	    (unsigned long long)(mbox->total_bytes - mbox->deleted_bytes));
}

/* RFC 1939 §7: "<uidvalidity>.<uid>": unique per message of the
 * mailbox, stable across sessions, 0x21-0x7E, at most 21 characters. */
static void
pop3_uidl_line(struct pop3_session *s, const char *prefix, size_t n)
{
	pop3_reply(s, "%s%zu %u.%u", prefix, n, s->mbox->list.uidvalidity,
	    s->mbox->list.msgs[n - 1].uid);
}

/* LIST and UIDL of one message. */
static void
pop3_scan_one(struct pop3_session *s, uint64_t n, bool uidl)
{
	const struct store_msg *m = pop3_msg(s, n);

	if (m == NULL)
		return;
	if (uidl)
		pop3_uidl_line(s, "+OK ", (size_t)n);
	else
		pop3_reply(s, "+OK %llu %llu", (unsigned long long)n,
		    (unsigned long long)m->size);
}

/* Scan lines until the listing ends or output backs up: a maildrop of
 * STORE_LIST_MAX messages must not become one huge output buffer. */
static bool
pop3_scan_more(struct pop3_session *s)
{
	struct pop3_mailbox *mbox = s->mbox;

	while (s->scan_next < mbox->list.count) {
		size_t i = s->scan_next++;

		if (mbox->deleted[i])
			continue;
		if (s->scan_uidl)
			pop3_uidl_line(s, "", i + 1);
		else
			pop3_reply(s, "%zu %llu", i + 1,
			    (unsigned long long)mbox->list.msgs[i].size);
		if (conn_output_len(s->conn) >= POP3_OUTPUT_MAX)
			return false;
	}
	pop3_reply(s, ".");
	return true;
}

/* LIST and UIDL: one message, or all not deleted as a multi-line
 * response sent in slices (SENDING). */
static void
pop3_scan(struct pop3_session *s, const struct pop3_cmd *cmd, bool uidl)
{
	struct pop3_mailbox *mbox = s->mbox;

	if (cmd->has_msg) {
		pop3_scan_one(s, cmd->msg, uidl);
		return;
	}
	if (uidl)
		pop3_reply(s, "+OK Unique-ID listing follows");
	else
		pop3_reply(s, "+OK %zu messages (%llu octets)",
		    mbox->list.count - mbox->ndeleted, (unsigned long long)
		    (mbox->total_bytes - mbox->deleted_bytes));
	s->scan_uidl = uidl;
	s->scan_next = 0;
	pop3_set_state(s, POP3_ST_SENDING);
	pop3_send(s, false);
}

void
pop3_cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	pop3_scan(s, cmd, false);
}

void
pop3_cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	pop3_scan(s, cmd, true);
}

void
pop3_cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_mailbox *mbox = s->mbox;
	const struct store_msg *m = pop3_msg(s, cmd->msg);

	if (m == NULL)
		return;
	/* Only marked: QUIT expunges (RFC 1939 §6). */
	mbox->deleted[cmd->msg - 1] = true;
	mbox->ndeleted++;
	mbox->deleted_bytes += m->size;
	log_info("%s pop3 dele msg=%llu uid=%u", s->sid,
	    (unsigned long long)cmd->msg, m->uid);
	pop3_reply(s, "+OK Message %llu deleted",
	    (unsigned long long)cmd->msg);
}

void
pop3_cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_mailbox *mbox = s->mbox;

	memset(mbox->deleted, 0, mbox->list.count * sizeof(bool));
	/* Like Dovecot: RSET forgets the RETRs too (nothing gets \Seen). */
	memset(mbox->retrieved, 0, mbox->list.count * sizeof(bool));
	mbox->ndeleted = 0;
	mbox->deleted_bytes = 0;
	pop3_reply(s, "+OK %zu messages (%llu octets)", mbox->list.count,
	    (unsigned long long)mbox->total_bytes);
}

/* ---- RETR and TOP: streaming ---- */

/* Ends a response: back to TRANSACTION and to what was pipelined. */
static void
pop3_send_end(struct pop3_session *s, bool async)
{
	if (s->send_fd >= 0)
		close(s->send_fd);
	s->send_fd = -1;
	pop3_set_state(s, POP3_ST_TRANSACTION);
	/* Called from the input loop, it goes on by itself. */
	if (async)
		pop3_resume(s);
}

/* Stuffs and writes chunks until the file ends or output backs up. */
static void
pop3_send(struct pop3_session *s, bool async)
{
	struct pop3_server *srv = s->srv;
	ssize_t n;

	for (;;) {
		if (conn_output_len(s->conn) >= POP3_OUTPUT_MAX) {
			conn_pause_read(s->conn);
			conn_notify_drained(s->conn);
			return;
		}
		if (s->send_fd < 0) {	/* LIST or UIDL */
			if (!pop3_scan_more(s))
				continue;	/* backed up: wait above */
			pop3_send_end(s, async);
			return;
		}
		n = read(s->send_fd, srv->chunk, POP3_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* Half a message is out: only closing is honest. */
			log_warn("%s pop3 read message file", s->sid);
			pop3_close_after_reply(s);
			return;
		}
		buf_reset(&srv->out);
		if (n > 0)
			(void)pop3_stuff_feed(&s->stuff, srv->chunk, (size_t)n,
			    &srv->out);
		if (n == 0 || s->stuff.done)
			pop3_stuff_end(&s->stuff, &srv->out);
		conn_write(s->conn, srv->out.data, srv->out.len);
		if (s->stuff.done) {
			pop3_send_end(s, async);
			return;
		}
	}
}

void
pop3_txn_send_more(struct pop3_session *s)
{
	pop3_send(s, true);
}

/* RETR (top false) and TOP: the +OK line, then the stuffed file. */
static void
pop3_send_start(struct pop3_session *s, uint64_t n, bool top,
    uint64_t lines)
{
	const struct store_msg *m = pop3_msg(s, n);
	const char *err = NULL;
	int fd = -1, rc;

	if (m == NULL)
		return;
	rc = store_msg_open(s->mbox->store, m, &fd, &err);
	if (rc <= 0) {
		if (rc < 0)
			log_warnx("%s pop3 open uid=%u: %s", s->sid, m->uid,
			    err);
		pop3_reply(s, rc == 0 ? "-ERR Message %llu was removed by "
		    "another session" : "-ERR [SYS/TEMP] Cannot read message "
		    "%llu", (unsigned long long)n);
		return;
	}
	log_info("%s pop3 %s msg=%llu uid=%u size=%llu", s->sid,
	    top ? "top" : "retr", (unsigned long long)n, m->uid,
	    (unsigned long long)m->size);
	if (top)
		pop3_reply(s, "+OK Top of message follows");
	else
		pop3_reply(s, "+OK %llu octets", (unsigned long long)m->size);
	if (!top)
		s->mbox->retrieved[n - 1] = true;
	s->send_fd = fd;
	pop3_stuff_init(&s->stuff, top, lines);
	pop3_set_state(s, POP3_ST_SENDING);
	pop3_send(s, false);
}

void
pop3_cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	pop3_send_start(s, cmd->msg, false, 0);
}

void
pop3_cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	pop3_send_start(s, cmd->msg, true, cmd->lines);
}
