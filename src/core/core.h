/*
 * core.h - the bottom layer every other folder builds on: allocation that
 * never returns NULL, bounded growable buffers, logging, assertions,
 * escaping of untrusted text, and the configuration table.
 * Depends on nothing of ours.
 */
#ifndef MAILFORT_CORE_H
#define MAILFORT_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MF_WUR __attribute__((warn_unused_result))
#define MF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MF_NORETURN __attribute__((noreturn))
#define MF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation: zero-filled, abort on OOM or size overflow ---- */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) MF_PRINTF(1, 2);
/* Frees *pp and sets it to NULL; NULL is ignored. */
#define x_free(pp) do { free(*(pp)); *(pp) = NULL; } while (0)
/* Overwrites a secret so it does not linger in memory. */
void x_wipe(void *p, size_t len);

/* ---- logging (one line per event, see STYLE.md §6) ---- */
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
/* proc names the process in every line ("master", "worker", ...). */
void log_init(const char *proc, bool use_syslog, enum log_level level);
void log_set_proc(const char *proc);
void log_warn(const char *fmt, ...) MF_PRINTF(1, 2);   /* adds errno */
void log_warnx(const char *fmt, ...) MF_PRINTF(1, 2);
void log_info(const char *fmt, ...) MF_PRINTF(1, 2);
void log_debug(const char *fmt, ...) MF_PRINTF(1, 2);
void fatal(const char *fmt, ...) MF_PRINTF(1, 2) MF_NORETURN;  /* +errno */
void fatalx(const char *fmt, ...) MF_PRINTF(1, 2) MF_NORETURN;
void panic_at(const char *file, int line, const char *fmt, ...)
	MF_PRINTF(3, 4) MF_NORETURN;
#define panic(...) panic_at(__FILE__, __LINE__, __VA_ARGS__)
/* Always compiled in: a failed assertion is a bug; the master restarts us. */
#define xassert(e) \
	((e) ? (void)0 : panic_at(__FILE__, __LINE__, "assertion %s", #e))

/*
 * Escapes untrusted text for a log line: printable ASCII kept, everything
 * else as \xHH, cut at LOG_ESCAPE_MAX input bytes with "..." appended.
 * Returns out, which must hold LOG_ESCAPE_BUF bytes.
 */
#define LOG_ESCAPE_MAX 100
#define LOG_ESCAPE_BUF (LOG_ESCAPE_MAX * 4 + 4)
const char *log_escape(const char *s, size_t len, char *out);

/* ---- bounded growable buffer ---- */
struct buf {
	char *data;	/* always NUL-terminated after len when non-NULL */
	size_t len;
	size_t cap;
	size_t max;	/* 0: unbounded; writing past it is a bug (panic) */
};
void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Room left before max (SIZE_MAX when unbounded). */
size_t buf_room(const struct buf *b);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) MF_PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);

/* ---- small string helpers ---- */
/* strlcpy semantics; returns strlen(src). */
size_t str_lcpy(char *dst, const char *src, size_t size);
bool str_case_eq(const char *a, const char *b);
bool str_case_prefix(const char *s, const char *prefix);
/* Lower-cases ASCII in place; returns s. */
char *str_lower(char *s);
/* Trims ASCII spaces/tabs at both ends in place; returns start. */
char *str_trim(char *s);
/* Parses a decimal within [min,max]; returns -1 on any garbage. */
int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out_r)
	MF_WUR;
/*
 * Splits "HOST:PORT" or "[HOST]:PORT" (an IPv6 address needs the
 * brackets) into host (without brackets, NUL-terminated, at most
 * host_size - 1 bytes) and a port in 1..65535.  -1 on anything else.
 */
int str_split_hostport(const char *s, char *host, size_t host_size,
	uint16_t *port_r) MF_WUR;

/* ---- network address lists (trusted_networks) ---- */
struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};
struct cidr_list {
	struct cidr *items;
	size_t count;
};
/* "10.0.0.0/8, ::1, 192.0.2.7": returns -1 and *error_r on garbage. */
int cidr_list_parse(const char *text, struct cidr_list *list_r,
		    const char **error_r) MF_WUR;
void cidr_list_free(struct cidr_list *list);
/* sa is a struct sockaddr (v4, v6 or v4-mapped v6). */
bool cidr_list_match(const struct cidr_list *list, const void *sa);

/* ---- base64 (RFC 4648 §4), for SASL ---- */
/* Decodes in (len bytes, no whitespace, '=' padding required) into out,
 * which must hold len / 4 * 3 + 1 bytes; NUL-terminates.  Returns the
 * decoded length or -1 on bad input. */
ssize_t base64_decode(const char *in, size_t len, unsigned char *out) MF_WUR;
/* Encodes into out (4 * ((len + 2) / 3) + 1 bytes); returns its length. */
size_t base64_encode(const void *in, size_t len, char *out);

/* ---- sessions by id ---- */
/*
 * Items (sessions) found again by a 64-bit id after pool work, so that a
 * job never holds a pointer to something that may be gone.  The table
 * does not own the items.
 */
struct id_table;
struct id_table *id_table_new(void);
/* The table must be empty (items are the caller's to free). */
void id_table_free(struct id_table **t);
void id_table_add(struct id_table *t, uint64_t id, void *item);
void *id_table_get(const struct id_table *t, uint64_t id);
void id_table_del(struct id_table *t, uint64_t id);
size_t id_table_count(const struct id_table *t);
/* Some item, or NULL when empty (free-all loops). */
void *id_table_any(const struct id_table *t);
/* fn(item, ctx) for each item; fn may remove (only) the item it got. */
void id_table_foreach(struct id_table *t, void (*fn)(void *item, void *ctx),
    void *ctx);

/* ---- time ---- */
/* Monotonic milliseconds. */
uint64_t time_mono_ms(void);

#endif
