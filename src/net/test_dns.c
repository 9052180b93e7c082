/*
 * test_dns.c - unit tests for dns.c that need no DNS server: address
 * literals and numeric hosts, name checks, callbacks only from the loop,
 * cancel and free with lookups outstanding (against a resolver that
 * never answers), and dns_new() errors.  tests/test_dns.py resolves
 * real zones served by NSD.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/test.h"
#include "net/net.h"

struct test_dns_got {
	int calls;
	struct dns_mx *res;
};

static struct event_base *test_dns_base;

static void
test_dns_cb(void *arg, struct dns_mx *res)
{
	struct test_dns_got *got = arg;

	got->calls++;
	dns_mx_free(&got->res);
	got->res = res;
	event_base_loopbreak(test_dns_base);
}

static void
test_dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(test_dns_base);
}

/* Runs the loop until a callback or msecs pass. */
static void
test_dns_run(unsigned msecs)
{
	struct timeval tv = { msecs / 1000, (msecs % 1000) * 1000 };
	struct event *ev = evtimer_new(test_dns_base, test_dns_on_timer, NULL);

	if (ev == NULL || evtimer_add(ev, &tv) < 0)
		panic("evtimer");
	event_base_dispatch(test_dns_base);
	event_free(ev);
}

static const char *
test_dns_addr(const struct dns_addr *a, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET && a->len == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const void *)&a->ss;

		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		snprintf(out, size, "%s:%u", text, ntohs(sin->sin_port));
	} else if (a->ss.ss_family == AF_INET6 &&
	    a->len == sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const void *)&a->ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		snprintf(out, size, "[%s]:%u", text, ntohs(sin6->sin6_port));
	} else {
		snprintf(out, size, "?");
	}
	return out;
}

struct test_dns_case {
	bool host;		/* dns_resolve_host() */
	const char *name;
	enum dns_status status;
	const char *addr;	/* the one address when OK */
};

/* Answered without any DNS traffic. */
static const struct test_dns_case test_dns_cases[] = {
	{ false, "[192.0.2.1]", DNS_OK, "192.0.2.1:2525" },
	{ false, "[IPv6:2001:DB8::1]", DNS_OK, "[2001:db8::1]:2525" },
	{ false, "[ipv6:::1]", DNS_OK, "[::1]:2525" },
	{ false, "[IPv6:192.0.2.1]", DNS_NOT_FOUND, NULL },
	{ false, "[2001:db8::1]", DNS_NOT_FOUND, NULL },
	{ false, "[192.0.2.256]", DNS_NOT_FOUND, NULL },
	{ false, "[]", DNS_NOT_FOUND, NULL },
	{ false, "[192.0.2.1", DNS_NOT_FOUND, NULL },
	{ false, "[192.0.2.1]x", DNS_NOT_FOUND, NULL },
	{ false, "", DNS_NOT_FOUND, NULL },
	{ false, ".", DNS_NOT_FOUND, NULL },
	{ false, "a..example", DNS_NOT_FOUND, NULL },
	{ false, ".example", DNS_NOT_FOUND, NULL },
	{ false, "-a.example", DNS_NOT_FOUND, NULL },
	{ false, "a-.example", DNS_NOT_FOUND, NULL },
	{ false, "a_b.example", DNS_NOT_FOUND, NULL },
	{ false, "a b.example", DNS_NOT_FOUND, NULL },
	/* U+2024 makes no valid IDN; \xff\xfe is no UTF-8 */
	{ false, "ex\xe2\x80\xa4mple.example", DNS_NOT_FOUND, NULL },
	{ false, "ex\xff\xfemple.example", DNS_NOT_FOUND, NULL },
	{ false, "a\r\nb.example", DNS_NOT_FOUND, NULL },
	{ true, "192.0.2.7", DNS_OK, "192.0.2.7:2525" },
	{ true, "::1", DNS_OK, "[::1]:2525" },
	{ true, "[192.0.2.7]", DNS_OK, "192.0.2.7:2525" },
	{ true, "[::1]", DNS_OK, "[::1]:2525" },
	{ true, "[IPv6:::1]", DNS_OK, "[::1]:2525" },
	{ true, "[::1", DNS_NOT_FOUND, NULL },
	{ true, "bad..name", DNS_NOT_FOUND, NULL },
};

