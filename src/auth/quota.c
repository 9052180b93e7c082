/*
 * quota.c - per-account storage quotas read from docker-mailserver's
 * dovecot-quotas.cf ([accounts] quotas), with [accounts] default_quota for
 * accounts without a line.
 *
 * File format, one account per line, '#' comments and blank lines skipped:
 *   user@domain:SIZE
 * SIZE is bytes, or a number with K, M, G or T (1024-based, as Dovecot's
 * quota_rule and docker-mailserver's `setup quota set` read it; a trailing
 * "B" is allowed: 50M, 50MB, 2g, 1024k).  SIZE 0 means unlimited, so one
 * line can exempt an account from default_quota.  A bad line is logged
 * (file:line) and skipped; the first line of an account wins.
 *
 * Like accounts.c, a table is owned by one thread and re-read when the
 * file's identity (device, inode, size, mtime) changes, checked at most
 * once per QUOTA_REFRESH_SECONDS.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth_private.h"

struct quota_entry {
	char *addr;		/* lower-case */
	uint64_t bytes;		/* 0: unlimited */
	unsigned line;
};

/* What identifies a file version; any change means "re-read". */
struct quota_table {
	char *file;		/* NULL: none */
	uint64_t default_bytes;
	struct auth_fileid id;
	time_t checked;		/* last quota_table_refresh() stat */
	struct quota_entry *entries;
	size_t count;
};

int
quota_parse_size(const char *s, uint64_t *bytes_r)
{
	static const char units[] = "KMGT";	/* 1024^1 .. 1024^4 */
	uint64_t v = 0, mul = 1;
	const char *p = s, *u;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (QUOTA_SIZE_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	/* *p != NUL first: strchr() would find the terminator */
	if (*p != '\0' && (u = strchr(units, toupper((unsigned char)*p))) !=
	    NULL) {
		for (const char *k = units; k <= u; k++)
			mul *= 1024;
		p++;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0' || (v != 0 && mul > QUOTA_SIZE_MAX / v))
		return -1;
	*bytes_r = v * mul;
	return 0;
}

static int
quota_entry_cmp(const void *a, const void *b)
{
	const struct quota_entry *ea = a, *eb = b;
	int c = strcmp(ea->addr, eb->addr);

	if (c != 0)
		return c;
	return ea->line < eb->line ? -1 : ea->line > eb->line;
}

static int
quota_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct quota_entry *)elem)->addr);
}

static void
quota_entries_free(struct quota_entry **entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x_free(&(*entries)[i].addr);
	x_free(entries);
}

/* "user@domain:SIZE"; the last ':' splits (addresses have none). */
static void
quota_parse_line(struct quota_table *qt, unsigned lineno, char *line,
    size_t *cap)
{
	char addr[AUTH_ADDR_MAX + 1];
	char *colon = strrchr(line, ':');
	uint64_t bytes;

	if (colon == NULL) {
		log_warnx("%s:%u: no ':' between address and size", qt->file,
		    lineno);
		return;
	}
	*colon = '\0';
	if (auth_addr_norm(str_trim(line), addr, false) == -1) {
		log_warnx("%s:%u: bad quota address", qt->file, lineno);
		return;
	}
	if (quota_parse_size(str_trim(colon + 1), &bytes) == -1) {
		log_warnx("%s:%u: bad quota size for %s", qt->file, lineno,
		    addr);
		return;
	}
	if (qt->count == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		qt->entries = xreallocarray(qt->entries, *cap,
		    sizeof(*qt->entries));
	}
	qt->entries[qt->count].addr = xstrdup(addr);
	qt->entries[qt->count].bytes = bytes;
	qt->entries[qt->count].line = lineno;
	qt->count++;
}

/* Sorts the entries and drops repeated addresses: the first line wins. */
static void
quota_index(struct quota_table *qt)
{
	size_t n = 0;

	if (qt->count == 0)
		return;
	qsort(qt->entries, qt->count, sizeof(*qt->entries), quota_entry_cmp);
	for (size_t i = 0; i < qt->count; i++) {
		struct quota_entry *e = &qt->entries[i];
		if (n > 0 && strcmp(qt->entries[n - 1].addr, e->addr) == 0) {
			log_warnx("%s:%u: duplicate quota for %s ignored",
			    qt->file, e->line, e->addr);
			x_free(&e->addr);
			continue;
		}
		qt->entries[n++] = *e;
	}
	qt->count = n;
}

