/*
 * outbound_result.c - outcomes of outbound delivery: recorded in the
 * queue database once per loop turn (one transaction, one fsync), DSNs to
 * the sender for failures and delays, finished messages removed.  See
 * outbound.c for why a connection waits for its result to be recorded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "queue/outbound_private.h"

/* retry_min, doubling per attempt, at most retry_max. */
static int64_t
ob_backoff(const struct config *cfg, int attempts)
{
	uint64_t d = cfg->queue_retry_min;

	for (int i = 1; i < attempts && d < cfg->queue_retry_max; i++)
		d *= 2;
	return (int64_t)(d < cfg->queue_retry_max ? d : cfg->queue_retry_max);
}

void
ob_result_add(struct ob *ob, struct ob_job *j, size_t i, int code,
    const char *status, const char *text, const char *remote,
    const char *via)
{
	struct ob_result *r = xcalloc(1, sizeof(*r));

	r->job = j;
	r->rcpt = j->rcpts[i];
	r->code = code;
	str_lcpy(r->status, status, sizeof(r->status));
	r->text = xstrdup(text != NULL ? text : "");
	r->remote = remote != NULL ? xstrdup(remote) : NULL;
	r->via = via != NULL ? xstrdup(via) : NULL;
	if (ob->results_tail != NULL)
		ob->results_tail->next = r;
	else
		ob->results = r;
	ob->results_tail = r;
	net_timer_add(ob->flush, 0);
}

/* Every recipient of j gets the same outcome. */
void
ob_job_result(struct ob *ob, struct ob_job *j, int code, const char *status,
    const char *text, const char *remote)
{
	for (size_t i = 0; i < j->nrcpts; i++)
		ob_result_add(ob, j, i, code, status, text, remote, NULL);
}

/*
 * Where a DSN for sender goes: local addresses resolve through the
 * accounts (aliases, catch-all), remote ones go as they are.  Returns the
 * count (0: nowhere).
 */
static size_t
ob_dsn_targets(struct ob *ob, const char *sender, char ***to_r,
    bool **local_r)
{
	char **t = NULL;
	size_t n;

	if (config_is_local_domain(ob->cfg, ob_domain(sender))) {
		accounts_refresh(ob->acc);
		n = accounts_resolve(ob->acc, sender,
		    ob->cfg->subaddress_delimiter, &t);
	} else {
		t = xcalloc(2, sizeof(*t));
		t[0] = xstrdup(sender);
		n = 1;
	}
	*local_r = xcalloc(n + 1, sizeof(bool));
	for (size_t i = 0; i < n; i++)
		(*local_r)[i] = config_is_local_domain(ob->cfg,
		    ob_domain(t[i])) && accounts_user_exists(ob->acc, t[i]);
	*to_r = t;
	return n;
}

/* One DSN for the results from first on that belong to j's message and
 * are of the kind asked for (failed, or delayed): recipients of one
 * message at several destinations finishing in one turn share it. */
static void
ob_dsn(struct ob *ob, struct ob_job *j, struct ob_result *first,
    struct ob_result *end, bool delayed)
{
	struct bounce_rcpt *br;
	struct bounce b = { 0 };
	char id[QUEUE_ID_LEN + 1], **to = NULL;
	bool *to_local = NULL;
	const char *err;
	size_t n = 0, nto, cap = 0;
	time_t now = time(NULL);

