/*
 * accounts.c - the account and alias tables read from docker-mailserver's
 * postfix-accounts.cf and postfix-virtual.cf, and recipient resolution.
 *
 * Both tables are sorted arrays searched with bsearch: thousands of
 * entries cost a few comparisons per lookup, and a reload simply builds
 * new arrays.  Files are trusted (the admin writes them) but still parsed
 * line by line with every bad line logged and skipped, so one typo never
 * hides the other accounts.
 *
 * A struct accounts has no lock: one thread (a worker's event loop) owns
 * it, and everything handed out is a copy (accounts_get_hash(),
 * accounts_resolve()), so the thread pool never reads the tables while a
 * refresh replaces them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth_private.h"

/* Budget of table lookups for one resolution: wide aliases pointing at
 * wide aliases must not cost more than this, loops or not. */
#define ACCOUNTS_RESOLVE_STEPS (AUTH_TARGETS_MAX * 8)

struct accounts_user {
	char *addr;		/* lower-case */
	char *hash;		/* "{SCHEME}hash" as in the file */
	unsigned line;
};

struct accounts_alias {
	char *addr;		/* lower-case; "@domain" for a catch-all */
	char **targets;		/* lower-case */
	size_t ntargets;
	unsigned line;
};

struct accounts {
	char *users_file;	/* NULL: none */
	char *aliases_file;
	struct auth_fileid users_id;
	struct auth_fileid aliases_id;
	time_t checked;		/* last accounts_refresh() stat */
	struct accounts_user *users;
	size_t nusers;
	struct accounts_alias *aliases;
	size_t naliases;
};

/* One resolution in progress. */
struct accounts_res {
	struct accounts *acc;
	char delim;
	char **out;
	size_t nout;
	const struct accounts_alias **seen;	/* expanded already */
	size_t nseen;
	unsigned steps;
	bool warned;
};

static int
accounts_user_cmp(const void *a, const void *b)
{
	const struct accounts_user *ua = a, *ub = b;
	int c = strcmp(ua->addr, ub->addr);

	if (c != 0)
		return c;
	return ua->line < ub->line ? -1 : ua->line > ub->line;
}

static int
accounts_alias_cmp(const void *a, const void *b)
{
	const struct accounts_alias *aa = a, *ab = b;
	int c = strcmp(aa->addr, ab->addr);

	if (c != 0)
		return c;
	return aa->line < ab->line ? -1 : aa->line > ab->line;
}

/* bsearch keys are bare strings. */
static int
accounts_user_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct accounts_user *)elem)->addr);
}

static int
accounts_alias_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct accounts_alias *)elem)->addr);
}

static void
accounts_user_free(struct accounts_user *u)
{
	x_free(&u->addr);
	if (u->hash != NULL) {
		x_wipe(u->hash, strlen(u->hash));
		x_free(&u->hash);
	}
}

static void
accounts_users_free(struct accounts_user **users, size_t n)
{
	for (size_t i = 0; i < n; i++)
		accounts_user_free(&(*users)[i]);
	x_free(users);
}

static void
accounts_alias_free(struct accounts_alias *a)
{
	for (size_t j = 0; j < a->ntargets; j++)
		x_free(&a->targets[j]);
	x_free(&a->targets);
	x_free(&a->addr);
	a->ntargets = 0;
}

static void
accounts_aliases_free(struct accounts_alias **aliases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		accounts_alias_free(&(*aliases)[i]);
	x_free(aliases);
}

/* "user@domain|{SCHEME}hash[|extra fields docker-mailserver may add]" */
static void
accounts_parse_user(struct accounts *acc, const char *file, unsigned lineno,
    char *line, size_t *cap)
{
	char addr[AUTH_ADDR_MAX + 1];
	char *bar = strchr(line, '|'), *hash, *end;

	if (bar == NULL) {
		log_warnx("%s:%u: no '|' between address and hash", file,
		    lineno);
		return;
	}
	*bar = '\0';
	hash = bar + 1;
	if ((end = strchr(hash, '|')) != NULL)
		*end = '\0';
	hash = str_trim(hash);
	if (auth_addr_norm(str_trim(line), addr, false) == -1 ||
	    *hash == '\0') {
		log_warnx("%s:%u: bad account line", file, lineno);
		return;
	}
	if (acc->nusers == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		acc->users = xreallocarray(acc->users, *cap,
		    sizeof(*acc->users));
	}
	acc->users[acc->nusers].addr = xstrdup(addr);
	acc->users[acc->nusers].hash = xstrdup(hash);
	acc->users[acc->nusers].line = lineno;
	acc->nusers++;
}

