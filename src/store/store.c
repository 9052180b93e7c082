/*
 * store.c - opening and closing a per-account store: the account name is
 * checked before it becomes a path, the directories are created one level
 * at a time below data_dir without following symlinks, then the database
 * is opened (store_db.c).  Also the error helpers of the whole backend,
 * and the sweep of temporary files a crash left in msg/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_private.h"

/* Temporary APPEND files (store_append_file(); store_mailboxes.c makes
 * them with the same prefix). */
#define STORE_SWEEP_PREFIX "tmp.a"
/* The stamp of the last sweep, beside index.db. */
#define STORE_SWEEP_STAMP "sweep.stamp"

/* store_open() fails before a store exists to own the message. */
static _Thread_local char store_open_error[STORE_ERROR_MAX];

int
store_fail(struct store *store, const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store->error, sizeof(store->error), fmt, ap);
	va_end(ap);
	*error_r = store->error;
	return -1;
}

int
store_fail_errno(struct store *store, const char **error_r, const char *what)
{
	return store_fail(store, error_r, "%s: %s", what, strerror(errno));
}

int
store_fail_db(struct store *store, const char **error_r, const char *what)
{
	return store_fail(store, error_r, "%s: %s", what,
	    sqlite3_errmsg(store->db));
}

const char *
store_mailbox_canon(const char *name)
{
	return str_case_eq(name, "INBOX") ? "INBOX" : name;
}

/*
 * The local part becomes a directory name: no '/', no leading '.' (so
 * never "." or ".."), nothing a shell or a log would trip over.  RFC 5321
 * allows more (quoted strings, '/'); such accounts are refused.
 * XXX: SMTPUTF8 local parts (RFC 6531) are refused until we need them.
 */
static bool
store_local_valid(const char *s, size_t len)
{
	if (len == 0 || len > STORE_LOCAL_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\' ||
		    c == '@' || (c >= 'A' && c <= 'Z'))
			return false;
	}
	return true;
}

/* LDH labels of 1-63 bytes, lower case, no empty label, no trailing '.'
 * (RFC 1035 §2.3.4), so "example.test." cannot be a second directory. */
static bool
store_domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > STORE_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && label > 0)))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

bool
store_account_valid(const char *account)
{
	size_t len = strnlen(account, STORE_ACCOUNT_MAX + 1);
	const char *at;

	if (len > STORE_ACCOUNT_MAX)
		return false;
	at = memchr(account, '@', len);
	if (at == NULL)
		return false;
	return store_local_valid(account, (size_t)(at - account)) &&
	    store_domain_valid(at + 1, len - (size_t)(at - account) - 1);
}

/* mkdir -p for data_dir itself, which the admin may have made a symlink. */
static int
store_mkdir_p(struct store *store, const char *path, const char **error_r)
{
	char *p = xstrdup(path);

	for (char *s = p + 1; ; s++) {
		char save = *s;
		if (save != '/' && save != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, STORE_DIR_MODE) == -1 && errno != EEXIST) {
			free(p);
			return store_fail_errno(store, error_r,
			    "mkdir data_dir");
		}
		*s = save;
		if (save == '\0')
			break;
	}
	free(p);
	return 0;
}

/*
 * Opens (creating) the directory name below parent_fd without following a
 * symlink, so nobody can redirect our mail elsewhere.  A directory we made
 * is fsynced into its parent: a delivery must not vanish with it.
 */
