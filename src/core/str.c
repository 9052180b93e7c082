/*
 * str.c - small string helpers and CIDR lists.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/core.h"

size_t
str_lcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

bool
str_case_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool
str_case_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

char *
str_lower(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

char *
str_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int
str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out_r)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out_r = v;
	return 0;
}

int
str_split_hostport(const char *s, char *host, size_t host_size,
    uint16_t *port_r)
{
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t len;

	if (colon == NULL || colon == s ||
	    str_to_u64(colon + 1, 1, 65535, &port) < 0)
		return -1;
	len = (size_t)(colon - s);
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return -1;
		s++;
		len -= 2;
	} else if (memchr(s, ':', len) != NULL) {
		return -1;		/* a bare IPv6 address */
	}
	if (len == 0 || len >= host_size || memchr(s, ']', len) != NULL ||
	    memchr(s, '[', len) != NULL)
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	*port_r = (uint16_t)port;
	return 0;
}

uint64_t
time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
cidr_parse_one(char *item, struct cidr *c, const char **error_r)
{
	char *slash = strchr(item, '/');
	unsigned maxbits;
	uint64_t prefix;

	if (slash != NULL)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, item, c->addr) == 1) {
		c->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, item, c->addr) == 1) {
		c->family = AF_INET6;
		maxbits = 128;
	} else {
		*error_r = "not an IP address";
		return -1;
	}
	c->prefix = maxbits;
	if (slash != NULL) {
		if (str_to_u64(slash, 0, maxbits, &prefix) < 0) {
			*error_r = "bad prefix length";
			return -1;
		}
		c->prefix = (unsigned)prefix;
	}
	return 0;
}

int
cidr_list_parse(const char *text, struct cidr_list *list_r,
    const char **error_r)
{
	char *copy = xstrdup(text), *save = NULL, *tok;
	struct cidr_list l = { 0 };

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		l.items = xreallocarray(l.items, l.count + 1, sizeof(*l.items));
		if (cidr_parse_one(tok, &l.items[l.count], error_r) < 0) {
			free(copy);
			cidr_list_free(&l);
			return -1;
		}
		l.count++;
	}
	free(copy);
	*list_r = l;
	return 0;
}

void
cidr_list_free(struct cidr_list *list)
{
	x_free(&list->items);
	list->count = 0;
}

static bool
cidr_match_bits(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
cidr_list_match(const struct cidr_list *list, const void *sa_)
{
	const struct sockaddr *sa = sa_;
	uint8_t addr[16];
	int family;

	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa_)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)sa_)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, a6->s6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < list->count; i++) {
		const struct cidr *c = &list->items[i];
		if (c->family == family &&
		    cidr_match_bits(addr, c->addr, c->prefix))
			return true;
	}
	return false;
}
