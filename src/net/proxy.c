/*
 * proxy.c - pure parser for the haproxy PROXY protocol, v1 (text) and v2
 * (binary).  Section numbers below refer to proxy-protocol.txt.  Prefixes
 * are checked as they arrive, so garbage is refused at its first bad byte
 * instead of after PROXY_MAX_LEN bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "net/proxy.h"

/* §2.1: "PROXY" and a single space open every v1 line. */
#define PROXY_V1_MAGIC "PROXY "
#define PROXY_V1_MAGIC_LEN (sizeof(PROXY_V1_MAGIC) - 1)
/* §2.1: the longest line has 105 bytes before CRLF. */
#define PROXY_V1_LINE_MAX (PROXY_V1_MAX_LEN - 2)
/* Fields after "PROXY ": proto, src, dst, sport, dport. */
#define PROXY_V1_FIELDS 5
/* §2.1: "255.255.255.255" */
#define PROXY_V1_ADDR4_MAX 15
/* INET6_ADDRSTRLEN - 1: "ffff:...:255.255.255.255" */
#define PROXY_V1_ADDR6_MAX 45
/* "65535" */
#define PROXY_V1_PORT_DIGITS 5
#define PROXY_PORT_MAX 65535

/* §2.2: the 12-byte signature of v2. */
static const uint8_t proxy_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
#define PROXY_V2_VERSION 0x20		/* high nibble of byte 13 */
#define PROXY_V2_CMD_LOCAL 0x00		/* low nibble of byte 13 */
#define PROXY_V2_CMD_PROXY 0x01
#define PROXY_V2_FAM_UNSPEC 0x00	/* byte 14 */
#define PROXY_V2_FAM_TCP4 0x11
#define PROXY_V2_FAM_TCP6 0x21
#define PROXY_V2_ADDR4_LEN 12		/* §2.2: 2 * 4 + 2 * 2 */
#define PROXY_V2_ADDR6_LEN 36		/* §2.2: 2 * 16 + 2 * 2 */
#define PROXY_V2_TLV_HDR_LEN 3		/* §2.2.7: type, length_hi, lo */

/* ---- v1 ---- */

struct proxy_v1_proto {
	const char *name;
	int family;		/* AF_UNSPEC: UNKNOWN */
};

static const struct proxy_v1_proto proxy_v1_protos[] = {
	{ "TCP4", AF_INET },
	{ "TCP6", AF_INET6 },
	{ "UNKNOWN", AF_UNSPEC },
};

/* A prefix of a known protocol name (partial) or the name (complete). */
static const struct proxy_v1_proto *
proxy_v1_proto_find(const char *tok, size_t len, bool partial)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(proxy_v1_protos); i++) {
		const struct proxy_v1_proto *p = &proxy_v1_protos[i];
		size_t n = strlen(p->name);

		if ((len == n || (partial && len < n)) &&
		    memcmp(tok, p->name, len) == 0)
			return p;
	}
	return NULL;
}