static int
store_subdir(struct store *store, int parent_fd, const char *name,
    int *fd_r, const char **error_r)
{
	int fd;

	if (mkdirat(parent_fd, name, STORE_DIR_MODE) == 0) {
		if (fsync(parent_fd) == -1)
			return store_fail_errno(store, error_r,
			    "fsync store directory");
	} else if (errno != EEXIST) {
		return store_fail_errno(store, error_r,
		    "mkdir store directory");
	}
	fd = openat(parent_fd, name,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return store_fail_errno(store, error_r,
		    "open store directory");
	*fd_r = fd;
	return 0;
}

/* data_dir/mail/<domain>/<local>/msg, keeping msg/ open in the store. */
static int
store_dirs(struct store *store, const char *data_dir, const char **error_r)
{
	char *local = xstrdup(store->account);
	char *domain = strchr(local, '@');
	const char *names[] = { "mail", domain + 1, local, "msg" };
	int fd, next = -1, ret = 0;

	*domain = '\0';
	if (store_mkdir_p(store, data_dir, error_r) < 0) {
		free(local);
		return -1;
	}
	fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		ret = store_fail_errno(store, error_r, "open data_dir");
	for (size_t i = 0; ret == 0 && i < MF_ARRAY_LEN(names); i++) {
		ret = store_subdir(store, fd, names[i], &next, error_r);
		close(fd);
		fd = ret == 0 ? next : -1;
	}
	if (ret == 0) {
		store->msg_fd = fd;
		store->dir = xasprintf("%s/mail/%s/%s", data_dir, domain + 1,
		    local);
	}
	free(local);
	return ret;
}

int
store_open(const char *data_dir, const char *account,
    struct store **store_r, const char **error_r)
{
	struct store *store;

	*store_r = NULL;
	if (!store_account_valid(account)) {
		*error_r = "invalid account name";
		return -1;
	}
	if (data_dir[0] == '\0') {
		*error_r = "empty data_dir";
		return -1;
	}
	store = xmalloc(sizeof(*store));
	store->msg_fd = -1;
	store->account = xstrdup(account);
	if (store_dirs(store, data_dir, error_r) < 0 ||
	    store_db_open(store, error_r) < 0) {
		str_lcpy(store_open_error, *error_r, sizeof(store_open_error));
		*error_r = store_open_error;
		store_close(&store);
		return -1;
	}
	*store_r = store;
	return 0;
}

void
store_close(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	store_db_close(store);
	if (store->msg_fd != -1)
		close(store->msg_fd);
	x_free(&store->dir);
	x_free(&store->account);
	x_free(storep);
}

/* ---- sweeping temporary files ---- */

/* Has the last sweep of store been less than STORE_SWEEP_INTERVAL ago?
 * Otherwise the stamp is renewed (created or touched) for this one. */
static int
store_sweep_due(struct store *store, time_t now, const char **error_r)
{
	struct stat st;
	char *path = xasprintf("%s/%s", store->dir, STORE_SWEEP_STAMP);
	int fd, ret = 1;

	if (stat(path, &st) == 0 && st.st_mtime <= now &&
	    now - st.st_mtime < STORE_SWEEP_INTERVAL)
		ret = 0;
	if (ret == 1) {
		fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		    STORE_FILE_MODE);
		if (fd == -1 || futimens(fd, NULL) == -1)
			ret = store_fail_errno(store, error_r, "sweep stamp");
		if (fd != -1)
			close(fd);
	}
	free(path);
	return ret;
}

/* Unlinks name when it is a temporary file older than the limit. */
static uint64_t
store_sweep_one(struct store *store, int dir_fd, const char *name,
    time_t now)
{
	struct stat st;

	if (strncmp(name, STORE_SWEEP_PREFIX,
	    strlen(STORE_SWEEP_PREFIX)) != 0 ||
	    fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode) || st.st_mtime > now - STORE_TMP_STALE)
		return 0;
	if (unlinkat(dir_fd, name, 0) == -1) {
		if (errno != ENOENT)
			log_warn("store %s: unlink %s", store->account, name);
		return 0;
	}
	return 1;
}

int
store_sweep_tmp(struct store *store, uint64_t *removed_r,
    const char **error_r)
{
	time_t now = time(NULL);
	struct dirent *de;
	DIR *dir;
	int fd, ret;

	*removed_r = 0;
	if ((ret = store_sweep_due(store, now, error_r)) <= 0)
		return ret;
	fd = openat(store->msg_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || (dir = fdopendir(fd)) == NULL) {
		ret = store_fail_errno(store, error_r, "open msg/");
		if (fd != -1)
			close(fd);
		return ret;
	}
	errno = 0;
	while ((de = readdir(dir)) != NULL) {
		*removed_r += store_sweep_one(store, dirfd(dir), de->d_name,
		    now);
		errno = 0;
	}
	ret = errno != 0 ? store_fail_errno(store, error_r, "read msg/") : 1;
	closedir(dir);
	return ret;
}
