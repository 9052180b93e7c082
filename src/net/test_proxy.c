/*
 * test_proxy.c - unit tests for the PROXY protocol parser: table of valid
 * and hostile headers, v1 and v2, each also fed byte by byte.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"
#include "core/test.h"

/* "1.2.3.4:80" or "[::1]:80" for the comparisons below. */
static const char *
test_proxy_addr(const struct sockaddr_storage *ss, socklen_t len,
		char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET && len == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const void *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
		snprintf(out, size, "%s:%u", text, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6 &&
	    len == sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
		snprintf(out, size, "[%s]:%u", text, ntohs(sin6->sin6_port));
	} else {
		snprintf(out, size, "?");
	}
	return out;
}

struct test_proxy_case {
	const char *data;
	size_t len;		/* 0: strlen(data) */
	int ret;		/* result on the whole input */
	size_t consumed;	/* when ret == 1 */
	const char *src;	/* NULL: local */
	const char *dst;
};

#define V2SIG "\r\n\r\n\0\r\nQUIT\n"
#define B(s) s, sizeof(s) - 1

static const struct test_proxy_case test_proxy_cases[] = {
	/* ---- v1 valid ---- */
	{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n", 0, 1, 44,
	  "192.0.2.1:56324", "198.51.100.2:25" },
	{ "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", 0, 1, 44,
	  "0.0.0.0:0", "255.255.255.255:65535" },
	{ "PROXY TCP6 2001:db8::1 ::1 1 587\r\nEHLO x\r\n", 0, 1, 34,
	  "[2001:db8::1]:1", "[::1]:587" },
	{ "PROXY TCP6 ::ffff:192.0.2.1 2001:DB8::2 1 2\r\n", 0, 1, 45,
	  "[::ffff:192.0.2.1]:1", "[2001:db8::2]:2" },
	{ "PROXY UNKNOWN\r\n", 0, 1, 15, NULL, NULL },
	{ "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
	  0, 1, 59, NULL, NULL },
	/* Longest v1 line: 107 bytes. */
	{ "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	  0, 1, 107, NULL, NULL },
	/* ---- v1 hostile ---- */
	{ "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655356\r\n",
	  0, -1, 0, NULL, NULL },
	{ "PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0, -1, 0, NULL, NULL },
	{ "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP6 ::1 ::g 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY UNKNOWN\n", 0, -1, 0, NULL, NULL },
	{ "PROXY UNKNOWNX\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY UNKNOWN \x01\r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY \r\n", 0, -1, 0, NULL, NULL },
	{ "PROXY\r\n", 0, -1, 0, NULL, NULL },
	{ B("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n"), -1, 0, NULL, NULL },
	{ "EHLO example.org\r\n", 0, -1, 0, NULL, NULL },
	{ "GET / HTTP/1.0\r\n", 0, -1, 0, NULL, NULL },
	{ "\r\n", 0, 0, 0, NULL, NULL },	/* v2 signature so far */
	{ "\r\n\r\n\r", 0, -1, 0, NULL, NULL },
	/* ---- v2 valid ---- */
	{ B(V2SIG "\x21\x11\x00\x0c" "\xc0\x00\x02\x01" "\xc6\x33\x64\x02"
	    "\xdc\x04" "\x00\x19"), 1, 28,
	  "192.0.2.1:56324", "198.51.100.2:25" },
	{ B(V2SIG "\x21\x21\x00\x24"
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" "\x00\x01" "\x02\x4b"
	    "SMTP"), 1, 52, "[2001:db8::1]:1", "[::1]:587" },
	/* TLVs: ALPN "smtp", NOOP empty; skipped. */
	{ B(V2SIG "\x21\x11\x00\x16" "\x01\x02\x03\x04" "\x05\x06\x07\x08"
	    "\x00\x01" "\x00\x02" "\x01\x00\x04smtp" "\x04\x00\x00"), 1, 38,
	  "1.2.3.4:1", "5.6.7.8:2" },
	/* LOCAL: health check, block ignored whatever its family. */
	{ B(V2SIG "\x20\x00\x00\x00"), 1, 16, NULL, NULL },
	{ B(V2SIG "\x20\x11\x00\x03" "abc"), 1, 19, NULL, NULL },
	{ B(V2SIG "\x20\x77\x00\x01" "\xff" "EHLO"), 1, 17, NULL, NULL },
	/* PROXY with UNSPEC: keep the socket's addresses. */
	{ B(V2SIG "\x21\x00\x00\x00"), 1, 16, NULL, NULL },
	/* ---- v2 hostile ---- */
	{ B("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c"), -1, 0, NULL, NULL },
	{ B("\r\nEHLO"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x11\x11\x00\x0c"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x31\x11\x00\x0c"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x22\x11\x00\x0c"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x2f\x11\x00\x0c"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x21\x12\x00\x0c"), -1, 0, NULL, NULL },	/* UDP4 */
	{ B(V2SIG "\x21\x22\x00\x24"), -1, 0, NULL, NULL },	/* UDP6 */
	{ B(V2SIG "\x21\x31\x00\xd8"), -1, 0, NULL, NULL },	/* UNIX */
	{ B(V2SIG "\x21\x01\x00\x0c"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x21\x10\x00\x0c"), -1, 0, NULL, NULL },
	/* Address block shorter than the family needs. */
	{ B(V2SIG "\x21\x11\x00\x0b"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x21\x21\x00\x0c"), -1, 0, NULL, NULL },
	/* Over PROXY_V2_MAX_PAYLOAD: refused before reading it. */
	{ B(V2SIG "\x21\x11\x04\x01"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x20\x00\xff\xff"), -1, 0, NULL, NULL },
	/* Broken TLVs: short header, length past the end. */
	{ B(V2SIG "\x21\x11\x00\x0e" "\x01\x02\x03\x04" "\x05\x06\x07\x08"
	    "\x00\x01" "\x00\x02" "\x01\x00"), -1, 0, NULL, NULL },
	{ B(V2SIG "\x21\x11\x00\x10" "\x01\x02\x03\x04" "\x05\x06\x07\x08"
	    "\x00\x01" "\x00\x02" "\x01\x00\x02" "a"), -1, 0, NULL, NULL },
};

static void
test_proxy_check(const struct test_proxy_case *tc, size_t len, size_t idx)
{
	struct proxy_info info;
	size_t consumed = 0;
	char a[128];
	int ret;

	memset(&info, 0xaa, sizeof(info));
	ret = proxy_parse((const uint8_t *)tc->data, len, &info, &consumed);
	TEST_CHECK(ret == tc->ret, "case %zu: ret %d, want %d", idx, ret,
	    tc->ret);
	if (ret != 1 || tc->ret != 1)
		return;
	TEST_INT(consumed, tc->consumed);
	TEST_INT(info.local, tc->src == NULL);
	if (tc->src == NULL)
		return;
	TEST_STR(test_proxy_addr(&info.src, info.src_len, a, sizeof(a)),
	    tc->src);
	TEST_STR(test_proxy_addr(&info.dst, info.dst_len, a, sizeof(a)),
	    tc->dst);
}

/*
 * Every strict prefix of a valid header is "need more"; for a hostile one
 * the answers go 0...0 then -1 for good, never 1.
 */
static void
test_proxy_prefixes(const struct test_proxy_case *tc, size_t len,
		    size_t idx)
{
	struct proxy_info info;
	size_t consumed, end = tc->ret == 1 ? tc->consumed : len;
	bool failed = false;

	for (size_t n = 0; n < end; n++) {
		int ret = proxy_parse((const uint8_t *)tc->data, n, &info,
		    &consumed);

		if (tc->ret == 1) {
			TEST_CHECK(ret == 0, "case %zu prefix %zu: ret %d",
			    idx, n, ret);
			continue;
		}
		TEST_CHECK(ret != 1 && !(failed && ret == 0),
		    "case %zu prefix %zu: ret %d", idx, n, ret);
		if (ret < 0)
			failed = true;
	}
}

static void
test_proxy_table(void)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(test_proxy_cases); i++) {
		const struct test_proxy_case *tc = &test_proxy_cases[i];
		size_t len = tc->len != 0 ? tc->len : strlen(tc->data);

		test_proxy_check(tc, len, i);
		test_proxy_prefixes(tc, len, i);
	}
}

/* Byte-by-byte feeding into a growing buffer, as a listener would. */
static void
test_proxy_feed(void)
{
	static const char hdr[] = "PROXY TCP4 10.0.0.1 10.0.0.2 1234 25\r\n";
	uint8_t *buf = NULL;
	struct proxy_info info;
	size_t consumed = 0, n;
	int ret = 0;

	for (n = 1; n <= sizeof(hdr) - 1 && ret == 0; n++) {
		buf = realloc(buf, n);
		TEST_TRUE(buf != NULL);
		if (buf == NULL)
			return;
		buf[n - 1] = (uint8_t)hdr[n - 1];
		ret = proxy_parse(buf, n, &info, &consumed);
	}
	TEST_INT(ret, 1);
	TEST_INT(n - 1, sizeof(hdr) - 1);
	TEST_INT(consumed, sizeof(hdr) - 1);
	free(buf);
}

/* The limits: v1 over 107 bytes, v2 exactly at and past the cap. */
static void
test_proxy_limits(void)
{
	static uint8_t v2[PROXY_V2_MAX_LEN + 1];
	char v1[PROXY_V1_MAX_LEN + 8];
	struct proxy_info info;
	size_t consumed = 0;
	size_t payload = PROXY_V2_MAX_PAYLOAD;

	/* 108 bytes of "PROXY UNKNOWN xxx...\r\n" */
	memset(v1, 'x', sizeof(v1));
	memcpy(v1, "PROXY UNKNOWN ", 14);
	memcpy(v1 + PROXY_V1_MAX_LEN - 1, "\r\n", 2);
	TEST_INT(proxy_parse((uint8_t *)v1, PROXY_V1_MAX_LEN + 1, &info,
	    &consumed), -1);
	memcpy(v1 + PROXY_V1_MAX_LEN - 2, "\r\n", 2);
	TEST_INT(proxy_parse((uint8_t *)v1, PROXY_V1_MAX_LEN, &info,
	    &consumed), 1);
	TEST_INT(consumed, PROXY_V1_MAX_LEN);

	/* v2 TCP4 whose TLV (NOOP) fills the payload up to the cap. */
	memcpy(v2, V2SIG "\x21\x11", 14);
	v2[14] = (uint8_t)(payload >> 8);
	v2[15] = (uint8_t)payload;
	v2[28] = 0x04;
	v2[29] = (uint8_t)((payload - 15) >> 8);
	v2[30] = (uint8_t)(payload - 15);
	TEST_INT(proxy_parse(v2, PROXY_V2_MAX_LEN - 1, &info, &consumed), 0);
	TEST_INT(proxy_parse(v2, sizeof(v2), &info, &consumed), 1);
	TEST_INT(consumed, PROXY_V2_MAX_LEN);
	TEST_INT(info.local, false);
	payload++;
	v2[14] = (uint8_t)(payload >> 8);
	v2[15] = (uint8_t)payload;
	TEST_INT(proxy_parse(v2, 16, &info, &consumed), -1);
}

int
main(void)
{
	test_proxy_table();
	test_proxy_feed();
	test_proxy_limits();
	return test_done("proxy");
}
