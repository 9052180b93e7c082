/*
 * smtp_client_txn.c - the SMTP client's transactions (see smtp_client.c
 * for the connection): MAIL, RCPT, DATA or BDAT (RFC 5321, 1870, 6152,
 * 6531, 3030), pipelined when the peer offers it (RFC 2920), the body
 * streamed from the spool file with dot-stuffing, the final reply to
 * every accepted recipient, RSET after a failed transaction, and QUIT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp/smtp_client_private.h"

void
smtpc_txn_clear(struct smtpc_txn *t)
{
	if (t->results != NULL)
		for (size_t i = 0; i < t->nrcpts; i++)
			smtpc_reply_free(&t->results[i]);
	x_free(&t->results);
}

/* The transaction's internals; results stay with the caller. */
void
smtpc_txn_reset(struct smtpc *c)
{
	x_free(&c->sent);
	x_free(&c->accepted);
	x_free(&c->chunk);
	c->nsent = c->nreplied = c->naccepted = 0;
	c->mail_failed = c->discard = c->pipelined = c->bdat = false;
}

/* Every recipient without a result yet gets r. */
void
smtpc_txn_fill(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->txn->nrcpts; i++)
		if (c->txn->results[i].code == 0)
			smtpc_reply_copy(&c->txn->results[i], r);
}

/* Recipients the peer accepted get the reply to the data. */
static void
smtpc_txn_fill_accepted(struct smtpc *c, const struct smtpc_reply *r)
{
	for (size_t i = 0; i < c->txn->nrcpts; i++)
		if (c->accepted[i] && c->txn->results[i].code == 0)
			smtpc_reply_copy(&c->txn->results[i], r);
}

void
smtpc_txn_done(struct smtpc *c)
{
	smtpc_txn_reset(c);
	c->txn_done = true;
	if (c->state != SMTPC_ST_CLOSED)
		smtpc_set_state(c, SMTPC_ST_READY);
	smtpc_notify(c, SMTPC_N_TXN);
}

/* A path we may put in MAIL or RCPT: bounded, no control characters
 * (CR LF would smuggle commands). */
