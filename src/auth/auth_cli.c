/*
 * auth_cli.c - `mailfort user ...`, `mailfort alias ...` and `mailfort
 * quota ...`: edits of postfix-accounts.cf, postfix-virtual.cf and
 * dovecot-quotas.cf that a running server picks up by itself
 * (accounts_refresh(), quota_table_refresh()).
 *
 * Every edit is atomic: the whole file is written to FILE.tmp.<pid> in the
 * same directory, fsync'd, renamed over FILE, and the directory fsync'd,
 * so the server reads either the old or the new file, never half of one.
 * Lines we do not change (comments included) are written back byte for
 * byte.  Concurrent edits are serialized by flock() on the directory,
 * since the file itself is replaced under the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth.h"
#include "store/store.h"

#define AUTH_CLI_PW_MAX 1024	/* longest password read */
#define AUTH_CLI_NEW_MODE 0640	/* mode of a file we create */

/* A file as lines (without '\n'), plus what we restore on rewrite. */
struct auth_cli_file {
	const char *path;
	char **lines;
	size_t nlines;
	bool exists;
	struct stat st;
	int lock_fd;		/* the directory, flock'ed */
};

static void
auth_cli_file_free(struct auth_cli_file *f)
{
	for (size_t i = 0; i < f->nlines; i++)
		x_free(&f->lines[i]);
	x_free(&f->lines);
	f->nlines = 0;
	if (f->lock_fd != -1)
		close(f->lock_fd);
	f->lock_fd = -1;
}

static void
auth_cli_file_append(struct auth_cli_file *f, char *line)
{
	f->lines = xreallocarray(f->lines, f->nlines + 1, sizeof(*f->lines));
	f->lines[f->nlines++] = line;
}

/* Directory of path (xmalloc'd). */
static char *
auth_cli_dirname(const char *path)
{
	char *copy = xstrdup(path), *dir = xstrdup(dirname(copy));

	x_free(&copy);
	return dir;
}

