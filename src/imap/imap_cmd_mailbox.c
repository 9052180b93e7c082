/*
 * imap_cmd_mailbox.c - the commands of the authenticated state (RFC 9051
 * §6.3) and their table: CREATE (with CREATE-SPECIAL-USE, RFC 6154 §3),
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS (STATUS=SIZE, RFC 8438;
 * HIGHESTMODSEQ, RFC 7162), NAMESPACE (RFC 2342); LIST/LSUB live in
 * imap_cmd_list.c, APPEND in imap_cmd_append.c.  Also the pool job they
 * all run as and mailbox names in and out.
 *
 * Names are UTF-8 in the store.  IMAP4rev1 clients (s->utf8 false) send
 * and get modified UTF-7 (RFC 3501 §5.1.3).  The hierarchy delimiter is
 * "/" and there is one personal namespace, "".
 * DELETE of a mailbox with children is refused with NO [HASCHILDREN]
 * (RFC 9051 §6.3.5 allows either that or leaving a \Noselect name; we
 * never keep \Noselect placeholders, see store_mailboxes.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_cmd_mailbox.h"
#include "imap/imap_cmd_quota.h"
#include "imap/imap_selected.h"

static void imap_cmd_create(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_delete(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_rename(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_subscribe(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_status(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_namespace(struct imap_session *s,
    const struct imap_command *cmd, bool uid);

#define IMAP_AS (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

static const struct imap_cmd imap_mailbox_cmds[] = {
	{ "CREATE", IMAP_AS, imap_cmd_create },
	{ "DELETE", IMAP_AS, imap_cmd_delete },
	{ "RENAME", IMAP_AS, imap_cmd_rename },
	{ "SUBSCRIBE", IMAP_AS, imap_cmd_subscribe },
	{ "UNSUBSCRIBE", IMAP_AS, imap_cmd_subscribe },
	{ "LIST", IMAP_AS, imap_cmd_list },
	{ "LSUB", IMAP_AS, imap_cmd_lsub },
	{ "NAMESPACE", IMAP_AS, imap_cmd_namespace },
	{ "STATUS", IMAP_AS, imap_cmd_status },
	{ "APPEND", IMAP_AS, imap_cmd_append },
	/* QUOTA, RFC 9208 (imap_cmd_quota.c) */
	{ "GETQUOTA", IMAP_AS, imap_cmd_getquota },
	{ "GETQUOTAROOT", IMAP_AS, imap_cmd_getquotaroot },
	{ "SETQUOTA", IMAP_AS, imap_cmd_setquota },
};

const struct imap_cmd_table imap_cmds_mailbox = {
	imap_mailbox_cmds, MF_ARRAY_LEN(imap_mailbox_cmds),
	/* UIDPLUS is the selected table's (COPYUID, UID EXPUNGE); its
	 * APPENDUID is served here */
	"NAMESPACE MULTIAPPEND CHILDREN LIST-EXTENDED LIST-STATUS "
	"SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE "
	"QUOTA QUOTA=RES-STORAGE",
};

/* ---- the pool job ---- */

struct imap_mjob *
imap_mjob_new(struct imap_session *s, const char *what,
    void (*work)(struct imap_mjob *j))
{
	struct imap_mjob *j = xmalloc(sizeof(*j));

	j->srv = s->srv;
	j->id = s->id;
	j->utf8 = s->utf8;
	j->what = what;
	j->work = work;
	buf_init(&j->out, 0);
	return j;
}

void
imap_mjob_fail(struct imap_mjob *j, const char *error)
{
	str_lcpy(j->error, error != NULL ? error : "?", sizeof(j->error));
	j->ret = -1;
}

static void
imap_mjob_work(void *arg)
{
	struct imap_mjob *j = arg;

	j->work(j);
}

static void
imap_mjob_free(struct imap_mjob *j)
{
	store_close(&j->store);
	if (j->ctx_free != NULL)
		j->ctx_free(j->ctx);
	buf_free(&j->out);
	free(j);
}

