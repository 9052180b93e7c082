/*
 * imap_section.c - the FETCH attributes with a section, as the reader
 * hands them over in one atom (see imap_parse.h): BODY[...]<...>,
 * BODY.PEEK, BINARY, BINARY.PEEK and BINARY.SIZE.  Grammar: RFC 9051 §9
 * fetch-att, section, section-spec, section-part, section-msgtext,
 * header-list, partial; RFC 3516 §4 section-binary.
 */
#include <string.h>
#include <strings.h>

#include "imap/imap_parse.h"

static const struct {
	const char *name;
	enum imap_section_att att;
} imap_section_atts[] = {
	{ "BODY", IMAP_SECTION_BODY },
	{ "BODY.PEEK", IMAP_SECTION_BODY_PEEK },
	{ "BINARY", IMAP_SECTION_BINARY },
	{ "BINARY.PEEK", IMAP_SECTION_BINARY_PEEK },
	{ "BINARY.SIZE", IMAP_SECTION_BINARY_SIZE },
};

/* Longest first: "HEADER" is a prefix of the others. */
static const struct {
	const char *name;
	enum imap_section_spec spec;
} imap_section_specs[] = {
	{ "HEADER.FIELDS.NOT", IMAP_SPEC_HEADER_FIELDS_NOT },
	{ "HEADER.FIELDS", IMAP_SPEC_HEADER_FIELDS },
	{ "HEADER", IMAP_SPEC_HEADER },
	{ "TEXT", IMAP_SPEC_TEXT },
	{ "MIME", IMAP_SPEC_MIME },
};

/* nz-number or number (zero_ok) up to UINT32_MAX at *s, no leading 0. */
static bool
imap_section_number(const char **s, bool zero_ok, uint32_t *n_r)
{
	const char *p = *s;
	uint64_t v = 0;

	if (*p < '0' || *p > '9' || (*p == '0' && (!zero_ok ||
	    (p[1] >= '0' && p[1] <= '9'))))
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*n_r = (uint32_t)v;
	*s = p;
	return true;
}

/* One header-fld-name (astring without literals) copied into buf. */
static const char *
imap_section_field(const char **s, struct buf *buf, size_t *off_r)
{
	const char *p = *s;

	*off_r = buf->len;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0')
				return "Unterminated quoted string";
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			if (buf_room(buf) < 2)
				return "Section too long";
			buf_addc(buf, *p);
		}
		p++;
	} else {
		/* RFC 5322 §3.6.8 ftext, a subset of ASTRING-CHAR. */
		for (; *p > 0x20 && *p < 0x7f && *p != ')' && *p != '(' &&
		    *p != '"' && *p != ':'; p++) {
			if (buf_room(buf) < 2)
				return "Section too long";
			buf_addc(buf, *p);
		}
		if (p == *s)
			return "Invalid header field name";
	}
	if (buf_room(buf) < 1)
		return "Section too long";
	buf_addc(buf, '\0');
	*s = p;
	return NULL;
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
static const char *
imap_section_fields(const char **s, struct buf *buf, struct imap_section *sec)
{
	size_t offs[IMAP_SECTION_FIELDS_MAX];
	const char *p = *s, *err;

	if (*p++ != ' ' || *p++ != '(')
		return "Missing header field list";
	for (;;) {
		if (sec->nfields == IMAP_SECTION_FIELDS_MAX)
			return "Too many header fields";
		err = imap_section_field(&p, buf, &offs[sec->nfields]);
		if (err != NULL)
			return err;
		sec->nfields++;
		if (*p == ')')
			break;
		if (*p++ != ' ')
			return "Invalid header field list";
	}
	/* buf is complete: its pointers no longer move. */
	for (size_t i = 0; i < sec->nfields; i++)
		sec->fields[i] = buf->data + offs[i];
	*s = p + 1;
	return NULL;
}

/* section-spec inside the brackets, up to and past "]". */
static const char *
imap_section_spec(const char **s, struct buf *buf, struct imap_section *sec)
{
	const char *p = *s;
	size_t i, n;

	while (*p >= '0' && *p <= '9') {
		if (sec->nparts == IMAP_SECTION_PARTS_MAX)
			return "Section nested too deeply";
		if (!imap_section_number(&p, false, &sec->parts[sec->nparts]))
			return "Invalid section part";
		sec->nparts++;
		if (*p != '.')
			break;
		p++;
	}
	if (*p != ']') {
		if (sec->nparts > 0 && p[-1] != '.')
			return "Invalid section";
		for (i = 0; i < MF_ARRAY_LEN(imap_section_specs); i++) {
			n = strlen(imap_section_specs[i].name);
			if (strncasecmp(p, imap_section_specs[i].name,
			    n) == 0 && (p[n] == ']' || p[n] == ' '))
				break;
		}
		if (i == MF_ARRAY_LEN(imap_section_specs))
			return "Invalid section text";
		sec->spec = imap_section_specs[i].spec;
		p += n;
		if (sec->spec == IMAP_SPEC_MIME && sec->nparts == 0)
			return "MIME needs a section part";
		if (sec->spec == IMAP_SPEC_HEADER_FIELDS ||
		    sec->spec == IMAP_SPEC_HEADER_FIELDS_NOT) {
			const char *err = imap_section_fields(&p, buf, sec);

			if (err != NULL)
				return err;
		}
	} else if (sec->nparts > 0 && p[-1] == '.') {
		return "Invalid section part";
	}
	if (*p != ']')
		return "Invalid section";
	*s = p + 1;
	return NULL;
}

int
imap_section_parse(const char *atom, struct buf *buf,
		   struct imap_section *sec_r, const char **error_r)
{
	const char *p = strchr(atom, '['), *err;
	size_t i;

	memset(sec_r, 0, sizeof(*sec_r));
	buf_reset(buf);
	for (i = 0; p != NULL && i < MF_ARRAY_LEN(imap_section_atts); i++)
		if (strlen(imap_section_atts[i].name) == (size_t)(p - atom) &&
		    strncasecmp(atom, imap_section_atts[i].name,
		    (size_t)(p - atom)) == 0)
			break;
	if (p == NULL || i == MF_ARRAY_LEN(imap_section_atts)) {
		*error_r = "Invalid fetch attribute";
		return -1;
	}
	sec_r->att = imap_section_atts[i].att;
	p++;
	if ((err = imap_section_spec(&p, buf, sec_r)) != NULL)
		goto fail;
	/* RFC 3516 §4: section-binary = "[" [section-part] "]". */
	err = "Invalid BINARY section";
	if (sec_r->att >= IMAP_SECTION_BINARY && sec_r->spec != IMAP_SPEC_NONE)
		goto fail;
	/* partial = "<" number "." nz-number ">" (not on BINARY.SIZE) */
	if (*p == '<' && sec_r->att != IMAP_SECTION_BINARY_SIZE) {
		p++;
		err = "Invalid partial";
		if (!imap_section_number(&p, true, &sec_r->offset) ||
		    *p++ != '.' ||
		    !imap_section_number(&p, false, &sec_r->count) ||
		    *p++ != '>')
			goto fail;
		sec_r->partial = true;
	}
	err = "Invalid fetch attribute";
	if (*p != '\0')
		goto fail;
	return 0;
fail:
	*error_r = err;
	return -1;
}
