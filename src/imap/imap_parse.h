/*
 * imap_parse.h - the pure IMAP command reader (RFC 9051 §9 and RFC 3501
 * §9 formal syntax, LITERAL+/LITERAL- of RFC 7888, literal8 of RFC 3516)
 * and the argument helpers the session builds on: numbers, astrings,
 * mailbox names with modified UTF-7 (RFC 3501 §5.1.3) and FETCH section
 * specs.  No I/O: the session feeds the bytes it read and gets one event
 * per call (a command, a literal to decide on, a literal chunk, an error,
 * or "need more").
 *
 * Literal handling.  A literal header "{n}", "{n+}" or "~{n}" (which must
 * end its line, RFC 9051 §4.3) stops the reader with IMAP_PARSE_LITERAL
 * before any literal byte is read; the session looks at the command so
 * far (tag, name, earlier arguments) and either accepts the literal -
 * buffered in the parser up to IMAP_LITERAL_BUF_MAX bytes per command, or
 * streamed out as IMAP_PARSE_LITERAL_DATA chunks that borrow from the
 * caller's input (APPEND: the message goes straight to the store, never
 * held in memory) - or rejects it.  A rejected synchronizing literal ends
 * the command at once (the client waits for "+" and never sends it, RFC
 * 9051 §7.5); a rejected non-synchronizing one is drained (read and
 * dropped, at most IMAP_SKIP_MAX bytes) so the stream stays in sync, and
 * the error comes when the command's last line has been read.
 *
 * FETCH sections.  RFC 9051 §9 fetch-att "BODY[HEADER.FIELDS (A B)]<0.10>"
 * holds spaces and parentheses inside its brackets.  An atom that starts
 * with BODY, BODY.PEEK, BINARY, BINARY.PEEK or BINARY.SIZE directly
 * followed by "[" is read up to its "]" (spaces, one level of parentheses
 * and quoted strings allowed inside, no literals) plus the atom characters
 * after it, and yields ONE atom holding the raw text, flagged
 * IMAP_ARG_F_SECTION.  imap_section_parse() turns it into a struct.
 * Any other atom with "[" is an ordinary atom (mailbox "a[b").
 * XXX: header-fld-name may be a literal by the grammar; no client sends
 * one inside brackets, so that gets IMAP_ERR_SECTION.
 *
 * Line ends are CRLF exactly (STYLE §4): a bare LF ends the line for
 * resynchronisation but fails the command; a CR elsewhere is an error.
 * Spaces are single, as in the grammar; no leading or trailing ones.
 */
#ifndef MAILFORT_IMAP_PARSE_H
#define MAILFORT_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Command text of all lines of one command, CRLFs counted, literal data
 * not.  RFC 9051 sets no limit; RFC 7162 §4 has clients stay near 8192. */
#define IMAP_LINE_MAX (64 * 1024)
/* tag = 1*<any ASTRING-CHAR except "+">; ours stop here. */
#define IMAP_TAG_MAX 64
/* Command names: the longest we know is 12 ("GETQUOTAROOT"). */
#define IMAP_NAME_MAX 32
/* Arguments of one command, every list and list element counted. */
#define IMAP_ARGS_MAX 1000
/* Nesting of parenthesised lists (SEARCH keys nest; nothing else does). */
#define IMAP_DEPTH_MAX 16
/* Literal bytes the parser buffers per command (all literals together). */
#define IMAP_LITERAL_BUF_MAX (64 * 1024)
/* Bytes drained per command after an error (over-long line, rejected
 * non-synchronizing literals) before the reader gives up: fatal, BYE.
 * XXX: an APPEND {n+} over a max_message_size above this closes too. */
#define IMAP_SKIP_MAX ((uint64_t)64 * 1024 * 1024)
/* RFC 9051 §9 number64: literal sizes stop at 2^63 - 1. */
#define IMAP_NUMBER64_MAX ((uint64_t)INT64_MAX)
/* Mailbox names in bytes of UTF-8 (Dovecot allows 4096). */
#define IMAP_MAILBOX_MAX 1024
/* FETCH section: part numbers of "1.2.3" and names in HEADER.FIELDS. */
#define IMAP_SECTION_PARTS_MAX 32
#define IMAP_SECTION_FIELDS_MAX 64

enum imap_parse_res {
	IMAP_PARSE_NEED_MORE,	/* all input used, command incomplete */
	IMAP_PARSE_COMMAND,	/* imap_parser_command() is complete */
	IMAP_PARSE_LITERAL,	/* imap_parser_literal_accept or _reject */
	IMAP_PARSE_LITERAL_DATA,/* a streamed chunk: imap_parser_chunk() */
	IMAP_PARSE_ERROR,	/* imap_parser_error(); command dropped */
};