static bool
smtpc_path_ok(const char *s)
{
	size_t len = strlen(s);

	if (len > SMTPC_PATH_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ---- transactions ---- */

static void
smtpc_rset(struct smtpc *c)
{
	struct smtpc_reply r = { 0 };

	/* every recipient has its result by now; be sure */
	smtpc_reply_make(&r, 451, "4.5.0", "no reply from %s", c->peer);
	smtpc_txn_fill(c, &r);
	smtpc_reply_free(&r);
	smtpc_cmd(c, "RSET");
	smtpc_set_state(c, SMTPC_ST_RSET);
}

static void
smtpc_send_rcpt(struct smtpc *c, size_t k)
{
	smtpc_cmd(c, "RCPT TO:<%s>", c->txn->rcpts[c->sent[k]]);
}

static void
smtpc_send_mail(struct smtpc *c)
{
	const struct smtpc_txn *t = c->txn;
	char size[32] = "";
	const char *body = "";

	if (c->ext.size)
		snprintf(size, sizeof(size), " SIZE=%llu",
		    (unsigned long long)t->size);
	if (c->bdat)
		body = " BODY=BINARYMIME";
	else if (t->body != 0 && c->ext.eightbit)
		body = " BODY=8BITMIME";
	smtpc_cmd(c, "MAIL FROM:<%s>%s%s%s", t->sender, size, body,
	    t->smtputf8 ? " SMTPUTF8" : "");
	smtpc_set_state(c, SMTPC_ST_MAIL);
	if (!c->pipelined)
		return;
	/* RFC 2920 §3.1: MAIL, the RCPTs and DATA in one group */
	for (size_t k = 0; k < c->nsent; k++)
		smtpc_send_rcpt(c, k);
	if (!c->bdat)
		smtpc_cmd(c, "DATA");
}

/* Refusals before anything is sent; true when the txn is done. */
static bool
smtpc_txn_refuse(struct smtpc *c)
{
	const struct smtpc_txn *t = c->txn;
	struct smtpc_reply r = { 0 };

	if (t->smtputf8 && !c->ext.smtputf8)
		smtpc_reply_make(&r, 550, "5.6.7", "%s does not support "
		    "SMTPUTF8 (RFC 6531)", c->peer);
	else if (c->ext.size_max != 0 && t->size > c->ext.size_max)
		smtpc_reply_make(&r, 552, "5.3.4", "message size %llu "
		    "exceeds the size limit %llu of %s",
		    (unsigned long long)t->size,
		    (unsigned long long)c->ext.size_max, c->peer);
	else if (!smtpc_path_ok(t->sender))
		smtpc_reply_make(&r, 550, "5.1.7", "bad sender address");
	else
		return false;
	smtpc_txn_fill(c, &r);
	smtpc_reply_free(&r);
	smtpc_txn_done(c);
	return true;
}

void
smtpc_send(struct smtpc *c, struct smtpc_txn *t)
{
	struct smtpc_reply r = { 0 };

	xassert(c->txn == NULL && !c->close_told && t->nrcpts > 0);
	xassert(c->state == SMTPC_ST_READY || c->state == SMTPC_ST_CLOSED);
	c->txn = t;
	t->results = xcalloc(t->nrcpts, sizeof(*t->results));
	smtpc_txn_reset(c);
	if (c->state == SMTPC_ST_CLOSED) {
		/* lost before the caller heard of it */
		smtpc_txn_fill(c, &c->why);
		smtpc_txn_done(c);
		return;
	}
	if (smtpc_txn_refuse(c))
		return;
	c->sent = xcalloc(t->nrcpts, sizeof(*c->sent));
	c->accepted = xcalloc(t->nrcpts, sizeof(*c->accepted));
	smtpc_reply_make(&r, 550, "5.1.3", "bad recipient address");
	for (size_t i = 0; i < t->nrcpts; i++) {
		if (smtpc_path_ok(t->rcpts[i]))
			c->sent[c->nsent++] = i;
		else
			smtpc_reply_copy(&t->results[i], &r);
	}
	smtpc_reply_free(&r);
	if (c->nsent == 0) {
		smtpc_txn_done(c);
		return;
	}
	c->bdat = t->body == 2 && c->ext.binarymime && c->ext.chunking;
	c->pipelined = c->ext.pipelining;
	smtpc_send_mail(c);
}

void
smtpc_on_mail(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_set_state(c, SMTPC_ST_RCPT);
		if (!c->pipelined)
			smtpc_send_rcpt(c, 0);
		return;
	}
	c->mail_failed = true;
	smtpc_txn_fill(c, r);
	if (c->pipelined)
		smtpc_set_state(c, SMTPC_ST_RCPT);	/* replies still due */
	else
		smtpc_rset(c);
}

static void smtpc_bdat_next(struct smtpc *c);

static void
smtpc_body_start(struct smtpc *c)
{
	c->off = c->body_len = 0;
	c->bol = true;
	c->tail[0] = c->tail[1] = '\0';
	c->prefix_done = c->txn->prefix == NULL || c->txn->prefix_len == 0;
	c->chunk = xmalloc(SMTPC_CHUNK);
	if (c->bdat) {
		smtpc_set_state(c, SMTPC_ST_BDAT);
		smtpc_bdat_next(c);
	} else {
		smtpc_set_state(c, SMTPC_ST_BODY);
		smtpc_body_pump(c);
	}
}

void
smtpc_on_rcpt(struct smtpc *c, const struct smtpc_reply *r)
{
	size_t i = c->sent[c->nreplied++];

	if (!c->mail_failed) {
		if (r->code / 100 == 2) {
			c->accepted[i] = true;
			c->naccepted++;
		} else {
			smtpc_reply_copy(&c->txn->results[i], r);
		}
	}
	if (c->nreplied < c->nsent) {
		if (!c->pipelined)
			smtpc_send_rcpt(c, c->nreplied);
	} else if (c->pipelined && !c->bdat) {
		smtpc_set_state(c, SMTPC_ST_DATA);	/* DATA was sent */
	} else if (c->mail_failed || c->naccepted == 0) {
		smtpc_rset(c);
	} else if (c->bdat) {
		smtpc_body_start(c);
	} else {
		smtpc_cmd(c, "DATA");
		smtpc_set_state(c, SMTPC_ST_DATA);
	}
}

void
smtpc_on_data(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code == 354 && (c->mail_failed || c->naccepted == 0)) {
		/* RFC 2920 §3.1: DATA accepted without recipients: an
		 * empty message, whose reply does not count */
		c->discard = true;
		conn_write(c->conn, ".\r\n", 3);
		smtpc_set_state(c, SMTPC_ST_DOT);
	} else if (r->code == 354) {
		smtpc_body_start(c);
	} else {
		if (!c->mail_failed)
			smtpc_txn_fill_accepted(c, r);
		smtpc_rset(c);
	}
}

/* The final reply (after "." or BDAT LAST) goes to every accepted
 * recipient. */
void
smtpc_on_dot(struct smtpc *c, const struct smtpc_reply *r)
{
	if (!c->discard)
		smtpc_txn_fill_accepted(c, r);
	if (r->code / 100 == 2 && !c->discard)
		smtpc_txn_done(c);
	else
		smtpc_rset(c);
}

void
smtpc_on_rset(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_txn_done(c);
		return;
	}
	/* A peer that refuses RSET is in no state for more mail. */
	smtpc_fail(c, r, false);
}
/* ---- the message body ---- */

static void
smtpc_read_error(struct smtpc *c, int err)
{
	/* Mid-DATA there is no clean way out: "." would send a cut
	 * message.  Close instead. */
	log_warnx("smtpc %s: reading the spool file: %s", c->peer,
	    strerror(err));
	smtpc_fail_make(c, 451, "4.3.0", "error reading the queued message "
	    "(%s)", strerror(err));
}

