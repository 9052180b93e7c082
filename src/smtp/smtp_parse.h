/*
 * smtp_parse.h - pure parsers for SMTP command lines and their arguments:
 * verbs (RFC 5321 §4.1.1), MAIL/RCPT paths and parameters (RFC 5321
 * §4.1.2, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN RFC
 * 3461, AUTH RFC 4954) and BDAT (RFC 3030).  No I/O, no allocation: the
 * session hands in a line without its CRLF and gets a verdict plus, on
 * error, the exact reply line to send.
 */
#ifndef MAILFORT_SMTP_PARSE_H
#define MAILFORT_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* RFC 5321 §4.5.3.1.1-3, in octets; the path counts its "<" and ">". */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
/* RFC 1035 §2.3.4: one label of a domain. */
#define SMTP_LABEL_MAX 63
/* RFC 1870 §3: size-value ::= 1*20DIGIT. */
#define SMTP_SIZE_DIGITS_MAX 20
/* RFC 3030 §2: chunk-size ::= 1*DIGIT; we stop where uint64_t does. */
#define SMTP_BDAT_DIGITS_MAX 20

enum smtp_verb {
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/*
 * line: one command without CRLF, NUL-terminated, len bytes.  The verb is
 * matched case-insensitively; for MAIL and RCPT it is "MAIL FROM:" and
 * "RCPT TO:" (no space after the colon, or one before "<" as Postfix
 * tolerates).  *args_r points into line at the arguments, after the verb
 * and one separating space ("" if none); it lives as long as line.
 * An unknown verb gives 0 and SMTP_VERB_UNKNOWN.
 * Returns -1 with *verb_r SMTP_VERB_UNKNOWN when the line holds a NUL
 * (len != strlen(line)) or a control character other than TAB; -1 with
 * *verb_r SMTP_VERB_MAIL or SMTP_VERB_RCPT when that verb lacks its
 * " FROM:" or " TO:" (reply "501 5.5.4 Syntax: MAIL FROM:<address>").
 * *args_r is "" whenever -1 is returned.
 */
int smtp_parse_command(const char *line, size_t len, enum smtp_verb *verb_r,
		       const char **args_r) MF_WUR;

enum smtp_body {
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

struct smtp_mail_args {
	char addr[SMTP_PATH_MAX + 1];	/* "" = null path <> */
	bool has_size;
	uint64_t size;			/* UINT64_MAX: more than we count */
	enum smtp_body body;
	bool smtputf8;
};

struct smtp_rcpt_args {
	char addr[SMTP_PATH_MAX + 1];
};

/*
 * Parse the part after "MAIL FROM:" / "RCPT TO:": "<path> [params]".
 * Source routes "<@a,@b:user@d>" are accepted and stripped (RFC 5321
 * §4.1.2, §C).  The local part is a dot-atom or a quoted string, stored
 * as received ("\"a b\"@d"); the domain a host name (LDH labels of at most
 * SMTP_LABEL_MAX) or an address literal [IPv4] / [IPv6:...], lower-cased
 * (ASCII).  With SMTPUTF8 (the MAIL parameter, or the smtputf8 argument of
 * RCPT) valid UTF-8 may appear in both.  RCPT TO:<postmaster> (any case,
 * no domain) gives addr "postmaster" (RFC 5321 §4.5.1).
 * MAIL params: SIZE=n, BODY=7BIT|8BITMIME|BINARYMIME, SMTPUTF8; AUTH=,
 * RET=, ENVID= accepted and ignored.  RCPT params: NOTIFY=, ORCPT=
 * accepted and ignored.  Keywords are case-insensitive; parameters are
 * separated by spaces; trailing spaces are tolerated.
 * Returns 0 with *m_r / *r_r filled, or -1 with *reply_r a complete
 * static SMTP reply line without CRLF (e.g. "501 5.1.7 Bad sender address
 * syntax", "555 5.5.4 Unsupported parameter", "553 5.6.7 Non-ASCII address
 * requires SMTPUTF8").  SIZE over UINT64_MAX but within 20 digits gives
 * UINT64_MAX, left for the session to refuse as too big.
 */
int smtp_parse_mail(const char *args, struct smtp_mail_args *m_r,
		    const char **reply_r) MF_WUR;
int smtp_parse_rcpt(const char *args, bool smtputf8,
		    struct smtp_rcpt_args *r_r, const char **reply_r) MF_WUR;

/*
 * "BDAT <size> [LAST]" arguments (RFC 3030 §2): size decimal, at most
 * SMTP_BDAT_DIGITS_MAX digits and UINT64_MAX; LAST case-insensitive after
 * one space.  Returns 0 with *size_r and *last_r, -1 on anything else.
 */
int smtp_parse_bdat(const char *args, uint64_t *size_r, bool *last_r) MF_WUR;

/*
 * Splits "local@domain" at the last "@" outside a quoted string into
 * NUL-terminated copies.  Returns -1 when there is no such "@" or a part
 * does not fit its buffer (local_size / domain_size bytes with the NUL).
 */
int smtp_addr_split(const char *addr, char *local, size_t local_size,
		    char *domain, size_t domain_size) MF_WUR;

#endif