/* "alias@domain target[,target...]" or whitespace-separated targets. */
static void
accounts_parse_alias(struct accounts *acc, const char *file,
    unsigned lineno, char *line, size_t *cap)
{
	static const char sep[] = " \t,";
	char addr[AUTH_ADDR_MAX + 1], tgt[AUTH_ADDR_MAX + 1];
	struct accounts_alias a = { .line = lineno };
	char *save = NULL, *tok;

	tok = strtok_r(line, " \t", &save);
	if (tok == NULL || auth_addr_norm(tok, addr, true) == -1) {
		log_warnx("%s:%u: bad alias address", file, lineno);
		return;
	}
	while ((tok = strtok_r(NULL, sep, &save)) != NULL) {
		if (auth_addr_norm(tok, tgt, false) == -1) {
			log_warnx("%s:%u: bad alias target skipped", file,
			    lineno);
			continue;
		}
		if (a.ntargets == AUTH_TARGETS_MAX) {
			log_warnx("%s:%u: more than %d targets, rest ignored",
			    file, lineno, AUTH_TARGETS_MAX);
			break;
		}
		a.targets = xreallocarray(a.targets, a.ntargets + 1,
		    sizeof(*a.targets));
		a.targets[a.ntargets++] = xstrdup(tgt);
	}
	if (a.ntargets == 0) {
		log_warnx("%s:%u: alias without targets", file, lineno);
		return;
	}
	a.addr = xstrdup(addr);
	if (acc->naliases == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		acc->aliases = xreallocarray(acc->aliases, *cap,
		    sizeof(*acc->aliases));
	}
	acc->aliases[acc->naliases++] = a;
}

/*
 * Feeds each meaningful line of path to parse.  Returns -1 when the file
 * exists but cannot be read (the caller keeps what it had), 0 otherwise;
 * a missing file is an empty one.
 */
static int
accounts_read(struct accounts *acc, const char *path,
    void (*parse)(struct accounts *, const char *, unsigned, char *,
    size_t *))
{
	FILE *fp;
	char *line = NULL, *s;
	size_t linecap = 0, cap = 0;
	unsigned lineno = 0;

	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT) {
			log_warnx("%s: missing, no entries", path);
			return 0;
		}
		log_warn("%s: open", path);
		return -1;
	}
	while (getline(&line, &linecap, fp) != -1) {
		lineno++;
		s = str_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		parse(acc, path, lineno, s, &cap);
	}
	if (ferror(fp))
		log_warn("%s: read", path);
	if (line != NULL)
		x_wipe(line, linecap);
	free(line);
	fclose(fp);
	return 0;
}

/* Sorts users and drops repeated addresses: the first line wins. */
static void
accounts_users_index(struct accounts *acc, const char *path)
{
	size_t n = 0;

	if (acc->nusers == 0)
		return;
	qsort(acc->users, acc->nusers, sizeof(*acc->users), accounts_user_cmp);
	for (size_t i = 0; i < acc->nusers; i++) {
		struct accounts_user *u = &acc->users[i];
		if (n > 0 && strcmp(acc->users[n - 1].addr, u->addr) == 0) {
			log_warnx("%s:%u: duplicate account %s ignored", path,
			    u->line, u->addr);
			accounts_user_free(u);
			continue;
		}
		acc->users[n++] = *u;
	}
	acc->nusers = n;
}