	for (struct ob_result *r = first; r != end; r = r->next)
		cap++;
	br = xcalloc(cap + 1, sizeof(*br));
	for (struct ob_result *r = first; r != end; r = r->next) {
		bool failed = r->code >= 500;
		if (strcmp(r->job->id, j->id) != 0 || failed == delayed ||
		    (delayed && r->code < 400))
			continue;
		br[n].addr = r->rcpt->addr;
		br[n].status = r->status;
		br[n].remote_mta = r->remote;
		br[n].diagnostic = r->text;
		br[n].last_attempt = now;
		n++;
	}
	if (n == 0) {
		free(br);
		return;
	}
	if (j->sender[0] == '\0') {
		log_info("%s no %s notice: the sender is <>", j->id,
		    delayed ? "delay" : "bounce");
		free(br);
		return;
	}
	nto = ob_dsn_targets(ob, j->sender, &to, &to_local);
	if (nto == 0) {
		log_warnx("%s no %s notice: sender <%s> is unknown", j->id,
		    delayed ? "delay" : "bounce", j->sender);
		accounts_targets_free(&to);
		free(to_local);
		free(br);
		return;
	}
	b.msg_id = j->id;
	b.sender = j->sender;
	b.arrival = (time_t)j->created;
	b.delayed = delayed;
	b.retry_until = (time_t)(j->created +
	    (int64_t)ob->cfg->queue_max_lifetime);
	b.rcpts = br;
	b.nrcpts = n;
	b.to = (const char *const *)to;
	b.to_local = to_local;
	b.nto = nto;
	if (bounce_queue(ob->cfg, ob->db, &b, id, &err) < 0)
		log_warnx("%s cannot queue %s notice to <%s>: %s", j->id,
		    delayed ? "delay" : "bounce", j->sender, err);
	else
		log_info("%s sender notified: %s, notice %s to=<%s>", j->id,
		    delayed ? "delayed" : "bounced", id, j->sender);
	accounts_targets_free(&to);
	free(to_local);
	free(br);
}

static void
ob_log_result(struct ob *ob, struct ob_result *r, const char *what)
{
	log_info("%s to=<%s> relay=%s delay=%llds dsn=%s status=%s (%s)",
	    r->job->id, r->rcpt->addr, r->via ? r->via : "none",
	    (long long)(time(NULL) - r->job->created), r->status, what,
	    r->text);
}

/* Writes one result row; returns what the recipient became. */
static const char *
ob_record_one(struct ob *ob, struct ob_result *r, time_t now)
{
	struct ob_job *j = r->job;
	sqlite3_stmt *s;

	if (r->code >= 200 && r->code < 300) {
		s = ob->done;
		sqlite3_bind_text(s, 1, j->id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 2, r->rcpt->addr, -1, SQLITE_TRANSIENT);
		if (queue_step(s) < 0)
			return NULL;
		return "sent";
	}
	if (r->code < 500 && now - j->created <
	    (int64_t)ob->cfg->queue_max_lifetime) {
		int64_t next = now + ob_backoff(ob->cfg, r->rcpt->attempts + 1);
		int64_t end = j->created + (int64_t)ob->cfg->queue_max_lifetime;
		s = ob->defer;
		sqlite3_bind_int64(s, 1, next < end ? next : end);
		sqlite3_bind_text(s, 2, r->text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 3, j->id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 4, r->rcpt->addr, -1, SQLITE_TRANSIENT);
		if (queue_step(s) < 0)
			return NULL;
		return "deferred";
	}
	if (r->code < 500) {
		/* Given up: a failure now, with the last reason kept. */
		char *t = xasprintf("delivery time expired; last error: %s",
		    r->text);
		free(r->text);
		r->text = t;
		r->code = 550;
		str_lcpy(r->status, "4.4.7", sizeof(r->status));
	}
	s = ob->fail;
	sqlite3_bind_text(s, 1, r->text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, j->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, r->rcpt->addr, -1, SQLITE_TRANSIENT);
	if (queue_step(s) < 0)
		return NULL;
	return "bounced";
}

/* The connections whose result was just recorded go on. */
static void
ob_resume_conns(struct ob *ob)
{
	for (struct ob_conn *oc = ob->conns; oc != NULL; oc = oc->next) {
		if (oc->waiting_commit) {
			oc->waiting_commit = false;
			ob_conn_next(oc);
		}
	}
}

/*
 * Records everything that finished since the last turn in one
 * transaction: rows, DSNs, delay warnings, finished messages.  Only
 * after COMMIT do spool files go and connections take their next job.
 */
