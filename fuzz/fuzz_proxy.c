/*
 * fuzz_proxy.c - libFuzzer target for proxy_parse(): arbitrary bytes must
 * never crash or over-read, and a header that parses must be "need more"
 * (0) at every one of its strict prefixes and parse the same when cut
 * right after it.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_proxy_check_info(const struct proxy_info *info)
{
	if (info->local)
		return;
	xassert(info->src.ss_family == info->dst.ss_family);
	if (info->src.ss_family == AF_INET)
		xassert(info->src_len == sizeof(struct sockaddr_in) &&
		    info->dst_len == sizeof(struct sockaddr_in));
	else
		xassert(info->src.ss_family == AF_INET6 &&
		    info->src_len == sizeof(struct sockaddr_in6) &&
		    info->dst_len == sizeof(struct sockaddr_in6));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info info, again;
	size_t consumed = 0, consumed2 = 0;
	/* An exact-size copy, so ASan sees any read past len. */
	uint8_t *buf = xmalloc(size > 0 ? size : 1);
	int ret;

	memcpy(buf, data, size);
	ret = proxy_parse(buf, size, &info, &consumed);
	xassert(ret >= -1 && ret <= 1);
	if (ret == 0)
		xassert(size < PROXY_MAX_LEN);
	if (ret == 1) {
		xassert(consumed > 0 && consumed <= size &&
		    consumed <= PROXY_MAX_LEN);
		fuzz_proxy_check_info(&info);
		for (size_t n = 0; n < consumed; n++)
			xassert(proxy_parse(buf, n, &again, &consumed2) == 0);
		xassert(proxy_parse(buf, consumed, &again, &consumed2) == 1);
		xassert(consumed2 == consumed && again.local == info.local);
		xassert(memcmp(&again.src, &info.src, sizeof(info.src)) == 0);
		xassert(memcmp(&again.dst, &info.dst, sizeof(info.dst)) == 0);
	}
	x_free(&buf);
	return 0;
}