/* Locks path's directory, then reads path; a missing file is empty. */
static int
auth_cli_file_read(const char *path, struct auth_cli_file *f)
{
	char *dir = auth_cli_dirname(path), *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->lock_fd == -1 || flock(f->lock_fd, LOCK_EX) == -1) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		x_free(&dir);
		return -1;
	}
	x_free(&dir);
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	f->exists = true;
	if (fstat(fileno(fp), &f->st) == -1)
		memset(&f->st, 0, sizeof(f->st));
	while ((n = getline(&line, &cap, fp)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		auth_cli_file_append(f, xstrdup(line));
	}
	free(line);
	if (ferror(fp)) {
		fprintf(stderr, "%s: read error\n", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

static int
auth_cli_write_all(int fd, const struct auth_cli_file *f)
{
	struct buf b;
	size_t off = 0;
	ssize_t n;

	buf_init(&b, 0);
	for (size_t i = 0; i < f->nlines; i++) {
		buf_adds(&b, f->lines[i]);
		buf_addc(&b, '\n');
	}
	while (off < b.len) {
		n = write(fd, b.data + off, b.len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_free(&b);
			return -1;
		}
		off += (size_t)n;
	}
	buf_free(&b);
	return fsync(fd);
}

/* Writes f->lines to f->path atomically, keeping mode and owner. */
static int
auth_cli_file_write(struct auth_cli_file *f)
{
	char *tmp = xasprintf("%s.tmp.%ld", f->path, (long)getpid());
	mode_t mode = f->exists ? f->st.st_mode & 07777 : AUTH_CLI_NEW_MODE;
	int fd, rc = -1;

	/* A leftover of a crashed run with our pid; the lock is ours. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		fprintf(stderr, "%s: %s\n", tmp, strerror(errno));
		x_free(&tmp);
		return -1;
	}
	/* The server may run as another user: keep who can read it.  Only
	 * root may chown, and then it matters; otherwise it is ours. */
	if (f->exists && (fchown(fd, f->st.st_uid, f->st.st_gid) == -1 &&
	    errno != EPERM))
		goto out;
	if (fchmod(fd, mode) == -1 || auth_cli_write_all(fd, f) == -1)
		goto out;
	if (close(fd) == -1) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, f->path) == -1)
		goto out;
	/* The rename itself must survive a crash. */
	if (fsync(f->lock_fd) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1) {
		fprintf(stderr, "%s: %s\n", f->path, strerror(errno));
		unlink(tmp);
	}
	if (fd != -1)
		close(fd);
	x_free(&tmp);
	return rc;
}

/*
 * Checks an address given on the command line and copies it lower-cased
 * to out (AUTH_ADDR_MAX + 1 bytes): one '@', a local part (empty only for
 * a catch-all when allowed), a dotted domain of letters, digits and '-',
 * nothing that would break the file formats (space, control, '|', ',',
 * a leading '#').
 */
static int
auth_cli_addr(const char *in, bool allow_catchall, char *out)
{
	const char *at = strchr(in, '@'), *dom;
	size_t len = strlen(in);

	if (len == 0 || len > AUTH_ADDR_MAX || at == NULL ||
	    strchr(at + 1, '@') != NULL || in[0] == '#' ||
	    (at == in && !allow_catchall))
		goto bad;
	for (const char *p = in; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '|' ||
		    *p == ',' || *p == '"')
			goto bad;
	dom = at + 1;
	if (*dom == '\0' || *dom == '.' || *dom == '-' ||
	    dom[strlen(dom) - 1] == '.' || strstr(dom, "..") != NULL)
		goto bad;
	for (const char *p = dom; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			goto bad;
	memcpy(out, in, len + 1);
	str_lower(out);
	return 0;
bad:
	fprintf(stderr, "invalid address: %s\n", in);
	return -1;
}

/* The address key of a line ("" for blank lines and comments). */
static void
auth_cli_line_key(const char *line, const char *stops, char *out)
{
	size_t n;

	while (*line == ' ' || *line == '\t')
		line++;
	n = strcspn(line, stops);
	if (*line == '#' || n > AUTH_ADDR_MAX)
		n = 0;
	memcpy(out, line, n);
	out[n] = '\0';
	str_lower(out);
	/* "user@d |hash" is legal in the file. */
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = '\0';
}

#define AUTH_CLI_USER_STOPS "|\r\n"
#define AUTH_CLI_QUOTA_STOPS ":\r\n"
#define AUTH_CLI_ALIAS_STOPS " \t\r\n"

/* Reads the password from the first line of stdin, without echo on a tty. */
static char *
auth_cli_read_password(void)
{
	char buf[AUTH_CLI_PW_MAX + 2], *pw = NULL;
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO) &&
	    tcgetattr(STDIN_FILENO, &old) == 0;

	if (tty) {
		fprintf(stderr, "Password: ");
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	if (fgets(buf, sizeof(buf), stdin) != NULL) {
		size_t n = strcspn(buf, "\r\n");
		if (buf[n] == '\0' && n > AUTH_CLI_PW_MAX)
			fprintf(stderr, "password too long\n");
		else {
			buf[n] = '\0';
			pw = xstrdup(buf);
		}
	}
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	x_wipe(buf, sizeof(buf));
	return pw;
}

/* The new "{ARGON2ID}..." of argv[i] or stdin; NULL after a message. */
static char *
auth_cli_new_hash(int argc, char **argv, int i)
{
	char *pw, *hash;

	pw = i < argc ? xstrdup(argv[i]) : auth_cli_read_password();
	if (pw == NULL)
		return NULL;
	if (*pw == '\0' || strlen(pw) > AUTH_CLI_PW_MAX) {
		fprintf(stderr, "password must be 1-%d bytes\n",
		    AUTH_CLI_PW_MAX);
		hash = NULL;
	} else if ((hash = auth_password_hash(pw)) == NULL)
		fprintf(stderr, "cannot hash the password\n");
	x_wipe(pw, strlen(pw));
	x_free(&pw);
	return hash;
}

/* Index of the first line whose key is addr, or -1. */
static ssize_t
auth_cli_find(const struct auth_cli_file *f, const char *stops,
    const char *addr)
{
	char key[AUTH_ADDR_MAX + 1];

	for (size_t i = 0; i < f->nlines; i++) {
		auth_cli_line_key(f->lines[i], stops, key);
		if (strcmp(key, addr) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static void
auth_cli_remove_line(struct auth_cli_file *f, size_t i)
{
	x_free(&f->lines[i]);
	memmove(&f->lines[i], &f->lines[i + 1],
	    (f->nlines - i - 1) * sizeof(*f->lines));
	f->nlines--;
}

static const char *
auth_cli_file_path(const char *path, const char *key)
{
	if (path == NULL || *path == '\0') {
		fprintf(stderr, "no [accounts] %s file configured\n", key);
		return NULL;
	}
	return path;
}

/* Whether addr is in the users file now; -1 when it cannot be read. */
static int
auth_cli_user_known(const char *path, const char *addr)
{
	struct auth_cli_file f;
	int rc = -1;

	if (auth_cli_file_read(path, &f) == 0)
		rc = auth_cli_find(&f, AUTH_CLI_USER_STOPS, addr) != -1;
	auth_cli_file_free(&f);
	return rc;
}

static int
auth_cli_user_add(const struct config *cfg, const char *path,
    const char *addr, int argc, char **argv)
{
	struct auth_cli_file f;
	char *hash;
	int rc = 1;

	/* Checked before asking for a password, and again under the lock. */
	switch (auth_cli_user_known(path, addr)) {
	case -1:
		return 1;
	case 1:
		fprintf(stderr, "user %s already exists\n", addr);
		return 1;
	}
	if ((hash = auth_cli_new_hash(argc, argv, 3)) == NULL)
		return 1;
	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	if (auth_cli_find(&f, AUTH_CLI_USER_STOPS, addr) != -1) {
		fprintf(stderr, "user %s already exists\n", addr);
		goto out;
	}
	if (!config_is_local_domain(cfg, strchr(addr, '@') + 1))
		fprintf(stderr, "warning: %s is not in [server] domains\n",
		    strchr(addr, '@') + 1);
	auth_cli_file_append(&f, xasprintf("%s|%s", addr, hash));
	if (auth_cli_file_write(&f) == -1)
		goto out;
	printf("added user %s\n", addr);
	rc = 0;
out:
	auth_cli_file_free(&f);
	x_free(&hash);
	return rc;
}

static int
auth_cli_user_del(const char *path, const char *addr)
{
	struct auth_cli_file f;
	ssize_t i;
	bool found = false;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	while ((i = auth_cli_find(&f, AUTH_CLI_USER_STOPS, addr)) != -1) {
		auth_cli_remove_line(&f, (size_t)i);
		found = true;
	}
	if (!found) {
		fprintf(stderr, "no user %s\n", addr);
		goto out;
	}
	if (auth_cli_file_write(&f) == -1)
		goto out;
	printf("deleted user %s\n", addr);
	rc = 0;
out:
	auth_cli_file_free(&f);
	return rc;
}

/* Replaces the hash, keeping any extra '|' fields after it. */
static int
auth_cli_user_passwd(const char *path, const char *addr, int argc,
    char **argv)
{
	struct auth_cli_file f;
	char *hash, *rest, *old;
	ssize_t i;
	int rc = 1;

	switch (auth_cli_user_known(path, addr)) {
	case -1:
		return 1;
	case 0:
		fprintf(stderr, "no user %s\n", addr);
		return 1;
	}
	if ((hash = auth_cli_new_hash(argc, argv, 3)) == NULL)
		return 1;
	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	if ((i = auth_cli_find(&f, AUTH_CLI_USER_STOPS, addr)) == -1) {
		fprintf(stderr, "no user %s\n", addr);
		goto out;
	}
	old = f.lines[i];
	rest = strchr(old, '|');
	rest = rest != NULL ? strchr(rest + 1, '|') : NULL;
	f.lines[i] = xasprintf("%s|%s%s", addr, hash, rest ? rest : "");
	x_wipe(old, strlen(old));
	x_free(&old);
	if (auth_cli_file_write(&f) == -1)
		goto out;
	printf("changed password of %s\n", addr);
	rc = 0;
out:
	auth_cli_file_free(&f);
	x_free(&hash);
	return rc;
}

/*
 * "user@d quota=BYTES|unlimited used=BYTES messages=N": the quota as the
 * server applies it (quotas file, else default_quota), the usage read
 * from the store without creating it (none yet: 0).
 */
static void
auth_cli_user_line(const struct config *cfg, const struct quota_table *qt,
    const char *addr)
{
	uint64_t quota = quota_table_get(qt, addr, NULL), used = 0, msgs = 0;
	const char *err = NULL;
	char qtext[24];

	if (cfg->data_dir != NULL &&
	    store_usage_peek(cfg->data_dir, addr, &used, &msgs, &err) < 0)
		fprintf(stderr, "%s: usage: %s\n", addr, err);
	if (quota == 0)
		str_lcpy(qtext, "unlimited", sizeof(qtext));
	else
		snprintf(qtext, sizeof(qtext), "%llu",
		    (unsigned long long)quota);
	printf("%s quota=%s used=%llu messages=%llu\n", addr, qtext,
	    (unsigned long long)used, (unsigned long long)msgs);
}

static int
auth_cli_user_list(const struct config *cfg, const char *path)
{
	char key[AUTH_ADDR_MAX + 1];
	struct auth_cli_file f;
	struct quota_table *qt;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == 0) {
		qt = quota_table_open(cfg->quotas_file, cfg->default_quota);
		for (size_t i = 0; i < f.nlines; i++) {
			auth_cli_line_key(f.lines[i], AUTH_CLI_USER_STOPS, key);
			if (*key != '\0')
				auth_cli_user_line(cfg, qt, key);
		}
		quota_table_free(&qt);
		rc = 0;
	}
	auth_cli_file_free(&f);
	return rc;
}

static int
auth_cli_usage_user(void)
{
	fprintf(stderr, "usage: mailfort user add ADDRESS [PASSWORD]\n"
	    "       mailfort user del ADDRESS\n"
	    "       mailfort user passwd ADDRESS [PASSWORD]\n"
	    "       mailfort user list\n");
	return 2;
}

int
auth_cli_user(const struct config *cfg, int argc, char **argv)
{
	char addr[AUTH_ADDR_MAX + 1];
	const char *verb = argc > 1 ? argv[1] : "";
	const char *path;

	if (strcmp(verb, "list") == 0 && argc == 2) {
		if ((path = auth_cli_file_path(cfg->users_file,
		    "users")) == NULL)
			return 2;
		return auth_cli_user_list(cfg, path);
	}
	if (!((strcmp(verb, "add") == 0 && (argc == 3 || argc == 4)) ||
	    (strcmp(verb, "del") == 0 && argc == 3) ||
	    (strcmp(verb, "passwd") == 0 && (argc == 3 || argc == 4))))
		return auth_cli_usage_user();
	if ((path = auth_cli_file_path(cfg->users_file, "users")) == NULL ||
	    auth_cli_addr(argv[2], false, addr) == -1)
		return 2;
	if (strcmp(verb, "add") == 0)
		return auth_cli_user_add(cfg, path, addr, argc, argv);
	if (strcmp(verb, "del") == 0)
		return auth_cli_user_del(path, addr);
	return auth_cli_user_passwd(path, addr, argc, argv);
}

/* The lower-cased targets of an alias line. */
struct auth_cli_targets {
	char **v;
	size_t n;
};

static void
auth_cli_targets_parse(const char *line, struct auth_cli_targets *t_r)
{
	char *copy = xstrdup(line), *save = NULL, *tok;

	memset(t_r, 0, sizeof(*t_r));
	(void)strtok_r(copy, AUTH_CLI_ALIAS_STOPS, &save);
	while ((tok = strtok_r(NULL, " \t\r\n,", &save)) != NULL) {
		t_r->v = xreallocarray(t_r->v, t_r->n + 1, sizeof(*t_r->v));
		t_r->v[t_r->n++] = str_lower(xstrdup(tok));
	}
	x_free(&copy);
}

static void
auth_cli_targets_free(struct auth_cli_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		x_free(&t->v[i]);
	x_free(&t->v);
	t->n = 0;
}

/* Index of target in t, or -1. */
static ssize_t
auth_cli_targets_find(const struct auth_cli_targets *t, const char *target)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i], target) == 0)
			return (ssize_t)i;
	return -1;
}