/* The tagged NO for a refusal (RFC 5530 response codes). */
static const char *
imap_mjob_refusal_text(const struct imap_mjob *j)
{
	switch (j->refusal) {
	case STORE_REFUSE_NONEXISTENT:
		if (strcmp(j->what, "APPEND") == 0)
			return "[TRYCREATE] No such mailbox";
		return strcmp(j->what, "UNSUBSCRIBE") == 0 ?
		    "[NONEXISTENT] Not subscribed" :
		    "[NONEXISTENT] No such mailbox";
	case STORE_REFUSE_EXISTS:
		return "[ALREADYEXISTS] Mailbox already exists";
	case STORE_REFUSE_HASCHILDREN:
		return "[HASCHILDREN] Mailbox has children, delete them first";
	case STORE_REFUSE_INBOX:
		return "[CANNOT] Not possible with INBOX";
	case STORE_REFUSE_NAME:
		return "[CANNOT] Invalid mailbox name";
	case STORE_REFUSE_INFERIOR:
		return "[CANNOT] Cannot move a mailbox below itself";
	case STORE_REFUSE_LIMIT:
		return "[LIMIT] Too many mailboxes or names too long";
	case STORE_REFUSE_USEATTR:
		return "[USEATTR] Unsupported special-use attribute";
	case STORE_REFUSE_OVERQUOTA:
		return IMAP_QUOTA_OVER_TEXT;
	case STORE_REFUSE_NONE:
		break;
	}
	return "[SERVERBUG] Refused";
}

static void
imap_mjob_done(void *arg)
{
	struct imap_mjob *j = arg;
	struct imap_session *s = imap_session_by_id(j->srv, j->id);

	if (s == NULL) {
		imap_mjob_free(j);
		return;
	}
	s->store = j->store;
	j->store = NULL;
	if (j->out.len > 0)
		imap_write(s, j->out.data, j->out.len);
	if (j->ret == 1 && j->changed && s->state == IMAP_ST_SELECTED &&
	    s->mbox != NULL) {
		/* RFC 9051 §6.3.12: an APPEND (or RENAME...) touching the
		 * selected mailbox is reported (EXISTS) before the OK, so the
		 * APPENDUID it names is addressable at once. */
		char text[160];
		snprintf(text, sizeof(text), "%s%s", j->code, j->what);
		ipc_notify_changed(s->user);
		imap_mjob_free(j);
		imap_sync_start(s, text, false);
		return;
	}
	if (j->ret == 1)
		imap_tagged(s, s->tag, "OK", "%s%s completed", j->code,
		    j->what);
	else if (j->ret == 0)
		imap_tagged(s, s->tag, "NO", "%s", imap_mjob_refusal_text(j));
	else {
		log_warnx("%s imap %s user=%s error=\"%s\"", s->sid, j->what,
		    s->user, j->error);
		imap_tagged(s, s->tag, "NO", "[SERVERBUG] Internal error, "
		    "try again later");
	}
	if (j->changed && j->ret == 1)
		ipc_notify_changed(s->user);
	imap_mjob_free(j);
	imap_resume(s);
}

void
imap_mjob_submit(struct imap_session *s, struct imap_mjob *j)
{
	xassert(s->store != NULL);
	j->store = s->store;
	s->store = NULL;
	imap_submit(s, imap_mjob_work, imap_mjob_done, j);
}

/* ---- names ---- */

void
imap_mbox_canon(char *name)
{
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == STORE_MAILBOX_SEP))
		memcpy(name, "INBOX", 5);
}

int
imap_mbox_arg(const struct imap_session *s, const struct imap_arg *a,
    char name_r[IMAP_MAILBOX_MAX + 1], const char **error_r)
{
	if (imap_arg_mailbox(a, s->utf8, name_r, error_r) < 0)
		return -1;
	imap_mbox_canon(name_r);
	return 0;
}

