/*
 * pop3_parse.h - pure parsers of the POP3 server: command lines (RFC 1939
 * §3, RFC 2449 §3-4, RFC 5034, RFC 2595 §4) with their arguments checked
 * per verb, and the byte-stuffing transformer that turns a stored message
 * into the multi-line response of RETR and TOP (RFC 1939 §3, §7).  No I/O:
 * the session hands in a line without its CRLF, or message bytes in
 * chunks of any size, and gets a verdict or the output.
 */
#ifndef MAILFORT_POP3_PARSE_H
#define MAILFORT_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/*
 * Longest command line without CRLF.  RFC 2449 §4 allows 255 octets with
 * CRLF and 40 per argument; long passwords and AUTH initial responses in
 * the wild need more, so we take up to this much.
 */
#define POP3_LINE_MAX 1024
/* Digits of a message number or a TOP line count (uint64_t). */
#define POP3_NUMBER_DIGITS_MAX 20
/* A verb is 3-4 characters (RFC 2449 §4: keywords up to 4). */
#define POP3_VERB_MAX 4

enum pop3_verb {
	POP3_VERB_UNKNOWN,
	POP3_VERB_CAPA,
	POP3_VERB_STLS,
	POP3_VERB_USER,
	POP3_VERB_PASS,
	POP3_VERB_APOP,
	POP3_VERB_AUTH,
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_RETR,
	POP3_VERB_DELE,
	POP3_VERB_NOOP,
	POP3_VERB_RSET,
	POP3_VERB_QUIT,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_COUNT
};

struct pop3_cmd {
	enum pop3_verb verb;
	/* Into the line: after the verb and one space, "" if none.  USER,
	 * PASS, APOP and AUTH use it; PASS keeps inner and trailing spaces
	 * (RFC 1939 §7: the password is the rest of the line). */
	const char *args;
	bool has_msg;		/* LIST/UIDL with an argument; RETR/DELE/TOP */
	uint64_t msg;		/* message number, >= 1 */
	uint64_t lines;		/* TOP: body lines */
};

/*
 * line: one command without CRLF, NUL-terminated, len bytes.  The verb
 * is matched case-insensitively and ends at a space or the end of the
 * line; an unknown verb gives 0, POP3_VERB_UNKNOWN and args "" (within
 * the line).  Arguments are checked against the verb: none for CAPA,
 * STLS, STAT, NOOP, RSET, QUIT; an optional message number for LIST and
 * UIDL; a required one for RETR and DELE; message number and line
 * count for TOP; a non-empty text for USER, PASS and APOP; AUTH takes an
 * optional mechanism and initial response.  Numbers are 1*DIGIT
 * (message numbers not 0), separated by one or more spaces; trailing
 * spaces are tolerated.
 * Returns 0 with *cmd_r filled, or -1 with *reply_r a complete static
 * "-ERR ..." line without CRLF: the line holds a NUL (len !=
 * strlen(line)) or a control character other than TAB, or the arguments
 * do not fit the verb.  cmd_r->verb is then the verb (or UNKNOWN).
 */
int pop3_parse_command(const char *line, size_t len, struct pop3_cmd *cmd_r,
    const char **reply_r) MF_WUR;

/* The verb's name in upper case ("?" for UNKNOWN): logs and tables. */
const char *pop3_verb_name(enum pop3_verb verb);

/*
 * The byte-stuffer of RETR and TOP.  Feed the message file in chunks of
 * any size: each line starting with "." gets one more "." (RFC 1939 §3);
 * for TOP the output stops after the header, the empty line ending it and
 * `lines` lines of the body (RFC 1939 §7; a message without an empty line
 * is all header).  A line ends at LF: stored files end lines in CRLF.
 */
struct pop3_stuff {
	bool top;		/* stop after the header and `lines` */
	uint64_t lines;		/* TOP: body lines still to send */
	bool in_body;		/* past the empty line ending the header */
	bool bol;		/* the next byte starts a line */
	unsigned col;		/* bytes of the current line, at most 2 */
	char first;		/* its first byte */
	bool done;		/* TOP has all it wants */
};

void pop3_stuff_init(struct pop3_stuff *st, bool top, uint64_t lines);
/*
 * Appends the stuffed form of in to out (at most 2 * len bytes more).
 * Returns the bytes of in used: all of them unless TOP got what it wants,
 * then st->done is set and the rest is not needed.
 */
size_t pop3_stuff_feed(struct pop3_stuff *st, const char *in, size_t len,
    struct buf *out);
/* The end of the response: CRLF when the last line had no line end,
 * then ".\r\n" (at most 5 bytes). */
void pop3_stuff_end(struct pop3_stuff *st, struct buf *out);

#endif