enum imap_err {
	IMAP_ERR_NONE,
	IMAP_ERR_EMPTY,		/* empty line */
	IMAP_ERR_TAG,		/* missing or invalid tag (untagged BAD) */
	IMAP_ERR_NAME,		/* missing or invalid command name */
	IMAP_ERR_SYNTAX,	/* spaces, parentheses, stray characters */
	IMAP_ERR_ATOM,		/* atom-special where an atom was read */
	IMAP_ERR_8BIT,		/* 8-bit in an atom, bad UTF-8 quoted */
	IMAP_ERR_CTL,		/* control character or NUL */
	IMAP_ERR_NEWLINE,	/* bare CR or LF */
	IMAP_ERR_QUOTED,	/* unterminated quoted string, bad escape */
	IMAP_ERR_SECTION,	/* bad BODY[...] bracket */
	IMAP_ERR_LITERAL,	/* bad literal header or not at end of line */
	IMAP_ERR_LITERAL_NUL,	/* NUL in a non-binary literal */
	IMAP_ERR_LITERAL_TOO_BIG, /* rejected by the session or too big */
	IMAP_ERR_LINE_TOO_LONG,	/* over IMAP_LINE_MAX */
	IMAP_ERR_TOO_MANY_ARGS,	/* over IMAP_ARGS_MAX */
	IMAP_ERR_TOO_DEEP,	/* over IMAP_DEPTH_MAX */
	IMAP_ERR_UNBALANCED,	/* ")" without "(", or "(" left open */
	IMAP_ERR_SKIP_TOO_BIG,	/* fatal: drains over IMAP_SKIP_MAX */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,		/* numbers, flags, sequence sets too */
	IMAP_ARG_NIL,		/* the atom NIL, any case */
	IMAP_ARG_QUOTED,	/* escapes removed */
	IMAP_ARG_LITERAL,	/* {n} or {n+}; str NULL when streamed */
	IMAP_ARG_LIST,		/* ( ... ) */
};

#define IMAP_ARG_F_SECTION	0x01	/* atom with "[...]" (see top) */
#define IMAP_ARG_F_LITERAL8	0x02	/* ~{n}: may hold NULs */
#define IMAP_ARG_F_STREAMED	0x04	/* literal went out as chunks */
#define IMAP_ARG_F_SYNC		0x08	/* synchronizing literal */

struct imap_arg {
	enum imap_arg_type type;
	unsigned flags;
	/* NUL-terminated text (a literal8 may hold NULs: use len); NULL for
	 * lists and streamed literals. */
	const char *str;
	size_t len;		/* of str; a streamed literal's size */
	const struct imap_arg *list;	/* LIST: first element or NULL */
	size_t count;			/* LIST: number of elements */
	const struct imap_arg *next;	/* next sibling or NULL */
};

struct imap_command {
	const char *tag;		/* never NULL */
	const char *name;		/* upper-cased ASCII, never NULL */
	const struct imap_arg *args;	/* first argument or NULL */
	size_t count;			/* top-level arguments */
};

struct imap_literal {
	uint64_t size;
	bool sync;			/* "{n}": the client waits for "+" */
	bool binary;			/* "~{n}" (RFC 3516 literal8) */
	size_t room;		/* bytes IMAP_LIT_BUFFER can still take */
};

enum imap_lit_mode {
	IMAP_LIT_BUFFER,		/* keep it in the argument */
	IMAP_LIT_STREAM,		/* hand it out as LITERAL_DATA chunks */
};

struct imap_parser;

/* A reader for one connection; free with imap_parser_free(&p). */
struct imap_parser *imap_parser_new(void);
void imap_parser_free(struct imap_parser **pp);

/*
 * Consumes bytes from data (len may be 0) and returns the next event;
 * *consumed_r tells how many bytes were used (call again with the rest).
 * Memory stays bounded by the limits above whatever the input; buffers
 * grown by a big command are released when the next one starts.
 * Must not be called while an IMAP_PARSE_LITERAL is undecided.
 */
enum imap_parse_res imap_parser_feed(struct imap_parser *p, const void *data,
				     size_t len, size_t *consumed_r) MF_WUR;

/*
 * After IMAP_PARSE_COMMAND: the command.  After IMAP_PARSE_LITERAL or
 * IMAP_PARSE_LITERAL_DATA: the command so far (open lists included, the
 * pending literal not).  Everything borrows from the parser until the
 * next call of imap_parser_feed, _literal_accept, _literal_reject or this
 * function.
 */
const struct imap_command *imap_parser_command(struct imap_parser *p);

/* True while part of a command has been read (STARTTLS wants none). */
bool imap_parser_pending(const struct imap_parser *p);

/* After IMAP_PARSE_LITERAL: the announced literal. */
void imap_parser_literal(const struct imap_parser *p,
			 struct imap_literal *lit_r);
/*
 * Accepts the pending literal.  For a synchronizing one the session then
 * sends "+ Ready".  Returns -1 (and rejects it with LITERAL_TOO_BIG) when
 * mode is IMAP_LIT_BUFFER and the literal is bigger than its room.
 */
int imap_parser_literal_accept(struct imap_parser *p,
			       enum imap_lit_mode mode) MF_WUR;
/* Refuses the pending literal; the command ends in IMAP_PARSE_ERROR with
 * err (see the top of this file for when). */
void imap_parser_literal_reject(struct imap_parser *p, enum imap_err err);

