/*
 * outbound_dkim.c - what a message needs before it leaves: its DKIM
 * signatures (made once, kept in the queue) and whether it needs the
 * peer's SMTPUTF8.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "queue/outbound_private.h"

static struct ob_dkim_keys *
ob_dkim_keys(struct ob *ob, const char *domain)
{
	struct ob_dkim_keys *k;
	char *dir, *path = NULL;
	const char *err;
	time_t now = time(NULL);

	for (k = ob->dkim; k != NULL; k = k->next)
		if (strcasecmp(k->domain, domain) == 0)
			break;
	if (k != NULL && (k->n > 0 || now - k->loaded < OB_DKIM_RECHECK))
		return k;
	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		k->domain = xstrdup(domain);
		k->next = ob->dkim;
		ob->dkim = k;
	}
	k->loaded = now;
	dir = dkim_key_dir(ob->cfg);
	if (dkim_keys_load(dir, domain, ob->cfg->dkim_selector, k->keys,
	    &k->n, &path, &err) < 0) {
		log_warnx("dkim: %s: %s (mail from %s goes unsigned)",
		    path ? path : domain, err, domain);
		k->n = 0;
	}
	free(path);
	free(dir);
	return k;
}

/*
 * The DKIM-Signature fields for a message submitted by a local user from
 * a local domain with keys: made once, kept in the queue so that every
 * destination and retry sends the same bytes.  Signing reads the spool
 * file on the loop thread (a few ms for common sizes).
 * XXX: d= is the envelope sender's domain, which submission makes the
 * user own; a From: header in another local domain is not DMARC-aligned.
 */
void
ob_dkim_prepare(struct ob *ob, struct ob_job *j)
{
	const char *domain = ob_domain(j->sender), *err;
	struct ob_dkim_keys *k;
	struct dkim_signer *s;
	struct buf out;
	char chunk[65536];
	char *path;
	ssize_t n;
	int fd;

	if (j->dkim != NULL || j->auth == NULL || !ob->cfg->dkim_sign ||
	    !config_is_local_domain(ob->cfg, domain))
		return;
	k = ob_dkim_keys(ob, domain);
	if (k->n == 0)
		return;
	/* Another job of the message (another destination, loaded before
	 * the signature was made) may have signed it meanwhile. */
	sqlite3_bind_text(ob->get_dkim, 1, j->id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(ob->get_dkim) == SQLITE_ROW &&
	    sqlite3_column_text(ob->get_dkim, 0) != NULL)
		j->dkim = xstrdup((const char *)
		    sqlite3_column_text(ob->get_dkim, 0));
	sqlite3_reset(ob->get_dkim);
	if (j->dkim != NULL)
		return;
	path = ob_spool_path(ob, j->id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return;
	s = dkim_signer_new(domain, ob->cfg->dkim_selector, k->keys, k->n,
	    NULL);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		dkim_signer_feed(s, chunk, (size_t)n);
	close(fd);
	buf_init(&out, 0);
	if (n < 0 || dkim_signer_finish(s, time(NULL), &out, &err) < 0) {
		log_warnx("%s dkim: not signed: %s", j->id,
		    n < 0 ? "read error" : err);
	} else {
		j->dkim = xstrndup((const char *)out.data, out.len);
		sqlite3_bind_text(ob->set_dkim, 1, j->dkim, -1,
		    SQLITE_TRANSIENT);
		sqlite3_bind_text(ob->set_dkim, 2, j->id, -1, SQLITE_TRANSIENT);
		if (queue_step(ob->set_dkim) < 0)
			log_warnx("queue: %s", sqlite3_errmsg(ob->db));
		log_info("%s dkim: signed d=%s s=%s keys=%zu", j->id, domain,
		    ob->cfg->dkim_selector, k->n);
	}
	buf_free(&out);
	dkim_signer_free(&s);
}

/* Does this message need SMTPUTF8 of the peer?  Only when it was received
 * with SMTPUTF8 and its envelope or header really holds UTF-8 (RFC 6531
 * §3.2: otherwise it may go as a plain message). */
bool
ob_needs_utf8(struct ob *ob, const struct ob_job *j)
{
	char buf[OB_HEADER_PEEK], *path;
	ssize_t n;
	int fd;

	if (!j->smtputf8)
		return false;
	if (!ob_is_ascii(j->sender))
		return true;
	for (size_t i = 0; i < j->nrcpts; i++)
		if (j->rcpts[i] != NULL && !ob_is_ascii(j->rcpts[i]->addr))
			return true;
	path = ob_spool_path(ob, j->id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	char *end = strstr(buf, "\r\n\r\n");
	if (end != NULL)
		*end = '\0';
	for (ssize_t i = 0; i < n && buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] >= 0x80)
			return true;
	return false;
}

void
ob_dkim_free_all(struct ob *ob)
{
	while (ob->dkim != NULL) {
		struct ob_dkim_keys *k = ob->dkim;
		ob->dkim = k->next;
		for (size_t i = 0; i < k->n; i++)
			dkim_key_free(&k->keys[i]);
		free(k->domain);
		free(k);
	}
}
