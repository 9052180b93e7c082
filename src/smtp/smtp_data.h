/*
 * smtp_data.h - the message content reader shared by DATA and BDAT: a pure
 * byte-in, line-out state machine (no I/O).
 *
 * Lines end only in CRLF.  For DATA the end is a line holding exactly "."
 * after a CRLF - so a bare LF or bare CR never ends DATA (SMTP smuggling,
 * CVE-2023-51764 class).  A message holding any bare CR or LF is refused
 * as a whole at its end (Postfix 3.9 smtpd_forbid_bare_newline = reject
 * behaviour; RFC 5321 §2.3.8).  Leading dots are removed (§4.5.2).
 * The header section is filtered line by line: on submission with privacy
 * on, User-Agent, X-Mailer and X-Originating-IP are dropped; missing Date
 * and Message-ID are added at its end.
 */
#ifndef MAILFORT_SMTP_DATA_H
#define MAILFORT_SMTP_DATA_H

#include "core/core.h"

#define SMTP_DATA_LINE_MAX (64 * 1024)	/* longer lines refuse the message */
#define SMTP_DATA_HOPS_MAX 100		/* Received headers (loop detection) */

enum smtp_data_err {
	SMTP_DATA_OK,
	SMTP_DATA_BARE_NEWLINE,
	SMTP_DATA_LINE_TOO_LONG,
	SMTP_DATA_TOO_BIG,
	SMTP_DATA_TOO_MANY_HOPS,
};

struct smtp_data {
	bool dot_mode;		/* DATA (dot-stuffed) vs BDAT */
	bool cr_seen;
	bool in_header;
	bool drop_field;	/* inside a dropped header field */
	bool have_date, have_msgid;
	bool privacy;		/* drop client-identifying headers */
	bool add_missing;	/* add Date/Message-ID when missing */
	unsigned hops;
	uint64_t size;		/* bytes produced */
	uint64_t max_size;
	enum smtp_data_err err;
	struct buf line;	/* current line without CRLF */
	struct buf out;		/* produced bytes, drained by the caller */
	const char *msgid_domain;
	const char *msgid_unique;
};

void smtp_data_init(struct smtp_data *d, bool dot_mode, uint64_t max_size,
    bool privacy, bool add_missing, const char *msgid_domain,
    const char *msgid_unique);
void smtp_data_free(struct smtp_data *d);
/*
 * Consumes bytes from in; returns how many.  In dot mode stops right after
 * the terminating ".CRLF" and sets *end_r.  Output accumulates in d->out.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    bool *end_r);
/* BDAT LAST: flushes a final line without CRLF (adding one). */
void smtp_data_finish(struct smtp_data *d);

#endif
