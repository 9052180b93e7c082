/*
 * auth_private.h - shared by the files of src/auth only: address
 * normalisation and the file identity used to re-read changed files.
 */
#ifndef MAILFORT_AUTH_PRIVATE_H
#define MAILFORT_AUTH_PRIVATE_H

#include <sys/stat.h>
#include <time.h>

#include "auth/auth.h"

/* What identifies a file version; any change means "re-read". */
struct auth_fileid {
	bool present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* Stat result as an identity; ENOENT is a valid "absent" identity.
 * -1 on other errors (errno set). */
int auth_file_id(const char *path, struct auth_fileid *id_r) MF_WUR;
bool auth_file_id_eq(const struct auth_fileid *a,
    const struct auth_fileid *b);

/*
 * "local@domain" checked (one '@', a domain, no spaces or controls,
 * at most AUTH_ADDR_MAX bytes; an empty local part only when
 * allow_empty_local, for "@domain" catch-alls) and lower-cased into out
 * (AUTH_ADDR_MAX + 1 bytes).  -1 when it is not an address.
 */
int auth_addr_norm(const char *addr, char *out, bool allow_empty_local)
    MF_WUR;

#endif
