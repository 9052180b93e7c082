/*
 * imap_parse.c - the incremental IMAP command reader.  Bytes are gathered
 * into one line (up to LF), the line is tokenized whole into an argument
 * tree, and a literal header at its end hands control to the session.
 * Lists may span lines only across literals (RFC 9051 §4.3).  After any
 * error the rest of the command is drained - a line ending in a
 * non-synchronizing literal header is followed by that many bytes, which
 * are skipped too - so the next command starts at a true line start.
 * Strings live NUL-terminated in one capped buffer, nodes by index; the
 * public pointer view is built on demand.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_parse.h"

#define IMAP_NONE UINT32_MAX
#define IMAP_NO_OFF SIZE_MAX
/* Tags, names, one token per argument, each NUL-terminated. */
#define IMAP_TEXT_MAX \
	(IMAP_LINE_MAX + IMAP_LITERAL_BUF_MAX + IMAP_ARGS_MAX + 2)
/* Digits of a literal size: number64 (RFC 9051 §9) has 19; one more lets
 * "too big" be told from "not a literal".  Both the tokenizer and the
 * drain use this, so they agree on what a literal header is. */
#define IMAP_LITERAL_DIGITS_MAX 20
/* Last bytes of a drained line kept to find a literal header: "~{",
 * the digits, "+}", CR. */
#define IMAP_TAIL_MAX 32
/* Buffers grown past this are freed when the next command starts. */
#define IMAP_KEEP_BYTES 4096
#define IMAP_KEEP_NODES 64

enum imap_pstate {
	IMAP_PS_LINE,		/* gathering a line of command text */
	IMAP_PS_LIT_WAIT,	/* literal announced, session to decide */
	IMAP_PS_LIT_DATA,	/* reading accepted literal bytes */
	IMAP_PS_SKIP_LINE,	/* draining to LF after an error */
	IMAP_PS_SKIP_LIT,	/* draining a non-synchronizing literal */
	IMAP_PS_REPORT,		/* error to report on the next feed */
	IMAP_PS_DONE,		/* event reported; next feed starts anew */
	IMAP_PS_DEAD,		/* fatal error: nothing more is read */
};

enum imap_stage {
	IMAP_STAGE_TAG,
	IMAP_STAGE_NAME,
	IMAP_STAGE_ARGS,
};

/* Outcome of tokenizing one line. */
enum imap_tok {
	IMAP_TOK_DONE,
	IMAP_TOK_LITERAL,
	IMAP_TOK_ERROR,
};

struct imap_node {
	enum imap_arg_type type;
	unsigned flags;
	size_t off;		/* into text, IMAP_NO_OFF for none */
	size_t len;
	uint32_t first, last, next, count;
};

struct imap_parser {
	enum imap_pstate state;
	enum imap_stage stage;
	enum imap_err err;
	bool fatal;
	bool sep_needed;	/* after a token: SP, ")" or end of line */
	bool list_opened;	/* right after "(": ")" closes it empty */
	struct buf line;	/* the current line, LF included */
	size_t line_total;	/* command text of earlier lines */
	struct buf text;	/* NUL-terminated strings */
	size_t tag_off, name_off;
	struct imap_node *nodes;
	size_t nnodes, nodes_cap;
	uint32_t top_first, top_last, top_count;
	uint32_t stack[IMAP_DEPTH_MAX];
	size_t depth;
	struct imap_literal lit;
	enum imap_lit_mode lit_mode;
	uint64_t lit_left;
	size_t lit_buffered;
	uint32_t lit_node;
	uint64_t skipped;	/* drained bytes counted against the cap */
	char tail[IMAP_TAIL_MAX];
	size_t tail_len;
	const char *chunk;
	size_t chunk_len;
	struct imap_arg *args;
	size_t args_cap;
	struct imap_command cmd;
};

