/*
 * imap_cmd_list.c - LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258:
 * selection SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE; return
 * SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS of RFC 5819), the
 * SPECIAL-USE attributes of RFC 6154, and IMAP4rev1's LSUB (RFC 3501
 * §6.3.9).  The whole answer is computed on the pool from one snapshot
 * of the account's names (store_mailboxes()).
 *
 * Attributes: every existing mailbox gets \HasChildren or \HasNoChildren
 * (RFC 3348 lets us always send them) and its special-use attribute;
 * \Subscribed when asked; a subscription without a mailbox is
 * \NonExistent (LIST-EXTENDED) or \Noselect (LSUB).  Since parents always
 * exist (store_mailboxes.c), no \Noselect placeholder appears otherwise.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_cmd_mailbox.h"

/* Patterns of one LIST (RFC 5258 §3: "(" list-mailbox ... ")"). */
#define IMAP_LIST_PATTERNS_MAX 16
/* Reference + pattern, joined. */
#define IMAP_LIST_PATTERN_MAX (2 * IMAP_MAILBOX_MAX)

struct imap_list_req {
	bool lsub;
	bool extended;			/* RFC 5258 syntax used */
	bool sel_subscribed;
	bool sel_special;
	bool sel_recursive;
	bool ret_subscribed;
	bool ret_children;
	bool ret_special;
	bool ret_status;
	struct imap_status_req status;
	char *patterns[IMAP_LIST_PATTERNS_MAX];	/* UTF-8, xmalloc'd */
	size_t npatterns;
	bool *row;			/* matcher state, 2 x longest + 1 */
	bool *next;
};

/* One line of the answer. */
struct imap_list_out {
	const char *name;		/* borrowed from the set or owned */
	char *owned;
	const struct store_mailbox_info *info;	/* NULL: not in the set */
	bool childinfo;			/* RECURSIVEMATCH CHILDINFO */
};

static void
imap_list_req_free(void *arg)
{
	struct imap_list_req *req = arg;

	for (size_t i = 0; i < req->npatterns; i++)
		free(req->patterns[i]);
	free(req->row);
	free(req->next);
	free(req);
}

/* ---- matching (RFC 9051 §6.3.9: "*" anything, "%" no delimiter) ---- */

static void
imap_list_closure(const char *pat, size_t m, bool *row)
{
	for (size_t j = 0; j < m; j++)
		if (row[j] && (pat[j] == '*' || pat[j] == '%'))
			row[j + 1] = true;
}

/* One pass of a set-of-states matcher: O(len(name) x len(pat)), no
 * backtracking whatever the wildcards. */
static bool
imap_list_match1(struct imap_list_req *req, const char *pat,
    const char *name)
{
	size_t m = strlen(pat);
	bool *row = req->row, *next = req->next, *t;

	memset(row, 0, m + 1);
	row[0] = true;
	imap_list_closure(pat, m, row);
	for (const char *c = name; *c != '\0'; c++) {
		bool any = false;
		memset(next, 0, m + 1);
		for (size_t j = 0; j < m; j++) {
			if (!row[j])
				continue;
			if (pat[j] == '*' ||
			    (pat[j] == '%' && *c != STORE_MAILBOX_SEP))
				next[j] = any = true;
			else if (pat[j] == *c)
				next[j + 1] = any = true;
		}
		if (!any)
			return false;
		imap_list_closure(pat, m, next);
		t = row;
		row = next;
		next = t;
	}
	return row[m];
}

/* pct: only patterns with "%" count (LSUB's parents, see below). */
static bool
imap_list_match_some(struct imap_list_req *req, const char *name, bool pct)
{
	for (size_t i = 0; i < req->npatterns; i++)
		if ((!pct || strchr(req->patterns[i], '%') != NULL) &&
		    imap_list_match1(req, req->patterns[i], name))
			return true;
	return false;
}

static bool
imap_list_match(struct imap_list_req *req, const char *name)
{
	return imap_list_match_some(req, name, false);
}

/* ---- building the answer ---- */