/* "alias t1,t2,..." (xmalloc'd), the form docker-mailserver writes. */
static char *
auth_cli_alias_line(const char *alias, const struct auth_cli_targets *t)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "%s ", alias);
	for (size_t i = 0; i < t->n; i++)
		buf_printf(&b, "%s%s", i > 0 ? "," : "", t->v[i]);
	return b.data;
}

static void
auth_cli_warn_domain(const struct config *cfg, const char *addr)
{
	const char *dom = strchr(addr, '@') + 1;

	if (!config_is_local_domain(cfg, dom))
		fprintf(stderr, "warning: %s is not in [server] domains\n",
		    dom);
}

/* Adds target to the first line of alias, or a new line. */
static int
auth_cli_alias_add(const struct config *cfg, const char *path,
    const char *alias, const char *target)
{
	struct auth_cli_targets t;
	struct auth_cli_file f;
	ssize_t i;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	if ((i = auth_cli_find(&f, AUTH_CLI_ALIAS_STOPS, alias)) == -1) {
		auth_cli_warn_domain(cfg, alias);
		auth_cli_file_append(&f, xasprintf("%s %s", alias, target));
	} else {
		auth_cli_targets_parse(f.lines[i], &t);
		if (auth_cli_targets_find(&t, target) != -1) {
			fprintf(stderr, "alias %s already has target %s\n",
			    alias, target);
			auth_cli_targets_free(&t);
			goto out;
		}
		t.v = xreallocarray(t.v, t.n + 1, sizeof(*t.v));
		t.v[t.n++] = xstrdup(target);
		x_free(&f.lines[i]);
		f.lines[i] = auth_cli_alias_line(alias, &t);
		auth_cli_targets_free(&t);
	}
	if (auth_cli_file_write(&f) == -1)
		goto out;
	printf("added alias %s -> %s\n", alias, target);
	rc = 0;
out:
	auth_cli_file_free(&f);
	return rc;
}