static const char *const imap_err_texts[] = {
	[IMAP_ERR_NONE] = "No error",
	[IMAP_ERR_EMPTY] = "Empty command line",
	[IMAP_ERR_TAG] = "Invalid tag",
	[IMAP_ERR_NAME] = "Missing or invalid command name",
	[IMAP_ERR_SYNTAX] = "Syntax error in arguments",
	[IMAP_ERR_ATOM] = "Invalid character in atom",
	[IMAP_ERR_8BIT] = "Invalid 8-bit data",
	[IMAP_ERR_CTL] = "Control character or NUL in command",
	[IMAP_ERR_NEWLINE] = "Lines must end in CRLF",
	[IMAP_ERR_QUOTED] = "Invalid quoted string",
	[IMAP_ERR_SECTION] = "Invalid section specification",
	[IMAP_ERR_LITERAL] = "Invalid literal",
	[IMAP_ERR_LITERAL_NUL] = "NUL in literal (use literal8)",
	[IMAP_ERR_LITERAL_TOO_BIG] = "Literal too big",
	[IMAP_ERR_LINE_TOO_LONG] = "Command line too long",
	[IMAP_ERR_TOO_MANY_ARGS] = "Too many arguments",
	[IMAP_ERR_TOO_DEEP] = "Lists nested too deeply",
	[IMAP_ERR_UNBALANCED] = "Unbalanced parentheses",
	[IMAP_ERR_SKIP_TOO_BIG] = "Too much invalid data, closing",
};

const char *
imap_err_text(enum imap_err err)
{
	if ((size_t)err >= MF_ARRAY_LEN(imap_err_texts) ||
	    imap_err_texts[err] == NULL)
		return "Error";
	return imap_err_texts[err];
}

/* ---- character classes (RFC 9051 §9) ---- */

/* ATOM-CHAR plus list-wildcards and resp-specials: the tokenizer does not
 * know whether an atom, astring or list-mailbox is due; "\" is allowed
 * only first (flag). */
static bool
imap_is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"' && c != '\\';
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool
imap_is_tag_char(unsigned char c)
{
	return imap_is_atom_char(c) && c != '+' && c != '%' && c != '*';
}

/* Error for a byte that may not appear where it stands. */
static enum imap_err
imap_bad_char(unsigned char c, enum imap_err dflt)
{
	if (c == '\r' || c == '\n')
		return IMAP_ERR_NEWLINE;
	if (c < 0x20 || c == 0x7f)
		return IMAP_ERR_CTL;
	if (c >= 0x80)
		return IMAP_ERR_8BIT;
	return dflt;
}