void
ob_flush(void *arg)
{
	struct ob *ob = arg;
	struct ob_result *list = ob->results, *r, *n;
	char (*gone)[QUEUE_ID_LEN + 1];
	size_t ngone = 0, cap = 0;
	time_t now = time(NULL);
	bool ok;

	if (list == NULL) {
		ob_resume_conns(ob);
		return;
	}
	ob->results = ob->results_tail = NULL;
	for (r = list; r != NULL; r = r->next)
		cap++;
	gone = xcalloc(cap, sizeof(*gone));
	ok = sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	    SQLITE_OK;
	for (r = list; r != NULL && ok; r = r->next) {
		const char *became = ob_record_one(ob, r, now);
		if (became == NULL) {
			ok = false;
			break;
		}
		ob_log_result(ob, r, became);
	}
	/* Per message: one bounce for its failures, one warning for its
	 * delays when it is old enough and was not warned yet. */
	for (r = list; r != NULL && ok; r = r->next) {
		bool first = true;
		for (struct ob_result *p = list; p != r && first; p = p->next)
			if (strcmp(p->job->id, r->job->id) == 0)
				first = false;
		if (!first)
			continue;
		ob_dsn(ob, r->job, r, NULL, false);
		if (ob->cfg->queue_delay_warning > 0 && !r->job->warned &&
		    now - r->job->created >=
		    (int64_t)ob->cfg->queue_delay_warning) {
			bool any = false;
			for (struct ob_result *p = r; p != NULL; p = p->next)
				any |= strcmp(p->job->id, r->job->id) == 0 &&
				    p->code >= 400 && p->code < 500;
			/* once per message, whatever its destinations */
			sqlite3_bind_text(ob->warned, 1, r->job->id, -1,
			    SQLITE_TRANSIENT);
			if (any && queue_step(ob->warned) == 0 &&
			    sqlite3_changes(ob->db) > 0)
				ob_dsn(ob, r->job, r, NULL, true);
			r->job->warned = true;
		}
		if (queue_finish_msg(ob->left, ob->del, r->job->id))
			str_lcpy(gone[ngone++], r->job->id, sizeof(gone[0]));
	}
	if (ok && sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL) !=
	    SQLITE_OK)
		ok = false;
	if (!ok) {
		/* Nothing recorded.  The outcomes stay in memory and the
		 * recipients in flight (never sent again meanwhile); the next
		 * tick tries to record them again.  DSN files written in the
		 * rolled-back transaction are orphans the next start removes. */
		log_warnx("queue: cannot record deliveries (will retry): %s",
		    sqlite3_errmsg(ob->db));
		sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
		free(gone);
		if (ob->results_tail != NULL) {
			for (r = list; r->next != NULL; r = r->next)
				;
			r->next = ob->results;
			ob->results = list;
		} else {
			ob->results = list;
			for (r = list; r->next != NULL; r = r->next)
				;
			ob->results_tail = r;
		}
		return;
	}
	for (size_t i = 0; i < ngone; i++)
		queue_unlink_spool(ob->cfg->data_dir, gone[i]);
	free(gone);
	/* Forget the recipients; a job goes with its last one. */
	for (r = list; r != NULL; r = n) {
		struct ob_job *j = r->job;
		n = r->next;
		for (size_t i = 0; i < j->nrcpts; i++) {
			if (j->rcpts[i] == r->rcpt) {
				ob_inflight_del(ob, j->id, r->rcpt);
				free(r->rcpt->addr);
				free(r->rcpt->why);
				free(r->rcpt);
				j->rcpts[i] = NULL;
			}
		}
		bool empty = true;
		for (size_t i = 0; i < j->nrcpts; i++)
			empty &= j->rcpts[i] == NULL;
		if (empty)
			ob_job_free(j);
		free(r->text);
		free(r->remote);
		free(r->via);
		free(r);
	}
	ob_resume_conns(ob);
	ob_kick(ob);
}
