/*
 * smtp_txn.c - the mail transaction: MAIL, RCPT, DATA and BDAT, the
 * Received header, and the hand-over to the committer.  The 250 after
 * DATA is sent only from smtp_on_commit(), once the message and its
 * recipients are on disk.  RCPT to a mailbox over its quota gets 452
 * 4.2.2 after a usage read on the pool (smtp_rcpt_check_quota()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/smtp_private.h"
#include "store/store.h"

static void
smtp_lower_domain(char *addr)
{
	char *at = strrchr(addr, '@');

	if (at != NULL)
		str_lower(at + 1);
}

void
smtp_cmd_mail(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->srv->cfg;
	const char *reply;
	struct smtp_mail_args m;

	if (s->state != SMTP_ST_READY) {
		smtp_reply_error(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (smtp_parse_mail(args, &m, &reply) < 0) {
		smtp_reply_error(s, "%s", reply);
		return;
	}
	if (m.has_size && m.size > cfg->max_message_size) {
		smtp_reply_error(s, "552 5.3.4 Message size exceeds fixed "
		    "limit");
		return;
	}
	if (m.body == SMTP_BODY_BINARYMIME) {
		smtp_reply_error(s, "555 5.5.4 BINARYMIME not supported");
		return;
	}
	if (s->auth_user != NULL && (m.addr[0] == '\0' ||
	    !accounts_may_send_as(s->srv->acc, s->auth_user, m.addr))) {
		/* docker-mailserver SPOOF_PROTECTION, always on. */
		smtp_reply_error(s, "553 5.7.1 Sender address rejected: not "
		    "owned by user %s", s->auth_user);
		return;
	}
	s->mail = m;
	smtp_lower_domain(s->mail.addr);
	smtp_set_state(s, SMTP_ST_MAIL);
	smtp_reply(s, "250 2.1.0 OK");
}

static void
smtp_add_target(struct smtp_session *s, const char *addr, bool local)
{
	for (size_t i = 0; i < s->target_count; i++)
		if (strcmp(s->rcpts[i], addr) == 0)
			return;
	s->rcpts = xreallocarray(s->rcpts, s->target_count + 1,
	    sizeof(*s->rcpts));
	s->rcpt_local = xreallocarray(s->rcpt_local, s->target_count + 1,
	    sizeof(*s->rcpt_local));
	s->rcpts[s->target_count] = xstrdup(addr);
	s->rcpt_local[s->target_count] = local;
	s->target_count++;
}

/* The final targets of one RCPT, before they join the transaction. */
struct smtp_rcpt_targets {
	char **addrs;			/* xmalloc'd */
	bool *local;
	uint64_t *quota;		/* bytes; 0: unlimited or remote */
	size_t n;
};

static void
smtp_targets_add(struct smtp_rcpt_targets *t, const char *addr, bool local,
    uint64_t quota)
{
	t->addrs = xreallocarray(t->addrs, t->n + 1, sizeof(*t->addrs));
	t->local = xreallocarray(t->local, t->n + 1, sizeof(*t->local));
	t->quota = xreallocarray(t->quota, t->n + 1, sizeof(*t->quota));
	t->addrs[t->n] = xstrdup(addr);
	t->local[t->n] = local;
	t->quota[t->n] = quota;
	t->n++;
}

static void
smtp_targets_free(struct smtp_rcpt_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->addrs[i]);
	x_free(&t->addrs);
	x_free(&t->local);
	x_free(&t->quota);
	t->n = 0;
}

/* Local recipient: resolve through aliases into t; empty when unknown. */
static void
smtp_rcpt_local(struct smtp_session *s, const char *addr,
    struct smtp_rcpt_targets *t)
{
	const struct config *cfg = s->srv->cfg;
	char **targets = NULL, local[SMTP_PATH_MAX + 1], dom[SMTP_PATH_MAX + 1];
	size_t n;

