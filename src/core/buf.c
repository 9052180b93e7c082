/*
 * buf.c - growable byte buffers with an optional hard cap.  The cap is a
 * promise by the caller (readers check room before copying); overrunning
 * it is a bug and panics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_free(struct buf *b)
{
	x_free(&b->data);
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

size_t
buf_room(const struct buf *b)
{
	if (b->max == 0)
		return SIZE_MAX;
	return b->max > b->len ? b->max - b->len : 0;
}

static void
buf_grow(struct buf *b, size_t add)
{
	size_t need, ncap;

	if (add > SIZE_MAX - b->len - 1)
		panic("buf overflow");
	need = b->len + add;
	if (b->max != 0 && need > b->max)
		panic("buf over its cap (%zu > %zu)", need, b->max);
	if (need + 1 <= b->cap)
		return;
	ncap = b->cap < 64 ? 64 : b->cap;
	while (ncap < need + 1)
		ncap = ncap > SIZE_MAX / 2 ? need + 1 : ncap * 2;
	b->data = xreallocarray(b->data, ncap, 1);
	b->cap = ncap;
}

void
buf_add(struct buf *b, const void *data, size_t len)
{
	buf_grow(b, len);
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		panic("buf_printf format");
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_consume(struct buf *b, size_t n)
{
	xassert(n <= b->len);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->data != NULL)
		b->data[b->len] = '\0';
}