void
imap_mbox_quote(struct buf *out, const char *name, bool utf8)
{
	struct buf enc;
	const char *error = NULL;

	buf_init(&enc, IMAP_MUTF7_NAME_MAX);
	if (!utf8 && imap_mutf7_encode(name, strlen(name), &enc,
	    &error) == 0)
		name = enc.data;
	/* A name the encoder refuses (not UTF-8: a damaged store) goes out
	 * as it is; the store refuses controls, so quoting is safe. */
	buf_addc(out, '"');
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_addc(out, '\\');
		buf_addc(out, *p);
	}
	buf_addc(out, '"');
	buf_free(&enc);
}

/* ---- CREATE, DELETE, RENAME, (UN)SUBSCRIBE ---- */

static void
imap_work_create(struct imap_mjob *j)
{
	const char *err = NULL;

	j->ret = store_mailbox_create(j->store, j->name,
	    j->name2[0] != '\0' ? j->name2 : NULL, &j->refusal, &err);
	if (j->ret < 0)
		imap_mjob_fail(j, err);
	j->changed = true;
}

static void
imap_work_delete(struct imap_mjob *j)
{
	const char *err = NULL;

	j->ret = store_mailbox_delete(j->store, j->name, &j->refusal, &err);
	if (j->ret < 0)
		imap_mjob_fail(j, err);
	j->changed = true;
}

static void
imap_work_rename(struct imap_mjob *j)
{
	const char *err = NULL;

	j->ret = store_mailbox_rename(j->store, j->name, j->name2,
	    &j->refusal, &err);
	if (j->ret < 0)
		imap_mjob_fail(j, err);
	j->changed = true;
}

static void
imap_work_subscribe(struct imap_mjob *j)
{
	const char *err = NULL;

	j->ret = store_subscribe(j->store, j->name,
	    strcmp(j->what, "SUBSCRIBE") == 0, &j->refusal, &err);
	if (j->ret < 0)
		imap_mjob_fail(j, err);
}

/* RFC 3501 §6.3.3: names with wildcards would confuse LIST. */
static bool
imap_mbox_creatable(const char *name)
{
	return strpbrk(name, "%*") == NULL;
}

/*
 * RFC 6154 §3: "(USE (\Sent))"; one attribute at most (the store keeps
 * one per mailbox).  0 with use_r ("" for none), -1 syntax.
 */
static int
imap_create_use(const struct imap_arg *a, char *use_r, size_t size)
{
	const struct imap_arg *use;

	use_r[0] = '\0';
	if (a == NULL)
		return 0;
	if (a->type != IMAP_ARG_LIST || a->count != 2 || a->next != NULL ||
	    !imap_arg_is_atom(a->list, "USE") ||
	    a->list->next->type != IMAP_ARG_LIST)
		return -1;
	use = a->list->next;
	if (use->count > 1)
		return 1;
	if (use->count == 1) {
		if (use->list->type != IMAP_ARG_ATOM ||
		    use->list->str[0] != '\\')
			return -1;
		/* RFC 6154 attributes are case-insensitive; the store
		 * spells them "\\Sent" */
		str_lcpy(use_r, use->list->str, size);
		str_lower(use_r + 1);
		use_r[1] = (char)(use_r[1] >= 'a' && use_r[1] <= 'z' ?
		    use_r[1] - 'a' + 'A' : use_r[1]);
	}
	return 0;
}