/*
 * Drops target from line i of alias; the line goes when nothing is left.
 * Returns whether target was there; *i_r is the next line to look at.
 */
static bool
auth_cli_alias_drop(struct auth_cli_file *f, size_t *i_r, const char *alias,
    const char *target)
{
	struct auth_cli_targets t;
	size_t i = *i_r;
	ssize_t j;

	auth_cli_targets_parse(f->lines[i], &t);
	if ((j = auth_cli_targets_find(&t, target)) == -1) {
		auth_cli_targets_free(&t);
		*i_r = i + 1;
		return false;
	}
	x_free(&t.v[j]);
	memmove(&t.v[j], &t.v[j + 1], (t.n - (size_t)j - 1) * sizeof(*t.v));
	t.n--;
	if (t.n == 0) {
		auth_cli_remove_line(f, i);
		*i_r = i;
	} else {
		x_free(&f->lines[i]);
		f->lines[i] = auth_cli_alias_line(alias, &t);
		*i_r = i + 1;
	}
	auth_cli_targets_free(&t);
	return true;
}

/* Removes target from every line of alias, or (target NULL) the lines. */
static int
auth_cli_alias_del(const char *path, const char *alias, const char *target)
{
	char key[AUTH_ADDR_MAX + 1];
	struct auth_cli_file f;
	bool found = false;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	for (size_t i = 0; i < f.nlines;) {
		auth_cli_line_key(f.lines[i], AUTH_CLI_ALIAS_STOPS, key);
		if (strcmp(key, alias) != 0)
			i++;
		else if (target != NULL)
			found |= auth_cli_alias_drop(&f, &i, alias, target);
		else {
			auth_cli_remove_line(&f, i);
			found = true;
		}
	}
	if (!found) {
		if (target != NULL)
			fprintf(stderr, "alias %s has no target %s\n", alias,
			    target);
		else
			fprintf(stderr, "no alias %s\n", alias);
		goto out;
	}
	if (auth_cli_file_write(&f) == -1)
		goto out;
	if (target != NULL)
		printf("deleted alias %s -> %s\n", alias, target);
	else
		printf("deleted alias %s\n", alias);
	rc = 0;
out:
	auth_cli_file_free(&f);
	return rc;
}

