/*
 * outbound.c - remote delivery: the queue runner's second thread.
 *
 * One event loop (libevent) with the DNS resolver (libunbound) and the
 * SMTP client connections.  Every OB_TICK_MS it takes due remote
 * recipients from the queue and files them as jobs under their
 * destination: the recipient's domain (MX delivery on [outbound] mx_port)
 * or the relay host.  A job is one message and up to OB_JOB_RCPTS of its
 * recipients for that destination: one SMTP transaction.  A destination
 * runs up to outbound.destination_concurrency connections (all of them
 * together up to outbound.concurrency); a connection that finished a job
 * takes the next one of its destination (connection reuse) and quits when
 * none is left.
 *
 * Results are recorded in the queue database once per loop turn (one
 * transaction and one fsync for everything that finished meanwhile, as
 * the committers do), and a connection starts its next transaction only
 * after its last one is recorded: a runner killed at any point sends no
 * message twice after the peer's final 250 was recorded, and loses none
 * (what was not recorded is still pending and goes again).  The window
 * between the peer's 250 and our commit is one loop turn: a crash exactly
 * there repeats that delivery (RFC 1047), never loses it.
 *
 * 2xx: done.  5xx: failed, the sender gets one DSN per message and
 * attempt.  4xx and connection failures: retried after retry_min,
 * doubling up to retry_max, until queue.max_lifetime, then failed (4.4.7).
 * A delay warning goes out once after queue.delay_warning.  Null MX and
 * non-existent domains fail at once.  Nothing is ever sent to <>.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "queue/outbound_private.h"

static void ob_conn_end(struct ob_conn *oc);

/* ---- the in-flight set: recipients held in memory ---- */