/* Sorts aliases; repeated alias lines merge their targets in file order. */
static void
accounts_aliases_index(struct accounts *acc)
{
	size_t n = 0;

	if (acc->naliases == 0)
		return;
	qsort(acc->aliases, acc->naliases, sizeof(*acc->aliases),
	    accounts_alias_cmp);
	for (size_t i = 0; i < acc->naliases; i++) {
		struct accounts_alias *a = &acc->aliases[i], *prev;
		if (n == 0 || strcmp(acc->aliases[n - 1].addr, a->addr) != 0) {
			acc->aliases[n++] = *a;
			continue;
		}
		prev = &acc->aliases[n - 1];
		for (size_t j = 0; j < a->ntargets; j++) {
			if (prev->ntargets == AUTH_TARGETS_MAX)
				break;
			prev->targets = xreallocarray(prev->targets,
			    prev->ntargets + 1, sizeof(*prev->targets));
			prev->targets[prev->ntargets++] = a->targets[j];
			a->targets[j] = NULL;
		}
		accounts_alias_free(a);
	}
	acc->naliases = n;
}

static void
accounts_load_users(struct accounts *acc)
{
	struct auth_fileid id;
	struct accounts_user *old = acc->users;
	size_t nold = acc->nusers;

	if (acc->users_file == NULL)
		return;
	if (auth_file_id(acc->users_file, &id) == -1) {
		log_warn("%s: stat", acc->users_file);
		return;
	}
	acc->users = NULL;
	acc->nusers = 0;
	if (accounts_read(acc, acc->users_file, accounts_parse_user) == -1) {
		/* Unreadable for now: keep serving the previous version. */
		accounts_users_free(&acc->users, acc->nusers);
		acc->users = old;
		acc->nusers = nold;
		return;
	}
	accounts_users_index(acc, acc->users_file);
	acc->users_id = id;
	accounts_users_free(&old, nold);
	log_info("accounts loaded file=%s accounts=%zu", acc->users_file,
	    acc->nusers);
}

static void
accounts_load_aliases(struct accounts *acc)
{
	struct auth_fileid id;
	struct accounts_alias *old = acc->aliases;
	size_t nold = acc->naliases;

	if (acc->aliases_file == NULL)
		return;
	if (auth_file_id(acc->aliases_file, &id) == -1) {
		log_warn("%s: stat", acc->aliases_file);
		return;
	}
	acc->aliases = NULL;
	acc->naliases = 0;
	if (accounts_read(acc, acc->aliases_file,
	    accounts_parse_alias) == -1) {
		accounts_aliases_free(&acc->aliases, acc->naliases);
		acc->aliases = old;
		acc->naliases = nold;
		return;
	}
	accounts_aliases_index(acc);
	acc->aliases_id = id;
	accounts_aliases_free(&old, nold);
	log_info("aliases loaded file=%s aliases=%zu", acc->aliases_file,
	    acc->naliases);
}

struct accounts *
accounts_open(const char *users_file, const char *aliases_file)
{
	struct accounts *acc = xmalloc(sizeof(*acc));

	if (users_file != NULL && *users_file != '\0')
		acc->users_file = xstrdup(users_file);
	if (aliases_file != NULL && *aliases_file != '\0')
		acc->aliases_file = xstrdup(aliases_file);
	accounts_load_users(acc);
	accounts_load_aliases(acc);
	acc->checked = time(NULL);
	return acc;
}

void
accounts_free(struct accounts **accp)
{
	struct accounts *acc = *accp;

	if (acc == NULL)
		return;
	accounts_users_free(&acc->users, acc->nusers);
	accounts_aliases_free(&acc->aliases, acc->naliases);
	x_free(&acc->users_file);
	x_free(&acc->aliases_file);
	x_free(accp);
}

void
accounts_refresh(struct accounts *acc)
{
	struct auth_fileid id;
	time_t now = time(NULL);

	if (now == acc->checked)
		return;
	acc->checked = now;
	if (acc->users_file != NULL &&
	    auth_file_id(acc->users_file, &id) == 0 &&
	    !auth_file_id_eq(&id, &acc->users_id))
		accounts_load_users(acc);
	if (acc->aliases_file != NULL &&
	    auth_file_id(acc->aliases_file, &id) == 0 &&
	    !auth_file_id_eq(&id, &acc->aliases_id))
		accounts_load_aliases(acc);
}

