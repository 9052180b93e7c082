/*
 * pop3_parse.c - pure parsers of the POP3 server: the verb table with the
 * argument shape of each verb (RFC 1939 §5-7, RFC 2449 §5, RFC 5034 §4,
 * RFC 2595 §4), and the byte-stuffer of RETR/TOP.  Every scan is bounded
 * by the line length or the chunk handed in; nothing is copied.
 */
#include <string.h>
#include <strings.h>

#include "pop3/pop3_parse.h"

enum pop3_argk {
	POP3_ARGS_NONE,		/* nothing (trailing spaces tolerated) */
	POP3_ARGS_OPT_MSG,	/* [msg] */
	POP3_ARGS_MSG,		/* msg */
	POP3_ARGS_MSG_LINES,	/* msg n */
	POP3_ARGS_TEXT,		/* non-empty rest of the line */
	POP3_ARGS_ANY,		/* AUTH [mechanism [initial-response]] */
};

struct pop3_verb_row {
	const char *name;
	enum pop3_verb verb;
	enum pop3_argk args;
	const char *syntax;	/* the -ERR reply for bad arguments */
};

static const struct pop3_verb_row pop3_verb_rows[] = {
	{ "CAPA", POP3_VERB_CAPA, POP3_ARGS_NONE, "-ERR Syntax: CAPA" },
	{ "STLS", POP3_VERB_STLS, POP3_ARGS_NONE, "-ERR Syntax: STLS" },
	{ "USER", POP3_VERB_USER, POP3_ARGS_TEXT, "-ERR Syntax: USER name" },
	{ "PASS", POP3_VERB_PASS, POP3_ARGS_TEXT,
	  "-ERR Syntax: PASS string" },
	{ "APOP", POP3_VERB_APOP, POP3_ARGS_TEXT,
	  "-ERR Syntax: APOP name digest" },
	{ "AUTH", POP3_VERB_AUTH, POP3_ARGS_ANY, "-ERR Syntax: AUTH" },
	{ "STAT", POP3_VERB_STAT, POP3_ARGS_NONE, "-ERR Syntax: STAT" },
	{ "LIST", POP3_VERB_LIST, POP3_ARGS_OPT_MSG,
	  "-ERR Syntax: LIST [msg]" },
	{ "RETR", POP3_VERB_RETR, POP3_ARGS_MSG, "-ERR Syntax: RETR msg" },
	{ "DELE", POP3_VERB_DELE, POP3_ARGS_MSG, "-ERR Syntax: DELE msg" },
	{ "NOOP", POP3_VERB_NOOP, POP3_ARGS_NONE, "-ERR Syntax: NOOP" },
	{ "RSET", POP3_VERB_RSET, POP3_ARGS_NONE, "-ERR Syntax: RSET" },
	{ "QUIT", POP3_VERB_QUIT, POP3_ARGS_NONE, "-ERR Syntax: QUIT" },
	{ "TOP", POP3_VERB_TOP, POP3_ARGS_MSG_LINES,
	  "-ERR Syntax: TOP msg n" },
	{ "UIDL", POP3_VERB_UIDL, POP3_ARGS_OPT_MSG,
	  "-ERR Syntax: UIDL [msg]" },
};

static const char pop3_reply_chars[] =
	"-ERR Invalid characters in command";
static const char pop3_reply_msg[] = "-ERR Invalid message number";

const char *
pop3_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(pop3_verb_rows); i++)
		if (pop3_verb_rows[i].verb == verb)
			return pop3_verb_rows[i].name;
	return "?";
}

static const struct pop3_verb_row *
pop3_verb_find(const char *word, size_t len)
{
	if (len == 0 || len > POP3_VERB_MAX)
		return NULL;
	for (size_t i = 0; i < MF_ARRAY_LEN(pop3_verb_rows); i++) {
		const struct pop3_verb_row *row = &pop3_verb_rows[i];

		if (strlen(row->name) == len &&
		    strncasecmp(word, row->name, len) == 0)
			return row;
	}
	return NULL;
}

static const char *
pop3_skip_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

/*
 * One decimal number at *pp (after spaces): 1 to POP3_NUMBER_DIGITS_MAX
 * digits within uint64_t, followed by a space or the end.  Returns 1 and
 * advances *pp, 0 when there is no number left, -1 on garbage.
 */