/* Reads the next chunk at c->off; -1 on error (handled). */
static ssize_t
smtpc_read_chunk(struct smtpc *c)
{
	ssize_t n;

	do {
		n = pread(c->txn->fd, c->chunk, SMTPC_CHUNK, (off_t)c->off);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		smtpc_read_error(c, errno);
	return n;
}

/* RFC 5321 §4.5.2: a line starting with "." gets one more; line starts
 * are tracked across chunks. */
static void
smtpc_stuff(struct smtpc *c, const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (c->bol && p[i] == '.') {
			conn_write(c->conn, p + start, i - start);
			conn_write(c->conn, ".", 1);
			start = i;
		}
		c->bol = p[i] == '\n';
	}
	conn_write(c->conn, p + start, n - start);
	if (n >= 2) {
		c->tail[0] = p[n - 2];
		c->tail[1] = p[n - 1];
	} else if (n == 1) {
		c->tail[0] = c->tail[1];
		c->tail[1] = p[0];
	}
	c->body_len += n;
}

static void
smtpc_body_end(struct smtpc *c)
{
	/* the data must end in CRLF before the terminator */
	if (c->body_len > 0 && (c->tail[0] != '\r' || c->tail[1] != '\n'))
		conn_write(c->conn, "\r\n", 2);
	conn_write(c->conn, ".\r\n", 3);
	log_debug("smtpc %s > (%llu bytes) .", c->peer,
	    (unsigned long long)c->body_len);
	smtpc_set_state(c, SMTPC_ST_DOT);
}

/* Writes while the output is below SMTPC_OUT_HIGH, then waits for it
 * to drain (on_drained calls again). */
void
smtpc_body_pump(struct smtpc *c)
{
	ssize_t n;

	while (c->state == SMTPC_ST_BODY &&
	    conn_output_len(c->conn) < SMTPC_OUT_HIGH) {
		if (!c->prefix_done) {
			smtpc_stuff(c, c->txn->prefix, c->txn->prefix_len);
			c->prefix_done = true;
			continue;
		}
		if ((n = smtpc_read_chunk(c)) < 0)
			return;
		if (n == 0) {
			smtpc_body_end(c);
			return;
		}
		smtpc_stuff(c, c->chunk, (size_t)n);
		c->off += (uint64_t)n;
	}
	if (c->state == SMTPC_ST_BODY)
		conn_notify_drained(c->conn);
}

/* RFC 3030 §2: one BDAT chunk per reply, the last one marked LAST. */
static void
smtpc_bdat_next(struct smtpc *c)
{
	ssize_t n;
	bool last;

	if (!c->prefix_done) {
		c->prefix_done = true;
		smtpc_cmd(c, "BDAT %zu", c->txn->prefix_len);
		conn_write(c->conn, c->txn->prefix, c->txn->prefix_len);
		return;
	}
	if ((n = smtpc_read_chunk(c)) < 0)
		return;
	/* a short read of a regular file is its end */
	last = (size_t)n < SMTPC_CHUNK;
	smtpc_cmd(c, "BDAT %zd%s", n, last ? " LAST" : "");
	conn_write(c->conn, c->chunk, (size_t)n);
	c->off += (uint64_t)n;
	c->body_len += (uint64_t)n;
	if (last)
		smtpc_set_state(c, SMTPC_ST_DOT);
}

void
smtpc_on_bdat(struct smtpc *c, const struct smtpc_reply *r)
{
	if (r->code / 100 == 2) {
		smtpc_bdat_next(c);
		return;
	}
	smtpc_txn_fill_accepted(c, r);
	smtpc_rset(c);
}

/* ---- QUIT ---- */

void
smtpc_quit(struct smtpc *c)
{
	struct smtpc_reply why = { 0 }, txn = { 0 };

	if (c->state == SMTPC_ST_CLOSED || c->state == SMTPC_ST_QUIT)
		return;
	if (c->state == SMTPC_ST_READY) {
		smtpc_cmd(c, "QUIT");
		smtpc_set_state(c, SMTPC_ST_QUIT);
		return;
	}
	/* not idle: no QUIT to send, just go */
	smtpc_reply_make(&txn, 451, "4.4.2", "connection with %s closed "
	    "while %s", c->peer, smtpc_doing(c));
	smtpc_reply_make(&why, 221, "2.0.0", "closed without QUIT while %s",
	    smtpc_doing(c));
	smtpc_close(c, &why, &txn, false);
	smtpc_reply_free(&why);
	smtpc_reply_free(&txn);
}

/* on_close gets 221 after QUIT whatever the peer said: we are done. */
void
smtpc_on_quit(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_reply q = { 0 };

	if (r->code == 221) {
		smtpc_fail(c, r, false);
		return;
	}
	smtpc_reply_make(&q, 221, "2.0.0", "QUIT answered with: %s", r->text);
	smtpc_fail(c, &q, false);
	smtpc_reply_free(&q);
}