static void
test_dns_case(struct dns *d, const struct test_dns_case *tc)
{
	struct test_dns_got got = { 0 };
	struct dns_query *q;
	char a[80];

	q = tc->host ? dns_resolve_host(d, tc->name, 2525, test_dns_cb, &got) :
	    dns_resolve_mx(d, tc->name, 2525, test_dns_cb, &got);
	TEST_TRUE(q != NULL);
	TEST_CHECK(got.calls == 0, "%s: callback inside the call", tc->name);
	test_dns_run(2000);
	TEST_CHECK(got.calls == 1, "%s: %d callbacks", tc->name, got.calls);
	if (got.res == NULL)
		return;
	TEST_CHECK(got.res->status == tc->status, "%s: status %d, want %d",
	    tc->name, got.res->status, tc->status);
	if (tc->status == DNS_OK && got.res->nhosts == 1 &&
	    got.res->hosts[0].naddrs == 1) {
		TEST_STR(test_dns_addr(&got.res->hosts[0].addrs[0], a,
		    sizeof(a)), tc->addr);
		TEST_INT(got.res->secure, false);
		TEST_INT(got.res->implicit, false);
	} else {
		TEST_CHECK(tc->status != DNS_OK, "%s: bad hosts", tc->name);
		TEST_CHECK(got.res->error != NULL && got.res->error[0] != '\0',
		    "%s: no error text", tc->name);
	}
	dns_mx_free(&got.res);
}

/* A name of len characters made of 63-character labels. */
static void
test_dns_long_names(struct dns *d)
{
	char name[300];
	struct test_dns_got got = { 0 };
	struct dns_query *q;

	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[254] = '\0';	/* 254 characters: too long */
	q = dns_resolve_mx(d, name, 25, test_dns_cb, &got);
	test_dns_run(2000);
	TEST_INT(got.calls, 1);
	TEST_INT(got.res != NULL ? (int)got.res->status : -1, DNS_NOT_FOUND);
	dns_mx_free(&got.res);
	/* a 64-character label */
	memset(name, 'b', 64);
	str_lcpy(name + 64, ".example", sizeof(name) - 64);
	got.calls = 0;
	q = dns_resolve_mx(d, name, 25, test_dns_cb, &got);
	(void)q;
	test_dns_run(2000);
	TEST_INT(got.calls, 1);
	TEST_INT(got.res != NULL ? (int)got.res->status : -1, DNS_NOT_FOUND);
	dns_mx_free(&got.res);
}

/* Cancelled queries never call back, answered or outstanding. */
static void
test_dns_cancel(struct dns *d)
{
	struct test_dns_got got = { 0 };
	struct dns_query *q;

	q = dns_resolve_mx(d, "[192.0.2.1]", 25, test_dns_cb, &got);
	dns_cancel(&q);
	TEST_TRUE(q == NULL);
	q = dns_resolve_mx(d, "remote.example", 25, test_dns_cb, &got);
	test_dns_run(300);
	TEST_INT(got.calls, 0);
	dns_cancel(&q);
	TEST_TRUE(q == NULL);
	dns_cancel(&q);		/* NULL is fine */
	q = dns_resolve_host(d, "mx.remote.example", 25, test_dns_cb, &got);
	dns_cancel(&q);
	test_dns_run(500);
	TEST_INT(got.calls, 0);
}

/* IPv6 off: IPv6 literals are refused, not tried. */
static void
test_dns_no_ipv6(struct config *cfg)
{
	struct test_dns_got got = { 0 };
	const char *err = NULL;
	struct dns *d;
	struct dns_query *q;

	cfg->out_ipv6 = false;
	d = dns_new(test_dns_base, cfg, &err);
	cfg->out_ipv6 = true;
	TEST_TRUE(d != NULL);
	if (d == NULL)
		return;
	q = dns_resolve_mx(d, "[IPv6:2001:db8::1]", 25, test_dns_cb, &got);
	(void)q;
	test_dns_run(2000);
	TEST_INT(got.calls, 1);
	TEST_INT(got.res != NULL ? (int)got.res->status : -1, DNS_NOT_FOUND);
	dns_mx_free(&got.res);
	q = dns_resolve_host(d, "192.0.2.9", 25, test_dns_cb, &got);
	test_dns_run(2000);
	TEST_INT(got.res != NULL ? (int)got.res->status : -1, DNS_OK);
	dns_mx_free(&got.res);
	dns_free(&d);
	TEST_TRUE(d == NULL);
}

static void
test_dns_new_errors(struct config *cfg, const char *garbage)
{
	const char *err = NULL;
	char *res = cfg->dns_resolver, *ta = cfg->dns_trust_anchor;
	struct dns *d;

	cfg->dns_resolver = (char *)"localhost:53";
	d = dns_new(test_dns_base, cfg, &err);
	TEST_TRUE(d == NULL && err != NULL);
	cfg->dns_resolver = res;
	cfg->dns_trust_anchor = (char *)"/nonexistent/ta";
	err = NULL;
	d = dns_new(test_dns_base, cfg, &err);
	TEST_TRUE(d == NULL && err != NULL);
	cfg->dns_trust_anchor = (char *)garbage;
	err = NULL;
	d = dns_new(test_dns_base, cfg, &err);
	TEST_TRUE(d == NULL && err != NULL);
	cfg->dns_trust_anchor = ta;
}

