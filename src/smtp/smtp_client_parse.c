/*
 * smtp_client_parse.c - pure parsers for the SMTP client: one reply line
 * (RFC 5321 §4.2) and the enhanced status code at the start of its text
 * (RFC 3463 §2).  Bytes in, result out; no I/O, no allocation.  Fuzzed by
 * fuzz/fuzz_smtp_client.c.
 */
#include <string.h>

#include "smtp/smtp.h"

/* RFC 3463 §2: subject and detail have at most three digits each. */
#define SMTPC_STATUS_PART_MAX 3

/*
 * RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 * Reply-code [ SP textstring ] CRLF, the code 2-5, 0-5, 0-9.  A CR or
 * NUL inside the line is refused: the text ends up in logs and DSNs.
 */
int
smtpc_parse_line(const char *line, size_t len, int *code_r, bool *last_r,
    const char **text_r)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '5' || line[2] < '0' || line[2] > '9')
		return -1;
	for (size_t i = 3; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return -1;
	*code_r = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
	    (line[2] - '0');
	if (len == 3) {
		*last_r = true;
		*text_r = line + 3;
		return 0;
	}
	if (line[3] != ' ' && line[3] != '-')
		return -1;
	*last_r = line[3] == ' ';
	*text_r = line + 4;
	return 0;
}

/* Digits at s (1 to max of them); returns their count or 0. */
static size_t
smtpc_status_digits(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] >= '0' && s[n] <= '9')
		n++;
	return n >= 1 && n <= max ? n : 0;
}

/*
 * RFC 3463 §2: status-code = class "." subject "." detail, class the
 * same as the reply's first digit (2, 4 or 5), subject and detail one to
 * three digits, then a space or the end of the text.
 */
bool
smtpc_parse_status(int code, const char *text, char out[16])
{
	size_t a, b, len;

	if (code < 200 || code > 599 || (code / 100 != 2 && code / 100 != 4 &&
	    code / 100 != 5))
		return false;
	if (text[0] != '0' + code / 100 || text[1] != '.')
		return false;
	if ((a = smtpc_status_digits(text + 2, SMTPC_STATUS_PART_MAX)) == 0 ||
	    text[2 + a] != '.')
		return false;
	b = smtpc_status_digits(text + 3 + a, SMTPC_STATUS_PART_MAX);
	if (b == 0)
		return false;
	len = 3 + a + b;
	if (text[len] != '\0' && text[len] != ' ')
		return false;
	memcpy(out, text, len);	/* at most 1 + 1 + 3 + 1 + 3 = 9 bytes */
	out[len] = '\0';
	return true;
}