static void
imap_cmd_create(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_mjob *j;
	const char *err = NULL;
	char name[IMAP_MAILBOX_MAX + 1], use[32];
	size_t len;
	int rc;

	if (cmd->count < 1 || cmd->count > 2 ||
	    (rc = imap_create_use(cmd->args->next, use, sizeof(use))) < 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: CREATE mailbox "
		    "[(USE (attribute))]");
		return;
	}
	if (imap_mbox_arg(s, cmd->args, name, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] %s", err);
		return;
	}
	/* RFC 9051 §6.3.4: a trailing delimiter only declares intent */
	len = strlen(name);
	if (len > 1 && name[len - 1] == STORE_MAILBOX_SEP)
		name[len - 1] = '\0';
	if (rc > 0) {
		imap_tagged(s, cmd->tag, "NO", "[USEATTR] One special-use "
		    "attribute per mailbox");
		return;
	}
	if (!imap_mbox_creatable(name) || !store_mailbox_name_valid(name)) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	j = imap_mjob_new(s, "CREATE", imap_work_create);
	str_lcpy(j->name, name, sizeof(j->name));
	str_lcpy(j->name2, use, sizeof(j->name2));
	imap_mjob_submit(s, j);
}

static void
imap_cmd_delete(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_mjob *j;
	const char *err = NULL;
	char name[IMAP_MAILBOX_MAX + 1];

	if (cmd->count != 1) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	if (imap_mbox_arg(s, cmd->args, name, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] %s", err);
		return;
	}
	j = imap_mjob_new(s, "DELETE", imap_work_delete);
	str_lcpy(j->name, name, sizeof(j->name));
	imap_mjob_submit(s, j);
}

static void
imap_cmd_rename(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_mjob *j;
	const char *err = NULL;
	char from[IMAP_MAILBOX_MAX + 1], to[IMAP_MAILBOX_MAX + 1];

	if (cmd->count != 2) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: RENAME from to");
		return;
	}
	if (imap_mbox_arg(s, cmd->args, from, &err) < 0 ||
	    imap_mbox_arg(s, cmd->args->next, to, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] %s", err);
		return;
	}
	if (!imap_mbox_creatable(to)) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	j = imap_mjob_new(s, "RENAME", imap_work_rename);
	str_lcpy(j->name, from, sizeof(j->name));
	str_lcpy(j->name2, to, sizeof(j->name2));
	imap_mjob_submit(s, j);
}

static void
imap_cmd_subscribe(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_mjob *j;
	const char *err = NULL;
	bool on = strcmp(cmd->name, "SUBSCRIBE") == 0;
	char name[IMAP_MAILBOX_MAX + 1];

	if (cmd->count != 1) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: %s mailbox",
		    cmd->name);
		return;
	}
	if (imap_mbox_arg(s, cmd->args, name, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "[CANNOT] %s", err);
		return;
	}
	j = imap_mjob_new(s, on ? "SUBSCRIBE" : "UNSUBSCRIBE",
	    imap_work_subscribe);
	str_lcpy(j->name, name, sizeof(j->name));
	imap_mjob_submit(s, j);
}

/* ---- STATUS ---- */