static const struct store_mailbox_info *
imap_list_find(const struct store_mailbox_set *set, const char *name)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, set->items[mid].name);
		if (c == 0)
			return &set->items[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Does info pass the selection options? */
static bool
imap_list_selected(const struct imap_list_req *req,
    const struct store_mailbox_info *info)
{
	if (req->lsub || req->sel_subscribed)
		return info->subscribed && (!req->sel_special ||
		    (info->exists && info->special_use != NULL));
	if (req->sel_special)
		return info->exists && info->special_use != NULL;
	return info->exists;
}

static struct imap_list_out *
imap_list_add(struct imap_list_out **outs, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*outs)[i].name, name) == 0)
			return &(*outs)[i];
	*outs = xreallocarray(*outs, *n + 1, sizeof(**outs));
	memset(&(*outs)[*n], 0, sizeof(**outs));
	(*outs)[*n].owned = xstrdup(name);
	(*outs)[*n].name = (*outs)[*n].owned;
	return &(*outs)[(*n)++];
}

/*
 * A selected name that does not match may still show through a matching
 * ancestor: RECURSIVEMATCH's CHILDINFO (RFC 5258 §3.5), or LSUB's
 * \Noselect parent for "%" (RFC 3501 §6.3.9).
 */
static void
imap_list_ancestors(struct imap_list_req *req,
    const struct store_mailbox_set *set, const char *name,
    struct imap_list_out **outs, size_t *n)
{
	char a[IMAP_MAILBOX_MAX + 1];

	str_lcpy(a, name, sizeof(a));
	for (char *sep = strrchr(a, STORE_MAILBOX_SEP); sep != NULL;
	    sep = strrchr(a, STORE_MAILBOX_SEP)) {
		*sep = '\0';
		/* RFC 3501 §6.3.9: LSUB's parents show for "%" only */
		if (!imap_list_match_some(req, a, req->lsub))
			continue;
		const struct store_mailbox_info *info = imap_list_find(set, a);
		if (req->lsub && info != NULL && info->subscribed)
			return;		/* listed itself */
		struct imap_list_out *o = imap_list_add(outs, n, a);
		o->info = info;
		o->childinfo = req->sel_recursive;
		return;
	}
}

static int
imap_list_cmp(const void *a, const void *b)
{
	return strcmp(((const struct imap_list_out *)a)->name,
	    ((const struct imap_list_out *)b)->name);
}

static size_t
imap_list_collect(struct imap_list_req *req,
    const struct store_mailbox_set *set, struct imap_list_out **outs)
{
	size_t n = 0;

	for (size_t i = 0; i < set->count; i++) {
		const struct store_mailbox_info *info = &set->items[i];
		if (!imap_list_selected(req, info))
			continue;
		if (imap_list_match(req, info->name)) {
			struct imap_list_out *o = imap_list_add(outs, &n,
			    info->name);
			o->info = info;
		} else if (req->sel_recursive || req->lsub) {
			imap_list_ancestors(req, set, info->name, outs, &n);
		}
	}
	if (n > 0)
		qsort(*outs, n, sizeof(**outs), imap_list_cmp);
	return n;
}

/* "(attributes)" of one line. */
static void
imap_list_attrs(const struct imap_list_req *req,
    const struct imap_list_out *o, struct buf *b)
{
	const struct store_mailbox_info *info = o->info;
	bool exists = info != NULL && info->exists;
	size_t start = b->len;

	buf_addc(b, '(');
	if (req->lsub && (info == NULL || !info->subscribed))
		/* RFC 3501 §6.3.9: a parent shown for its children */
		buf_adds(b, "\\Noselect ");
	else if (!exists)
		buf_adds(b, req->lsub || !req->extended ? "\\Noselect " :
		    "\\NonExistent ");
	else
		buf_adds(b, info->children ? "\\HasChildren " :
		    "\\HasNoChildren ");
	if (info != NULL && info->subscribed && !req->lsub &&
	    (req->ret_subscribed || req->sel_subscribed))
		buf_adds(b, "\\Subscribed ");
	if (exists && info->special_use != NULL)
		buf_printf(b, "%s ", info->special_use);
	if (b->len > start + 1)
		b->len--;		/* the last space */
	b->data[b->len] = '\0';
	buf_addc(b, ')');
}