size_t
accounts_count(const struct accounts *acc)
{
	return acc->nusers;
}

static const struct accounts_user *
accounts_find_user(const struct accounts *acc, const char *norm)
{
	/* bsearch and qsort want a non-NULL base even for no elements. */
	if (acc->nusers == 0)
		return NULL;
	return bsearch(norm, acc->users, acc->nusers, sizeof(*acc->users),
	    accounts_user_key_cmp);
}

static const struct accounts_alias *
accounts_find_alias(const struct accounts *acc, const char *norm)
{
	if (acc->naliases == 0)
		return NULL;
	return bsearch(norm, acc->aliases, acc->naliases,
	    sizeof(*acc->aliases), accounts_alias_key_cmp);
}

bool
accounts_user_exists(struct accounts *acc, const char *addr)
{
	char norm[AUTH_ADDR_MAX + 1];

	if (auth_addr_norm(addr, norm, false) == -1)
		return false;
	return accounts_find_user(acc, norm) != NULL;
}

char *
accounts_get_hash(struct accounts *acc, const char *user)
{
	char norm[AUTH_ADDR_MAX + 1];
	const struct accounts_user *u;

	if (auth_addr_norm(user, norm, false) == -1 ||
	    (u = accounts_find_user(acc, norm)) == NULL)
		return NULL;
	return xstrdup(u->hash);
}

/*
 * "user+tag@d" -> "user@d" in out (AUTH_ADDR_MAX + 1 bytes).  Returns -1
 * when addr has no tag, or nothing would be left of the local part.
 */
static int
accounts_strip_tag(const char *addr, char delim, char *out)
{
	const char *at = strchr(addr, '@'), *d;

	if (delim == '\0' || at == NULL)
		return -1;
	d = memchr(addr, delim, (size_t)(at - addr));
	if (d == NULL || d == addr)
		return -1;
	memcpy(out, addr, (size_t)(d - addr));
	str_lcpy(out + (d - addr), at, AUTH_ADDR_MAX + 1 - (size_t)(d - addr));
	return 0;
}

/* Adds a final address unless already there; false when full. */
static bool
accounts_res_add(struct accounts_res *r, const char *addr)
{
	for (size_t i = 0; i < r->nout; i++)
		if (strcmp(r->out[i], addr) == 0)
			return true;
	if (r->nout == AUTH_TARGETS_MAX) {
		if (!r->warned)
			log_warnx("accounts resolve: over %d targets, rest "
			    "dropped", AUTH_TARGETS_MAX);
		r->warned = true;
		return false;
	}
	r->out[r->nout++] = xstrdup(addr);
	return true;
}

/* A spent budget or a full result ends the whole resolution. */
static bool
accounts_res_spent(struct accounts_res *r)
{
	if (r->nout == AUTH_TARGETS_MAX)
		return true;
	if (++r->steps <= ACCOUNTS_RESOLVE_STEPS)
		return false;
	if (!r->warned)
		log_warnx("accounts resolve: lookup budget spent");
	r->warned = true;
	return true;
}

static bool accounts_res_addr(struct accounts_res *, const char *, int);

/*
 * Expands alias a met while resolving self.  An alias is expanded once
 * per resolution: its targets are already in the result the second time,
 * and a loop (a -> b -> a) stops here instead of running to the depth
 * limit.  A target equal to self is final, as in Postfix, so "info@d
 * info@d, bob@d" keeps a mailbox for info@d.  A target that resolves to
 * nothing is final too: it is a remote address.
 */