	n = accounts_resolve(s->srv->acc, addr, cfg->subaddress_delimiter,
	    &targets);
	if (s->target_count + n > AUTH_TARGETS_MAX) {
		accounts_targets_free(&targets);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (smtp_addr_split(targets[i], local, sizeof(local), dom,
		    sizeof(dom)) < 0)
			continue;
		if (!config_is_local_domain(cfg, dom)) {
			smtp_targets_add(t, targets[i], false, 0);
		} else if (accounts_user_exists(s->srv->acc, targets[i])) {
			smtp_targets_add(t, targets[i], true,
			    quota_get(cfg, targets[i]));
		} else {
			log_warnx("%s alias target <%s> is not an account",
			    s->sid, targets[i]);
		}
	}
	accounts_targets_free(&targets);
}

/* The RCPT is accepted: its targets join the transaction. */
static void
smtp_rcpt_accept(struct smtp_session *s, struct smtp_rcpt_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		smtp_add_target(s, t->addrs[i], t->local[i]);
	smtp_targets_free(t);
	s->rcpt_count++;
	smtp_set_state(s, SMTP_ST_RCPT);
	smtp_reply(s, "250 2.1.5 OK");
}

/*
 * Quota at RCPT time.  A mailbox is full when its usage has reached the
 * quota, or would pass it with the MAIL SIZE= the client announced (RFC
 * 1870).  The RCPT gets 452 4.2.2 (RFC 3463: mailbox full, temporary, so
 * the sending server retries) when every target is a full mailbox; an
 * alias that also reaches others is accepted, and the queue runner keeps
 * the full mailboxes' copies queued until they fit (runner.c).
 * The usage is read on the pool, straight from the store's database
 * (store_usage_peek()): the session waits in SMTP_ST_BUSY, no read on
 * the loop.  Only RCPTs reaching a mailbox with a quota pay for it.
 */
struct smtp_quota_job {
	struct smtp_server *srv;
	uint64_t id;
	char *data_dir;
	char rcpt[SMTP_PATH_MAX + 1];	/* as the client wrote it */
	uint64_t size;			/* MAIL SIZE=, 0: none */
	struct smtp_rcpt_targets t;
	size_t full;			/* targets over quota */
	char error[160];		/* a store error, for the log */
};

static void
smtp_quota_work(void *arg)
{
	struct smtp_quota_job *j = arg;
	uint64_t used, messages;
	const char *err = NULL;

	for (size_t i = 0; i < j->t.n; i++) {
		uint64_t limit = j->t.quota[i];
		if (limit == 0)
			continue;
		if (store_usage_peek(j->data_dir, j->t.addrs[i], &used,
		    &messages, &err) < 0) {
			/* the runner checks again before delivering */
			snprintf(j->error, sizeof(j->error), "%s: %s",
			    j->t.addrs[i], err);
			continue;
		}
		if (used >= limit || j->size > limit - used)
			j->full++;
	}
}

static void
smtp_quota_job_free(struct smtp_quota_job *j)
{
	smtp_targets_free(&j->t);
	free(j->data_dir);
	free(j);
}

static void
smtp_quota_done(void *arg)
{
	struct smtp_quota_job *j = arg;
	struct smtp_session *s = smtp_session_by_id(j->srv, j->id);

	if (s == NULL) {
		smtp_quota_job_free(j);
		return;
	}
	if (j->error[0] != '\0')
		log_warnx("%s smtp quota check error=\"%s\"", s->sid,
		    j->error);
	smtp_set_state(s, s->resume_state);
	if (j->full == j->t.n) {
		log_info("%s smtp rcpt refused to=<%s> reason=over-quota",
		    s->sid, j->rcpt);
		smtp_reply(s, "452 4.2.2 <%s>: Mailbox full", j->rcpt);
	} else {
		smtp_rcpt_accept(s, &j->t);
	}
	smtp_quota_job_free(j);
	conn_resume_read(s->conn);
}

/* Accepts t now, or after the quota check on the pool. */
static void
smtp_rcpt_check_quota(struct smtp_session *s, const char *rcpt,
    struct smtp_rcpt_targets *t)
{
	struct smtp_quota_job *j;
	bool limited = false;