/* Writes text to a new temporary file; returns its path. */
static char *
test_dns_file(const char *text)
{
	char *path = xstrdup("/tmp/mf-test-dns-XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		panic("cannot write %s", path);
	close(fd);
	return path;
}

/* MX rdata as libunbound hands it over, and mail domains. */
static void
test_dns_parsers(void)
{
	static const struct {
		const char *rdata;
		size_t len;
		int rc;
		unsigned pref;
		const char *name;
	} mx[] = {
		{ "\x00\x0a\x03mx1\x06remote\x04test\x00", 19, 1, 10,
		    "mx1.remote.test" },
		{ "\x00\x14\x02MX\x01" "A\x00", 9, 1, 20, "mx.a" },
		{ "\x00\x00\x00", 3, 0, 0, NULL },		/* null MX */
		{ "\x00\x0a", 2, -1, 0, NULL },		/* short */
		{ "\x00\x0a\x03mx1", 6, -1, 0, NULL },	/* no end */
		{ "\x00\x0a\x03m.x\x00", 7, -1, 0, NULL },	/* '.' in label */
		{ "\x00\x0a\x03m\x00x\x00", 7, -1, 0, NULL },	/* NUL */
		{ "\x00\x0a\x03m_x\x00", 7, -1, 0, NULL },	/* not LDH */
		{ "\x00\x0a\x02\xc3\xbc\x00", 6, -1, 0, NULL },	/* 8-bit */
	};
	char out[DNS_NAME_TEXT_MAX + 1];
	unsigned pref;

	for (size_t i = 0; i < MF_ARRAY_LEN(mx); i++) {
		int rc = dns_mx_rdata_parse(mx[i].rdata, mx[i].len, &pref, out);
		TEST_CHECK(rc == mx[i].rc, "mx case %zu: rc %d, want %d", i, rc,
		    mx[i].rc);
		if (rc == 1) {
			TEST_CHECK(pref == mx[i].pref, "mx case %zu: pref %u",
			    i, pref);
			TEST_STR(out, mx[i].name);
		}
	}
	TEST_TRUE(dns_name_normalize("Example.ORG.", out) == NULL);
	TEST_STR(out, "example.org");
	TEST_TRUE(dns_name_normalize("b\xc3\xbc" "cher.test", out) == NULL);
	TEST_STR(out, "xn--bcher-kva.test");
	TEST_TRUE(dns_name_normalize("a..", out) != NULL);
	TEST_TRUE(dns_name_normalize("a..b", out) != NULL);
}

int
main(void)
{
	struct config cfg;
	struct dns *d;
	struct test_dns_got got = { 0 };
	const char *err = NULL;
	char *ta, *garbage, resolver[64];
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int hole;

	test_dns_parsers();
	/* A resolver that never answers: a bound UDP socket nobody reads. */
	hole = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (hole < 0 || bind(hole, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(hole, (struct sockaddr *)&sin, &slen) < 0)
		panic("cannot bind a UDP socket");
	snprintf(resolver, sizeof(resolver), "127.0.0.1:%u",
	    ntohs(sin.sin_port));
	ta = test_dns_file("anchor.invalid. IN DS 12345 13 2 "
	    "00000000000000000000000000000000000000000000000000000000000000"
	    "00\n");
	garbage = test_dns_file("this is not a trust anchor\n");
	memset(&cfg, 0, sizeof(cfg));
	cfg.dns_resolver = resolver;
	cfg.dns_trust_anchor = ta;
	cfg.out_ipv6 = true;
	test_dns_base = event_base_new();
	d = dns_new(test_dns_base, &cfg, &err);
	TEST_CHECK(d != NULL, "dns_new: %s", err ? err : "?");
	if (d == NULL)
		return test_done("dns");
	for (size_t i = 0; i < MF_ARRAY_LEN(test_dns_cases); i++)
		test_dns_case(d, &test_dns_cases[i]);
	test_dns_long_names(d);
	test_dns_cancel(d);
	test_dns_no_ipv6(&cfg);
	test_dns_new_errors(&cfg, garbage);
	/* dns_free() with lookups and an answered query outstanding. */
	(void)dns_resolve_mx(d, "remote.example", 25, test_dns_cb, &got);
	(void)dns_resolve_host(d, "mx.remote.example", 25, test_dns_cb, &got);
	(void)dns_resolve_mx(d, "[192.0.2.1]", 25, test_dns_cb, &got);
	test_dns_run(100);
	TEST_INT(got.calls, 1);		/* the literal */
	dns_mx_free(&got.res);
	(void)dns_resolve_mx(d, "[192.0.2.1]", 25, test_dns_cb, &got);
	dns_free(&d);
	TEST_TRUE(d == NULL);
	test_dns_run(100);
	TEST_INT(got.calls, 1);
	event_base_free(test_dns_base);
	unlink(ta);
	unlink(garbage);
	free(ta);
	free(garbage);
	close(hole);
	return test_done("dns");
}