static void
accounts_res_alias(struct accounts_res *r, const struct accounts_alias *a,
    const char *self, int depth)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (r->seen[i] == a)
			return;
	r->seen = xreallocarray(r->seen, r->nseen + 1, sizeof(*r->seen));
	r->seen[r->nseen++] = a;
	if (depth >= AUTH_ALIAS_DEPTH) {
		log_warnx("accounts resolve: alias %s nested deeper than %d",
		    a->addr, AUTH_ALIAS_DEPTH);
		return;
	}
	for (size_t i = 0; i < a->ntargets; i++) {
		const char *t = a->targets[i];
		if (accounts_res_spent(r))
			return;
		if (strcmp(t, self) == 0 ||
		    !accounts_res_addr(r, t, depth + 1))
			(void)accounts_res_add(r, t);
	}
}

/* Steps 1-2 of accounts_resolve() for a normalized address. */
static bool
accounts_res_exact(struct accounts_res *r, const char *addr, int depth)
{
	const struct accounts_alias *a;

	if ((a = accounts_find_alias(r->acc, addr)) != NULL) {
		accounts_res_alias(r, a, addr, depth);
		return true;
	}
	if (accounts_find_user(r->acc, addr) != NULL) {
		(void)accounts_res_add(r, addr);
		return true;
	}
	return false;
}

/* All four steps; false when addr is unknown here. */
static bool
accounts_res_addr(struct accounts_res *r, const char *addr, int depth)
{
	char base[AUTH_ADDR_MAX + 1];
	const struct accounts_alias *a;

	if (accounts_res_exact(r, addr, depth))
		return true;
	if (accounts_strip_tag(addr, r->delim, base) == 0 &&
	    accounts_res_exact(r, base, depth))
		return true;
	if ((a = accounts_find_alias(r->acc, strchr(addr, '@'))) != NULL) {
		accounts_res_alias(r, a, addr, depth);
		return true;
	}
	return false;
}

size_t
accounts_resolve(struct accounts *acc, const char *addr, char delim,
    char ***targets_r)
{
	struct accounts_res r = { .acc = acc, .delim = delim };
	char norm[AUTH_ADDR_MAX + 1];

	r.out = xcalloc(AUTH_TARGETS_MAX + 1, sizeof(*r.out));
	if (auth_addr_norm(addr, norm, false) == 0)
		(void)accounts_res_addr(&r, norm, 0);
	x_free(&r.seen);
	if (r.nout < AUTH_TARGETS_MAX)
		r.out = xreallocarray(r.out, r.nout + 1, sizeof(*r.out));
	*targets_r = r.out;
	return r.nout;
}

void
accounts_targets_free(char ***targets)
{
	if (*targets == NULL)
		return;
	for (char **t = *targets; *t != NULL; t++)
		free(*t);
	x_free(targets);
}

/* Does the explicit alias addr (never a catch-all) expand to user? */
static bool
accounts_alias_has(struct accounts *acc, const char *addr, const char *user)
{
	struct accounts_res r = { .acc = acc };
	const struct accounts_alias *a;
	bool found = false;

	if ((a = accounts_find_alias(acc, addr)) == NULL)
		return false;
	r.out = xcalloc(AUTH_TARGETS_MAX + 1, sizeof(*r.out));
	accounts_res_alias(&r, a, addr, 0);
	for (size_t i = 0; i < r.nout && !found; i++)
		found = strcmp(r.out[i], user) == 0;
	x_free(&r.seen);
	accounts_targets_free(&r.out);
	return found;
}

/*
 * XXX: the "+tag" forms use '+' because the prototype carries no
 * delimiter; '+' is docker-mailserver's and our default.
 */
bool
accounts_may_send_as(struct accounts *acc, const char *user,
    const char *addr)
{
	char u[AUTH_ADDR_MAX + 1], a[AUTH_ADDR_MAX + 1];
	char base[AUTH_ADDR_MAX + 1];

	if (auth_addr_norm(user, u, false) == -1 ||
	    auth_addr_norm(addr, a, false) == -1)
		return false;
	if (strcmp(u, a) == 0)
		return true;
	if (accounts_strip_tag(a, '+', base) == 0) {
		if (strcmp(u, base) == 0)
			return true;
		if (accounts_alias_has(acc, base, u))
			return true;
	}
	return accounts_alias_has(acc, a, u);
}