static void
proxy_set_port(struct sockaddr_storage *ss, int family, uint16_t port_be)
{
	if (family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port_be;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port_be;
}

/* §2.1: an address in its family's canonical text form. */
static int
proxy_v1_addr(const char *tok, size_t len, bool partial, int family,
	      struct sockaddr_storage *ss, socklen_t *ss_len_r)
{
	size_t max = family == AF_INET ? PROXY_V1_ADDR4_MAX :
	    PROXY_V1_ADDR6_MAX;
	char text[PROXY_V1_ADDR6_MAX + 1];

	if (len > max)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = tok[i];
		bool ok = (c >= '0' && c <= '9') || c == '.' ||
		    (family == AF_INET6 && (c == ':' ||
		    (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
		if (!ok)
			return -1;
	}
	if (partial)
		return 0;
	memcpy(text, tok, len);
	text[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		*ss_len_r = sizeof(*sin);
		return inet_pton(AF_INET, text, &sin->sin_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		*ss_len_r = sizeof(*sin6);
		return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ?
		    0 : -1;
	}
}

/* §2.1: decimal 0-65535, no sign, no leading zero. */
static int
proxy_v1_port(const char *tok, size_t len, bool partial, uint16_t *port_r)
{
	uint32_t v = 0;

	if (len > PROXY_V1_PORT_DIGITS || (len == 0 && !partial))
		return -1;
	if (len > 1 && tok[0] == '0')
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(tok[i] - '0');
	}
	if (v > PROXY_PORT_MAX)
		return -1;
	*port_r = htons((uint16_t)v);
	return 0;
}

/* §2.1: after "PROXY UNKNOWN", anything printable up to CRLF. */
static int
proxy_v1_unknown_rest(const char *p, size_t len)
{
	if (len == 0)
		return 0;
	if (p[0] != ' ')
		return -1;
	for (size_t i = 1; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return -1;
	return 0;
}

struct proxy_v1_ctx {
	const struct proxy_v1_proto *proto;
	struct proxy_info info;
	uint16_t sport, dport;
};

/* Field idx (0 = proto) of the line; partial when more bytes may follow. */
static int
proxy_v1_field(struct proxy_v1_ctx *ctx, unsigned idx, const char *tok,
	       size_t len, bool partial)
{
	struct proxy_info *info = &ctx->info;
	int family = ctx->proto != NULL ? ctx->proto->family : AF_UNSPEC;

	switch (idx) {
	case 0:
		ctx->proto = proxy_v1_proto_find(tok, len, partial);
		return ctx->proto != NULL ? 0 : -1;
	case 1:
		return proxy_v1_addr(tok, len, partial, family, &info->src,
		    &info->src_len);
	case 2:
		return proxy_v1_addr(tok, len, partial, family, &info->dst,
		    &info->dst_len);
	case 3:
		return proxy_v1_port(tok, len, partial, &ctx->sport);
	case 4:
		return proxy_v1_port(tok, len, partial, &ctx->dport);
	default:
		return -1;
	}
}

/*
 * Checks the fields in p[0..len), the line after "PROXY " up to (not
 * including) CR; complete says whether CR was seen.
 */
static int
proxy_v1_fields(struct proxy_v1_ctx *ctx, const char *p, size_t len,
		bool complete)
{
	unsigned idx = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		bool last = i == len;

		if (!last && p[i] != ' ')
			continue;
		if (idx >= PROXY_V1_FIELDS || (i == start && !last) ||
		    proxy_v1_field(ctx, idx, p + start, i - start,
		    last && !complete) < 0)
			return -1;
		if (idx == 0 && !(last && !complete) &&
		    ctx->proto->family == AF_UNSPEC)
			return proxy_v1_unknown_rest(p + i, len - i);
		idx++;
		start = i + 1;
	}
	return complete && idx != PROXY_V1_FIELDS ? -1 : 0;
}

static int
proxy_v1_parse(const uint8_t *data, size_t len, struct proxy_info *info_r,
	       size_t *consumed_r)
{
	struct proxy_v1_ctx ctx;
	size_t scan = len < PROXY_V1_LINE_MAX + 1 ? len : PROXY_V1_LINE_MAX + 1;
	const uint8_t *cr;
	size_t line_len;

	if (memcmp(data, PROXY_V1_MAGIC, scan < PROXY_V1_MAGIC_LEN ? scan :
	    PROXY_V1_MAGIC_LEN) != 0)
		return -1;
	if (scan < PROXY_V1_MAGIC_LEN)
		return 0;
	cr = memchr(data, '\r', scan);
	if (cr == NULL && len > PROXY_V1_LINE_MAX)
		return -1;
	line_len = cr != NULL ? (size_t)(cr - data) : scan;
	if (line_len > PROXY_V1_LINE_MAX)
		return -1;
	memset(&ctx, 0, sizeof(ctx));
	if (proxy_v1_fields(&ctx, (const char *)data + PROXY_V1_MAGIC_LEN,
	    line_len - PROXY_V1_MAGIC_LEN, cr != NULL) < 0)
		return -1;
	if (cr == NULL || line_len + 1 == len)
		return 0;
	if (data[line_len + 1] != '\n')
		return -1;
	if (ctx.proto->family == AF_UNSPEC) {
		ctx.info.local = true;
	} else {
		proxy_set_port(&ctx.info.src, ctx.proto->family, ctx.sport);
		proxy_set_port(&ctx.info.dst, ctx.proto->family, ctx.dport);
	}
	*info_r = ctx.info;
	*consumed_r = line_len + 2;
	return 1;
}

/* ---- v2 ---- */

/* §2.2.7: TLVs must tile the rest of the header exactly. */
static int
proxy_v2_tlvs(const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t tlv_len;

		if (len < PROXY_V2_TLV_HDR_LEN)
			return -1;
		tlv_len = ((size_t)p[1] << 8) | p[2];
		if (tlv_len > len - PROXY_V2_TLV_HDR_LEN)
			return -1;
		p += PROXY_V2_TLV_HDR_LEN + tlv_len;
		len -= PROXY_V2_TLV_HDR_LEN + tlv_len;
	}
	return 0;
}

/* §2.2: the address block of TCP over IPv4 or IPv6. */
static void
proxy_v2_addrs(const uint8_t *p, int family, struct proxy_info *info)
{
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&info->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&info->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, p, 4);
		memcpy(&d->sin_addr, p + 4, 4);
		memcpy(&s->sin_port, p + 8, 2);
		memcpy(&d->sin_port, p + 10, 2);
		info->src_len = info->dst_len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, p, 16);
		memcpy(&d->sin6_addr, p + 16, 16);
		memcpy(&s->sin6_port, p + 32, 2);
		memcpy(&d->sin6_port, p + 34, 2);
		info->src_len = info->dst_len = sizeof(*s);
	}
}

