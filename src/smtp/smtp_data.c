/*
 * smtp_data.c - message content reader, see smtp_data.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtp/smtp_data.h"

void
smtp_data_init(struct smtp_data *d, bool dot_mode, uint64_t max_size,
    bool privacy, bool add_missing, const char *msgid_domain,
    const char *msgid_unique)
{
	memset(d, 0, sizeof(*d));
	d->dot_mode = dot_mode;
	d->in_header = true;
	d->max_size = max_size;
	d->privacy = privacy;
	d->add_missing = add_missing;
	d->msgid_domain = msgid_domain;
	d->msgid_unique = msgid_unique;
	buf_init(&d->line, SMTP_DATA_LINE_MAX);
	buf_init(&d->out, 0);
}

void
smtp_data_free(struct smtp_data *d)
{
	buf_free(&d->line);
	buf_free(&d->out);
}

static void
smtp_data_emit(struct smtp_data *d, const char *s, size_t len)
{
	if (d->err != SMTP_DATA_OK)
		return;
	if (d->size + len > d->max_size) {
		d->err = SMTP_DATA_TOO_BIG;
		return;
	}
	d->size += len;
	buf_add(&d->out, s, len);
}

static void
smtp_data_add_missing(struct smtp_data *d)
{
	char line[512];
	struct tm tm;
	time_t now;

	if (!d->add_missing)
		return;
	if (!d->have_date) {
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S %z\r\n",
		    &tm);
		smtp_data_emit(d, line, strlen(line));
	}
	if (!d->have_msgid) {
		snprintf(line, sizeof(line), "Message-ID: <%s@%s>\r\n",
		    d->msgid_unique, d->msgid_domain);
		smtp_data_emit(d, line, strlen(line));
	}
}

static bool
smtp_data_field_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 &&
	    (line[n] == ':' || line[n] == ' ' || line[n] == '\t');
}

/* A complete header-section line; returns false to drop it. */
static bool
smtp_data_header_line(struct smtp_data *d, const char *line, size_t len)
{
	if (len == 0) {
		d->in_header = false;
		smtp_data_add_missing(d);
		return true;
	}
	if (line[0] == ' ' || line[0] == '\t')
		return !d->drop_field;
	d->drop_field = false;
	if (smtp_data_field_is(line, len, "Date"))
		d->have_date = true;
	else if (smtp_data_field_is(line, len, "Message-ID"))
		d->have_msgid = true;
	else if (smtp_data_field_is(line, len, "Received") &&
	    ++d->hops > SMTP_DATA_HOPS_MAX && d->err == SMTP_DATA_OK)
		d->err = SMTP_DATA_TOO_MANY_HOPS;
	if (d->privacy && (smtp_data_field_is(line, len, "User-Agent") ||
	    smtp_data_field_is(line, len, "X-Mailer") ||
	    smtp_data_field_is(line, len, "X-Originating-IP")))
		d->drop_field = true;
	return !d->drop_field;
}

/* A complete line (without CRLF); returns true at the DATA end. */
static bool
smtp_data_line(struct smtp_data *d)
{
	const char *line = d->line.data ? d->line.data : "";
	size_t len = d->line.len;

	if (d->dot_mode && line[0] == '.') {
		if (len == 1)
			return true;
		line++;		/* RFC 5321 §4.5.2 transparency */
		len--;
	}
	if (d->in_header && !smtp_data_header_line(d, line, len))
		return false;
	smtp_data_emit(d, line, len);
	smtp_data_emit(d, "\r\n", 2);
	return false;
}

static void
smtp_data_addc(struct smtp_data *d, char c)
{
	if (d->line.len >= SMTP_DATA_LINE_MAX) {
		if (d->err == SMTP_DATA_OK)
			d->err = SMTP_DATA_LINE_TOO_LONG;
		return;
	}
	buf_addc(&d->line, c);
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, bool *end_r)
{
	size_t i;

	*end_r = false;
	for (i = 0; i < len; i++) {
		char c = in[i];
		if (d->cr_seen) {
			d->cr_seen = false;
			if (c == '\n') {
				bool end = smtp_data_line(d);
				buf_reset(&d->line);
				if (end) {
					if (d->in_header)
						smtp_data_add_missing(d);
					*end_r = true;
					return i + 1;
				}
				continue;
			}
			/* bare CR: keep it in the line, refuse the message */
			if (d->err == SMTP_DATA_OK)
				d->err = SMTP_DATA_BARE_NEWLINE;
			smtp_data_addc(d, '\r');
		}
		if (c == '\r') {
			d->cr_seen = true;
		} else {
			if (c == '\n' && d->err == SMTP_DATA_OK)
				d->err = SMTP_DATA_BARE_NEWLINE;
			smtp_data_addc(d, c);
		}
	}
	return i;
}

void
smtp_data_finish(struct smtp_data *d)
{
	if (d->cr_seen) {
		d->cr_seen = false;
		if (d->err == SMTP_DATA_OK)
			d->err = SMTP_DATA_BARE_NEWLINE;
		smtp_data_addc(d, '\r');
	}
	if (d->line.len > 0) {
		(void)smtp_data_line(d);
		buf_reset(&d->line);
	}
	if (d->in_header)
		smtp_data_add_missing(d);
}
