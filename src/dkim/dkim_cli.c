/*
 * dkim_cli.c - `mailfort dkim ...` for operators:
 *   keygen DOMAIN [--selector S] [--force]  new RSA-2048 and Ed25519 keys,
 *                                           then the TXT records to publish
 *   show DOMAIN [--selector S]              the TXT records again
 *   sign DOMAIN FILE [--selector S]         debug: FILE (a stored message,
 *                                           CRLF) with DKIM-Signature fields
 *                                           prepended, on stdout
 * Records go to stdout, one zone file line each; everything else to
 * stderr.  Keys are created 0600 in directories 0700, owned by [server]
 * user when run as root, so the unprivileged queue runner can read them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dkim/dkim.h"

#define DKIM_CLI_DIR_MODE 0700	/* directories holding keys */
#define DKIM_CLI_READ 65536	/* bytes per read() in sign */
#define DKIM_CLI_ARGS_MAX 8	/* positional arguments */

struct dkim_cli_args {
	const char *cmd;
	const char *pos[DKIM_CLI_ARGS_MAX];
	size_t npos;
	const char *selector;
	bool force;
};

static void
dkim_cli_usage(void)
{
	fprintf(stderr, "usage: mailfort dkim keygen DOMAIN [--selector S] "
	    "[--force]\n"
	    "       mailfort dkim show DOMAIN [--selector S]\n"
	    "       mailfort dkim sign DOMAIN FILE [--selector S]\n");
}

static int
dkim_cli_parse(const struct config *cfg, int argc, char **argv,
    struct dkim_cli_args *a)
{
	char sel[DKIM_NAME_MAX + 1];

	memset(a, 0, sizeof(*a));
	a->selector = cfg->dkim_selector != NULL && cfg->dkim_selector[0] !=
	    '\0' ? cfg->dkim_selector : DKIM_SELECTOR_DEFAULT;
	if (argc < 2)
		return -1;
	a->cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--selector") == 0 && i + 1 < argc)
			a->selector = argv[++i];
		else if (strcmp(argv[i], "--force") == 0)
			a->force = true;
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			return -1;
		else if (a->npos < DKIM_CLI_ARGS_MAX)
			a->pos[a->npos++] = argv[i];
		else
			return -1;
	}
	if (a->npos < 1)
		return -1;
	if (!dkim_valid_name(a->pos[0])) {
		fprintf(stderr, "mailfort: %s: not a valid domain name\n",
		    a->pos[0]);
		return -2;
	}
	if (!dkim_valid_name(a->selector) ||
	    !dkim_selector(a->selector, DKIM_ALG_ED25519_SHA256, sel)) {
		fprintf(stderr, "mailfort: %s: not a valid selector\n",
		    a->selector);
		return -2;
	}
	return 0;
}