static unsigned
ob_hash(const char *id, const char *addr)
{
	unsigned h = 5381;

	for (const char *p = id; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	for (const char *p = addr; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % OB_HASH_SIZE;
}

static bool
ob_inflight_has(const struct ob *ob, const char *id, const char *addr)
{
	for (struct ob_key *k = ob->keys[ob_hash(id, addr)]; k != NULL;
	    k = k->next)
		if (strcmp(k->id, id) == 0 && strcmp(k->rcpt->addr, addr) == 0)
			return true;
	return false;
}

static void
ob_inflight_add(struct ob *ob, const char *id, struct ob_rcpt *r)
{
	struct ob_key *k = xmalloc(sizeof(*k));
	unsigned h = ob_hash(id, r->addr);

	str_lcpy(k->id, id, sizeof(k->id));
	k->rcpt = r;
	k->next = ob->keys[h];
	ob->keys[h] = k;
	ob->inflight++;
}

void
ob_inflight_del(struct ob *ob, const char *id, struct ob_rcpt *r)
{
	struct ob_key **kp = &ob->keys[ob_hash(id, r->addr)];

	for (; *kp != NULL; kp = &(*kp)->next) {
		if ((*kp)->rcpt == r) {
			struct ob_key *k = *kp;
			*kp = k->next;
			free(k);
			ob->inflight--;
			return;
		}
	}
}

/* ---- helpers ---- */

const char *
ob_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

bool
ob_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

char *
ob_spool_path(const struct ob *ob, const char *id)
{
	return xasprintf("%s/spool/msg/%s", ob->cfg->data_dir, id);
}


void
ob_job_free(struct ob_job *j)
{
	for (size_t i = 0; i < j->nrcpts; i++) {
		if (j->rcpts[i] != NULL) {
			free(j->rcpts[i]->addr);
			free(j->rcpts[i]->why);
			free(j->rcpts[i]);
		}
	}
	free(j->sender);
	free(j->auth);
	free(j->dkim);
	free(j);
}

/* ---- connections ---- */

static void ob_on_ready(void *arg);
static void ob_on_txn_done(void *arg, struct smtpc_txn *t);
static void ob_on_close(void *arg, const struct smtpc_reply *why,
    bool tls_failed);

static const struct smtpc_ops ob_smtpc_ops = {
	.on_ready = ob_on_ready,
	.on_txn_done = ob_on_txn_done,
	.on_close = ob_on_close,
};

static bool
ob_is_relay(const struct ob_dest *d)
{
	return d->relay != NULL;
}

static void
ob_set_error(struct ob_conn *oc, const char *status, const char *fmt, ...)
    MF_PRINTF(3, 4);

static void
ob_set_error(struct ob_conn *oc, const char *status, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	free(oc->last_error);
	oc->last_error = s != NULL ? s : xstrdup("error");
	str_lcpy(oc->last_status, status, sizeof(oc->last_status));
}

/* Defers (or fails) every queued job of the connection's destination:
 * the destination cannot be reached now. */
static void
ob_dest_fail_all(struct ob_conn *oc, int code)
{
	struct ob_dest *d = oc->dest;
	struct ob_job *j;

	while ((j = d->head) != NULL) {
		d->head = j->next;
		d->njobs--;
		j->next = NULL;
		ob_job_result(oc->ob, j, code, oc->last_status,
		    oc->last_error, NULL);
	}
	d->tail = NULL;
}

/* Tries the next address of the resolved hosts; false when none is left. */
static bool
ob_conn_try(struct ob_conn *oc)
{
	struct ob *ob = oc->ob;
	struct smtpc_params p = { 0 };
	const struct dns_addr *a = NULL;

	if (oc->plaintext_retry) {
		a = &oc->mx->hosts[oc->cur_host].addrs[oc->cur_addr];
	} else {
		while (oc->host_i < oc->mx->nhosts && a == NULL) {
			struct dns_host *h = &oc->mx->hosts[oc->host_i];
			if (oc->addr_i < h->naddrs) {
				a = &h->addrs[oc->addr_i];
				break;
			}
			if (h->naddrs == 0 && oc->last_error == NULL)
				ob_set_error(oc, "4.4.3", "no address for %s",
				    h->name);
			oc->host_i++;
			oc->addr_i = 0;
		}
		if (a == NULL || oc->tries >= OB_ADDR_TRIES)
			return false;
		oc->tries++;
		oc->cur_host = oc->host_i;
		oc->cur_addr = oc->addr_i;
	}
	free(oc->host);
	oc->host = xstrdup(oc->mx->hosts[oc->cur_host].name);
	if (getnameinfo((const struct sockaddr *)&a->ss, a->len, oc->addr_text,
	    sizeof(oc->addr_text), oc->port_text, sizeof(oc->port_text),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		str_lcpy(oc->addr_text, "?", sizeof(oc->addr_text));
		str_lcpy(oc->port_text, "?", sizeof(oc->port_text));
	}
	p.helo = ob->cfg->hostname;
	p.peer_name = oc->host;
	p.connect_timeout = (unsigned)ob->cfg->out_connect_timeout;
	p.command_timeout = (unsigned)ob->cfg->out_command_timeout;
	p.data_done_timeout = (unsigned)ob->cfg->out_data_timeout;
	if (ob_is_relay(oc->dest)) {
		const struct ob_relay *r = oc->dest->relay;
		p.tls = r->mode;
		p.tls_ctx = ob->relay_tls;
		p.verify = ob->cfg->relay_verify;
		p.auth_user = r->user;
		p.auth_password = r->password;
	} else {
		p.tls = oc->plaintext_retry ? SMTPC_TLS_NONE : SMTPC_TLS_MAY;
		p.tls_ctx = ob->tls;
	}
	oc->ready = false;
	if (!oc->plaintext_retry)
		oc->addr_i++;
	oc->c = smtpc_connect(ob->base, (const struct sockaddr *)&a->ss,
	    a->len, &p, &ob_smtpc_ops, oc);
	return true;
}

static void
ob_on_dns(void *arg, struct dns_mx *mx)
{
	struct ob_conn *oc = arg;
	struct ob_dest *d = oc->dest;

	oc->q = NULL;
	oc->mx = mx;
	switch (mx->status) {
	case DNS_OK:
		if (ob_conn_try(oc))
			return;
		if (oc->last_error == NULL)
			ob_set_error(oc, "4.4.3", "no usable address for %s",
			    ob_is_relay(d) ? d->relay->host : d->name);
		ob_dest_fail_all(oc, 451);
		break;
	case DNS_NULL_MX:
	case DNS_NOT_FOUND:
		if (ob_is_relay(d)) {
			/* our own configuration: wait, don't bounce */
			ob_set_error(oc, "4.4.3", "relay host %s: %s",
			    d->relay->host, mx->error ? mx->error :
			    "not found");
			ob_dest_fail_all(oc, 451);
			break;
		}
		if (mx->status == DNS_NOT_FOUND) {
			ob_set_error(oc, "5.1.2", "Host or domain name not "
			    "found: %s", mx->error ? mx->error : d->name);
			ob_dest_fail_all(oc, 550);
			break;
		}
		ob_set_error(oc, "5.1.10", "%s", mx->error ? mx->error :
		    "domain does not accept mail (null MX)");
		ob_dest_fail_all(oc, 556);
		break;
	case DNS_TEMPFAIL:
		ob_set_error(oc, "4.4.3", "DNS: %s", mx->error ? mx->error :
		    "temporary failure");
		ob_dest_fail_all(oc, 451);
		break;
	}
	ob_conn_end(oc);
}

static void
ob_conn_start(struct ob *ob, struct ob_dest *d)
{
	struct ob_conn *oc = xcalloc(1, sizeof(*oc));

	oc->ob = ob;
	oc->dest = d;
	oc->fd = -1;
	buf_init(&oc->prefix, 0);
	oc->next = ob->conns;
	ob->conns = oc;
	ob->nconns++;
	d->active++;
	if (ob_is_relay(d))
		oc->q = dns_resolve_host(ob->dns, d->relay->host,
		    d->relay->port, ob_on_dns, oc);
	else
		oc->q = dns_resolve_mx(ob->dns, d->name,
		    (uint16_t)ob->cfg->mx_port, ob_on_dns, oc);
}

static void
ob_dest_free_if_idle(struct ob *ob, struct ob_dest *d)
{
	struct ob_dest **dp;

	if (d->active > 0 || d->head != NULL)
		return;
	for (dp = &ob->dests; *dp != NULL; dp = &(*dp)->next) {
		if (*dp == d) {
			*dp = d->next;
			free(d->name);
			free(d);
			return;
		}
	}
}

/* The connection is over: unlink and free it, let others start. */
static void
ob_conn_end(struct ob_conn *oc)
{
	struct ob *ob = oc->ob;
	struct ob_conn **cp;

	for (cp = &ob->conns; *cp != NULL; cp = &(*cp)->next) {
		if (*cp == oc) {
			*cp = oc->next;
			break;
		}
	}
	ob->nconns--;
	oc->dest->active--;
	if (oc->q != NULL)
		dns_cancel(&oc->q);
	smtpc_free(&oc->c);
	dns_mx_free(&oc->mx);
	if (oc->fd >= 0)
		close(oc->fd);
	buf_free(&oc->prefix);
	free(oc->rcpt_list);
	free(oc->host);
	free(oc->last_error);
	ob_dest_free_if_idle(ob, oc->dest);
	free(oc);
	ob_kick(ob);
}

/* Starts the next job on a ready connection, or quits. */
void
ob_conn_next(struct ob_conn *oc)
{
	struct ob *ob = oc->ob;
	struct ob_dest *d = oc->dest;
	struct ob_job *j;
	char *path;
	struct stat sb;

	while (oc->c != NULL && oc->ready && oc->job == NULL &&
	    !oc->waiting_commit) {
		if (d->head == NULL || oc->txns >= OB_REUSE_MAX ||
		    ob->stopping) {
			smtpc_quit(oc->c);
			oc->ready = false;
			return;
		}
		j = d->head;
		d->head = j->next;
		if (d->head == NULL)
			d->tail = NULL;
		d->njobs--;
		j->next = NULL;
		path = ob_spool_path(ob, j->id);
		oc->fd = open(path, O_RDONLY | O_CLOEXEC);
		free(path);
		if (oc->fd < 0 || fstat(oc->fd, &sb) < 0) {
			/* Deleted by the operator meanwhile, or worse. */
			log_warnx("%s cannot open spool file: %s", j->id,
			    strerror(errno));
			if (oc->fd >= 0)
				close(oc->fd);
			oc->fd = -1;
			ob_job_result(ob, j, 451, "4.3.0",
			    "spool file unreadable", NULL);
			continue;
		}
		ob_dkim_prepare(ob, j);
		buf_reset(&oc->prefix);
		if (j->dkim != NULL)
			buf_add(&oc->prefix, j->dkim, strlen(j->dkim));
		free(oc->rcpt_list);
		oc->rcpt_list = xcalloc(j->nrcpts + 1, sizeof(char *));
		for (size_t i = 0; i < j->nrcpts; i++)
			oc->rcpt_list[i] = j->rcpts[i]->addr;
		memset(&oc->txn, 0, sizeof(oc->txn));
		oc->txn.sender = j->sender;
		oc->txn.rcpts = oc->rcpt_list;
		oc->txn.nrcpts = j->nrcpts;
		oc->txn.fd = oc->fd;
		oc->txn.size = (uint64_t)sb.st_size + oc->prefix.len;
		oc->txn.prefix = oc->prefix.len > 0 ?
		    (const char *)oc->prefix.data : NULL;
		oc->txn.prefix_len = oc->prefix.len;
		oc->txn.body = j->body;
		oc->txn.smtputf8 = ob_needs_utf8(ob, j);
		oc->job = j;
		d->busy++;
		oc->txns++;
		smtpc_send(oc->c, &oc->txn);
		return;
	}
}

static void
ob_on_ready(void *arg)
{
	struct ob_conn *oc = arg;

	oc->ready = true;
	oc->dest->worked = true;
	log_debug("connected to %s[%s] %s%s", oc->host, oc->addr_text,
	    smtpc_tls_version(oc->c) ? smtpc_tls_version(oc->c) : "plaintext",
	    smtpc_tls_verified(oc->c) ? " verified" : "");
	ob_conn_next(oc);
}

static void
ob_on_txn_done(void *arg, struct smtpc_txn *t)
{
	struct ob_conn *oc = arg;
	struct ob_job *j = oc->job;
	const char *ver = smtpc_tls_version(oc->c);
	char *via = xasprintf("%s[%s]:%s tls=%s%s%s%s", oc->host,
	    oc->addr_text, oc->port_text, ver ? ver : "none", ver ? "/" : "",
	    ver ? smtpc_tls_cipher(oc->c) : "",
	    ver ? (smtpc_tls_verified(oc->c) ? " verified" :
	    " unverified") : "");

	for (size_t i = 0; i < j->nrcpts; i++) {
		const struct smtpc_reply *r = &t->results[i];
		ob_result_add(oc->ob, j, i, r->code, r->status,
		    r->text ? r->text : "", oc->host, via);
	}
	free(via);
	smtpc_txn_clear(t);
	if (oc->fd >= 0)
		close(oc->fd);
	oc->fd = -1;
	oc->job = NULL;
	oc->dest->busy--;
	oc->waiting_commit = true;
}

static void
ob_on_close(void *arg, const struct smtpc_reply *why_, bool tls_failed)
{
	struct ob_conn *oc = arg;
	struct ob_dest *d = oc->dest;
	bool was_ready = oc->ready || oc->txns > 0;
	int code = why_ != NULL ? why_->code : 0;
	char status[16], *text;

	/* why_ lives in the connection: copy it before freeing that. */
	str_lcpy(status, why_ != NULL && why_->status[0] ? why_->status :
	    "4.4.1", sizeof(status));
	text = xstrdup(why_ != NULL && why_->text ? why_->text :
	    "connection failed");
	smtpc_free(&oc->c);
	oc->ready = false;
	if (code == 221) {
		free(text);
		ob_conn_end(oc);
		return;
	}
	if (tls_failed && !ob_is_relay(d) && !oc->plaintext_retry) {
		log_warnx("TLS handshake with %s[%s] failed: %s; trying again "
		    "without TLS", oc->host, oc->addr_text, text);
		oc->plaintext_retry = true;
		if (ob_conn_try(oc)) {
			free(text);
			return;
		}
	}
	oc->plaintext_retry = false;
	ob_set_error(oc, status, "%s[%s]: %s", oc->host ? oc->host : "?",
	    oc->addr_text, text);
	free(text);
	log_info("connection to %s[%s] ended: %s", oc->host ? oc->host : "?",
	    oc->addr_text, oc->last_error);
	if (!was_ready && !oc->ob->stopping && ob_conn_try(oc))
		return;
	if (!was_ready) {
		/* Every address failed.  While other connections of the
		 * destination work, it just runs one connection fewer (the
		 * peer may limit us); else it is down for now and what waits
		 * for it is deferred. */
		if (d->worked && d->active > 1)
			d->limit = d->active - 1;
		else
			ob_dest_fail_all(oc, 451);
	}
	ob_conn_end(oc);
}

/* ---- loading due work ---- */

/* Status 3: last_error "x.y.z text" (set by the local runner when it
 * gives up) or the operator's bounce. */
static char *
ob_bounce_reason(const char *last_error, char status[16])
{
	const char *e = last_error;

	if (e != NULL && (e[0] == '4' || e[0] == '5') && e[1] == '.' &&
	    strspn(e + 2, "0123456789.") >= 3) {
		size_t n = strcspn(e, " ");
		if (n < 16) {
			memcpy(status, e, n);
			status[n] = '\0';
			return xstrdup(e[n] != '\0' ? e + n + 1 : "");
		}
	}
	str_lcpy(status, "5.0.0", 16);
	return xstrdup("bounced by the administrator");
}

static struct ob_dest *
ob_dest_get(struct ob *ob, const char *name, const struct ob_relay *relay)
{
	struct ob_dest *d;

	for (d = ob->dests; d != NULL; d = d->next)
		if (d->relay == relay && strcmp(d->name, name) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(name);
	d->relay = relay;
	d->limit = (unsigned)ob->cfg->out_dest_concurrency;
	d->next = ob->dests;
	ob->dests = d;
	return d;
}

static void
ob_load(struct ob *ob)
{
	sqlite3_stmt *s = ob->due;
	struct ob_job *bounce_jobs = NULL;
	time_t now = time(NULL);
	int rows = 0;

	ob->last_load_ms = time_mono_ms();
	if (ob->inflight >= OB_INFLIGHT_MAX)
		return;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)now);
	sqlite3_bind_int(s, 2, OB_LOAD_MAX + (int)ob->inflight);
	while (sqlite3_step(s) == SQLITE_ROW && rows < OB_LOAD_MAX) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		const char *addr = (const char *)sqlite3_column_text(s, 1);
		bool bounce_now = sqlite3_column_int(s, 2) == 3;
		const struct ob_relay *relay;
		struct ob_dest *d;
		struct ob_job *j;
		struct ob_rcpt *r;

		if (id == NULL || addr == NULL ||
		    ob_inflight_has(ob, id, addr))
			continue;
		rows++;
		relay = ob_relays_route(ob->relays,
		    (const char *)sqlite3_column_text(s, 4));
		d = ob_dest_get(ob, relay != NULL ? relay->name :
		    ob_domain(addr), relay);
		j = bounce_now ? bounce_jobs : d->tail;
		if (j == NULL || strcmp(j->id, id) != 0 ||
		    j->nrcpts == OB_JOB_RCPTS) {
			const char *auth = (const char *)
			    sqlite3_column_text(s, 9);
			const char *dk = (const char *)
			    sqlite3_column_text(s, 11);
			j = xcalloc(1, sizeof(*j));
			str_lcpy(j->id, id, sizeof(j->id));
			j->sender = xstrdup((const char *)
			    sqlite3_column_text(s, 4));
			j->size = (uint64_t)sqlite3_column_int64(s, 5);
			j->created = sqlite3_column_int64(s, 6);
			j->body = sqlite3_column_int(s, 7);
			j->smtputf8 = sqlite3_column_int(s, 8) != 0;
			j->auth = auth != NULL ? xstrdup(auth) : NULL;
			j->warned = sqlite3_column_int(s, 10) != 0;
			j->dkim = dk != NULL ? xstrdup(dk) : NULL;
			j->dest = d;
			if (bounce_now) {
				j->next = bounce_jobs;
				bounce_jobs = j;
			} else {
				if (d->tail != NULL)
					d->tail->next = j;
				else
					d->head = j;
				d->tail = j;
				d->njobs++;
			}
		}
		r = xcalloc(1, sizeof(*r));
		r->addr = xstrdup(addr);
		r->attempts = sqlite3_column_int(s, 3);
		r->bounce_now = bounce_now;
		if (bounce_now)
			r->why = ob_bounce_reason((const char *)
			    sqlite3_column_text(s, 12), r->status);
		j->rcpts[j->nrcpts++] = r;
		ob_inflight_add(ob, id, r);
	}
	sqlite3_reset(s);
	/* The operator's "queue bounce", or a local delivery given up: a
	 * failure without an attempt. */
	while (bounce_jobs != NULL) {
		struct ob_job *j = bounce_jobs;
		bounce_jobs = j->next;
		j->next = NULL;
		for (size_t i = 0; i < j->nrcpts; i++)
			ob_result_add(ob, j, i, 550, j->rcpts[i]->status,
			    j->rcpts[i]->why, NULL, NULL);
	}
	/* Destinations created for bounce-only jobs have nothing queued. */
	for (struct ob_dest *d = ob->dests, *n; d != NULL; d = n) {
		n = d->next;
		ob_dest_free_if_idle(ob, d);
	}
}

/* Starts connections where jobs wait and limits allow. */
void
ob_kick(struct ob *ob)
{
	if (ob->stopping)
		return;
	for (struct ob_dest *d = ob->dests; d != NULL; d = d->next) {
		/* a connection for every job no idle one will take */
		while (d->njobs > d->active - d->busy &&
		    d->active < d->limit &&
		    ob->nconns < ob->cfg->out_concurrency)
			ob_conn_start(ob, d);
	}
}

static void
ob_on_tick(void *arg)
{
	struct ob *ob = arg;

	net_timer_add(ob->tick, OB_TICK_MS);

	if (*ob->stop && !ob->stopping) {
		ob->stopping = true;
		ob->stop_at = time_mono_ms() + OB_STOP_WAIT_MS;
		/* Connections finish their transaction, then quit; those
		 * still resolving or connecting just stop. */
		for (struct ob_conn *oc = ob->conns, *n; oc != NULL; oc = n) {
			n = oc->next;
			if (oc->job != NULL || oc->waiting_commit)
				continue;
			if (oc->ready)
				ob_conn_next(oc);
			else
				ob_conn_end(oc);
		}
	}
	if (ob->stopping) {
		if (ob->nconns == 0 || time_mono_ms() >= ob->stop_at) {
			if (ob->results != NULL)
				ob_flush(ob);
			event_base_loopbreak(ob->base);
		}
		return;
	}
	if (ob->results != NULL)
		ob_flush(ob);	/* a failed commit, again */
	ob_load(ob);
	ob_kick(ob);
}

/* Looks for due work now, or (a load reads past what is in flight, so
 * under a stream of new mail with a big backlog) at most every
 * OB_WAKE_GAP_MS. */
static void
ob_look_soon(struct ob *ob)
{
	uint64_t now = time_mono_ms();

	if (ob->stopping)
		return;
	if (now - ob->last_load_ms < OB_WAKE_GAP_MS) {
		if (!net_timer_pending(ob->soon))
			net_timer_add(ob->soon, (unsigned)(OB_WAKE_GAP_MS -
			    (now - ob->last_load_ms)));
		return;
	}
	ob_load(ob);
	ob_kick(ob);
}

/* New mail was queued (the runner's wake-up): look at once rather than
 * at the next tick. */
static void
ob_on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct ob *ob = arg;
	char drain[64];

	while (read(fd, drain, sizeof(drain)) > 0)
		;
	ob_look_soon(ob);
}

