/*
 * imap_cmd_thread.c - THREAD and UID THREAD (RFC 5256 §3) with the
 * algorithms ORDEREDSUBJECT and REFERENCES (§3, the latter after Jamie
 * Zawinski's), over the messages SEARCH's program selects.
 *
 * The pool job takes each matching message's base subject, sent date,
 * Message-ID, References and In-Reply-To from its header block, builds
 * the trees in an array of nodes (indexes, no pointers), and formats the
 * answer; every walk over a tree uses an explicit stack, so a deep
 * conversation cannot exhaust the pool thread's stack.
 * XXX: bounds keep one job's memory and time in check at the price of
 * exactness on hostile input: only the last IMAP_THREAD_REFS_MAX
 * references of a message count, ids over IMAP_THREAD_ID_MAX bytes are
 * invalid, past IMAP_THREAD_IDS_BYTES of ids a message keeps only its
 * parent reference, and a link whose loop check climbs past
 * IMAP_THREAD_DEPTH_MAX ancestors is not made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_selected.h"

#define IMAP_THREAD_REFS_MAX 32		/* references kept per message */
#define IMAP_THREAD_ID_MAX 256		/* bytes of one message id */
#define IMAP_THREAD_IDS_BYTES (64 * 1024 * 1024)	/* ids of one job */
#define IMAP_THREAD_DEPTH_MAX 1000	/* ancestors climbed per check */
#define IMAP_TNONE UINT32_MAX

