/*
 * proxy.h - pure parser for the haproxy PROXY protocol header (versions 1
 * and 2) that a trusted load balancer sends before the client's first byte.
 * No I/O: the listener feeds the bytes it has read so far and learns
 * whether the header is complete, still partial, or garbage.
 * Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
 */
#ifndef MAILFORT_NET_PROXY_H
#define MAILFORT_NET_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"

/* v1 (spec §2.1): the whole line, "PROXY ... \r\n" included. */
#define PROXY_V1_MAX_LEN 107
/* v2 (spec §2.2): fixed part (signature, ver/cmd, fam, length). */
#define PROXY_V2_HDR_LEN 16
/* v2: largest address block + TLVs we accept after the fixed part. */
#define PROXY_V2_MAX_PAYLOAD 1024
/* v2: cap of the total header, fixed part included. */
#define PROXY_V2_MAX_LEN (PROXY_V2_HDR_LEN + PROXY_V2_MAX_PAYLOAD)
/* Bytes to read before proxy_parse() must have answered 1 or -1. */
#define PROXY_MAX_LEN PROXY_V2_MAX_LEN

struct proxy_info {
	/* LOCAL or UNKNOWN: keep the socket's own addresses. */
	bool local;
	/* Valid when !local: AF_INET or AF_INET6, ports filled in. */
	struct sockaddr_storage src, dst;
	socklen_t src_len, dst_len;
};

/*
 * Parses a PROXY header at the start of data.  Returns 1 with *info_r and
 * *consumed_r (header length; the client's bytes follow) when a complete
 * valid header starts data; 0 when data is a valid prefix of a header but
 * incomplete (read more; never happens past PROXY_MAX_LEN bytes); -1 when
 * it is not a valid header or exceeds the limits above.  Never reads past
 * len.  *info_r and *consumed_r are written only when 1 is returned.
 *
 * Strict by design, the peer is a proxy we configured: v1 wants single
 * spaces, inet_pton-clean addresses, decimal ports 0-65535 without sign
 * or leading zeros, and CRLF exactly; v2 wants version 2, command LOCAL
 * or PROXY, TCP over IPv4/IPv6 (or UNSPEC, treated as LOCAL), an address
 * block as long as its family needs, and well-formed TLVs (skipped).
 */
int proxy_parse(const uint8_t *data, size_t len, struct proxy_info *info_r,
		size_t *consumed_r) MF_WUR;

#endif
