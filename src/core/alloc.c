/*
 * alloc.c - allocation wrappers: zero-filled, never NULL.  Out of memory
 * and size overflow are not recoverable for a mail server process; the
 * master restarts the child.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void *
xmalloc(size_t size)
{
	return xcalloc(1, size);
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if (n == 0 || size == 0)
		n = size = 1;
	p = calloc(n, size);
	if (p == NULL)
		fatalx("out of memory (%zu x %zu)", n, size);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void *np;

	if (n == 0 || size == 0)
		n = size = 1;
	if (size > SIZE_MAX / n)
		fatalx("allocation overflow (%zu x %zu)", n, size);
	np = realloc(p, n * size);
	if (np == NULL)
		fatalx("out of memory (%zu x %zu)", n, size);
	return np;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX)
		fatalx("allocation overflow");
	p = xmalloc(n + 1);
	memcpy(p, s, strnlen(s, n));
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("out of memory (asprintf)");
	return p;
}

void
x_wipe(void *p, size_t len)
{
	if (p != NULL)
		explicit_bzero(p, len);
}