enum imap_thread_algo {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

struct imap_thread_msg {
	uint32_t num;			/* answered: seq or UID */
	uint32_t seq;
	int64_t date;			/* RFC 5256 §2.2 sent date */
	char *subject;			/* base subject, upper-cased */
	bool refwd;			/* a reply or forward */
	char *msgid;			/* NULL: none valid */
	char **refs;			/* parents first, last = parent */
	size_t nrefs;
};

/* A container of §3 REFERENCES; a dummy has msg IMAP_TNONE. */
struct imap_tnode {
	uint32_t msg;
	uint32_t parent, child, next;	/* first child, next sibling */
	const char *id;			/* borrowed from a message */
	int64_t date;			/* for sorting siblings */
	uint32_t seq;
};

struct imap_thread_job {
	struct imap_job base;
	struct imap_search_prog prog;
	enum imap_thread_algo algo;
	bool uid;
	struct imap_thread_msg *msgs;
	size_t n;
	size_t id_bytes;
	struct imap_tnode *nodes;
	size_t nnodes, capnodes;
	uint32_t *hash;			/* id -> node, open addressing */
	size_t hashsize;
	uint32_t *roots;
	size_t nroots;
	struct buf out;			/* "THREAD ..." */
	int ret_code;
};

/* ---- header data (pool) ---- */

/* The next msg-id "<...>" of v from *p (RFC 5322 §3.6.4); xmalloc'd,
 * NULL at the end.  Invalid ones (no "@", white space, too long) are
 * skipped. */
static char *
imap_thread_next_id(const char **p)
{
	const char *s = *p;

	while ((s = strchr(s, '<')) != NULL) {
		const char *e = s + 1 + strcspn(s + 1, "<> \t\r\n");
		size_t len = (size_t)(e - s) + 1;
		if (*e == '>' && len <= IMAP_THREAD_ID_MAX &&
		    memchr(s, '@', len) != NULL && len > 3) {
			*p = e + 1;
			return xstrndup(s, len);
		}
		s = *e == '>' ? e + 1 : e;
	}
	*p = NULL;
	return NULL;
}

static void
imap_thread_add_ref(struct imap_thread_job *tj, struct imap_thread_msg *m,
    char *id)
{
	if (m->nrefs == IMAP_THREAD_REFS_MAX) {
		/* keep the last ones: the parent is the last */
		tj->id_bytes -= strlen(m->refs[0]);
		free(m->refs[0]);
		memmove(m->refs, m->refs + 1, (m->nrefs - 1) *
		    sizeof(*m->refs));
		m->nrefs--;
	}
	if (m->refs == NULL)
		m->refs = xreallocarray(NULL, IMAP_THREAD_REFS_MAX,
		    sizeof(*m->refs));
	m->refs[m->nrefs++] = id;
	tj->id_bytes += strlen(id);
}

/* §3 REFERENCES step 1A: References, else the first In-Reply-To id. */
static void
imap_thread_refs(struct imap_thread_job *tj, struct imap_thread_msg *m,
    const struct buf *hdr, struct buf *v)
{
	const char *p;
	char *id;

	if (imap_header_get(hdr, "Message-ID", v)) {
		p = v->data;
		m->msgid = imap_thread_next_id(&p);
		if (m->msgid != NULL)
			tj->id_bytes += strlen(m->msgid);
	}
	if (imap_header_get(hdr, "References", v))
		for (p = v->data; (id = imap_thread_next_id(&p)) != NULL; )
			imap_thread_add_ref(tj, m, id);
	if (m->nrefs == 0 && imap_header_get(hdr, "In-Reply-To", v)) {
		p = v->data;
		if ((id = imap_thread_next_id(&p)) != NULL)
			imap_thread_add_ref(tj, m, id);
	}
	while (tj->id_bytes > IMAP_THREAD_IDS_BYTES && m->nrefs > 1) {
		tj->id_bytes -= strlen(m->refs[0]);
		free(m->refs[0]);
		memmove(m->refs, m->refs + 1, (m->nrefs - 1) *
		    sizeof(*m->refs));
		m->nrefs--;
	}
}

static void
imap_thread_hit(void *arg, struct imap_search_msg *sm)
{
	struct imap_thread_job *tj = arg;
	struct imap_thread_msg *m = &tj->msgs[tj->n++];
	struct buf v;

	m->num = tj->uid ? sm->row->uid : sm->seq;
	m->seq = sm->seq;
	/* an unreadable file threads as a message without header */
	(void)imap_search_msg_header(sm);
	m->date = imap_sort_sent_date(&sm->hdr, sm->row->internaldate);
	buf_init(&v, 0);
	if (sm->hdr.data != NULL)
		imap_header_get(&sm->hdr, "Subject", &v);
	m->subject = imap_base_subject(v.data != NULL ? v.data : "",
	    &m->refwd);
	if (tj->algo == IMAP_THREAD_REFERENCES && sm->hdr.data != NULL)
		imap_thread_refs(tj, m, &sm->hdr, &v);
	buf_free(&v);
}

/* ---- the tree ---- */

static uint32_t
imap_tnode_new(struct imap_thread_job *tj, uint32_t msg, const char *id)
{
	struct imap_tnode *t;

	xassert(tj->nnodes < tj->capnodes);
	t = &tj->nodes[tj->nnodes];
	t->msg = msg;
	t->parent = t->child = t->next = IMAP_TNONE;
	t->id = id;
	return (uint32_t)tj->nnodes++;
}

static size_t
imap_thread_hashfn(const char *s)
{
	size_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The node of id, made as a dummy when new (§3 step 1A). */
static uint32_t
imap_thread_lookup(struct imap_thread_job *tj, const char *id)
{
	size_t i = imap_thread_hashfn(id) & (tj->hashsize - 1);

	while (tj->hash[i] != IMAP_TNONE) {
		if (strcmp(tj->nodes[tj->hash[i]].id, id) == 0)
			return tj->hash[i];
		i = (i + 1) & (tj->hashsize - 1);
	}
	return tj->hash[i] = imap_tnode_new(tj, IMAP_TNONE, id);
}

/* Would making p the parent of c close a loop (c is p or above it)?
 * Too deep to tell counts as yes. */
static bool
imap_thread_loop(const struct imap_thread_job *tj, uint32_t p, uint32_t c)
{
	for (size_t d = 0; p != IMAP_TNONE; d++) {
		if (p == c || d == IMAP_THREAD_DEPTH_MAX)
			return true;
		p = tj->nodes[p].parent;
	}
	return false;
}

static void
imap_thread_unlink(struct imap_thread_job *tj, uint32_t c)
{
	struct imap_tnode *n = tj->nodes;
	uint32_t p = n[c].parent, *pp;

	if (p == IMAP_TNONE)
		return;
	for (pp = &n[p].child; *pp != c; pp = &n[*pp].next)
		xassert(*pp != IMAP_TNONE);
	*pp = n[c].next;
	n[c].next = IMAP_TNONE;
	n[c].parent = IMAP_TNONE;
}

/* Appends c to p's children (c has no parent). */
static void
imap_thread_link(struct imap_thread_job *tj, uint32_t p, uint32_t c)
{
	struct imap_tnode *n = tj->nodes;
	uint32_t *pp;

	for (pp = &n[p].child; *pp != IMAP_TNONE; pp = &n[*pp].next)
		;
	*pp = c;
	n[c].parent = p;
	n[c].next = IMAP_TNONE;
}

/* §3 REFERENCES step 1 for message i. */
static void
imap_thread_add(struct imap_thread_job *tj, uint32_t i)
{
	struct imap_thread_msg *m = &tj->msgs[i];
	uint32_t prev = IMAP_TNONE, self = IMAP_TNONE;

	/* A: link the references in order, keeping existing links */
	for (size_t k = 0; k < m->nrefs; k++) {
		uint32_t c = imap_thread_lookup(tj, m->refs[k]);
		if (prev != IMAP_TNONE && tj->nodes[c].parent == IMAP_TNONE &&
		    !imap_thread_loop(tj, prev, c))
			imap_thread_link(tj, prev, c);
		prev = c;
	}
	/* B: the message's own node; a duplicate id gets a new one */
	if (m->msgid != NULL) {
		self = imap_thread_lookup(tj, m->msgid);
		if (tj->nodes[self].msg != IMAP_TNONE)
			self = IMAP_TNONE;
	}
	if (self == IMAP_TNONE)
		self = imap_tnode_new(tj, IMAP_TNONE, "");
	tj->nodes[self].msg = i;
	/* C: the last reference is the parent */
	imap_thread_unlink(tj, self);
	if (prev != IMAP_TNONE && !imap_thread_loop(tj, prev, self))
		imap_thread_link(tj, prev, self);
}

/* Every node below the roots, each after all of its descendants. */
static size_t
imap_thread_postorder(const struct imap_thread_job *tj, uint32_t *out)
{
	const struct imap_tnode *n = tj->nodes;
	size_t len = 0, done = 0;

	for (size_t r = 0; r < tj->nroots; r++)
		if (tj->roots[r] != IMAP_TNONE)
			out[len++] = tj->roots[r];
	/* breadth-first: a node comes before its descendants */
	for (; done < len; done++)
		for (uint32_t c = n[out[done]].child; c != IMAP_TNONE;
		    c = n[c].next)
			out[len++] = c;
	for (size_t i = 0; i < len / 2; i++) {
		uint32_t t = out[i];
		out[i] = out[len - 1 - i];
		out[len - 1 - i] = t;
	}
	return len;
}

/* §3 REFERENCES step 4 below node p: dummies go, their children take
 * their place (children already pruned). */
static void
imap_thread_prune_children(struct imap_thread_job *tj, uint32_t p)
{
	struct imap_tnode *n = tj->nodes;
	uint32_t *pp = &n[p].child;

	while (*pp != IMAP_TNONE) {
		uint32_t c = *pp, k, last = IMAP_TNONE;
		if (n[c].msg != IMAP_TNONE) {
			pp = &n[c].next;
			continue;
		}
		for (k = n[c].child; k != IMAP_TNONE; k = n[k].next) {
			n[k].parent = p;
			last = k;
		}
		if (last != IMAP_TNONE) {
			n[last].next = n[c].next;
			*pp = n[c].child;
		} else {
			*pp = n[c].next;
		}
		n[c].child = n[c].next = n[c].parent = IMAP_TNONE;
	}
}

/* Step 4 at the root: an empty dummy goes, a dummy with one child
 * gives way to it, one with more children stays. */
static void
imap_thread_prune(struct imap_thread_job *tj, uint32_t *order)
{
	struct imap_tnode *n = tj->nodes;
	size_t len = imap_thread_postorder(tj, order);

	for (size_t i = 0; i < len; i++)
		imap_thread_prune_children(tj, order[i]);
	for (size_t r = 0; r < tj->nroots; r++) {
		uint32_t t = tj->roots[r];
		if (n[t].msg != IMAP_TNONE)
			continue;
		if (n[t].child == IMAP_TNONE) {
			tj->roots[r] = IMAP_TNONE;
		} else if (n[n[t].child].next == IMAP_TNONE) {
			tj->roots[r] = n[t].child;
			n[n[t].child].parent = IMAP_TNONE;
		}
	}
}

/* The thread subject of root t: its message's, or its first child's
 * for a dummy (§3 REFERENCES step 5A). */
static const struct imap_thread_msg *
imap_thread_root_msg(const struct imap_thread_job *tj, uint32_t t)
{
	const struct imap_tnode *n = tj->nodes;

	if (n[t].msg == IMAP_TNONE)
		t = n[t].child;
	return &tj->msgs[n[t].msg];
}

/* The subject table's slot of subj. */
static uint32_t *
imap_thread_subject_slot(struct imap_thread_job *tj, uint32_t *table,
    size_t size, const char *subj)
{
	size_t i = imap_thread_hashfn(subj) & (size - 1);

	while (table[i] != IMAP_TNONE &&
	    strcmp(imap_thread_root_msg(tj, table[i])->subject, subj) != 0)
		i = (i + 1) & (size - 1);
	return &table[i];
}

/* §3 REFERENCES step 5C for root r merged into the table's *slot. */
static void
imap_thread_merge(struct imap_thread_job *tj, size_t r, uint32_t *slot,
    uint32_t *where)
{
	struct imap_tnode *n = tj->nodes;
	uint32_t t = tj->roots[r], old = *slot, d;

	tj->roots[r] = IMAP_TNONE;
	if (n[t].msg == IMAP_TNONE && n[old].msg == IMAP_TNONE) {
		while (n[t].child != IMAP_TNONE) {
			uint32_t c = n[t].child;
			imap_thread_unlink(tj, c);
			imap_thread_link(tj, old, c);
		}
	} else if (n[old].msg == IMAP_TNONE ||
	    (tj->msgs[n[t].msg].refwd && !tj->msgs[n[old].msg].refwd)) {
		imap_thread_link(tj, old, t);
	} else {
		d = imap_tnode_new(tj, IMAP_TNONE, "");
		imap_thread_link(tj, d, old);
		imap_thread_link(tj, d, t);
		tj->roots[where[old]] = d;
		where[d] = where[old];
		*slot = d;
	}
}

/* §3 REFERENCES step 5: threads of one subject come together. */
static void
imap_thread_by_subject(struct imap_thread_job *tj)
{
	const struct imap_tnode *n = tj->nodes;
	size_t size = 2;
	uint32_t *table, *where, *slot;

	while (size < 2 * tj->nroots)
		size *= 2;
	table = xreallocarray(NULL, size, sizeof(*table));
	memset(table, 0xff, size * sizeof(*table));
	where = xreallocarray(NULL, tj->capnodes, sizeof(*where));
	for (size_t r = 0; r < tj->nroots; r++) {
		uint32_t t = tj->roots[r];
		const struct imap_thread_msg *m;
		if (t == IMAP_TNONE)
			continue;
		where[t] = (uint32_t)r;
		m = imap_thread_root_msg(tj, t);
		if (m->subject[0] == '\0')
			continue;
		slot = imap_thread_subject_slot(tj, table, size, m->subject);
		/* B: a dummy, or a non-reply over a reply, wins the slot */
		if (*slot == IMAP_TNONE || (n[*slot].msg != IMAP_TNONE &&
		    (n[t].msg == IMAP_TNONE || (tj->msgs[n[*slot].msg].refwd &&
		    !m->refwd))))
			*slot = t;
	}
	for (size_t r = 0; r < tj->nroots; r++) {
		uint32_t t = tj->roots[r];
		const struct imap_thread_msg *m;
		if (t == IMAP_TNONE)
			continue;
		m = imap_thread_root_msg(tj, t);
		if (m->subject[0] == '\0')
			continue;
		slot = imap_thread_subject_slot(tj, table, size, m->subject);
		if (*slot != t)
			imap_thread_merge(tj, r, slot, where);
	}
	free(where);
	free(table);
}

static int
imap_tnode_cmp(const void *pa, const void *pb, void *arg)
{
	const struct imap_tnode *n = arg;
	const struct imap_tnode *a = &n[*(const uint32_t *)pa];
	const struct imap_tnode *b = &n[*(const uint32_t *)pb];

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* §3 REFERENCES step 6 (and ORDEREDSUBJECT's thread order): siblings
 * by sent date, then sequence number; a dummy as its first child. */
static void
imap_thread_sort(struct imap_thread_job *tj, uint32_t *order, uint32_t *tmp)
{
	struct imap_tnode *n = tj->nodes;
	size_t len = imap_thread_postorder(tj, order), k;

	for (size_t i = 0; i < len; i++) {
		struct imap_tnode *t = &n[order[i]];
		uint32_t c;
		for (k = 0, c = t->child; c != IMAP_TNONE; c = n[c].next)
			tmp[k++] = c;
		qsort_r(tmp, k, sizeof(*tmp), imap_tnode_cmp, n);
		t->child = k > 0 ? tmp[0] : IMAP_TNONE;
		for (size_t j = 0; j < k; j++)
			n[tmp[j]].next = j + 1 < k ? tmp[j + 1] : IMAP_TNONE;
		if (t->msg != IMAP_TNONE) {
			t->date = tj->msgs[t->msg].date;
			t->seq = tj->msgs[t->msg].seq;
		} else {
			t->date = n[t->child].date;	/* done before t */
			t->seq = n[t->child].seq;
		}
	}
	for (size_t r = k = 0; r < tj->nroots; r++)
		if (tj->roots[r] != IMAP_TNONE)
			tj->roots[k++] = tj->roots[r];
	tj->nroots = k;
	qsort_r(tj->roots, k, sizeof(*tj->roots), imap_tnode_cmp, n);
}

struct imap_tframe {
	uint32_t next;			/* child to write next */
	bool multi;			/* children in parentheses */
};

/* Opens node t: its number, and a frame for its children. */
static void
imap_thread_open(struct imap_thread_job *tj, uint32_t t,
    struct imap_tframe *f)
{
	const struct imap_tnode *n = tj->nodes;

	if (n[t].msg != IMAP_TNONE) {
		buf_printf(&tj->out, "%u", tj->msgs[n[t].msg].num);
		if (n[t].child != IMAP_TNONE)
			buf_addc(&tj->out, ' ');
	}
	f->next = n[t].child;
	f->multi = f->next != IMAP_TNONE && n[f->next].next != IMAP_TNONE;
}

/* thread-list of §4: one child follows its parent, more are nested. */
static void
imap_thread_write(struct imap_thread_job *tj, uint32_t root,
    struct imap_tframe *stack)
{
	size_t sp = 1;

	buf_addc(&tj->out, '(');
	imap_thread_open(tj, root, &stack[0]);
	while (sp > 0) {
		struct imap_tframe *f = &stack[sp - 1];
		uint32_t c = f->next;
		if (c == IMAP_TNONE) {
			if (--sp > 0 && stack[sp - 1].multi)
				buf_addc(&tj->out, ')');
			continue;
		}
		f->next = tj->nodes[c].next;
		if (f->multi)
			buf_addc(&tj->out, '(');
		imap_thread_open(tj, c, &stack[sp++]);
	}
	buf_addc(&tj->out, ')');
}

static int
imap_thread_subject_cmp(const void *pa, const void *pb, void *arg)
{
	const struct imap_thread_msg *m = arg;
	const struct imap_thread_msg *a = &m[*(const uint32_t *)pa];
	const struct imap_thread_msg *b = &m[*(const uint32_t *)pb];
	int c = strcmp(a->subject, b->subject);

	if (c != 0)
		return c;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* §3 ORDEREDSUBJECT: by base subject, then sent date; each subject's
 * first message is the parent of the others. */
static void
imap_thread_orderedsubject(struct imap_thread_job *tj, uint32_t *tmp)
{
	uint32_t root = IMAP_TNONE;

	for (uint32_t i = 0; i < tj->n; i++)
		tmp[i] = i;
	qsort_r(tmp, tj->n, sizeof(*tmp), imap_thread_subject_cmp, tj->msgs);
	for (size_t i = 0; i < tj->n; i++) {
		uint32_t t = imap_tnode_new(tj, tmp[i], "");
		if (i > 0 && strcmp(tj->msgs[tmp[i]].subject,
		    tj->msgs[tmp[i - 1]].subject) == 0) {
			imap_thread_link(tj, root, t);
		} else {
			root = t;
			tj->roots[tj->nroots++] = t;
		}
	}
}

static void
imap_thread_references(struct imap_thread_job *tj, uint32_t *order)
{
	size_t ids = 0;

	for (size_t i = 0; i < tj->n; i++)
		ids += tj->msgs[i].nrefs + 1;
	tj->hashsize = 2;
	while (tj->hashsize < 2 * ids)
		tj->hashsize *= 2;
	tj->hash = xreallocarray(NULL, tj->hashsize, sizeof(*tj->hash));
	memset(tj->hash, 0xff, tj->hashsize * sizeof(*tj->hash));
	for (uint32_t i = 0; i < tj->n; i++)
		imap_thread_add(tj, i);
	/* steps 2 and 3: the root set; the id table is done */
	free(tj->hash);
	tj->hash = NULL;
	for (size_t i = 0; i < tj->nnodes; i++)
		if (tj->nodes[i].parent == IMAP_TNONE)
			tj->roots[tj->nroots++] = (uint32_t)i;
	imap_thread_prune(tj, order);
	imap_thread_by_subject(tj);
}

/* ---- the job ---- */

static void
imap_thread_build(struct imap_thread_job *tj)
{
	size_t refs = 0;
	uint32_t *order, *tmp;
	struct imap_tframe *stack;

	for (size_t i = 0; i < tj->n; i++)
		refs += tj->msgs[i].nrefs;
	/* messages, referenced ids, step 5 dummies */
	tj->capnodes = 2 * tj->n + refs + 1;
	tj->nodes = xreallocarray(NULL, tj->capnodes, sizeof(*tj->nodes));
	tj->roots = xreallocarray(NULL, tj->capnodes, sizeof(*tj->roots));
	order = xreallocarray(NULL, tj->capnodes, sizeof(*order));
	tmp = xreallocarray(NULL, tj->capnodes, sizeof(*tmp));
	if (tj->algo == IMAP_THREAD_ORDEREDSUBJECT)
		imap_thread_orderedsubject(tj, tmp);
	else
		imap_thread_references(tj, order);
	imap_thread_sort(tj, order, tmp);
	stack = xreallocarray(NULL, tj->capnodes, sizeof(*stack));
	buf_adds(&tj->out, "THREAD");
	if (tj->nroots > 0)
		buf_addc(&tj->out, ' ');
	for (size_t r = 0; r < tj->nroots; r++)
		imap_thread_write(tj, tj->roots[r], stack);
	free(stack);
	free(tmp);
	free(order);
}

static void
imap_thread_work(struct imap_job *j)
{
	struct imap_thread_job *tj = (struct imap_thread_job *)j;
	const char *err = NULL;

	tj->msgs = xreallocarray(NULL, tj->prog.n + 1, sizeof(*tj->msgs));
	memset(tj->msgs, 0, (tj->prog.n + 1) * sizeof(*tj->msgs));
	tj->ret_code = imap_search_prog_run(&tj->prog, j->store, j->mailbox,
	    imap_thread_hit, tj, &err);
	if (tj->ret_code < 0)
		str_lcpy(j->error, err ? err : "?", sizeof(j->error));
	else if (tj->ret_code == 1)
		imap_thread_build(tj);
}

static void
imap_thread_free(struct imap_job *j)
{
	struct imap_thread_job *tj = (struct imap_thread_job *)j;

	imap_search_prog_free(&tj->prog);
	for (size_t i = 0; i < tj->n; i++) {
		struct imap_thread_msg *m = &tj->msgs[i];
		for (size_t k = 0; k < m->nrefs; k++)
			free(m->refs[k]);
		free(m->refs);
		free(m->msgid);
		free(m->subject);
	}
	free(tj->msgs);
	free(tj->nodes);
	free(tj->roots);
	free(tj->hash);
	buf_free(&tj->out);
	free(tj);
}

static void
imap_thread_done(struct imap_session *s, struct imap_job *j)
{
	struct imap_thread_job *tj = (struct imap_thread_job *)j;

	if (tj->ret_code <= 0) {
		log_warnx("%s imap thread: %s", s->sid, j->error);
		imap_job_end(s, j, false, "NO", "[UNAVAILABLE] THREAD failed");
		return;
	}
	imap_untagged(s, "%s", tj->out.data);
	imap_job_end(s, j, false, "OK", "%sTHREAD completed",
	    tj->uid ? "UID " : "");
}

/* THREAD algorithm charset search-keys (RFC 5256 §5) */
void
imap_cmd_thread(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct imap_thread_job *tj = xmalloc(sizeof(*tj));
	const struct imap_arg *a = cmd->args;
	const char *status = "BAD", *err = "Syntax: THREAD algorithm charset "
	    "search-keys", *cs;

	tj->uid = uid;
	buf_init(&tj->out, 0);
	if (imap_arg_is_atom(a, "REFERENCES"))
		tj->algo = IMAP_THREAD_REFERENCES;
	else if (imap_arg_is_atom(a, "ORDEREDSUBJECT"))
		tj->algo = IMAP_THREAD_ORDEREDSUBJECT;
	else
		a = NULL;
	if (a == NULL || a->next == NULL ||
	    (cs = imap_arg_astring(a->next)) == NULL ||
	    imap_search_prog_parse(s, cs, a->next->next, &tj->prog, &status,
	    &err) < 0) {
		imap_thread_free(&tj->base);
		imap_tagged(s, cmd->tag, status, "%s", err);
		return;
	}
	imap_job_init(s, &tj->base, imap_thread_work, imap_thread_done,
	    imap_thread_free);
	imap_job_start(s, &tj->base);
}
