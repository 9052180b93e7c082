/*
 * fuzz_smtp_parse.c - libFuzzer target for the SMTP line parsers.  The
 * first byte picks the parser, the rest is the line (a NUL-terminated
 * copy, NULs inside kept).  Besides crashes it checks what callers rely
 * on: args point into the line, replies are 3-digit lines, and accepted
 * addresses fit the RFC 5321 limits and split at their "@".
 */
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fuzz_smtp_mode {
	FUZZ_SMTP_COMMAND,
	FUZZ_SMTP_MAIL,
	FUZZ_SMTP_RCPT,
	FUZZ_SMTP_RCPT_UTF8,
	FUZZ_SMTP_BDAT,
	FUZZ_SMTP_SPLIT,
	FUZZ_SMTP_MODES,
};

static void
fuzz_smtp_reply(int ret, const char *reply)
{
	if (ret == 0)
		return;
	xassert(ret == -1 && reply != NULL && strlen(reply) > 4);
	xassert(reply[0] >= '4' && reply[0] <= '5' && reply[3] == ' ');
}

/* An accepted address: bounded, domain lower-case, splits at "@". */
static void
fuzz_smtp_addr(const char *addr, bool null_ok)
{
	char local[SMTP_PATH_MAX + 1], domain[SMTP_PATH_MAX + 1];

	xassert(strlen(addr) <= SMTP_PATH_MAX - 2);
	if (addr[0] == '\0') {
		xassert(null_ok);
		return;
	}
	if (strcmp(addr, "postmaster") == 0)
		return;
	xassert(smtp_addr_split(addr, local, sizeof(local), domain,
	    sizeof(domain)) == 0);
	xassert(strlen(local) <= SMTP_LOCAL_MAX);
	xassert(strlen(domain) > 0 && strlen(domain) <= SMTP_DOMAIN_MAX);
	for (const char *p = domain; *p != '\0'; p++)
		xassert(!(*p >= 'A' && *p <= 'Z'));
}

static void
fuzz_smtp_run(enum fuzz_smtp_mode mode, const char *line, size_t len)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	enum smtp_verb verb;
	const char *args, *reply = NULL;
	char local[SMTP_LOCAL_MAX + 1], domain[SMTP_DOMAIN_MAX + 1];
	uint64_t size;
	bool last;
	int ret;

	switch (mode) {
	case FUZZ_SMTP_COMMAND:
		ret = smtp_parse_command(line, len, &verb, &args);
		xassert(ret == 0 || ret == -1);
		xassert(ret == -1 || (args >= line && args <= line + len));
		if (ret == 0 && verb == SMTP_VERB_MAIL)
			fuzz_smtp_reply(smtp_parse_mail(args, &m, &reply),
			    reply);
		break;
	case FUZZ_SMTP_MAIL:
		ret = smtp_parse_mail(line, &m, &reply);
		fuzz_smtp_reply(ret, reply);
		if (ret == 0)
			fuzz_smtp_addr(m.addr, true);
		break;
	case FUZZ_SMTP_RCPT:
	case FUZZ_SMTP_RCPT_UTF8:
		ret = smtp_parse_rcpt(line, mode == FUZZ_SMTP_RCPT_UTF8, &r,
		    &reply);
		fuzz_smtp_reply(ret, reply);
		if (ret == 0)
			fuzz_smtp_addr(r.addr, false);
		break;
	case FUZZ_SMTP_BDAT:
		ret = smtp_parse_bdat(line, &size, &last);
		xassert(ret == 0 || ret == -1);
		break;
	default:
		ret = smtp_addr_split(line, local, sizeof(local), domain,
		    sizeof(domain));
		xassert(ret == 0 || ret == -1);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;

	if (size == 0)
		return 0;
	line = xmalloc(size);	/* size - 1 bytes and the NUL */
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	fuzz_smtp_run((enum fuzz_smtp_mode)(data[0] % FUZZ_SMTP_MODES), line,
	    size - 1);
	x_free(&line);
	return 0;
}