static const struct {
	const char *name;
	enum imap_status_item item;
} imap_status_names[] = {
	{ "MESSAGES", IMAP_STATUS_MESSAGES },
	{ "UIDNEXT", IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
	{ "UNSEEN", IMAP_STATUS_UNSEEN },
	{ "DELETED", IMAP_STATUS_DELETED },
	{ "SIZE", IMAP_STATUS_SIZE },
	{ "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	{ "RECENT", IMAP_STATUS_RECENT },
};

int
imap_status_parse(const struct imap_arg *list, bool rev2,
    struct imap_status_req *req_r)
{
	const struct imap_arg *a;

	req_r->count = 0;
	if (list == NULL || list->type != IMAP_ARG_LIST || list->count == 0 ||
	    list->count > IMAP_STATUS_ITEMS_MAX)
		return -1;
	for (a = list->list; a != NULL; a = a->next) {
		size_t i;
		if (a->type != IMAP_ARG_ATOM)
			return -1;
		for (i = 0; i < MF_ARRAY_LEN(imap_status_names); i++)
			if (strcasecmp(a->str, imap_status_names[i].name) == 0)
				break;
		/* RFC 9051 §6.3.11 dropped RECENT */
		if (i == MF_ARRAY_LEN(imap_status_names) ||
		    (rev2 && imap_status_names[i].item == IMAP_STATUS_RECENT))
			return -1;
		req_r->items[req_r->count++] = imap_status_names[i].item;
	}
	return 0;
}

static uint64_t
imap_status_value(enum imap_status_item item, const struct store_status *st)
{
	switch (item) {
	case IMAP_STATUS_MESSAGES:
		return st->messages;
	case IMAP_STATUS_UIDNEXT:
		/* once the UID space is used up, 2^32 is not a number we
		 * may send; the last UID is the honest bound */
		return st->uidnext > UINT32_MAX ? UINT32_MAX : st->uidnext;
	case IMAP_STATUS_UIDVALIDITY:
		return st->uidvalidity;
	case IMAP_STATUS_UNSEEN:
		return st->unseen;
	case IMAP_STATUS_DELETED:
		return st->deleted;
	case IMAP_STATUS_SIZE:
		return st->size;
	case IMAP_STATUS_HIGHESTMODSEQ:
		return st->highestmodseq;
	case IMAP_STATUS_RECENT:
		return 0;	/* no \Recent kept (RFC 9051 dropped it) */
	}
	return 0;
}

void
imap_status_format(struct buf *out, const char *name, bool utf8,
    const struct imap_status_req *req, const struct store_status *st)
{
	buf_adds(out, "STATUS ");
	imap_mbox_quote(out, name, utf8);
	buf_adds(out, " (");
	for (size_t i = 0; i < req->count; i++) {
		const char *word = "";
		for (size_t k = 0; k < MF_ARRAY_LEN(imap_status_names); k++)
			if (imap_status_names[k].item == req->items[i])
				word = imap_status_names[k].name;
		buf_printf(out, "%s%s %llu", i > 0 ? " " : "", word,
		    (unsigned long long)imap_status_value(req->items[i], st));
	}
	buf_addc(out, ')');
}

static void
imap_work_status(struct imap_mjob *j)
{
	struct store_status st;
	const char *err = NULL;

	j->ret = store_status(j->store, j->name, &st, &err);
	if (j->ret < 0) {
		imap_mjob_fail(j, err);
	} else if (j->ret == 0) {
		j->refusal = STORE_REFUSE_NONEXISTENT;
	} else {
		buf_adds(&j->out, "* ");
		imap_status_format(&j->out, j->name, j->utf8, j->ctx, &st);
		buf_adds(&j->out, "\r\n");
	}
}

static void
imap_cmd_status(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_status_req *req = xmalloc(sizeof(*req));
	struct imap_mjob *j;
	const char *err = NULL;
	char name[IMAP_MAILBOX_MAX + 1];

	if (cmd->count != 2 || imap_status_parse(cmd->args->next, s->rev2,
	    req) < 0) {
		free(req);
		imap_tagged(s, cmd->tag, "BAD", "Syntax: STATUS mailbox "
		    "(items)");
		return;
	}
	if (imap_mbox_arg(s, cmd->args, name, &err) < 0) {
		free(req);
		imap_tagged(s, cmd->tag, "NO", "[NONEXISTENT] %s", err);
		return;
	}
	/* RFC 7162 §3.1: STATUS HIGHESTMODSEQ enables CONDSTORE */
	for (size_t i = 0; i < req->count; i++)
		if (req->items[i] == IMAP_STATUS_HIGHESTMODSEQ)
			s->condstore = true;
	j = imap_mjob_new(s, "STATUS", imap_work_status);
	str_lcpy(j->name, name, sizeof(j->name));
	j->ctx = req;
	j->ctx_free = free;
	imap_mjob_submit(s, j);
}

/* ---- NAMESPACE ---- */

static void
imap_cmd_namespace(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", "NAMESPACE takes no "
		    "arguments");
		return;
	}
	/* RFC 2342 §5: one personal namespace, no shared or other users' */
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, cmd->tag, "OK", "NAMESPACE completed");
}