/* The owner of what we create: [server] user when we are root. */
static int
dkim_cli_owner(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (getuid() != 0 || strcmp(cfg->user, "root") == 0)
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		fprintf(stderr, "mailfort: user %s does not exist\n",
		    cfg->user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* mkdir -p; the last component gets mode and owner. */
static int
dkim_cli_mkdirs(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; *s != '\0' && rc == 0; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == -1 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (rc == 0 && mkdir(p, mode) == -1 && errno != EEXIST)
		rc = -1;
	if (rc == 0 && uid != (uid_t)-1 && chown(p, uid, gid) == -1)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "mailfort: %s: %s\n", p, strerror(errno));
	free(p);
	return rc;
}

static void
dkim_cli_print(const struct dkim_cli_args *a, struct dkim_key *const *keys,
    size_t n)
{
	char sel[DKIM_NAME_MAX + 1];
	struct buf txt, line;

	buf_init(&txt, 0);
	buf_init(&line, 0);
	for (size_t i = 0; i < n; i++) {
		buf_reset(&txt);
		dkim_key_txt(keys[i], &txt);
		xassert(dkim_selector(a->selector, dkim_key_alg(keys[i]), sel));
		dkim_txt_line(sel, a->pos[0], txt.data, &line);
	}
	fwrite(line.data, 1, line.len, stdout);
	buf_free(&txt);
	buf_free(&line);
}

/* Both paths must be free unless --force: refuse before generating. */
static int
dkim_cli_check_free(const struct dkim_cli_args *a, char **paths)
{
	int rc = 0;

	for (int alg = 0; alg < DKIM_ALG_COUNT; alg++) {
		if (a->force || access(paths[alg], F_OK) == -1)
			continue;
		fprintf(stderr, "mailfort: %s exists; --force replaces it "
		    "(the published record then stops verifying)\n",
		    paths[alg]);
		rc = -1;
	}
	return rc;
}

static int
dkim_cli_keygen(const struct config *cfg, const struct dkim_cli_args *a)
{
	char *dir = dkim_key_dir(cfg), *paths[DKIM_ALG_COUNT] = { NULL };
	char *domain_dir = xasprintf("%s/%s", dir, a->pos[0]);
	struct dkim_key *keys[DKIM_ALG_COUNT] = { NULL };
	const char *err = NULL;
	uid_t uid;
	gid_t gid;
	int rc = -1, alg;

	str_lower(domain_dir + strlen(dir));
	for (alg = 0; alg < DKIM_ALG_COUNT; alg++)
		paths[alg] = dkim_key_path(dir, a->pos[0], a->selector, alg);
	if (!config_is_local_domain(cfg, a->pos[0]))
		fprintf(stderr, "mailfort: warning: %s is not in [server] "
		    "domains; its mail is not signed\n", a->pos[0]);
	if (a->npos != 1 || dkim_cli_check_free(a, paths) < 0 ||
	    dkim_cli_owner(cfg, &uid, &gid) < 0 ||
	    dkim_cli_mkdirs(dir, DKIM_CLI_DIR_MODE, uid, gid) < 0 ||
	    dkim_cli_mkdirs(domain_dir, DKIM_CLI_DIR_MODE, uid, gid) < 0)
		goto out;
	for (alg = 0; alg < DKIM_ALG_COUNT; alg++) {
		if (dkim_key_generate(alg, &keys[alg], &err) < 0 ||
		    dkim_key_save(keys[alg], paths[alg], uid, gid, a->force,
		    &err) < 0) {
			fprintf(stderr, "mailfort: %s: %s\n", paths[alg], err);
			goto out;
		}
		fprintf(stderr, "mailfort: wrote %s (%s)\n", paths[alg],
		    dkim_alg_name(alg));
	}
	fprintf(stderr, "mailfort: publish these DNS records:\n");
	dkim_cli_print(a, keys, DKIM_ALG_COUNT);
	rc = 0;
out:
	for (alg = 0; alg < DKIM_ALG_COUNT; alg++) {
		dkim_key_free(&keys[alg]);
		free(paths[alg]);
	}
	free(domain_dir);
	free(dir);
	return rc;
}

/* Loads the keys of the domain; prints why not. */
static int
dkim_cli_load(const struct config *cfg, const struct dkim_cli_args *a,
    struct dkim_key **keys, size_t *n)
{
	char *dir = dkim_key_dir(cfg), *path = NULL;
	const char *err = NULL;
	int r;

	r = dkim_keys_load(dir, a->pos[0], a->selector, keys, n, &path,
	    &err);
	if (r < 0)
		fprintf(stderr, "mailfort: %s: %s\n", path, err);
	else if (r == 0)
		fprintf(stderr, "mailfort: no DKIM key for %s, selector %s, in "
		    "%s (mailfort dkim keygen %s)\n", a->pos[0], a->selector,
		    dir, a->pos[0]);
	free(path);
	free(dir);
	return r > 0 ? 0 : -1;
}

/* Streams fd through the signer, then prints the fields and the file. */
static int
dkim_cli_sign_fd(const struct dkim_cli_args *a, struct dkim_key **keys,
    size_t n, int fd)
{
	struct dkim_signer *s = dkim_signer_new(a->pos[0], a->selector, keys,
	    n, NULL);
	char *chunk = xmalloc(DKIM_CLI_READ);
	const char *err = NULL;
	struct buf out;
	ssize_t r;
	int rc = 0;

	buf_init(&out, 0);
	while ((r = read(fd, chunk, DKIM_CLI_READ)) > 0)
		dkim_signer_feed(s, chunk, (size_t)r);
	if (r < 0 || dkim_signer_finish(s, time(NULL), &out, &err) < 0) {
		fprintf(stderr, "mailfort: %s: %s\n", a->pos[1],
		    r < 0 ? strerror(errno) : err);
		rc = -1;
	} else {
		fwrite(out.data, 1, out.len, stdout);
		if (lseek(fd, 0, SEEK_SET) == -1)
			rc = -1;
		while (rc == 0 && (r = read(fd, chunk, DKIM_CLI_READ)) > 0)
			if (fwrite(chunk, 1, (size_t)r, stdout) != (size_t)r)
				rc = -1;
		if (r < 0 || fflush(stdout) != 0)
			rc = -1;
		if (rc < 0)
			fprintf(stderr, "mailfort: %s: %s\n", a->pos[1],
			    strerror(errno));
	}
	buf_free(&out);
	free(chunk);
	dkim_signer_free(&s);
	return rc;
}

static int
dkim_cli_sign(const struct config *cfg, const struct dkim_cli_args *a)
{
	struct dkim_key *keys[DKIM_ALG_COUNT] = { NULL };
	size_t n = 0;
	int fd, rc;

	if (a->npos != 2) {
		dkim_cli_usage();
		return 2;
	}
	if (dkim_cli_load(cfg, a, keys, &n) < 0)
		return 1;
	if ((fd = open(a->pos[1], O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "mailfort: %s: %s\n", a->pos[1],
		    strerror(errno));
		rc = -1;
	} else {
		rc = dkim_cli_sign_fd(a, keys, n, fd);
		close(fd);
	}
	while (n > 0)
		dkim_key_free(&keys[--n]);
	return rc < 0 ? 1 : 0;
}

int
dkim_cli(const struct config *cfg, int argc, char **argv)
{
	struct dkim_key *keys[DKIM_ALG_COUNT] = { NULL };
	struct dkim_cli_args a;
	size_t n = 0;
	int r = dkim_cli_parse(cfg, argc, argv, &a);

	if (r == -2)
		return 1;
	if (r < 0) {
		dkim_cli_usage();
		return 2;
	}
	if (strcmp(a.cmd, "keygen") == 0)
		return dkim_cli_keygen(cfg, &a) < 0 ? 1 : 0;
	if (strcmp(a.cmd, "sign") == 0)
		return dkim_cli_sign(cfg, &a);
	if (strcmp(a.cmd, "show") != 0 || a.npos != 1) {
		dkim_cli_usage();
		return 2;
	}
	if (dkim_cli_load(cfg, &a, keys, &n) < 0)
		return 1;
	dkim_cli_print(&a, keys, n);
	while (n > 0)
		dkim_key_free(&keys[--n]);
	return 0;
}
