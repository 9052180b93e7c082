/*
 * imap_cmd_quota.c - the QUOTA extension (RFC 9208): GETQUOTAROOT,
 * GETQUOTA and a refused SETQUOTA, capabilities QUOTA and
 * QUOTA=RES-STORAGE (rows and capabilities in imap_cmd_mailbox.c).
 *
 * Each account has one quota root, "", over all its mailboxes, with one
 * resource, STORAGE: the octets of every message of the account, in
 * units of 1024 octets (RFC 9208 §5.1), both usage and limit rounded up.
 * Limits come from [accounts] quotas / default_quota (auth's quota_get());
 * an unlimited account has no quota root at all: GETQUOTAROOT lists
 * none and GETQUOTA "" is NONEXISTENT (RFC 9208 §4.2: a resource without
 * a limit is not reported).  Limits are the administrator's: SETQUOTA is
 * refused and QUOTASET is not advertised.  Usage reads run on the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_cmd_mailbox.h"
#include "imap/imap_cmd_quota.h"

/* The root every account has (when limited). */
#define IMAP_QUOTA_ROOT ""

uint64_t
imap_quota_limit(const struct imap_session *s)
{
	return quota_get(s->srv->cfg, s->user);
}

bool
imap_quota_exceeded(uint64_t limit, uint64_t used, uint64_t add)
{
	return limit != 0 && (used > limit || add > limit - used);
}

static uint64_t
imap_quota_kib(uint64_t bytes)
{
	return bytes / 1024 + (bytes % 1024 != 0);
}

/* The job's copy of the request. */
struct imap_quota_req {
	uint64_t limit;			/* bytes, never 0 here */
	bool root;			/* GETQUOTAROOT: check the mailbox */
};

/* In work(): "* QUOTA "" (STORAGE used limit)" into j->out. */
static void
imap_quota_response(struct imap_mjob *j, uint64_t limit)
{
	uint64_t bytes = 0, messages = 0;

	if (store_usage(j->store, &bytes, &messages) < 0) {
		imap_mjob_fail(j, "read usage");	/* store logged it */
		return;
	}
	buf_printf(&j->out, "* QUOTA \"%s\" (STORAGE %llu %llu)\r\n",
	    IMAP_QUOTA_ROOT, (unsigned long long)imap_quota_kib(bytes),
	    (unsigned long long)imap_quota_kib(limit));
	j->ret = 1;
}

static void
imap_work_quota(struct imap_mjob *j)
{
	const struct imap_quota_req *req = j->ctx;
	struct store_mailbox_status st;

	if (req->root) {
		j->ret = store_mailbox_status(j->store, j->name, &st);
		if (j->ret < 0)
			imap_mjob_fail(j, "mailbox status");
		if (j->ret == 0)
			j->refusal = STORE_REFUSE_NONEXISTENT;
		if (j->ret != 1)
			return;
		/* RFC 9208 §4.3.2: QUOTAROOT first, then each root's QUOTA */
		buf_adds(&j->out, "* QUOTAROOT ");
		imap_mbox_quote(&j->out, j->name, j->utf8);
		buf_printf(&j->out, " \"%s\"\r\n", IMAP_QUOTA_ROOT);
	}
	imap_quota_response(j, req->limit);
}

/* GETQUOTAROOT of an unlimited account: the mailbox, no roots. */
static void
imap_work_quota_none(struct imap_mjob *j)
{
	struct store_mailbox_status st;

	j->ret = store_mailbox_status(j->store, j->name, &st);
	if (j->ret < 0)
		imap_mjob_fail(j, "mailbox status");
	if (j->ret == 0)
		j->refusal = STORE_REFUSE_NONEXISTENT;
	if (j->ret != 1)
		return;
	buf_adds(&j->out, "* QUOTAROOT ");
	imap_mbox_quote(&j->out, j->name, j->utf8);
	buf_adds(&j->out, "\r\n");
}

static void
imap_quota_submit(struct imap_session *s, const char *what,
    const char *name, uint64_t limit, bool root)
{
	struct imap_quota_req *req;
	struct imap_mjob *j;

	if (limit == 0) {
		j = imap_mjob_new(s, what, imap_work_quota_none);
	} else {
		req = xmalloc(sizeof(*req));
		req->limit = limit;
		req->root = root;
		j = imap_mjob_new(s, what, imap_work_quota);
		j->ctx = req;
		j->ctx_free = free;
	}
	str_lcpy(j->name, name, sizeof(j->name));
	imap_mjob_submit(s, j);
}

/* GETQUOTAROOT mailbox (RFC 9208 §4.3.2) */
void
imap_cmd_getquotaroot(struct imap_session *s,
    const struct imap_command *cmd, bool uid)
{
	char name[IMAP_MAILBOX_MAX + 1];
	const char *err = NULL;

	if (cmd->count != 1) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	if (imap_mbox_arg(s, cmd->args, name, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] %s", err);
		return;
	}
	imap_quota_submit(s, "GETQUOTAROOT", name, imap_quota_limit(s), true);
}

/* GETQUOTA root (RFC 9208 §4.3.1): our only root is "". */
void
imap_cmd_getquota(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	const char *root = cmd->count == 1 ? imap_arg_astring(cmd->args) :
	    NULL;
	uint64_t limit;

	if (root == NULL) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: GETQUOTA root");
		return;
	}
	limit = imap_quota_limit(s);
	if (strcmp(root, IMAP_QUOTA_ROOT) != 0 || limit == 0) {
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] No such quota "
		    "root");
		return;
	}
	imap_quota_submit(s, "GETQUOTA", "INBOX", limit, false);
}

/* SETQUOTA (RFC 9208 §4.3.3): limits are set by the administrator. */
void
imap_cmd_setquota(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	if (cmd->count != 2 || imap_arg_astring(cmd->args) == NULL ||
	    cmd->args->next->type != IMAP_ARG_LIST) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: SETQUOTA root "
		    "(resource limit ...)");
		return;
	}
	imap_tagged(s, cmd->tag, "NO", "[NOPERM] Quotas are set by the "
	    "administrator");
}
