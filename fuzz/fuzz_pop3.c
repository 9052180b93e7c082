/*
 * fuzz_pop3.c - libFuzzer target for the POP3 parsers.  The first byte
 * picks the mode: a command line (a NUL-terminated copy, NULs inside
 * kept), or a message for the RETR/TOP byte-stuffer fed in pieces whose
 * sizes come from the second byte.  Besides crashes it checks what the
 * session relies on: args point into the line, errors are "-ERR" lines,
 * numbers are set only where the verb takes them, the stuffed output does
 * not depend on how the input was split, stays within twice the input
 * plus the end, and un-stuffs back to the input.
 */
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fuzz_pop3_mode {
	FUZZ_POP3_COMMAND,
	FUZZ_POP3_RETR,
	FUZZ_POP3_TOP,
	FUZZ_POP3_MODES,
};

static void
fuzz_pop3_command(const char *line, size_t len)
{
	struct pop3_cmd cmd;
	const char *reply;
	int ret = pop3_parse_command(line, len, &cmd, &reply);

	xassert(ret == 0 || ret == -1);
	if (ret == -1) {
		xassert(reply != NULL && strncmp(reply, "-ERR ", 5) == 0);
		xassert(!cmd.has_msg && cmd.args[0] == '\0');
		return;
	}
	xassert(reply == NULL);
	xassert(cmd.args >= line && cmd.args <= line + len);
	xassert(strlen(line) == len);
	if (cmd.has_msg)
		xassert(cmd.msg >= 1 && (cmd.verb == POP3_VERB_LIST ||
		    cmd.verb == POP3_VERB_UIDL || cmd.verb == POP3_VERB_RETR ||
		    cmd.verb == POP3_VERB_DELE || cmd.verb == POP3_VERB_TOP));
	if (cmd.verb == POP3_VERB_RETR || cmd.verb == POP3_VERB_DELE ||
	    cmd.verb == POP3_VERB_TOP)
		xassert(cmd.has_msg);
	if (cmd.verb == POP3_VERB_USER || cmd.verb == POP3_VERB_PASS)
		xassert(cmd.args[0] != '\0');
}

/* Stuffs msg in pieces of step bytes (0: whole). */
static void
fuzz_pop3_stuff_run(const char *msg, size_t len, size_t step, bool top,
    uint64_t lines, struct buf *out, size_t *used_r)
{
	struct pop3_stuff st;
	size_t off = 0;

	pop3_stuff_init(&st, top, lines);
	while (off < len && !st.done) {
		size_t n = step == 0 || step > len - off ? len - off : step;
		size_t used = pop3_stuff_feed(&st, msg + off, n, out);

		xassert(used <= n && (used == n || st.done));
		off += used;
	}
	pop3_stuff_end(&st, out);
	*used_r = off;
}

/* Undoes the stuffing: must give back exactly the input used. */
static void
fuzz_pop3_unstuff(const struct buf *out, const char *msg, size_t used)
{
	size_t i = 0, o = 0;
	bool bol = true;

	xassert(out->len >= 3 &&
	    memcmp(out->data + out->len - 3, ".\r\n", 3) == 0);
	while (o < out->len - 3) {
		char c = out->data[o++];
		if (bol && c == '.') {
			xassert(o < out->len && out->data[o] == '.');
			c = out->data[o++];
		}
		if (i < used)
			xassert(msg[i++] == c);
		bol = c == '\n';
	}
	xassert(i == used);
}

static void
fuzz_pop3_stuff(const uint8_t *data, size_t size, bool top)
{
	struct buf whole, pieces;
	size_t step, used1, used2;
	uint64_t lines;

	if (size < 2)
		return;
	step = data[0] % 17;
	lines = data[1] % 8;
	buf_init(&whole, 2 * size + 8);
	buf_init(&pieces, 2 * size + 8);
	fuzz_pop3_stuff_run((const char *)data + 2, size - 2, 0, top, lines,
	    &whole, &used1);
	fuzz_pop3_stuff_run((const char *)data + 2, size - 2, step, top,
	    lines, &pieces, &used2);
	xassert(used1 == used2 && whole.len == pieces.len &&
	    memcmp(whole.data, pieces.data, whole.len) == 0);
	xassert(top || used1 == size - 2);
	fuzz_pop3_unstuff(&whole, (const char *)data + 2, used1);
	buf_free(&whole);
	buf_free(&pieces);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;

	if (size == 0)
		return 0;
	switch ((enum fuzz_pop3_mode)(data[0] % FUZZ_POP3_MODES)) {
	case FUZZ_POP3_COMMAND:
		line = xmalloc(size);	/* size - 1 bytes and the NUL */
		memcpy(line, data + 1, size - 1);
		line[size - 1] = '\0';
		fuzz_pop3_command(line, size - 1);
		x_free(&line);
		break;
	case FUZZ_POP3_RETR:
		fuzz_pop3_stuff(data + 1, size - 1, false);
		break;
	default:
		fuzz_pop3_stuff(data + 1, size - 1, true);
		break;
	}
	return 0;
}