/*
 * Someone else wrote the queue (`mailfort queue flush` or `bounce`, a
 * worker's commit): SQLite's data_version tells, cheaply, every
 * OB_WATCH_MS.
 */
static void
ob_on_watch(void *arg)
{
	struct ob *ob = arg;
	int64_t v = -1;

	net_timer_add(ob->watch, OB_WATCH_MS);
	if (sqlite3_step(ob->data_version) == SQLITE_ROW)
		v = sqlite3_column_int64(ob->data_version, 0);
	sqlite3_reset(ob->data_version);
	if (v != ob->last_data_version) {
		ob->last_data_version = v;
		ob_look_soon(ob);
	}
}

static void
ob_on_soon(void *arg)
{
	struct ob *ob = arg;

	if (!ob->stopping) {
		ob_load(ob);
		ob_kick(ob);
	}
}

void
outbound_wake(struct outbound *o)
{
	struct ob *ob = (struct ob *)o;

	/* a full pipe already says it */
	if (ob != NULL && ob->wake[1] >= 0)
		(void)write(ob->wake[1], "", 1);
}

/* ---- set-up ---- */

static int
ob_prepare(struct ob *ob)
{
	struct { sqlite3_stmt **st; const char *sql; } q[] = {
	    { &ob->due, "SELECT r.msg_id, r.addr, r.status, r.attempts, "
		"m.sender, m.size, m.created, m.body, m.smtputf8, m.auth, "
		"m.warned, m.dkim, r.last_error FROM recipient r JOIN "
		"message m ON "
		"m.id = r.msg_id WHERE r.status IN (0, 3) AND r.local = 0 "
		"AND r.next_try <= ? LIMIT ?" },
	    { &ob->done, "UPDATE recipient SET status = 1, attempts = "
		"attempts + 1, last_error = NULL WHERE msg_id = ? AND "
		"addr = ?" },
	    { &ob->fail, "UPDATE recipient SET status = 2, attempts = "
		"attempts + 1, last_error = ? WHERE msg_id = ? AND "
		"addr = ?" },
	    { &ob->defer, "UPDATE recipient SET attempts = attempts + 1, "
		"next_try = ?, last_error = ? WHERE msg_id = ? AND addr = ? "
		"AND status = 0" },
	    { &ob->left, "SELECT count(*) FROM recipient WHERE msg_id = ? "
		"AND status IN (0, 3)" },
	    { &ob->del, "DELETE FROM message WHERE id = ?" },
	    { &ob->warned, "UPDATE message SET warned = 1 WHERE id = ? AND "
		"warned = 0" },
	    { &ob->set_dkim, "UPDATE message SET dkim = ? WHERE id = ?" },
	    { &ob->get_dkim, "SELECT dkim FROM message WHERE id = ?" },
	    { &ob->data_version, "PRAGMA data_version" },
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(q); i++) {
		if (sqlite3_prepare_v2(ob->db, q[i].sql, -1, q[i].st, NULL) !=
		    SQLITE_OK) {
			log_warnx("outbound: %s", sqlite3_errmsg(ob->db));
			return -1;
		}
	}
	return 0;
}

