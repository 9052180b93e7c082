/*
 * mime.h - pure streaming message parser (no I/O): builds the MIME part tree
 * of a stored message with byte offsets, and from it the IMAP ENVELOPE,
 * BODY and BODYSTRUCTURE strings (RFC 9051 §7.5.2, RFC 3501 §7.4.2) and
 * BODY[section] byte ranges (RFC 9051 §6.4.5).  The store parses once at
 * delivery/APPEND, caches the strings and mime_tree_serialize() output, and
 * IMAP answers section fetches from byte ranges of the stored file without
 * re-parsing or re-encoding.
 *
 * Input is the message as stored: CRLF line ends.  Bare LF also ends a line
 * (never a crash, offsets stay exact); sizes are then counted as stored.
 *
 * Decisions (see mime_imap.c for the details):
 * - Strings: IMAP quoted string with \" and \\ escaped; an IMAP literal
 *   {n}CRLF... when the value holds CR, LF or 8-bit bytes (valid for both
 *   IMAP4rev1 and IMAP4rev2, so one cached string serves every session).
 *   NUL, never allowed in IMAP strings, is written as a space.
 * - Case: what the message says is passed through as written (type,
 *   subtype, parameter names and values, encoding); what we supply follows
 *   the RFC 3501 examples: "TEXT" "PLAIN" ("CHARSET" "US-ASCII") when
 *   Content-Type is absent or invalid (RFC 2045 §5.2), "MESSAGE" "RFC822"
 *   in multipart/digest (RFC 2046 §5.1.5), "7BIT" when
 *   Content-Transfer-Encoding is absent (RFC 2045 §6.1).
 * - Header values are unfolded (RFC 5322 §2.2.3), trimmed, otherwise raw:
 *   no RFC 2047 decoding; RFC 2231 parameters (name*0, name*) are passed
 *   through as separate raw parameters.
 * - Text without any parameter gets ("CHARSET" "US-ASCII") (RFC 2046
 *   §4.1.2), as Dovecot does.
 * - Limits: past any limit below the rest is treated as opaque content,
 *   never an error; offsets stay exact.  As in Dovecot, a multipart we
 *   cannot split (no boundary, boundary too long, too deep) or in which no
 *   boundary line occurs is written with one empty "TEXT" "PLAIN" part (RFC
 *   9051 requires one), and a message/rfc822 we cannot open (too deep, too
 *   many parts, or base64/quoted-printable encoded, RFC 2046 §5.2.1) with an
 *   all-NIL envelope and that empty body; their bytes stay reachable as
 *   BODY[n] / BODY[TEXT].
 * - Addresses: see mime_addr.c (MISSING_MAILBOX / MISSING_DOMAIN as
 *   Dovecot; unlike Dovecot a comment is never taken as the name).
 */
#ifndef MAILFORT_MIME_H
#define MAILFORT_MIME_H

#include "core/core.h"

#define MIME_FIELD_MAX (64 * 1024)	/* bytes of one header field kept */
#define MIME_FIELDS_MAX 1000		/* fields examined per header */
#define MIME_KEPT_MAX (1024 * 1024)	/* header bytes kept per message */
#define MIME_DEPTH_MAX 32		/* nesting of multipart/message */
#define MIME_PARTS_MAX 1000		/* entities per message */
#define MIME_BOUNDARY_MAX 70		/* RFC 2046 §5.1.1 */
#define MIME_PARAMS_MAX 100		/* parameters written per field */
#define MIME_SECTION_MAX 256		/* length of a section specifier */

struct mime_parser;
struct mime_message;

/* Content-Transfer-Encoding of a part (RFC 2045 §6.1), for BINARY[]. */
enum mime_cte {
	MIME_CTE_7BIT,
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_OTHER,		/* unknown: BINARY[] gets UNKNOWN-CTE */
};

/* A new parser; owned by the caller until mime_parser_finish(). */
struct mime_parser *mime_parser_new(void);
/* Feeds the next len bytes of the message; any chunk size, data is copied
 * as needed and not referenced after the call. */
void mime_parser_feed(struct mime_parser *p, const char *data, size_t len);
/* Ends the input, frees *pp and sets it NULL; returns the parsed message,
 * owned by the caller (mime_message_free()).  Never fails. */
struct mime_message *mime_parser_finish(struct mime_parser **pp);
/* Frees a parser without a result (abandoned delivery). */
void mime_parser_free(struct mime_parser **pp);
void mime_message_free(struct mime_message **mp);

/* Total bytes fed. */
uint64_t mime_message_size(const struct mime_message *m);

/*
 * Appends the ENVELOPE (without the "ENVELOPE " label) to out and returns
 * out->data.  Only for a parsed message (not a deserialized tree).
 */
const char *mime_envelope(const struct mime_message *m, struct buf *out);
/* Appends BODYSTRUCTURE (extensible) or BODY (not) and returns out->data.
 * Only for a parsed message. */
const char *mime_bodystructure(const struct mime_message *m, bool extensible,
    struct buf *out);

/*
 * Resolves a BODY[section] specifier (without brackets, case-insensitive):
 * "" (whole message), "1.2", "1.2.MIME", "HEADER", "TEXT", "3.HEADER",
 * "3.TEXT", "HEADER.FIELDS", "2.HEADER.FIELDS.NOT" (the field list is the
 * IMAP parser's; filter the range with mime_header_filter()).  Sets the
 * byte range of the stored message.  Returns 1 found, 0 no such part (RFC
 * 9051 §6.4.5: the server returns an empty string), -1 bad syntax.
 * *cte_r (may be NULL) gets the encoding of the part for BINARY[].
 */