size_t
imap_utf8_len(const void *ptr, size_t len)
{
	const unsigned char *p = ptr;
	unsigned char c = len > 0 ? p[0] : 0, lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;	/* overlong */
	else if (c == 0xed)
		hi = 0x9f;	/* surrogates */
	else if (c == 0xf0)
		lo = 0x90;	/* overlong */
	else if (c == 0xf4)
		hi = 0x8f;	/* over U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* ---- parser object ---- */

static void
imap_parser_clear(struct imap_parser *p)
{
	if (p->text.cap > IMAP_KEEP_BYTES) {
		buf_free(&p->text);
		buf_init(&p->text, IMAP_TEXT_MAX);
	}
	if (p->line.cap > IMAP_KEEP_BYTES) {
		buf_free(&p->line);
		buf_init(&p->line, IMAP_LINE_MAX);
	}
	if (p->nodes_cap > IMAP_KEEP_NODES) {
		x_free(&p->nodes);
		p->nodes_cap = 0;
	}
	if (p->args_cap > IMAP_KEEP_NODES) {
		x_free(&p->args);
		p->args_cap = 0;
	}
	buf_reset(&p->text);
	buf_reset(&p->line);
	p->state = IMAP_PS_LINE;
	p->stage = IMAP_STAGE_TAG;
	p->err = IMAP_ERR_NONE;
	p->sep_needed = p->list_opened = false;
	p->line_total = 0;
	p->tag_off = p->name_off = IMAP_NO_OFF;
	p->nnodes = 0;
	p->top_first = p->top_last = IMAP_NONE;
	p->top_count = 0;
	p->depth = 0;
	p->lit_left = 0;
	p->lit_buffered = 0;
	p->skipped = 0;
	p->tail_len = 0;
	p->chunk = NULL;
	p->chunk_len = 0;
}

struct imap_parser *
imap_parser_new(void)
{
	struct imap_parser *p = xmalloc(sizeof(*p));

	buf_init(&p->text, IMAP_TEXT_MAX);
	buf_init(&p->line, IMAP_LINE_MAX);
	imap_parser_clear(p);
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	buf_free(&p->text);
	buf_free(&p->line);
	x_free(&p->nodes);
	x_free(&p->args);
	x_free(pp);
}

/* Stores len bytes and a NUL in text; returns the offset. */
static size_t
imap_text_add(struct imap_parser *p, const char *s, size_t len)
{
	size_t off = p->text.len;

	buf_add(&p->text, s, len);
	buf_addc(&p->text, '\0');
	return off;
}

/* Appends a node under the open list (or at top level); IMAP_NONE when
 * IMAP_ARGS_MAX is reached. */
static uint32_t
imap_node_add(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_node *n;
	uint32_t idx, *first, *last, *count;

	if (p->nnodes >= IMAP_ARGS_MAX)
		return IMAP_NONE;
	if (p->nnodes == p->nodes_cap) {
		p->nodes_cap = p->nodes_cap == 0 ? 16 : p->nodes_cap * 2;
		p->nodes = xreallocarray(p->nodes, p->nodes_cap,
		    sizeof(*p->nodes));
	}
	idx = (uint32_t)p->nnodes++;
	n = &p->nodes[idx];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->off = IMAP_NO_OFF;
	n->first = n->last = n->next = IMAP_NONE;
	if (p->depth > 0) {
		struct imap_node *parent = &p->nodes[p->stack[p->depth - 1]];

		first = &parent->first;
		last = &parent->last;
		count = &parent->count;
	} else {
		first = &p->top_first;
		last = &p->top_last;
		count = &p->top_count;
	}
	if (*last == IMAP_NONE)
		*first = idx;
	else
		p->nodes[*last].next = idx;
	*last = idx;
	(*count)++;
	return idx;
}

/* ---- tokenizer of one line (RFC 9051 §9 command, §4 data formats) ---- */

/* Length of a valid tag at the start of s followed by SP or the end, 0
 * for none. */
static size_t
imap_tag_len(const char *s, size_t n)
{
	size_t j = 0;

	while (j < n && imap_is_tag_char((unsigned char)s[j]))
		j++;
	if (j == 0 || j > IMAP_TAG_MAX || (j < n && s[j] != ' '))
		return 0;
	return j;
}

static enum imap_tok
imap_fail(struct imap_parser *p, enum imap_err err)
{
	if (p->err == IMAP_ERR_NONE)
		p->err = err;
	return IMAP_TOK_ERROR;
}

/* tag SP command-name: sets *i past the SP after the name. */
static enum imap_tok
imap_tok_head(struct imap_parser *p, const char *s, size_t n, size_t *i)
{
	size_t j, tag = imap_tag_len(s, n);
	char name[IMAP_NAME_MAX];

	if (n == 0)
		return imap_fail(p, IMAP_ERR_EMPTY);
	if (tag == 0)
		return imap_fail(p, imap_bad_char((unsigned char)s[0],
		    IMAP_ERR_TAG));
	p->tag_off = imap_text_add(p, s, tag);
	if (tag == n)
		return imap_fail(p, IMAP_ERR_NAME);
	for (j = tag + 1; j < n && imap_is_atom_char((unsigned char)s[j]);
	    j++)
		;
	if (j == tag + 1 || j - tag - 1 > IMAP_NAME_MAX)
		return imap_fail(p, j < n ? imap_bad_char((unsigned char)s[j],
		    IMAP_ERR_NAME) : IMAP_ERR_NAME);
	if (j < n && s[j] != ' ')
		return imap_fail(p, imap_bad_char((unsigned char)s[j],
		    IMAP_ERR_NAME));
	for (size_t k = tag + 1; k < j; k++) {
		char c = s[k];

		name[k - tag - 1] = c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
	}
	p->name_off = imap_text_add(p, name, j - tag - 1);
	p->stage = IMAP_STAGE_ARGS;
	*i = j < n ? j + 1 : j;
	p->sep_needed = j == n;
	return IMAP_TOK_DONE;
}

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE: only \" and \\ escape; UTF-8
 * (RFC 9051 §9 QUOTED-CHAR includes UTF8-2/3/4). */
static enum imap_tok
imap_tok_quoted(struct imap_parser *p, const char *s, size_t n, size_t *i)
{
	size_t j = *i + 1, off = p->text.len, u;
	uint32_t idx;

	while (j < n && s[j] != '"') {
		unsigned char c = (unsigned char)s[j];

		if (c == '\\') {
			if (j + 1 >= n || (s[j + 1] != '"' && s[j + 1] != '\\'))
				return imap_fail(p, IMAP_ERR_QUOTED);
			buf_addc(&p->text, s[j + 1]);
			j += 2;
		} else if (c == '\0' || c == '\r' || c == '\n') {
			return imap_fail(p, imap_bad_char(c, IMAP_ERR_QUOTED));
		} else if (c >= 0x80) {
			if ((u = imap_utf8_len(s + j, n - j)) == 0)
				return imap_fail(p, IMAP_ERR_8BIT);
			buf_add(&p->text, s + j, u);
			j += u;
		} else {
			buf_addc(&p->text, (char)c);
			j++;
		}
	}
	if (j >= n)
		return imap_fail(p, IMAP_ERR_QUOTED);
	if ((idx = imap_node_add(p, IMAP_ARG_QUOTED)) == IMAP_NONE)
		return imap_fail(p, IMAP_ERR_TOO_MANY_ARGS);
	buf_addc(&p->text, '\0');
	p->nodes[idx].off = off;
	p->nodes[idx].len = p->text.len - off - 1;
	*i = j + 1;
	return IMAP_TOK_DONE;
}

/* The fetch-att names whose "[" opens a section (see imap_parse.h). */
static bool
imap_is_section_name(const char *s, size_t len)
{
	static const char *const names[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(names); i++)
		if (strlen(names[i]) == len &&
		    strncasecmp(s, names[i], len) == 0)
			return true;
	return false;
}

/* "[...]" of a section at s[*j]: one level of parentheses, quoted
 * strings, spaces; no literal, no "[" (RFC 9051 §9 section). */
static enum imap_tok
imap_tok_section(struct imap_parser *p, const char *s, size_t n, size_t *j)
{
	size_t k = *j + 1;
	unsigned paren = 0;

	for (; k < n; k++) {
		unsigned char c = (unsigned char)s[k];

		if (c == ']' && paren == 0)
			break;
		if (c == '(' && paren++ > 0)
			return imap_fail(p, IMAP_ERR_SECTION);
		if (c == ')' && paren-- == 0)
			return imap_fail(p, IMAP_ERR_SECTION);
		if (c == '"') {
			for (k++; k < n && s[k] != '"'; k++) {
				if (s[k] == '\\')
					k++;
				else if (s[k] == '\0' || s[k] == '\r')
					break;
			}
			if (k >= n || s[k] != '"')
				return imap_fail(p, IMAP_ERR_SECTION);
		} else if (c != ' ' && c != '(' && c != ')' &&
		    (!imap_is_atom_char(c) || c == '[')) {
			return imap_fail(p, imap_bad_char(c,
			    IMAP_ERR_SECTION));
		}
	}
	if (k >= n)
		return imap_fail(p, IMAP_ERR_SECTION);
	*j = k + 1;
	return IMAP_TOK_DONE;
}

/* An atom (NIL too), "\"-flag, or section atom; ends at SP, ")" or EOL. */
static enum imap_tok
imap_tok_atom(struct imap_parser *p, const char *s, size_t n, size_t *i)
{
	size_t j = *i, start = *i;
	unsigned flags = 0;
	uint32_t idx;

	if (s[j] == '\\')
		j++;
	while (j < n && imap_is_atom_char((unsigned char)s[j])) {
		if (s[j] == '[' && flags == 0 &&
		    imap_is_section_name(s + start, j - start)) {
			if (imap_tok_section(p, s, n, &j) != IMAP_TOK_DONE)
				return IMAP_TOK_ERROR;
			flags = IMAP_ARG_F_SECTION;
			continue;
		}
		j++;
	}
	if (j == start || (j == start + 1 && s[start] == '\\'))
		return imap_fail(p, imap_bad_char((unsigned char)s[j < n ? j :
		    start], j < n && s[j] == '\\' ? IMAP_ERR_ATOM :
		    IMAP_ERR_SYNTAX));
	if (j < n && s[j] != ' ' && s[j] != ')')
		return imap_fail(p, imap_bad_char((unsigned char)s[j],
		    IMAP_ERR_ATOM));
	idx = imap_node_add(p, j - start == 3 &&
	    strncasecmp(s + start, "NIL", 3) == 0 ? IMAP_ARG_NIL :
	    IMAP_ARG_ATOM);
	if (idx == IMAP_NONE)
		return imap_fail(p, IMAP_ERR_TOO_MANY_ARGS);
	p->nodes[idx].flags = flags;
	p->nodes[idx].off = imap_text_add(p, s + start, j - start);
	p->nodes[idx].len = j - start;
	*i = j;
	return IMAP_TOK_DONE;
}

/*
 * Parses "{n}", "{n+}", "~{n}" or "~{n+}" as s[0..n); *end_r is where it
 * stops.  Returns 1, 0 when there is none, -1 when the number is over
 * IMAP_NUMBER64_MAX (RFC 9051 §9 literal, literal8; RFC 7888 §3).
 */
static int
imap_literal_header(const char *s, size_t n, struct imap_literal *lit_r,
		    size_t *end_r)
{
	size_t k = 0, digits;
	uint64_t v = 0;
	bool over = false;

	memset(lit_r, 0, sizeof(*lit_r));
	if (k < n && s[k] == '~') {
		lit_r->binary = true;
		k++;
	}
	if (k >= n || s[k] != '{')
		return 0;
	for (digits = 0, k++; k < n && s[k] >= '0' && s[k] <= '9'; k++) {
		unsigned d = (unsigned)(s[k] - '0');

		digits++;
		if (v > (IMAP_NUMBER64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	lit_r->sync = true;
	if (k < n && s[k] == '+') {
		lit_r->sync = false;
		k++;
	}
	if (digits == 0 || digits > IMAP_LITERAL_DIGITS_MAX || k >= n ||
	    s[k] != '}')
		return 0;
	lit_r->size = v;
	*end_r = k + 1;
	return over ? -1 : 1;
}

static enum imap_tok
imap_tok_literal(struct imap_parser *p, const char *s, size_t n, size_t *i)
{
	size_t end;
	int ret = imap_literal_header(s + *i, n - *i, &p->lit, &end);

	/* RFC 9051 §4.3: the header ends the line (CRLF follows). */
	if (ret == 0 || *i + end != n)
		return imap_fail(p, IMAP_ERR_LITERAL);
	if (ret < 0)
		return imap_fail(p, IMAP_ERR_LITERAL_TOO_BIG);
	if (p->nnodes >= IMAP_ARGS_MAX)
		return imap_fail(p, IMAP_ERR_TOO_MANY_ARGS);
	p->lit.room = IMAP_LITERAL_BUF_MAX - p->lit_buffered;
	*i = n;
	return IMAP_TOK_LITERAL;
}

static enum imap_tok
imap_tok_open(struct imap_parser *p)
{
	uint32_t idx;

	if (p->depth >= IMAP_DEPTH_MAX)
		return imap_fail(p, IMAP_ERR_TOO_DEEP);
	if ((idx = imap_node_add(p, IMAP_ARG_LIST)) == IMAP_NONE)
		return imap_fail(p, IMAP_ERR_TOO_MANY_ARGS);
	p->stack[p->depth++] = idx;
	p->list_opened = true;
	return IMAP_TOK_DONE;
}

/* One token at s[*i], no separator expected. */
static enum imap_tok
imap_tok_one(struct imap_parser *p, const char *s, size_t n, size_t *i)
{
	char c = s[*i];
	enum imap_tok t;

	if (c == '(') {
		(*i)++;
		return imap_tok_open(p);
	}
	p->list_opened = false;
	if (c == '"')
		t = imap_tok_quoted(p, s, n, i);
	else if (c == '{' || (c == '~' && *i + 1 < n && s[*i + 1] == '{'))
		return imap_tok_literal(p, s, n, i);
	else
		t = imap_tok_atom(p, s, n, i);
	p->sep_needed = true;
	return t;
}

/* Tokenizes s[0..n), a line without its CRLF. */
static enum imap_tok
imap_tokenize(struct imap_parser *p, const char *s, size_t n)
{
	size_t i = 0;
	enum imap_tok t;

	if (p->stage == IMAP_STAGE_TAG &&
	    (t = imap_tok_head(p, s, n, &i)) != IMAP_TOK_DONE)
		return t;
	while (i < n) {
		if (p->list_opened && s[i] == ')') {
			/* "()" is an empty list; the close below handles it. */
			p->sep_needed = true;
		}
		if (!p->sep_needed) {
			if ((t = imap_tok_one(p, s, n, &i)) != IMAP_TOK_DONE)
				return t;
		} else if (s[i] == ' ') {
			p->sep_needed = false;
			p->list_opened = false;
			if (++i == n)
				return imap_fail(p, IMAP_ERR_SYNTAX);
		} else if (s[i] == ')') {
			if (p->depth == 0)
				return imap_fail(p, IMAP_ERR_UNBALANCED);
			p->depth--;
			p->list_opened = false;
			i++;
		} else {
			return imap_fail(p, imap_bad_char((unsigned char)s[i],
			    IMAP_ERR_SYNTAX));
		}
	}
	if (p->depth > 0)
		return imap_fail(p, IMAP_ERR_UNBALANCED);
	if (!p->sep_needed)
		return imap_fail(p, IMAP_ERR_SYNTAX);
	return IMAP_TOK_DONE;
}

/* ---- draining after errors ---- */

/* Counts n drained bytes; false (now fatal) past IMAP_SKIP_MAX. */
static bool
imap_skip_count(struct imap_parser *p, uint64_t n)
{
	if (n > IMAP_SKIP_MAX - p->skipped) {
		p->err = IMAP_ERR_SKIP_TOO_BIG;
		p->fatal = true;
		p->state = IMAP_PS_DEAD;
		return false;
	}
	p->skipped += n;
	return true;
}

/*
 * The error's line (without LF; a CR at its end is ignored) has been read
 * whole.  A non-synchronizing literal header at its end (RFC 7888 §3)
 * means data follows that must be drained; anything else ends the
 * command: a client that sent "{n}" waits for "+" and gets our BAD.
 */
static void
imap_after_error_line(struct imap_parser *p, const char *s, size_t n)
{
	struct imap_literal lit;
	size_t start, end;
	int ret;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	start = n;
	while (start > 0 && n - start < IMAP_TAIL_MAX - 1 &&
	    s[start - 1] != '{')
		start--;
	if (start > 0 && s[start - 1] == '{')
		start--;
	if (start > 0 && s[start - 1] == '~')
		start--;
	ret = imap_literal_header(s + start, n - start, &lit, &end);
	p->state = IMAP_PS_REPORT;
	if (ret == 0 || start + end != n || lit.sync)
		return;
	if (ret < 0 || !imap_skip_count(p, lit.size)) {
		p->err = IMAP_ERR_SKIP_TOO_BIG;
		p->fatal = true;
		p->state = IMAP_PS_DEAD;
		return;
	}
	p->lit_left = lit.size;
	p->state = IMAP_PS_SKIP_LIT;
}

/* SKIP_LINE: drains to LF, keeping the line's tail. */
static size_t
imap_skip_line(struct imap_parser *p, const char *d, size_t len)
{
	const char *lf = memchr(d, '\n', len);
	size_t take = lf != NULL ? (size_t)(lf - d) + 1 : len;
	size_t keep = take - (lf != NULL);

	if (!imap_skip_count(p, take))
		return 0;
	if (keep >= IMAP_TAIL_MAX) {
		memcpy(p->tail, d + keep - IMAP_TAIL_MAX, IMAP_TAIL_MAX);
		p->tail_len = IMAP_TAIL_MAX;
	} else {
		if (p->tail_len + keep > IMAP_TAIL_MAX) {
			size_t drop = p->tail_len + keep - IMAP_TAIL_MAX;

			memmove(p->tail, p->tail + drop, p->tail_len - drop);
			p->tail_len -= drop;
		}
		memcpy(p->tail + p->tail_len, d, keep);
		p->tail_len += keep;
	}
	if (lf != NULL) {
		imap_after_error_line(p, p->tail, p->tail_len);
		p->tail_len = 0;
	}
	return take;
}

/* ---- the byte pump ---- */

/* A complete line is in p->line. */
static enum imap_parse_res
imap_line_done(struct imap_parser *p)
{
	const char *s = p->line.data;
	size_t n = p->line.len - 1;	/* LF off */
	enum imap_tok t;

	p->line_total += p->line.len;
	/* RFC 9051 §4: lines end in CRLF; a bare LF is refused. */
	if (n == 0 || s[n - 1] != '\r') {
		size_t tag = imap_tag_len(s, n);

		if (p->stage == IMAP_STAGE_TAG && tag > 0 && tag < n)
			p->tag_off = imap_text_add(p, s, tag);
		imap_fail(p, IMAP_ERR_NEWLINE);
		t = IMAP_TOK_ERROR;
	} else {
		t = imap_tokenize(p, s, n - 1);
	}
	if (t == IMAP_TOK_ERROR)
		imap_after_error_line(p, s, n);
	buf_reset(&p->line);
	if (t == IMAP_TOK_LITERAL) {
		p->state = IMAP_PS_LIT_WAIT;
		return IMAP_PARSE_LITERAL;
	}
	if (t == IMAP_TOK_DONE) {
		p->state = IMAP_PS_DONE;
		return IMAP_PARSE_COMMAND;
	}
	return IMAP_PARSE_NEED_MORE;	/* the caller's loop reports it */
}

/* LINE: gathers up to LF within IMAP_LINE_MAX. */
static enum imap_parse_res
imap_feed_line(struct imap_parser *p, const char *d, size_t len,
	       size_t *used)
{
	const char *lf = memchr(d, '\n', len);
	size_t take = lf != NULL ? (size_t)(lf - d) + 1 : len;
	size_t room = IMAP_LINE_MAX - p->line_total - p->line.len;
	size_t tag;

	if (take <= room) {
		buf_add(&p->line, d, take);
		*used = take;
		return lf != NULL ? imap_line_done(p) : IMAP_PARSE_NEED_MORE;
	}
	/* Too long: keep the tag for a tagged BAD, drain the rest. */
	buf_add(&p->line, d, room);
	*used = room;
	if (p->stage == IMAP_STAGE_TAG &&
	    (tag = imap_tag_len(p->line.data, p->line.len)) > 0 &&
	    tag < p->line.len)
		p->tag_off = imap_text_add(p, p->line.data, tag);
	p->err = IMAP_ERR_LINE_TOO_LONG;
	p->state = IMAP_PS_SKIP_LINE;
	p->tail_len = p->line.len < IMAP_TAIL_MAX ? p->line.len :
	    IMAP_TAIL_MAX;
	if (p->tail_len > 0)
		memcpy(p->tail, p->line.data + p->line.len - p->tail_len,
		    p->tail_len);
	buf_reset(&p->line);
	return IMAP_PARSE_NEED_MORE;
}

/* LIT_DATA: buffers or streams accepted literal bytes. */
static enum imap_parse_res
imap_feed_literal(struct imap_parser *p, const char *d, size_t len,
		  size_t *used)
{
	size_t take = p->lit_left < len ? (size_t)p->lit_left : len;

	*used = 0;
	/* RFC 9051 §9 literal: CHAR8 is %x01-ff; literal8 takes NULs. */
	if (!p->lit.binary && memchr(d, '\0', take) != NULL) {
		p->err = IMAP_ERR_LITERAL_NUL;
		/* The size was accepted: not counted against the cap. */
		p->state = IMAP_PS_SKIP_LIT;
		return IMAP_PARSE_NEED_MORE;
	}
	p->lit_left -= take;
	*used = take;
	if (p->lit_left == 0)
		p->state = IMAP_PS_LINE;
	if (p->lit_mode == IMAP_LIT_STREAM) {
		p->chunk = d;
		p->chunk_len = take;
		return take > 0 ? IMAP_PARSE_LITERAL_DATA :
		    IMAP_PARSE_NEED_MORE;
	}
	buf_add(&p->text, d, take);
	if (p->lit_left == 0)
		buf_addc(&p->text, '\0');
	return IMAP_PARSE_NEED_MORE;
}

/* SKIP_LIT: drops the bytes of a refused or broken literal. */
static size_t
imap_skip_literal(struct imap_parser *p, size_t len)
{
	size_t used = p->lit_left < len ? (size_t)p->lit_left : len;

	p->lit_left -= used;
	if (p->lit_left == 0)
		p->state = IMAP_PS_SKIP_LINE;
	return used;
}

enum imap_parse_res
imap_parser_feed(struct imap_parser *p, const void *data, size_t len,
		 size_t *consumed_r)
{
	const char *d = data;
	enum imap_parse_res res = IMAP_PARSE_NEED_MORE;
	size_t pos = 0, used = 0;

	xassert(p->state != IMAP_PS_LIT_WAIT);
	if (p->state == IMAP_PS_DONE)
		imap_parser_clear(p);
	/* Errors are reported even when the input ran out. */
	while (res == IMAP_PARSE_NEED_MORE && p->state != IMAP_PS_DEAD &&
	    (pos < len || p->state == IMAP_PS_REPORT)) {
		switch (p->state) {
		case IMAP_PS_REPORT:
			p->state = IMAP_PS_DONE;
			res = IMAP_PARSE_ERROR;
			used = 0;
			break;
		case IMAP_PS_LINE:
			res = imap_feed_line(p, d + pos, len - pos, &used);
			break;
		case IMAP_PS_LIT_DATA:
			res = imap_feed_literal(p, d + pos, len - pos, &used);
			break;
		case IMAP_PS_SKIP_LINE:
			used = imap_skip_line(p, d + pos, len - pos);
			break;
		case IMAP_PS_SKIP_LIT:
			used = imap_skip_literal(p, len - pos);
			break;
		default:
			panic("imap parser fed in state %d", (int)p->state);
		}
		pos += used;
	}
	*consumed_r = pos;
	return p->state == IMAP_PS_DEAD ? IMAP_PARSE_ERROR : res;
}

/* ---- the session's side ---- */

const struct imap_command *
imap_parser_command(struct imap_parser *p)
{
	xassert(p->tag_off != IMAP_NO_OFF && p->name_off != IMAP_NO_OFF);
	if (p->args_cap < p->nnodes) {
		p->args_cap = p->nnodes;
		p->args = xreallocarray(p->args, p->args_cap,
		    sizeof(*p->args));
	}
	for (size_t i = 0; i < p->nnodes; i++) {
		const struct imap_node *n = &p->nodes[i];
		struct imap_arg *a = &p->args[i];

		a->type = n->type;
		a->flags = n->flags;
		a->str = n->off == IMAP_NO_OFF ? NULL : p->text.data + n->off;
		a->len = n->len;
		a->list = n->first == IMAP_NONE ? NULL : &p->args[n->first];
		a->count = n->count;
		a->next = n->next == IMAP_NONE ? NULL : &p->args[n->next];
	}
	p->cmd.tag = p->text.data + p->tag_off;
	p->cmd.name = p->text.data + p->name_off;
	p->cmd.args = p->top_first == IMAP_NONE ? NULL :
	    &p->args[p->top_first];
	p->cmd.count = p->top_count;
	return &p->cmd;
}

bool
imap_parser_pending(const struct imap_parser *p)
{
	return p->state != IMAP_PS_DONE && p->state != IMAP_PS_DEAD &&
	    !(p->state == IMAP_PS_LINE && p->stage == IMAP_STAGE_TAG &&
	    p->line.len == 0);
}

void
imap_parser_literal(const struct imap_parser *p, struct imap_literal *lit_r)
{
	xassert(p->state == IMAP_PS_LIT_WAIT);
	*lit_r = p->lit;
}

int
imap_parser_literal_accept(struct imap_parser *p, enum imap_lit_mode mode)
{
	uint32_t idx;
	struct imap_node *n;

	xassert(p->state == IMAP_PS_LIT_WAIT);
	if (mode == IMAP_LIT_BUFFER && p->lit.size > p->lit.room) {
		imap_parser_literal_reject(p, IMAP_ERR_LITERAL_TOO_BIG);
		return -1;
	}
	/* imap_tok_literal() checked IMAP_ARGS_MAX. */
	idx = imap_node_add(p, IMAP_ARG_LITERAL);
	xassert(idx != IMAP_NONE);
	n = &p->nodes[idx];
	n->len = (size_t)p->lit.size;
	n->flags = (p->lit.binary ? IMAP_ARG_F_LITERAL8 : 0) |
	    (p->lit.sync ? IMAP_ARG_F_SYNC : 0);
	p->lit_mode = mode;
	p->lit_left = p->lit.size;
	p->sep_needed = true;
	p->list_opened = false;
	p->state = p->lit.size > 0 ? IMAP_PS_LIT_DATA : IMAP_PS_LINE;
	if (mode == IMAP_LIT_STREAM) {
		n->flags |= IMAP_ARG_F_STREAMED;
		return 0;
	}
	n->off = p->text.len;
	p->lit_buffered += (size_t)p->lit.size;
	if (p->lit.size == 0)
		buf_addc(&p->text, '\0');
	return 0;
}

void
imap_parser_literal_reject(struct imap_parser *p, enum imap_err err)
{
	xassert(p->state == IMAP_PS_LIT_WAIT && err != IMAP_ERR_NONE);
	p->err = err;
	/* RFC 9051 §7.5: no "+", so no data; RFC 7888 §4: drain "{n+}". */
	if (p->lit.sync) {
		p->state = IMAP_PS_REPORT;
		return;
	}
	if (!imap_skip_count(p, p->lit.size))
		return;
	p->lit_left = p->lit.size;
	p->state = IMAP_PS_SKIP_LIT;
}

void
imap_parser_chunk(const struct imap_parser *p, const void **data_r,
		  size_t *len_r)
{
	*data_r = p->chunk;
	*len_r = p->chunk_len;
}

enum imap_err
imap_parser_error(const struct imap_parser *p, const char **tag_r,
		  bool *fatal_r)
{
	*tag_r = p->tag_off == IMAP_NO_OFF ? NULL : p->text.data + p->tag_off;
	*fatal_r = p->fatal;
	return p->err;
}