static int
auth_cli_alias_list(const char *path)
{
	char key[AUTH_ADDR_MAX + 1], *line;
	struct auth_cli_targets t;
	struct auth_cli_file f;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == 0) {
		for (size_t i = 0; i < f.nlines; i++) {
			auth_cli_line_key(f.lines[i], AUTH_CLI_ALIAS_STOPS,
			    key);
			if (*key == '\0')
				continue;
			auth_cli_targets_parse(f.lines[i], &t);
			line = auth_cli_alias_line(key, &t);
			printf("%s\n", line);
			x_free(&line);
			auth_cli_targets_free(&t);
		}
		rc = 0;
	}
	auth_cli_file_free(&f);
	return rc;
}

static int
auth_cli_usage_alias(void)
{
	fprintf(stderr, "usage: mailfort alias add ALIAS TARGET\n"
	    "       mailfort alias del ALIAS [TARGET]\n"
	    "       mailfort alias list\n");
	return 2;
}

int
auth_cli_alias(const struct config *cfg, int argc, char **argv)
{
	char alias[AUTH_ADDR_MAX + 1], target[AUTH_ADDR_MAX + 1];
	const char *verb = argc > 1 ? argv[1] : "";
	const char *path;

	if (!((strcmp(verb, "list") == 0 && argc == 2) ||
	    (strcmp(verb, "add") == 0 && argc == 4) ||
	    (strcmp(verb, "del") == 0 && (argc == 3 || argc == 4))))
		return auth_cli_usage_alias();
	if ((path = auth_cli_file_path(cfg->aliases_file,
	    "aliases")) == NULL)
		return 2;
	if (strcmp(verb, "list") == 0)
		return auth_cli_alias_list(path);
	if (auth_cli_addr(argv[2], true, alias) == -1 ||
	    (argc == 4 && auth_cli_addr(argv[3], false, target) == -1))
		return 2;
	if (strcmp(verb, "add") == 0)
		return auth_cli_alias_add(cfg, path, alias, target);
	return auth_cli_alias_del(path, alias, argc == 4 ? target : NULL);
}

