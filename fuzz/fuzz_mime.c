/*
 * fuzz_mime.c - libFuzzer target for the MIME parser: arbitrary bytes
 * (first byte picks the chunk size) must never crash; whole and chunked
 * feeding give identical ENVELOPE, BODY, BODYSTRUCTURE, tree and section
 * ranges; the strings are balanced IMAP; ranges stay inside the message;
 * the serialised tree round-trips; the input as a serialised tree is
 * refused or harmless.
 */
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_mime_sections[] = { "", "1", "2", "3", "1.1",
	"1.2", "2.1", "2.2", "1.1.1", "2.1.2", "HEADER", "TEXT", "1.MIME",
	"2.MIME", "1.2.MIME", "1.HEADER", "2.TEXT", "2.1.HEADER",
	"1.1.TEXT" };

/* Parentheses balance outside quoted strings and literals. */
static void
fuzz_mime_balanced(const char *s, size_t len)
{
	long depth = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				xassert(s[i] != '\r' && s[i] != '\n' &&
				    (unsigned char)s[i] < 0x80);
				if (s[i] == '\\')
					i++;
			}
			xassert(i < len);
		} else if (s[i] == '{') {
			char *end;
			unsigned long long n = strtoull(s + i + 1, &end, 10);

			xassert(end[0] == '}' && end[1] == '\r' &&
			    end[2] == '\n');
			i = (size_t)(end + 2 - s) + n;
			xassert(i < len);
		} else if (s[i] == '(') {
			depth++;
		} else if (s[i] == ')') {
			xassert(--depth >= 0);
		}
	}
	xassert(depth == 0);
}

static void
fuzz_mime_dump(const struct mime_message *m, struct buf *out)
{
	size_t at;

	mime_envelope(m, out);
	fuzz_mime_balanced(out->data, out->len);
	at = out->len;
	mime_bodystructure(m, true, out);
	fuzz_mime_balanced(out->data + at, out->len - at);
	at = out->len;
	mime_bodystructure(m, false, out);
	fuzz_mime_balanced(out->data + at, out->len - at);
	mime_tree_serialize(m, out);
	for (size_t i = 0; i < MF_ARRAY_LEN(fuzz_mime_sections); i++) {
		uint64_t start = 0, len = 0;
		int r = mime_section_range(m, fuzz_mime_sections[i], &start,
		    &len, NULL);

		xassert(r != -1);
		xassert(r == 0 || start + len <= mime_message_size(m));
		buf_printf(out, "|%d %llu %llu", r, (unsigned long long)start,
		    (unsigned long long)len);
	}
}

static void
fuzz_mime_tree(const struct mime_message *m)
{
	struct buf a, b;
	struct mime_message *d;
	const char *err;

	buf_init(&a, 0);
	buf_init(&b, 0);
	mime_tree_serialize(m, &a);
	xassert(mime_tree_deserialize(a.data, a.len, &d, &err) == 1);
	mime_tree_serialize(d, &b);
	xassert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(fuzz_mime_sections); i++) {
		uint64_t s1 = 0, l1 = 0, s2 = 0, l2 = 0;

		xassert(mime_section_range(m, fuzz_mime_sections[i], &s1, &l1,
		    NULL) == mime_section_range(d, fuzz_mime_sections[i], &s2,
		    &l2, NULL));
		xassert(s1 == s2 && l1 == l2);
	}
	mime_message_free(&d);
	buf_free(&a);
	buf_free(&b);
}

/* The raw input read as a cached tree: refused, or ranges in bounds. */
static void
fuzz_mime_load(const uint8_t *data, size_t size)
{
	struct mime_message *d;
	const char *err;

	if (mime_tree_deserialize(data, size, &d, &err) != 1)
		return;
	for (size_t i = 0; i < MF_ARRAY_LEN(fuzz_mime_sections); i++) {
		uint64_t s = 0, l = 0;

		if (mime_section_range(d, fuzz_mime_sections[i], &s, &l,
		    NULL) == 1)
			xassert(s <= mime_message_size(d) &&
			    l <= mime_message_size(d) - s);
	}
	mime_message_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "from", "to", "subject" };
	struct mime_parser *p;
	struct mime_message *m;
	struct buf whole, chunked;
	const char *msg;
	size_t step, len, pos;

	fuzz_mime_load(data, size);
	if (size < 1)
		return 0;
	step = 1 + data[0] % 16;
	msg = (const char *)data + 1;
	len = size - 1;
	buf_init(&whole, 0);
	buf_init(&chunked, 0);
	p = mime_parser_new();
	mime_parser_feed(p, msg, len);
	m = mime_parser_finish(&p);
	xassert(mime_message_size(m) == len);
	fuzz_mime_dump(m, &whole);
	fuzz_mime_tree(m);
	mime_message_free(&m);
	p = mime_parser_new();
	for (pos = 0; pos < len; pos += step)
		mime_parser_feed(p, msg + pos, len - pos < step ? len - pos :
		    step);
	m = mime_parser_finish(&p);
	fuzz_mime_dump(m, &chunked);
	xassert(whole.len == chunked.len &&
	    memcmp(whole.data, chunked.data, whole.len) == 0);
	mime_message_free(&m);
	buf_reset(&whole);
	mime_header_filter(msg, len, names, MF_ARRAY_LEN(names),
	    (data[0] & 0x80) != 0, &whole);
	xassert(whole.len <= len);
	buf_free(&whole);
	buf_free(&chunked);
	return 0;
}