static int
ob_init(struct ob *ob, const struct config *cfg, volatile int *stop)
{
	const char *err;

	memset(ob, 0, sizeof(*ob));
	ob->wake[0] = ob->wake[1] = -1;
	ob->cfg = cfg;
	ob->stop = stop;
	if ((ob->base = event_base_new()) == NULL)
		return -1;
	if (queue_db_open(cfg->data_dir, &ob->db, &err) < 0) {
		log_warnx("outbound: %s", err);
		return -1;
	}
	if (ob_prepare(ob) < 0)
		return -1;
	if ((ob->dns = dns_new(ob->base, cfg, &err)) == NULL) {
		log_warnx("outbound: DNS: %s", err);
		return -1;
	}
	if ((ob->tls = tls_client_ctx_new(NULL, &err)) == NULL) {
		log_warnx("outbound: TLS: %s", err);
		return -1;
	}
	if (ob_relays_load(cfg, &ob->relays) < 0) {
		log_warnx("outbound: the relay configuration has errors; "
		    "remote mail stays queued until it is fixed");
		return -1;
	}
	if (ob_relays_any(ob->relays) && (ob->relay_tls =
	    tls_client_ctx_new(cfg->relay_ca_file, &err)) == NULL) {
		log_warnx("outbound: relay TLS: %s", err);
		return -1;
	}
	ob->acc = accounts_open(cfg->users_file, cfg->aliases_file);
	ob->tick = net_timer_new(ob->base, ob_on_tick, ob);
	ob->flush = net_timer_new(ob->base, ob_flush, ob);
	ob->soon = net_timer_new(ob->base, ob_on_soon, ob);
	ob->watch = net_timer_new(ob->base, ob_on_watch, ob);
	ob->last_data_version = -1;
	net_timer_add(ob->watch, OB_WATCH_MS);
	net_timer_add(ob->tick, 0);	/* at once, then every OB_TICK_MS */
	if (pipe2(ob->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		log_warn("outbound: pipe");
		ob->wake[0] = ob->wake[1] = -1;
		return -1;
	}
	ob->wake_ev = event_new(ob->base, ob->wake[0], EV_READ | EV_PERSIST,
	    ob_on_wake, ob);
	if (ob->wake_ev == NULL || event_add(ob->wake_ev, NULL) < 0)
		return -1;
	return 0;
}

static void
ob_cleanup(struct ob *ob)
{
	/* What finished is recorded; what did not goes again next time. */
	ob->stopping = true;
	if (ob->results != NULL)
		ob_flush(ob);
	while (ob->conns != NULL) {
		struct ob_conn *oc = ob->conns;
		if (oc->job != NULL) {
			ob_job_free(oc->job);
			oc->job = NULL;
			oc->dest->busy--;
		}
		ob_conn_end(oc);
	}
	while (ob->dests != NULL) {
		struct ob_dest *d = ob->dests;
		ob->dests = d->next;
		while (d->head != NULL) {
			struct ob_job *j = d->head;
			d->head = j->next;
			ob_job_free(j);
		}
		free(d->name);
		free(d);
	}
	for (size_t i = 0; i < OB_HASH_SIZE; i++) {
		while (ob->keys[i] != NULL) {
			struct ob_key *k = ob->keys[i];
			ob->keys[i] = k->next;
			free(k);
		}
	}
	ob_dkim_free_all(ob);
	net_timer_free(&ob->tick);
	net_timer_free(&ob->flush);
	net_timer_free(&ob->soon);
	net_timer_free(&ob->watch);
	if (ob->wake_ev != NULL)
		event_free(ob->wake_ev);
	for (int i = 0; i < 2; i++)
		if (ob->wake[i] >= 0)
			close(ob->wake[i]);
	dns_free(&ob->dns);
	tls_ctx_free(&ob->tls);
	tls_ctx_free(&ob->relay_tls);
	accounts_free(&ob->acc);
	sqlite3_stmt *st[] = { ob->due, ob->done, ob->fail, ob->defer,
	    ob->left, ob->del, ob->warned, ob->set_dkim, ob->get_dkim,
	    ob->data_version };
	for (size_t i = 0; i < MF_ARRAY_LEN(st); i++)
		sqlite3_finalize(st[i]);
	sqlite3_close(ob->db);
	ob_relays_free(&ob->relays);
	if (ob->base != NULL)
		event_base_free(ob->base);
}

/* ---- the thread ---- */

static void *
ob_thread(void *arg)
{
	struct ob *ob = arg;

	const struct ob_relay *r = ob_relays_route(ob->relays, "");

	log_info("outbound delivery started%s%s",
	    r != NULL ? " via relay " : "", r != NULL ? r->name : "");
	event_base_dispatch(ob->base);
	return NULL;
}

struct outbound *
outbound_start(const struct config *cfg, volatile int *stop)
{
	struct ob *ob = xmalloc(sizeof(*ob));

	if (ob_init(ob, cfg, stop) < 0 ||
	    pthread_create(&ob->thread, NULL, ob_thread, ob) != 0) {
		log_warnx("outbound delivery cannot start; remote mail stays "
		    "queued");
		ob_cleanup(ob);
		free(ob);
		return NULL;
	}
	return (struct outbound *)ob;
}

void
outbound_wait(struct outbound **obp)
{
	struct ob *ob = (struct ob *)*obp;

	if (ob == NULL)
		return;
	*obp = NULL;
	pthread_join(ob->thread, NULL);
	ob_cleanup(ob);
	free(ob);
	log_info("outbound delivery stopped");
}
