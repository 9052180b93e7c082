/*
 * fuzz_dns.c - libFuzzer target for the DNS parsers of src/net/dns.c:
 * MX rdata from the network (dns_mx_rdata_parse) and mail domains from
 * SMTP envelopes (dns_name_normalize, with IDN conversion).  Arbitrary
 * bytes must never crash or over-read; what is accepted must be a valid
 * lower-case LDH host name that normalizes to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_dns_check_name(const char *name)
{
	char again[DNS_NAME_TEXT_MAX + 1];
	size_t len = strlen(name);

	xassert(len > 0 && len <= DNS_NAME_TEXT_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		xassert((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.');
	}
	xassert(dns_name_normalize(name, again) == NULL);
	xassert(strcmp(again, name) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[DNS_NAME_TEXT_MAX + 1];
	unsigned pref = 0;
	char *text;

	/* rdata: an exact-size copy so ASan sees any over-read */
	uint8_t *copy = malloc(size > 0 ? size : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	if (dns_mx_rdata_parse(copy, size, &pref, name) == 1) {
		xassert(pref <= 0xFFFF);
		fuzz_dns_check_name(name);
	}
	free(copy);
	/* the same bytes as a domain from an envelope */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (dns_name_normalize(text, name) == NULL)
		fuzz_dns_check_name(name);
	free(text);
	return 0;
}