	for (size_t i = 0; i < t->n; i++)
		limited |= t->quota[i] != 0;
	if (!limited) {
		smtp_rcpt_accept(s, t);
		return;
	}
	j = xmalloc(sizeof(*j));
	j->srv = s->srv;
	j->id = s->id;
	j->data_dir = xstrdup(s->srv->cfg->data_dir);
	str_lcpy(j->rcpt, rcpt, sizeof(j->rcpt));
	if (s->mail.has_size)
		j->size = s->mail.size;
	j->t = *t;
	memset(t, 0, sizeof(*t));
	s->resume_state = s->state;
	smtp_set_state(s, SMTP_ST_BUSY);
	conn_pause_read(s->conn);
	pool_submit(s->srv->pool, smtp_quota_work, smtp_quota_done, j);
}

void
smtp_cmd_rcpt(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->srv->cfg;
	char local[SMTP_PATH_MAX + 1], dom[SMTP_PATH_MAX + 1];
	struct smtp_rcpt_targets t = { 0 };
	struct smtp_rcpt_args r;
	const char *reply;

	if (s->state != SMTP_ST_MAIL && s->state != SMTP_ST_RCPT) {
		smtp_reply_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->rcpt_count >= cfg->max_recipients) {
		/* RFC 5321 §4.5.3.1.10: 452, the client sends the rest
		 * in another transaction. */
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (smtp_parse_rcpt(args, s->mail.smtputf8, &r, &reply) < 0) {
		smtp_reply_error(s, "%s", reply);
		return;
	}
	smtp_lower_domain(r.addr);
	if (strchr(r.addr, '@') == NULL) {
		/* <postmaster> without a domain, RFC 5321 §4.5.1 */
		snprintf(local, sizeof(local), "postmaster@%s",
		    cfg->domains[0]);
		str_lcpy(r.addr, local, sizeof(r.addr));
	}
	if (smtp_addr_split(r.addr, local, sizeof(local), dom,
	    sizeof(dom)) < 0) {
		smtp_reply_error(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	accounts_refresh(s->srv->acc);
	if (config_is_local_domain(cfg, dom)) {
		smtp_rcpt_local(s, r.addr, &t);
		if (t.n == 0) {
			smtp_reply_error(s, "550 5.1.1 <%s>: Recipient "
			    "address rejected: User unknown", r.addr);
			return;
		}
		smtp_rcpt_check_quota(s, r.addr, &t);
	} else if (s->auth_user != NULL || s->trusted) {
		smtp_targets_add(&t, r.addr, false, 0);
		smtp_rcpt_accept(s, &t);
	} else {
		smtp_reply_error(s, "554 5.7.1 <%s>: Relay access denied",
		    r.addr);
	}
}

static const char *
smtp_protocol_name(const struct smtp_session *s)
{
	bool tls = conn_is_tls(s->conn), auth = s->auth_user != NULL;

	if (s->mail.smtputf8)
		return tls ? (auth ? "UTF8SMTPSA" : "UTF8SMTPS") :
		    (auth ? "UTF8SMTPA" : "UTF8SMTP");
	if (!s->esmtp)
		return "SMTP";
	return tls ? (auth ? "ESMTPSA" : "ESMTPS") : (auth ? "ESMTPA" :
	    "ESMTP");
}

/* RFC 5321 §4.4 trace header; on submission with privacy on, the client
 * address and HELO name stay out of it. */
static void
smtp_received(struct smtp_session *s, struct buf *b)
{
	const struct config *cfg = s->srv->cfg;
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (smtp_is_submission(s) && cfg->submission_privacy)
		buf_printf(b, "Received: by %s", cfg->hostname);
	else
		buf_printf(b, "Received: from %s (%s [%s])\r\n\tby %s",
		    s->helo, s->helo, conn_peer_addr(s->conn),
		    cfg->hostname);
	buf_printf(b, " with %s id %s", smtp_protocol_name(s),
	    spool_msg_id(s->msg));
	if (conn_is_tls(s->conn))
		buf_printf(b, "\r\n\t(using %s with cipher %s (%d bits))",
		    conn_tls_version(s->conn), conn_tls_cipher(s->conn),
		    conn_tls_bits(s->conn));
	if (s->target_count == 1)
		buf_printf(b, "\r\n\tfor <%s>", s->rcpts[0]);
	buf_printf(b, "; %s\r\n", date);
}

/* Opens the spool file and writes our header; false after a reply. */
static bool
smtp_begin_message(struct smtp_session *s, bool dot_mode)
{
	const struct config *cfg = s->srv->cfg;
	const char *err;
	struct buf hdr;
	bool sub = smtp_is_submission(s);

	s->msg = spool_msg_new(cfg->data_dir, &err);
	if (s->msg == NULL) {
		smtp_reply(s, "451 4.3.0 Error: %s", "queue file write error");
		return false;
	}
	buf_init(&hdr, 0);
	smtp_received(s, &hdr);
	smtp_data_init(&s->data, dot_mode, cfg->max_message_size,
	    sub && cfg->submission_privacy, sub, cfg->hostname,
	    spool_msg_id(s->msg));
	s->data_active = true;
	/* Our header counts towards the size limit too. */
	s->data.size = hdr.len;
	if (spool_msg_write(s->msg, hdr.data, hdr.len) < 0)
		s->bdat_failed = true;
	buf_free(&hdr);
	return true;
}

void
smtp_cmd_data(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state == SMTP_ST_MAIL || (s->state == SMTP_ST_RCPT &&
	    s->target_count == 0)) {
		/* RFC 2920 §3.1: all RCPTs failed */
		smtp_reply_error(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (s->state != SMTP_ST_RCPT) {
		smtp_reply_error(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (!smtp_begin_message(s, true))
		return;
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_set_state(s, SMTP_ST_DATA);
}

void
smtp_cmd_bdat(struct smtp_session *s, const char *args)
{
	uint64_t size;
	bool last;

	if (smtp_parse_bdat(args, &size, &last) < 0) {
		/* RFC 3030 §2: we cannot know how much to skip; close. */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		smtp_reset_transaction(s);
		smtp_close_after_reply(s);
		return;
	}
	if (s->state != SMTP_ST_RCPT && s->state != SMTP_ST_BDAT_WAIT) {
		/* Skip the chunk so the session stays in sync. */
		smtp_reply_error(s, s->state == SMTP_ST_MAIL ?
		    "554 5.5.1 Error: no valid recipients" :
		    "503 5.5.1 Error: need RCPT command");
		s->bdat_left = size;
		s->resume_state = s->state;
		if (s->state != SMTP_ST_CLOSING)
			smtp_set_state(s, SMTP_ST_BDAT);
		return;
	}
	if (s->state == SMTP_ST_RCPT && !smtp_begin_message(s, false)) {
		/* replied 451; skip the chunk */
		s->bdat_left = size;
		s->resume_state = SMTP_ST_RCPT;
		smtp_set_state(s, SMTP_ST_BDAT);
		return;
	}
	s->bdat_left = size;
	s->bdat_last = last;
	smtp_set_state(s, SMTP_ST_BDAT);
}

/* What the committer carries back: the session is found by id. */
struct smtp_commit_ctx {
	struct smtp_server *srv;
	uint64_t id;
};

static void
smtp_on_commit(void *arg, bool ok)
{
	struct smtp_commit_ctx *cc = arg;
	struct smtp_session *s = smtp_session_by_id(cc->srv, cc->id);

	free(cc);
	if (s == NULL)
		return;		/* client left; the message stays queued */
	if (ok)
		smtp_reply(s, "250 2.0.0 OK queued as %s", s->qid);
	else
		smtp_reply(s, "451 4.3.0 Error: queue file write error");
	log_info("%s smtp %s id=%s from=<%s> nrcpt=%zu client=%s tls=%s%s%s",
	    s->sid, ok ? "queued" : "queue-failed", s->qid, s->mail.addr,
	    s->rcpt_count, conn_peer_addr(s->conn),
	    conn_is_tls(s->conn) ? conn_tls_version(s->conn) : "no",
	    s->auth_user ? " user=" : "", s->auth_user ? s->auth_user : "");
	smtp_reset_transaction(s);
	smtp_set_state(s, SMTP_ST_READY);
	conn_resume_read(s->conn);
}

static const char *
smtp_data_error_reply(enum smtp_data_err err)
{
	switch (err) {
	case SMTP_DATA_OK:
		break;
	case SMTP_DATA_BARE_NEWLINE:
		return "550 5.6.0 Message contains bare CR or LF characters "
		    "(RFC 5321 section 2.3.8)";
	case SMTP_DATA_LINE_TOO_LONG:
		return "550 5.6.0 Message line too long";
	case SMTP_DATA_TOO_BIG:
		return "552 5.3.4 Message size exceeds fixed limit";
	case SMTP_DATA_TOO_MANY_HOPS:
		return "554 5.4.6 Too many hops (mail loop?)";
	}
	return "451 4.3.0 Internal error";
}

/* The whole message is in: refuse it or hand it to the committer. */
static void
smtp_end_message(struct smtp_session *s)
{
	struct smtp_commit_ctx *cc;
	struct spool_msg *m;

	if (s->data.err != SMTP_DATA_OK || s->bdat_failed) {
		const char *r = s->bdat_failed && s->data.err == SMTP_DATA_OK ?
		    "451 4.3.0 Error: queue file write error" :
		    smtp_data_error_reply(s->data.err);
		smtp_reset_transaction(s);
		smtp_set_state(s, SMTP_ST_READY);
		smtp_reply_error(s, "%s", r);
		return;
	}
	m = s->msg;
	s->msg = NULL;
	spool_msg_set_sender(m, s->mail.addr);
	spool_msg_set_flags(m, (int)s->mail.body, s->mail.smtputf8,
	    s->auth_user);
	for (size_t i = 0; i < s->target_count; i++)
		spool_msg_add_rcpt(m, s->rcpts[i], s->rcpt_local[i]);
	str_lcpy(s->qid, spool_msg_id(m), sizeof(s->qid));
	cc = xmalloc(sizeof(*cc));
	cc->srv = s->srv;
	cc->id = s->id;
	smtp_set_state(s, SMTP_ST_BUSY);
	conn_pause_read(s->conn);
	queue_commit(s->srv->qc, m, smtp_on_commit, cc);
}

static void
smtp_data_drain_out(struct smtp_session *s)
{
	if (s->data.out.len == 0)
		return;
	if (s->msg != NULL && !s->bdat_failed &&
	    s->data.err == SMTP_DATA_OK &&
	    spool_msg_write(s->msg, s->data.out.data, s->data.out.len) < 0)
		s->bdat_failed = true;
	buf_reset(&s->data.out);
}

static bool
smtp_dot_input(struct smtp_session *s)
{
	size_t len, used;
	const char *p = conn_peek(s->conn, SMTP_READ_CHUNK, &len);
	bool end;

	if (p == NULL)
		return false;
	used = smtp_data_feed(&s->data, p, len, &end);
	conn_drain(s->conn, used);
	smtp_data_drain_out(s);
	if (end)
		smtp_end_message(s);
	return true;
}

static bool
smtp_bdat_input(struct smtp_session *s)
{
	size_t len, take;
	const char *p;
	bool end;

	if (s->bdat_left > 0) {
		p = conn_peek(s->conn, SMTP_READ_CHUNK, &len);
		if (p == NULL)
			return false;
		take = len < s->bdat_left ? len : (size_t)s->bdat_left;
		if (s->data_active)
			(void)smtp_data_feed(&s->data, p, take, &end);
		conn_drain(s->conn, take);
		s->bdat_left -= take;
		if (s->data_active)
			smtp_data_drain_out(s);
		if (s->bdat_left > 0)
			return true;
	}
	if (!s->data_active) {
		/* a refused chunk has been skipped */
		smtp_set_state(s, s->resume_state);
		return true;
	}
	if (!s->bdat_last) {
		smtp_reply(s, "250 2.0.0 %llu octets received",
		    (unsigned long long)s->data.size);
		smtp_set_state(s, SMTP_ST_BDAT_WAIT);
		return true;
	}
	smtp_data_finish(&s->data);
	smtp_data_drain_out(s);
	smtp_end_message(s);
	return true;
}

bool
smtp_data_input(struct smtp_session *s)
{
	if (s->state == SMTP_ST_DATA)
		return smtp_dot_input(s);
	return smtp_bdat_input(s);
}
