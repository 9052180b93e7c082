/*
 * mime_private.h - the part tree shared by the parser (mime_parse.c), the
 * IMAP writers (mime_imap.c), header value parsing (mime_header.c) and
 * section addressing / serialisation (mime_tree.c).
 *
 * Every node is an entity: a header block and a body.  The root is the
 * message; a multipart's children are its body parts; a message/rfc822
 * part has exactly one child, the embedded message, spanning its body.
 * Nodes are stored in pre-order (the order the parser meets them).
 */
#ifndef MAILFORT_MIME_PRIVATE_H
#define MAILFORT_MIME_PRIVATE_H

#include "mime/mime.h"

#define MIME_NONE UINT32_MAX

enum mime_kind {
	MIME_KIND_BASIC,	/* single part, also opaque ones */
	MIME_KIND_MULTIPART,
	MIME_KIND_MESSAGE,	/* message/rfc822 or message/global */
};

/* Header fields we keep; the first occurrence wins. */
enum mime_fld {
	MIME_FLD_CONTENT_TYPE,
	MIME_FLD_CTE,
	MIME_FLD_CONTENT_ID,
	MIME_FLD_CONTENT_DESC,
	MIME_FLD_CONTENT_MD5,
	MIME_FLD_CONTENT_DISP,
	MIME_FLD_CONTENT_LANG,
	MIME_FLD_CONTENT_LOC,
	MIME_FLD_ENV_FIRST,	/* the rest only for message entities */
	MIME_FLD_DATE = MIME_FLD_ENV_FIRST,
	MIME_FLD_SUBJECT,
	MIME_FLD_FROM,
	MIME_FLD_SENDER,
	MIME_FLD_REPLY_TO,
	MIME_FLD_TO,
	MIME_FLD_CC,
	MIME_FLD_BCC,
	MIME_FLD_IN_REPLY_TO,
	MIME_FLD_MESSAGE_ID,
	MIME_FLD_COUNT,
};

/* Part flags. */
#define MIME_PF_OPAQUE 0x01	/* container we could not open */
#define MIME_PF_DIGEST 0x02	/* child of multipart/digest */
#define MIME_PF_MSG 0x04	/* message entity: root or embedded */
#define MIME_PF_DEFAULT_CT 0x08	/* Content-Type absent or invalid */

/* An unfolded header value in the message arena; len 0 and off 0: absent. */
struct mime_str {
	uint32_t off;
	uint32_t len;
};

struct mime_part {
	uint64_t hdr_start;	/* first byte of the header block */
	uint64_t body_start;	/* end of header block incl. blank line */
	uint64_t body_end;
	uint64_t lines;		/* LFs in the body */
	uint64_t nl_start;	/* parse only: LFs before body_start */
	uint32_t parent, first_child, last_child, next;
	uint32_t nchildren;
	uint16_t depth;
	uint8_t kind;		/* enum mime_kind */
	uint8_t cte;		/* enum mime_cte */
	uint8_t flags;		/* MIME_PF_* */
	bool set[MIME_FLD_COUNT];
	struct mime_str fld[MIME_FLD_COUNT];
};

struct mime_message {
	struct mime_part *parts;
	uint32_t nparts;
	uint64_t size;
	bool parsed;		/* header values present (not loaded) */
	struct buf arena;	/* header values */
};

/* mime_parse.c */
uint32_t mime_part_add(struct mime_message *m, uint32_t parent,
    uint64_t hdr_start);

/* mime_header.c: header value parsing, all bounded by the value length. */
struct mime_value {
	const char *p;
	size_t len;
};
struct mime_value mime_field(const struct mime_message *m,
    const struct mime_part *pt, enum mime_fld f);
bool mime_field_present(const struct mime_part *pt, enum mime_fld f);
/* Looks a field name up (name without colon); -1 when not kept. */
int mime_field_lookup(const char *name, size_t len);
/* Content-Type "type/subtype; params": returns false when invalid.
 * *rest_r points at the parameters. */
bool mime_ct_parse(struct mime_value v, struct mime_value *type_r,
    struct mime_value *sub_r, struct mime_value *rest_r);
/* Next "; name=value" from *rest (advanced); value unquoted into val. */
bool mime_param_next(struct mime_value *rest, struct mime_value *name_r,
    struct buf *val);
/* Skips whitespace and comments; returns whether it moved. */
bool mime_skip_cfws(const char **pp, const char *end);
/* Appends the quoted-string at *pp (on its quote) unescaped; advances. */
void mime_unquote(const char **pp, const char *end, struct buf *out);
/* First token of a value (disposition type, encoding), CFWS skipped. */
struct mime_value mime_token(struct mime_value v, struct mime_value *rest_r);
enum mime_cte mime_cte_parse(struct mime_value v);

/* mime_addr.c: appends an IMAP address list ("(...)" or NIL) for an RFC
 * 5322 address-list value; returns the number of addresses written. */
size_t mime_addr_list(struct mime_value v, struct buf *out);

/* mime_imap.c */
void mime_imap_string(struct buf *out, const char *s, size_t len);
void mime_imap_nstring(struct buf *out, const struct mime_value *v);

#endif