static void
imap_list_line(struct imap_mjob *j, const struct imap_list_req *req,
    const struct imap_list_out *o)
{
	struct store_status st;
	const char *err = NULL;

	buf_printf(&j->out, "* %s ", req->lsub ? "LSUB" : "LIST");
	imap_list_attrs(req, o, &j->out);
	buf_adds(&j->out, " \"/\" ");
	imap_mbox_quote(&j->out, o->name, j->utf8);
	if (o->childinfo)
		buf_adds(&j->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_adds(&j->out, "\r\n");
	/* RFC 5819 §2: STATUS for selectable mailboxes only; one that
	 * vanished meanwhile is simply left out */
	if (!req->ret_status || o->info == NULL || !o->info->exists ||
	    store_status(j->store, o->name, &st, &err) != 1)
		return;
	buf_adds(&j->out, "* ");
	imap_status_format(&j->out, o->name, j->utf8, &req->status, &st);
	buf_adds(&j->out, "\r\n");
}

static void
imap_work_list(struct imap_mjob *j)
{
	struct imap_list_req *req = j->ctx;
	struct store_mailbox_set set;
	struct imap_list_out *outs = NULL;
	const char *err = NULL;
	size_t n;

	if (req->npatterns == 0) {
		/* RFC 9051 §6.3.9: "" asks for the delimiter */
		buf_printf(&j->out, "* %s (\\Noselect) \"/\" \"\"\r\n",
		    req->lsub ? "LSUB" : "LIST");
		j->ret = 1;
		return;
	}
	if (store_mailboxes(j->store, &set, &err) < 0) {
		imap_mjob_fail(j, err);
		return;
	}
	n = imap_list_collect(req, &set, &outs);
	for (size_t i = 0; i < n; i++) {
		imap_list_line(j, req, &outs[i]);
		free(outs[i].owned);
	}
	free(outs);
	store_mailboxes_free(&set);
	j->ret = 1;
}

/* ---- arguments ---- */

/* reference + pattern in UTF-8, INBOX canonical; NULL on bad input. */
static char *
imap_list_pattern(const struct imap_session *s, const char *ref,
    const struct imap_arg *a)
{
	const char *text = imap_arg_astring(a), *err = NULL;
	struct buf b;

	if (text == NULL)
		return NULL;
	buf_init(&b, IMAP_LIST_PATTERN_MAX);
	buf_adds(&b, ref);
	if (s->utf8 && a->len <= buf_room(&b))
		buf_add(&b, text, a->len);
	else if (s->utf8 || imap_mutf7_decode(text, a->len, &b, &err) < 0) {
		buf_free(&b);
		return NULL;
	}
	if (b.data == NULL || memchr(b.data, '\0', b.len) != NULL) {
		buf_free(&b);
		return b.data == NULL ? xstrdup("") : NULL;
	}
	imap_mbox_canon(b.data);
	return b.data;
}

static int
imap_list_select_opts(struct imap_list_req *req, const struct imap_arg *l)
{
	bool other = false;

	for (const struct imap_arg *a = l->list; a != NULL; a = a->next) {
		if (imap_arg_is_atom(a, "SUBSCRIBED"))
			other = req->sel_subscribed = true;
		else if (imap_arg_is_atom(a, "SPECIAL-USE"))
			other = req->sel_special = true;
		else if (imap_arg_is_atom(a, "RECURSIVEMATCH"))
			req->sel_recursive = true;
		else if (!imap_arg_is_atom(a, "REMOTE"))
			return -1;	/* RFC 5258 §3: unknown is BAD */
	}
	/* RFC 5258 §3: RECURSIVEMATCH needs another selection option */
	return req->sel_recursive && !other ? -1 : 0;
}

static int
imap_list_return_opts(struct imap_session *s, struct imap_list_req *req,
    const struct imap_arg *l)
{
	for (const struct imap_arg *a = l->list; a != NULL; a = a->next) {
		if (imap_arg_is_atom(a, "SUBSCRIBED"))
			req->ret_subscribed = true;
		else if (imap_arg_is_atom(a, "CHILDREN"))
			req->ret_children = true;
		else if (imap_arg_is_atom(a, "SPECIAL-USE"))
			req->ret_special = true;
		else if (imap_arg_is_atom(a, "STATUS") && a->next != NULL &&
		    !req->ret_status && imap_status_parse(a->next, s->rev2,
		    &req->status) == 0) {
			req->ret_status = true;
			a = a->next;
		} else {
			return -1;
		}
	}
	return 0;
}

/* The patterns after the reference: one, or a list (RFC 5258). */
static int
imap_list_patterns(struct imap_session *s, struct imap_list_req *req,
    const struct imap_arg *ref_arg, const struct imap_arg *pats)
{
	char ref[IMAP_MAILBOX_MAX + 1];
	const struct imap_arg *a, *one = pats;
	const char *text = imap_arg_astring(ref_arg), *err = NULL;
	struct buf b;

	if (text == NULL)
		return -1;
	buf_init(&b, IMAP_MAILBOX_MAX);
	if ((s->utf8 && ref_arg->len <= IMAP_MAILBOX_MAX) ||
	    (!s->utf8 && imap_mutf7_decode(text, ref_arg->len, &b,
	    &err) == 0)) {
		if (s->utf8)
			buf_add(&b, text, ref_arg->len);
		str_lcpy(ref, b.data != NULL ? b.data : "", sizeof(ref));
		buf_free(&b);
	} else {
		buf_free(&b);
		return -1;
	}
	if (pats->type == IMAP_ARG_LIST) {
		req->extended = true;
		if (pats->count == 0 || pats->count > IMAP_LIST_PATTERNS_MAX)
			return -1;
		one = pats->list;
	}
	for (a = one; a != NULL; a = pats->type == IMAP_ARG_LIST ? a->next :
	    NULL) {
		char *p = imap_list_pattern(s, ref, a);
		if (p == NULL)
			return -1;
		if (*p == '\0' && pats->type != IMAP_ARG_LIST) {
			free(p);	/* LIST "" "": the delimiter only */
			return 0;
		}
		req->patterns[req->npatterns++] = p;
	}
	return 0;
}

static int
imap_list_parse(struct imap_session *s, const struct imap_command *cmd,
    struct imap_list_req *req)
{
	const struct imap_arg *a = cmd->args;
	size_t m = 0;

	if (a != NULL && a->type == IMAP_ARG_LIST) {
		req->extended = true;
		if (imap_list_select_opts(req, a) < 0)
			return -1;
		a = a->next;
	}
	if (a == NULL || a->next == NULL ||
	    imap_list_patterns(s, req, a, a->next) < 0)
		return -1;
	a = a->next->next;
	if (a != NULL) {
		req->extended = true;
		if (!imap_arg_is_atom(a, "RETURN") || a->next == NULL ||
		    a->next->type != IMAP_ARG_LIST || a->next->next != NULL ||
		    imap_list_return_opts(s, req, a->next) < 0)
			return -1;
	}
	for (size_t i = 0; i < req->npatterns; i++)
		if (strlen(req->patterns[i]) > m)
			m = strlen(req->patterns[i]);
	req->row = xmalloc(m + 1);
	req->next = xmalloc(m + 1);
	return 0;
}

void
imap_cmd_list(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_list_req *req = xmalloc(sizeof(*req));
	struct imap_mjob *j;

	if (imap_list_parse(s, cmd, req) < 0) {
		imap_list_req_free(req);
		imap_tagged(s, cmd->tag, "BAD", "Syntax: LIST [(options)] "
		    "reference pattern [RETURN (options)]");
		return;
	}
	j = imap_mjob_new(s, "LIST", imap_work_list);
	j->ctx = req;
	j->ctx_free = imap_list_req_free;
	imap_mjob_submit(s, j);
}

void
imap_cmd_lsub(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_list_req *req = xmalloc(sizeof(*req));
	struct imap_mjob *j;

	req->lsub = true;
	if (cmd->count != 2 || cmd->args->type == IMAP_ARG_LIST ||
	    cmd->args->next->type == IMAP_ARG_LIST ||
	    imap_list_parse(s, cmd, req) < 0) {
		imap_list_req_free(req);
		imap_tagged(s, cmd->tag, "BAD", "Syntax: LSUB reference "
		    "pattern");
		return;
	}
	j = imap_mjob_new(s, "LSUB", imap_work_list);
	j->ctx = req;
	j->ctx_free = imap_list_req_free;
	imap_mjob_submit(s, j);
}
