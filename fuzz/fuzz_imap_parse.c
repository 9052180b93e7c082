/*
 * fuzz_imap_parse.c - libFuzzer target for the IMAP command reader and
 * the parsers the session runs on its arguments.  The first byte picks
 * the mode: a command stream (with a literal policy, fed in chunks whose
 * sizes come from that byte too), modified UTF-7 both ways, or a FETCH
 * section.  Besides crashes it checks what the session relies on: all
 * input taken on NEED_MORE, arguments within the limits, strings
 * NUL-terminated and free of line ends, mUTF-7 round trips.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parse.h"
#include "imap/imap_seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fuzz_imap_mode {
	FUZZ_IMAP_BUFFER,	/* buffer literals that fit, reject others */
	FUZZ_IMAP_STREAM,	/* stream every literal */
	FUZZ_IMAP_REJECT,	/* reject every literal */
	FUZZ_IMAP_APPEND,	/* stream for APPEND, like the session */
	FUZZ_IMAP_MUTF7_DEC,
	FUZZ_IMAP_MUTF7_ENC,
	FUZZ_IMAP_SECTION,
	FUZZ_IMAP_MODES,
};

static void
fuzz_imap_mutf7(const char *in, size_t len, bool decode)
{
	struct buf a, b, c;
	const char *err;

	buf_init(&a, 4096);
	buf_init(&b, 0);
	buf_init(&c, 0);
	if (decode && imap_mutf7_decode(in, len, &a, &err) == 0) {
		/* UTF-8 -> mUTF-7 -> the same UTF-8 */
		xassert(imap_mutf7_encode(a.data, a.len, &b, &err) == 0);
		xassert(imap_mutf7_decode(b.data, b.len, &c, &err) == 0);
		xassert(c.len == a.len && (a.len == 0 ||
		    memcmp(a.data, c.data, a.len) == 0));
	} else if (!decode && imap_mutf7_encode(in, len, &a, &err) == 0) {
		xassert(imap_mutf7_decode(a.data, a.len, &b, &err) == 0);
		xassert(b.len == len && (len == 0 ||
		    memcmp(b.data, in, len) == 0));
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
}

/* Walks a list; returns the number of arguments in it, lists included. */
static size_t
fuzz_imap_args(const struct imap_arg *a, size_t count, unsigned depth)
{
	size_t n = 0, total = 0;
	char name[IMAP_MAILBOX_MAX + 1];
	struct imap_section sec;
	struct imap_seqset set;
	struct buf b;
	const char *err;

	xassert(depth <= IMAP_DEPTH_MAX);
	for (; a != NULL; a = a->next, n++) {
		total++;
		if (a->type == IMAP_ARG_LIST) {
			xassert(a->str == NULL && depth < IMAP_DEPTH_MAX);
			total += fuzz_imap_args(a->list, a->count, depth + 1);
			continue;
		}
		if (a->str == NULL) {
			xassert(a->flags & IMAP_ARG_F_STREAMED);
			continue;
		}
		xassert(a->str[a->len] == '\0');
		if (a->type != IMAP_ARG_LITERAL) {
			xassert(memchr(a->str, '\r', a->len) == NULL);
			xassert(memchr(a->str, '\n', a->len) == NULL);
			xassert(strlen(a->str) == a->len);
		} else if (!(a->flags & IMAP_ARG_F_LITERAL8)) {
			xassert(strlen(a->str) == a->len);
		}
		if (a->type == IMAP_ARG_ATOM && !(a->flags &
		    IMAP_ARG_F_SECTION))
			xassert(strchr(a->str, ' ') == NULL);
		if (a->flags & IMAP_ARG_F_SECTION) {
			buf_init(&b, 1024);
			if (imap_section_parse(a->str, &b, &sec, &err) == 0)
				xassert(sec.nparts <= IMAP_SECTION_PARTS_MAX);
			buf_free(&b);
		}
		if (imap_seqset_parse(a->str, a->len, &set, &err) == 0) {
			imap_seqset_resolve(&set, (uint32_t)a->len, NULL);
			(void)imap_seqset_contains(&set, 1);
			imap_seqset_free(&set);
		}
		if (imap_arg_mailbox(a, a->len % 2 == 0, name, &err) == 0)
			xassert(strlen(name) <= IMAP_MAILBOX_MAX);
	}
	xassert(n == count);
	return total;
}

static void
fuzz_imap_command(const struct imap_command *cmd)
{
	xassert(cmd->tag[0] != '\0' && strlen(cmd->tag) <= IMAP_TAG_MAX);
	xassert(strchr(cmd->tag, ' ') == NULL);
	xassert(cmd->name[0] != '\0' && strlen(cmd->name) <= IMAP_NAME_MAX);
	for (const char *p = cmd->name; *p != '\0'; p++)
		xassert(!(*p >= 'a' && *p <= 'z'));
	xassert(fuzz_imap_args(cmd->args, cmd->count, 0) <= IMAP_ARGS_MAX);
}

/* One event; false when the stream is dead. */
static bool
fuzz_imap_event(struct imap_parser *p, enum imap_parse_res res,
		enum fuzz_imap_mode mode)
{
	const struct imap_command *cmd;
	struct imap_literal lit;
	const void *chunk;
	const char *tag;
	size_t len;
	bool fatal, stream;

	switch (res) {
	case IMAP_PARSE_NEED_MORE:
		break;
	case IMAP_PARSE_COMMAND:
		fuzz_imap_command(imap_parser_command(p));
		break;
	case IMAP_PARSE_LITERAL:
		imap_parser_literal(p, &lit);
		cmd = imap_parser_command(p);
		xassert(lit.room <= IMAP_LITERAL_BUF_MAX);
		xassert(lit.size <= IMAP_NUMBER64_MAX);
		if (mode == FUZZ_IMAP_REJECT) {
			imap_parser_literal_reject(p, IMAP_ERR_LITERAL_TOO_BIG);
			break;
		}
		stream = mode == FUZZ_IMAP_STREAM ||
		    (mode == FUZZ_IMAP_APPEND &&
		    strcmp(cmd->name, "APPEND") == 0);
		if (imap_parser_literal_accept(p, stream ? IMAP_LIT_STREAM :
		    IMAP_LIT_BUFFER) != 0)
			xassert(!stream && lit.size > lit.room);
		break;
	case IMAP_PARSE_LITERAL_DATA:
		imap_parser_chunk(p, &chunk, &len);
		xassert(chunk != NULL && len > 0);
		break;
	case IMAP_PARSE_ERROR:
		xassert(imap_parser_error(p, &tag, &fatal) != IMAP_ERR_NONE);
		xassert(tag == NULL || (tag[0] != '\0' &&
		    strlen(tag) <= IMAP_TAG_MAX));
		return !fatal;
	}
	return true;
}

static void
fuzz_imap_stream(const uint8_t *in, size_t len, enum fuzz_imap_mode mode,
		 unsigned step)
{
	struct imap_parser *p = imap_parser_new();
	size_t pos = 0, n, off, used;
	enum imap_parse_res res;
	bool alive = true;

	while (alive && pos < len) {
		n = step == 0 ? len - pos : 1 + (pos * 7 + step) % (4 * step);
		if (n > len - pos)
			n = len - pos;
		off = 0;
		do {
			res = imap_parser_feed(p, in + pos + off, n - off,
			    &used);
			xassert(used <= n - off);
			off += used;
			xassert(res != IMAP_PARSE_NEED_MORE || off == n);
			alive = fuzz_imap_event(p, res, mode);
		} while (alive && res != IMAP_PARSE_NEED_MORE);
		pos += n;
	}
	imap_parser_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum fuzz_imap_mode mode;
	struct imap_section sec;
	struct buf b;
	const char *err;
	char *s;

	if (size == 0)
		return 0;
	mode = (enum fuzz_imap_mode)(data[0] % FUZZ_IMAP_MODES);
	switch (mode) {
	case FUZZ_IMAP_MUTF7_DEC:
	case FUZZ_IMAP_MUTF7_ENC:
		fuzz_imap_mutf7((const char *)data + 1, size - 1,
		    mode == FUZZ_IMAP_MUTF7_DEC);
		break;
	case FUZZ_IMAP_SECTION:
		s = xstrndup((const char *)data + 1, size - 1);
		buf_init(&b, 512);
		if (imap_section_parse(s, &b, &sec, &err) == 0)
			xassert(sec.nparts <= IMAP_SECTION_PARTS_MAX &&
			    sec.nfields <= IMAP_SECTION_FIELDS_MAX);
		buf_free(&b);
		x_free(&s);
		break;
	default:
		fuzz_imap_stream(data + 1, size - 1, mode,
		    (unsigned)data[0] / FUZZ_IMAP_MODES % 8);
		break;
	}
	return 0;
}