/*
 * §2.2: LOCAL ignores the family byte; PROXY needs TCP over IPv4 or IPv6,
 * or UNSPEC (keep the socket's addresses).  Returns AF_* or -1.
 */
static int
proxy_v2_family(uint8_t cmd, uint8_t fam, size_t *addr_len_r)
{
	*addr_len_r = 0;
	if (cmd == PROXY_V2_CMD_LOCAL || fam == PROXY_V2_FAM_UNSPEC)
		return AF_UNSPEC;
	if (fam == PROXY_V2_FAM_TCP4) {
		*addr_len_r = PROXY_V2_ADDR4_LEN;
		return AF_INET;
	}
	if (fam == PROXY_V2_FAM_TCP6) {
		*addr_len_r = PROXY_V2_ADDR6_LEN;
		return AF_INET6;
	}
	return -1;
}

static int
proxy_v2_parse(const uint8_t *data, size_t len, struct proxy_info *info_r,
	       size_t *consumed_r)
{
	struct proxy_info info;
	size_t sig = len < sizeof(proxy_v2_sig) ? len : sizeof(proxy_v2_sig);
	size_t payload, addr_len;
	int family;
	uint8_t cmd;

	if (memcmp(data, proxy_v2_sig, sig) != 0)
		return -1;
	if (len <= sizeof(proxy_v2_sig))
		return 0;
	/* §2.2: byte 13 is version 2 and command LOCAL or PROXY. */
	if ((data[12] & 0xf0) != PROXY_V2_VERSION)
		return -1;
	cmd = data[12] & 0x0f;
	if (cmd != PROXY_V2_CMD_LOCAL && cmd != PROXY_V2_CMD_PROXY)
		return -1;
	if (len < 14)
		return 0;
	if ((family = proxy_v2_family(cmd, data[13], &addr_len)) < 0)
		return -1;
	if (len < PROXY_V2_HDR_LEN)
		return 0;
	payload = ((size_t)data[14] << 8) | data[15];
	if (payload > PROXY_V2_MAX_PAYLOAD || payload < addr_len)
		return -1;
	if (len < PROXY_V2_HDR_LEN + payload)
		return 0;
	/* §2.2: LOCAL and UNSPEC discard the block, so it is not parsed. */
	if (family != AF_UNSPEC && proxy_v2_tlvs(data + PROXY_V2_HDR_LEN +
	    addr_len, payload - addr_len) < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (family == AF_UNSPEC)
		info.local = true;
	else
		proxy_v2_addrs(data + PROXY_V2_HDR_LEN, family, &info);
	*info_r = info;
	*consumed_r = PROXY_V2_HDR_LEN + payload;
	return 1;
}

int
proxy_parse(const uint8_t *data, size_t len, struct proxy_info *info_r,
	    size_t *consumed_r)
{
	if (len == 0)
		return 0;
	if (data[0] == proxy_v2_sig[0])
		return proxy_v2_parse(data, len, info_r, consumed_r);
	return proxy_v1_parse(data, len, info_r, consumed_r);
}