int mime_section_range(const struct mime_message *m, const char *section,
    uint64_t *start_r, uint64_t *len_r, enum mime_cte *cte_r) MF_WUR;

/*
 * HEADER.FIELDS (negate false) or HEADER.FIELDS.NOT (negate true): appends
 * to out the fields of the header block hdr (as returned by a HEADER or
 * MIME range) whose names match (or, negated, do not match) one of names,
 * case-insensitively, with their continuation lines, exact bytes, then the
 * blank line that ended the block if it had one (RFC 9051 §6.4.5).
 */
void mime_header_filter(const char *hdr, size_t len,
    const char *const *names, size_t count, bool negate, struct buf *out);

/*
 * Compact versioned form of the part tree (offsets, kinds, encodings; no
 * header values) for the store to cache.  mime_tree_deserialize() checks
 * everything (version, bounds, nesting, ordering, exact length) and
 * returns -1 with *error_r (static text) on any inconsistency, else 1 and
 * a message usable for mime_section_range() and mime_message_size() only.
 */
void mime_tree_serialize(const struct mime_message *m, struct buf *out);
int mime_tree_deserialize(const void *data, size_t len,
    struct mime_message **m_r, const char **error_r) MF_WUR;

/*
 * ---- mime_decode.c: decoding for search (pure, never fails) ----
 *
 * Header values: RFC 2047 encoded-words (B and Q) into UTF-8; linear
 * whitespace between adjacent encoded-words is dropped (§6.2), CR and LF
 * are dropped (unfolding); other text passes through as raw bytes (RFC
 * 6532 UTF-8 headers work as such).  Charsets: UTF-8 and US-ASCII pass
 * through unchecked, ISO-8859-1 is converted here, others by iconv(3);
 * bytes a charset rejects become U+FFFD, an unknown charset passes its
 * bytes through.  Adjacent words of one charset are converted together,
 * so a character split across words survives.
 */
#define MIME_CHARSET_MAX 64	/* bytes of a charset name */

/* Appends the decoded, unfolded value in[0..len) to out. */
void mime_header_decode(const char *in, size_t len, struct buf *out);

/* Streaming charset converter into UTF-8; bounded state (a partial
 * character).  Owned by the caller; name is copied. */
struct mime_conv;
struct mime_conv *mime_conv_new(const char *charset, size_t len);
/* Converts the next chunk, appending UTF-8 to out. */
void mime_conv_feed(struct mime_conv *c, const char *in, size_t len,
    struct buf *out);
/* Ends the input (a dangling partial character becomes U+FFFD). */
void mime_conv_finish(struct mime_conv *c, struct buf *out);
void mime_conv_free(struct mime_conv **cp);

/* Streaming Content-Transfer-Encoding decoder (RFC 2045 §6.7, §6.8);
 * 7BIT, 8BIT, BINARY and unknown ones pass through.  Bounded state; any
 * chunk size; bad input is skipped (base64) or kept literally (QP). */
struct mime_cte_dec;
struct mime_cte_dec *mime_cte_dec_new(enum mime_cte cte);
void mime_cte_dec_feed(struct mime_cte_dec *d, const char *in, size_t len,
    struct buf *out);
/* Ends the input: flushes a held partial base64 quantum or QP escape. */
void mime_cte_dec_finish(struct mime_cte_dec *d, struct buf *out);
void mime_cte_dec_free(struct mime_cte_dec **dp);

/*
 * Streaming case-insensitive substring search over UTF-8.  Folding level:
 * i;ascii-casemap plus the Latin-1 Supplement letters U+00C0..U+00DE
 * (except U+00D7) onto U+00E0..U+00FE; not i;unicode-casemap (no other
 * scripts, no normalisation).  State is the needle (at most
 * MIME_MATCH_MAX bytes, longer needles are cut) and one byte.
 */
#define MIME_MATCH_MAX 4096
struct mime_match;
struct mime_match *mime_match_new(const char *needle, size_t len);
/* Feeds the next chunk; true once the needle was seen (sticky until
 * mime_match_reset()).  An empty needle matches at once. */
bool mime_match_feed(struct mime_match *mm, const char *in, size_t len);
void mime_match_reset(struct mime_match *mm);
void mime_match_free(struct mime_match **mmp);

/* Number of entities of m (pre-order index 0 is the message). */
uint32_t mime_part_count(const struct mime_message *m);
/*
 * Whether entity i of a parsed message is a single text part (type text,
 * or Content-Type absent or invalid); if so sets its body range, its
 * encoding and, into charset (reset first), the charset parameter or
 * "us-ascii" (at most MIME_CHARSET_MAX bytes).
 */
bool mime_part_text(const struct mime_message *m, uint32_t i,
    uint64_t *start_r, uint64_t *len_r, enum mime_cte *cte_r,
    struct buf *charset);
/* Whether entity i of m is an embedded message (not the root); if so
 * sets the range of its header block. */
bool mime_part_embedded_header(const struct mime_message *m, uint32_t i,
    uint64_t *start_r, uint64_t *len_r);

#endif