static int
pop3_parse_number(const char **pp, uint64_t *value_r)
{
	const char *p = pop3_skip_spaces(*pp);
	uint64_t v = 0;
	size_t n = 0;

	if (*p == '\0')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++, n++) {
		unsigned d = (unsigned)(*p - '0');
		if (n == POP3_NUMBER_DIGITS_MAX || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (n == 0 || (*p != ' ' && *p != '\0'))
		return -1;
	*pp = p;
	*value_r = v;
	return 1;
}

/* The arguments of row in args; 0 or -1 with *reply_r. */
static int
pop3_parse_args(const struct pop3_verb_row *row, const char *args,
    struct pop3_cmd *cmd, const char **reply_r)
{
	const char *p = args;
	int want = 0, opt = 0, rc;

	switch (row->args) {
	case POP3_ARGS_ANY:
		return 0;
	case POP3_ARGS_TEXT:
		if (*args != '\0')
			return 0;
		*reply_r = row->syntax;
		return -1;
	case POP3_ARGS_NONE:
		break;
	case POP3_ARGS_OPT_MSG:
		opt = 1;
		break;
	case POP3_ARGS_MSG:
		want = 1;
		break;
	case POP3_ARGS_MSG_LINES:
		want = 2;
		break;
	}
	if (want + opt > 0) {
		rc = pop3_parse_number(&p, &cmd->msg);
		if (rc == 0 && want == 0)
			return 0;
		if (rc <= 0) {
			*reply_r = row->syntax;
			return -1;
		}
		cmd->has_msg = true;
		if (cmd->msg == 0) {
			*reply_r = pop3_reply_msg;
			return -1;
		}
	}
	if (want == 2 && pop3_parse_number(&p, &cmd->lines) <= 0) {
		*reply_r = row->syntax;
		return -1;
	}
	if (*pop3_skip_spaces(p) != '\0') {
		*reply_r = row->syntax;
		return -1;
	}
	return 0;
}

int
pop3_parse_command(const char *line, size_t len, struct pop3_cmd *cmd_r,
    const char **reply_r)
{
	const struct pop3_verb_row *row;
	size_t word;

	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->verb = POP3_VERB_UNKNOWN;
	cmd_r->args = "";
	*reply_r = NULL;
	if (strlen(line) != len) {
		*reply_r = pop3_reply_chars;
		return -1;
	}
	/* Nothing we pass on or log may hold a control character. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*reply_r = pop3_reply_chars;
			return -1;
		}
	}
	word = strcspn(line, " ");
	row = pop3_verb_find(line, word);
	if (row == NULL) {
		cmd_r->args = line + len;	/* "", within the line */
		return 0;
	}
	cmd_r->verb = row->verb;
	/* RFC 1939 §3: one space between keyword and argument. */
	cmd_r->args = line[word] == ' ' ? line + word + 1 : line + word;
	if (pop3_parse_args(row, cmd_r->args, cmd_r, reply_r) < 0) {
		cmd_r->args = "";
		cmd_r->has_msg = false;
		cmd_r->msg = cmd_r->lines = 0;
		return -1;
	}
	return 0;
}

/* ---- byte-stuffing of RETR and TOP ---- */

void
pop3_stuff_init(struct pop3_stuff *st, bool top, uint64_t lines)
{
	memset(st, 0, sizeof(*st));
	st->top = top;
	st->lines = lines;
	st->bol = true;
}

/* A line just ended: header/body boundary and TOP's line count. */
static void
pop3_stuff_eol(struct pop3_stuff *st)
{
	bool empty = st->col == 0 || (st->col == 1 && st->first == '\r');

	if (st->in_body) {
		if (st->top && --st->lines == 0)
			st->done = true;
	} else if (empty) {
		st->in_body = true;
		if (st->top && st->lines == 0)
			st->done = true;
	}
	st->bol = true;
	st->col = 0;
}

size_t
pop3_stuff_feed(struct pop3_stuff *st, const char *in, size_t len,
    struct buf *out)
{
	size_t i = 0;

	while (i < len && !st->done) {
		const char *nl = memchr(in + i, '\n', len - i);
		size_t end = nl != NULL ? (size_t)(nl - in) + 1 : len;
		size_t text = end - i - (nl != NULL);	/* before the LF */

		/* RFC 1939 §3: a line starting with the termination octet
		 * gets one more in front. */
		if (st->bol && in[i] == '.')
			buf_addc(out, '.');
		st->bol = false;
		if (text > 0 && st->col == 0)
			st->first = in[i];
		st->col = st->col + text > 2 ? 2 : st->col + (unsigned)text;
		buf_add(out, in + i, end - i);
		i = end;
		if (nl != NULL)
			pop3_stuff_eol(st);
	}
	return i;
}

void
pop3_stuff_end(struct pop3_stuff *st, struct buf *out)
{
	if (!st->bol)
		buf_add(out, "\r\n", 2);
	buf_add(out, ".\r\n", 3);
	st->bol = true;
	st->done = true;
}