/* Reads qt->file into qt's (empty) entries; -1 when it exists but cannot
 * be read (the caller keeps the previous version). */
static int
quota_read(struct quota_table *qt)
{
	FILE *fp;
	char *line = NULL, *s;
	size_t linecap = 0, cap = 0;
	unsigned lineno = 0;

	if ((fp = fopen(qt->file, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;	/* no file: nobody has a line */
		log_warn("%s: open", qt->file);
		return -1;
	}
	while (getline(&line, &linecap, fp) != -1) {
		lineno++;
		s = str_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		quota_parse_line(qt, lineno, s, &cap);
	}
	if (ferror(fp))
		log_warn("%s: read", qt->file);
	free(line);
	fclose(fp);
	return 0;
}

static void
quota_load(struct quota_table *qt)
{
	struct auth_fileid id;
	struct quota_entry *old = qt->entries;
	size_t nold = qt->count;

	if (auth_file_id(qt->file, &id) == -1) {
		log_warn("%s: stat", qt->file);
		return;
	}
	qt->entries = NULL;
	qt->count = 0;
	if (quota_read(qt) == -1) {
		quota_entries_free(&qt->entries, qt->count);
		qt->entries = old;
		qt->count = nold;
		return;
	}
	quota_index(qt);
	qt->id = id;
	quota_entries_free(&old, nold);
	log_info("quotas loaded file=%s quotas=%zu", qt->file, qt->count);
}

struct quota_table *
quota_table_open(const char *file, uint64_t default_bytes)
{
	struct quota_table *qt = xmalloc(sizeof(*qt));

	qt->default_bytes = default_bytes;
	if (file != NULL && *file != '\0') {
		qt->file = xstrdup(file);
		quota_load(qt);
	}
	qt->checked = time(NULL);
	return qt;
}

void
quota_table_free(struct quota_table **qtp)
{
	struct quota_table *qt = *qtp;

	if (qt == NULL)
		return;
	quota_entries_free(&qt->entries, qt->count);
	x_free(&qt->file);
	x_free(qtp);
}

void
quota_table_refresh(struct quota_table *qt)
{
	struct auth_fileid id;
	time_t now = time(NULL);

	if (qt->file == NULL || now - qt->checked < QUOTA_REFRESH_SECONDS)
		return;
	qt->checked = now;
	if (auth_file_id(qt->file, &id) == 0 && !auth_file_id_eq(&id, &qt->id))
		quota_load(qt);
}

size_t
quota_table_count(const struct quota_table *qt)
{
	return qt->count;
}

uint64_t
quota_table_get(const struct quota_table *qt, const char *user,
    bool *explicit_r)
{
	char norm[AUTH_ADDR_MAX + 1];
	const struct quota_entry *e = NULL;

	if (qt->count > 0 && auth_addr_norm(user, norm, false) == 0)
		e = bsearch(norm, qt->entries, qt->count,
		    sizeof(*qt->entries), quota_key_cmp);
	if (explicit_r != NULL)
		*explicit_r = e != NULL;
	return e != NULL ? e->bytes : qt->default_bytes;
}

/*
 * XXX: one table per process, opened on first use, rather than a member
 * of the servers' structs next to struct accounts: SMTP, IMAP and the
 * queue runner all need it and their setup (server/worker.c) belongs to
 * other work.  Every caller is its process's loop thread; a config
 * reload starts new processes, yet a different cfg (tests) reopens it.
 */
static struct quota_table *quota_process_table;
static const struct config *quota_process_cfg;

uint64_t
quota_get(const struct config *cfg, const char *user)
{
	if (quota_process_table == NULL || quota_process_cfg != cfg) {
		quota_table_free(&quota_process_table);
		quota_process_table = quota_table_open(cfg->quotas_file,
		    cfg->default_quota);
		quota_process_cfg = cfg;
	}
	quota_table_refresh(quota_process_table);
	return quota_table_get(quota_process_table, user, NULL);
}