/* After IMAP_PARSE_LITERAL_DATA: the chunk, borrowed from the input given
 * to the last imap_parser_feed().  More chunks, then COMMAND or ERROR
 * follow; after ERROR whatever was streamed must be thrown away. */
void imap_parser_chunk(const struct imap_parser *p, const void **data_r,
		       size_t *len_r);

/*
 * After IMAP_PARSE_ERROR: the error, the tag when one was read (else NULL:
 * answer "* BAD"), and whether the session must end with BYE.
 */
enum imap_err imap_parser_error(const struct imap_parser *p,
				const char **tag_r, bool *fatal_r);
/* Static text for "BAD <text>" / "BYE <text>", never NULL. */
const char *imap_err_text(enum imap_err err);

/* ---- argument helpers ---- */

/* astring (RFC 9051 §9): atom (NIL too), quoted or buffered literal
 * without NULs.  Returns the text or NULL. */
const char *imap_arg_astring(const struct imap_arg *a);
/* string: quoted or buffered literal without NULs, or NULL. */
const char *imap_arg_string(const struct imap_arg *a);
/* A decimal atom within [min, max] without sign or leading zeros (RFC
 * 9051 §9 number / nz-number).  Returns -1 on anything else. */
int imap_arg_number(const struct imap_arg *a, uint64_t min, uint64_t max,
		    uint64_t *n_r) MF_WUR;
/* The atom, case-insensitively equal to word. */
bool imap_arg_is_atom(const struct imap_arg *a, const char *word);
/* Length of the valid UTF-8 (RFC 3629 §4) character at p, at most len
 * bytes read; 0 when invalid, truncated, or ASCII. */
size_t imap_utf8_len(const void *p, size_t len);

/*
 * Mailbox argument (RFC 9051 §9 mailbox = "INBOX" / astring): "INBOX" in
 * any case becomes "INBOX" (§5.1); with utf8 false (an IMAP4rev1 client
 * without UTF8=ACCEPT) the name is decoded from modified UTF-7 (RFC 3501
 * §5.1.3), else it must be valid UTF-8.  No control characters, not
 * empty, at most IMAP_MAILBOX_MAX bytes.  name_r holds IMAP_MAILBOX_MAX
 * + 1 bytes.  Returns -1 with *error_r static text.
 */
int imap_arg_mailbox(const struct imap_arg *a, bool utf8,
		     char name_r[IMAP_MAILBOX_MAX + 1],
		     const char **error_r) MF_WUR;

/*
 * Modified UTF-7 (RFC 3501 §5.1.3) from/to UTF-8, appended to out; out's
 * cap is respected (-1 "too long" instead of writing past it).  Decoding
 * refuses printable ASCII in base64, "&" outside "&-", non-printable
 * input, leftover or non-zero padding bits, bad surrogates, NULs.
 * Encoding refuses invalid UTF-8 (RFC 3629) and NULs.
 */
int imap_mutf7_decode(const char *in, size_t len, struct buf *out,
		      const char **error_r) MF_WUR;
int imap_mutf7_encode(const char *in, size_t len, struct buf *out,
		      const char **error_r) MF_WUR;

/* ---- FETCH sections (RFC 9051 §6.4.5, §9 fetch-att; RFC 3516 §4) ---- */

enum imap_section_att {
	IMAP_SECTION_BODY,
	IMAP_SECTION_BODY_PEEK,
	IMAP_SECTION_BINARY,
	IMAP_SECTION_BINARY_PEEK,
	IMAP_SECTION_BINARY_SIZE,
};

enum imap_section_spec {
	IMAP_SPEC_NONE,			/* BODY[] or BODY[1.2] */
	IMAP_SPEC_HEADER,
	IMAP_SPEC_HEADER_FIELDS,
	IMAP_SPEC_HEADER_FIELDS_NOT,
	IMAP_SPEC_TEXT,
	IMAP_SPEC_MIME,			/* needs part numbers */
};

struct imap_section {
	enum imap_section_att att;
	uint32_t parts[IMAP_SECTION_PARTS_MAX];
	size_t nparts;
	enum imap_section_spec spec;
	/* HEADER.FIELDS names, borrowed from buf (given to the parser). */
	const char *fields[IMAP_SECTION_FIELDS_MAX];
	size_t nfields;
	bool partial;			/* <offset.count> given */
	uint32_t offset;
	uint32_t count;			/* nz-number */
};

/*
 * Parses an IMAP_ARG_F_SECTION atom such as "BODY.PEEK[1.2.MIME]<10.20>"
 * or "BINARY[1]".  Header field names (atoms or quoted, RFC 9051 §9
 * header-fld-name) are copied NUL-terminated into buf (reset first, cap
 * respected) and sec_r->fields points into it.  BINARY takes only part
 * numbers; BINARY.SIZE no partial; MIME needs a part.  Returns -1 with
 * *error_r static text.
 */
int imap_section_parse(const char *atom, struct buf *buf,
		       struct imap_section *sec_r,
		       const char **error_r) MF_WUR;

#endif