/* ---- quotas (dovecot-quotas.cf: "user@domain:SIZE") ---- */

/* Sets addr's line to "addr:size", dropping any other line of addr. */
static int
auth_cli_quota_set(const char *path, const char *addr, const char *size)
{
	struct auth_cli_file f;
	ssize_t i;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	if ((i = auth_cli_find(&f, AUTH_CLI_QUOTA_STOPS, addr)) == -1) {
		auth_cli_file_append(&f, xasprintf("%s:%s", addr, size));
	} else {
		x_free(&f.lines[i]);
		f.lines[i] = xasprintf("%s:%s", addr, size);
		for (size_t k = (size_t)i + 1; k < f.nlines;) {
			char key[AUTH_ADDR_MAX + 1];
			auth_cli_line_key(f.lines[k], AUTH_CLI_QUOTA_STOPS,
			    key);
			if (strcmp(key, addr) == 0)
				auth_cli_remove_line(&f, k);
			else
				k++;
		}
	}
	if (auth_cli_file_write(&f) == -1)
		goto out;
	printf("set quota of %s to %s\n", addr, size);
	rc = 0;
out:
	auth_cli_file_free(&f);
	return rc;
}

static int
auth_cli_quota_del(const char *path, const char *addr)
{
	struct auth_cli_file f;
	bool found = false;
	ssize_t i;
	int rc = 1;

	if (auth_cli_file_read(path, &f) == -1)
		goto out;
	while ((i = auth_cli_find(&f, AUTH_CLI_QUOTA_STOPS, addr)) != -1) {
		auth_cli_remove_line(&f, (size_t)i);
		found = true;
	}
	if (!found) {
		fprintf(stderr, "no quota for %s\n", addr);
		goto out;
	}
	if (auth_cli_file_write(&f) == -1)
		goto out;
	printf("deleted quota of %s\n", addr);
	rc = 0;
out:
	auth_cli_file_free(&f);
	return rc;
}

static int
auth_cli_usage_quota(void)
{
	fprintf(stderr, "usage: mailfort quota set ADDRESS SIZE\n"
	    "       mailfort quota del ADDRESS\n"
	    "SIZE: bytes, or a number with K, M, G or T (1024-based); "
	    "0: unlimited\n");
	return 2;
}

/*
 * `quota set` wants an account of the users file (as docker-mailserver's
 * `setup quota set` does); `quota del` does not, so lines of deleted
 * accounts can go.  ':' would end the address in the file: refused.
 */
int
auth_cli_quota(const struct config *cfg, int argc, char **argv)
{
	char addr[AUTH_ADDR_MAX + 1];
	const char *verb = argc > 1 ? argv[1] : "";
	const char *path, *users;
	uint64_t bytes;

	if (!((strcmp(verb, "set") == 0 && argc == 4) ||
	    (strcmp(verb, "del") == 0 && argc == 3)))
		return auth_cli_usage_quota();
	if ((path = auth_cli_file_path(cfg->quotas_file, "quotas")) == NULL ||
	    auth_cli_addr(argv[2], false, addr) == -1)
		return 2;
	if (strchr(addr, ':') != NULL) {
		fprintf(stderr, "invalid address: %s\n", argv[2]);
		return 2;
	}
	if (strcmp(verb, "del") == 0)
		return auth_cli_quota_del(path, addr);
	if (quota_parse_size(argv[3], &bytes) == -1) {
		fprintf(stderr, "invalid size: %s\n", argv[3]);
		return 2;
	}
	if ((users = auth_cli_file_path(cfg->users_file, "users")) == NULL)
		return 2;
	switch (auth_cli_user_known(users, addr)) {
	case -1:
		return 1;
	case 0:
		fprintf(stderr, "no user %s\n", addr);
		return 1;
	}
	return auth_cli_quota_set(path, addr, argv[3]);
}
