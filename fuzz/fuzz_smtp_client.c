/*
 * fuzz_smtp_client.c - libFuzzer target for the SMTP client's reply
 * parsers.  The input is what a hostile server might send: it is cut at
 * LF into lines (a trailing CR dropped, as conn_read_line does, each
 * line a NUL-terminated copy with NULs inside kept), each line goes
 * through smtpc_parse_line() and, when valid, its text through
 * smtpc_parse_status().  Besides crashes it checks what the client
 * relies on: codes are 200-559 with the second digit 0-5, the text
 * points into the line right after the code and separator, lines with
 * CR or NUL are refused, and a status is "c.s.d" of the reply's class,
 * at most 9 bytes, followed by a space or the end.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_smtpc_status(int code, const char *text)
{
	char st[16];
	size_t len, dots = 0;

	memset(st, 'z', sizeof(st));
	if (!smtpc_parse_status(code, text, st))
		return;
	len = strlen(st);
	xassert(len >= 5 && len <= 9);
	xassert(st[0] == '0' + code / 100 && st[1] == '.');
	xassert(code / 100 == 2 || code / 100 == 4 || code / 100 == 5);
	for (size_t i = 0; i < len; i++) {
		xassert((st[i] >= '0' && st[i] <= '9') || st[i] == '.');
		dots += st[i] == '.';
	}
	xassert(dots == 2 && st[len - 1] != '.');
	xassert(memcmp(st, text, len) == 0);
	xassert(text[len] == '\0' || text[len] == ' ');
}

static void
fuzz_smtpc_line(const char *line, size_t len)
{
	const char *text = NULL;
	bool last = false;
	int code = 0;

	if (smtpc_parse_line(line, len, &code, &last, &text) < 0) {
		xassert(len < 3 || memchr(line, '\0', len) != NULL ||
		    memchr(line, '\r', len) != NULL ||
		    line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '5' || line[2] < '0' || line[2] > '9' ||
		    (len > 3 && line[3] != ' ' && line[3] != '-'));
		return;
	}
	xassert(code >= 200 && code <= 559 && (code / 10) % 10 <= 5);
	xassert(memchr(line, '\0', len) == NULL &&
	    memchr(line, '\r', len) == NULL);
	xassert(text == line + (len == 3 ? 3 : 4));
	xassert(last == (len == 3 || line[3] == ' '));
	fuzz_smtpc_status(code, text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t len = (lf != NULL ? lf : end) - p;
		char *line;

		if (len > 0 && p[len - 1] == '\r' && lf != NULL)
			len--;
		line = xmalloc(len + 1);
		memcpy(line, p, len);
		line[len] = '\0';
		fuzz_smtpc_line(line, len);
		x_free(&line);
		p = lf != NULL ? lf + 1 : end;
	}
	return 0;
}
