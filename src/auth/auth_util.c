/*
 * auth_util.c - pieces the account, alias and quota tables share.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_private.h"

int
auth_file_id(const char *path, struct auth_fileid *id_r)
{
	struct stat st;

	memset(id_r, 0, sizeof(*id_r));
	if (stat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	id_r->present = true;
	id_r->dev = st.st_dev;
	id_r->ino = st.st_ino;
	id_r->size = st.st_size;
	id_r->mtime = st.st_mtim;
	return 0;
}

bool
auth_file_id_eq(const struct auth_fileid *a, const struct auth_fileid *b)
{
	return a->present == b->present && a->dev == b->dev &&
	    a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

int
auth_addr_norm(const char *addr, char *out, bool allow_empty_local)
{
	size_t len = strlen(addr);
	const char *at = strchr(addr, '@');

	if (len == 0 || len > AUTH_ADDR_MAX || at == NULL ||
	    strchr(at + 1, '@') != NULL || at[1] == '\0')
		return -1;
	if (at == addr && !allow_empty_local)
		return -1;
	for (const char *p = addr; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -1;
	memcpy(out, addr, len + 1);
	str_lower(out);
	return 0;
}

int
auth_check_init(struct auth_check *c, struct accounts *acc, const char *user,
    const char *password)
{
	memset(c, 0, sizeof(*c));
	if (*user == '\0' || strlen(user) > AUTH_ADDR_MAX)
		return -1;
	c->user = str_lower(xstrdup(user));
	accounts_refresh(acc);
	c->hash = accounts_get_hash(acc, c->user);
	c->password = xstrdup(password);
	return 0;
}

void
auth_check_run(struct auth_check *c)
{
	c->ok = auth_password_verify(c->hash != NULL ? c->hash :
	    AUTH_DUMMY_HASH, c->password) && c->hash != NULL;
}

void
auth_check_clear(struct auth_check *c)
{
	if (c->password != NULL)
		x_wipe(c->password, strlen(c->password));
	free(c->password);
	free(c->hash);
	free(c->user);
	memset(c, 0, sizeof(*c));
}
