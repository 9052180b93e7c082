/*
 * store_file.c - message files under msg/.  A file is never changed once
 * it has its final name: it appears there complete (a hard link of the
 * fsynced spool file, or a fsynced copy linked into place), so finding the
 * name already taken means the message is already there.
 *
 * Names are derived from the delivery id: a retry after a crash between
 * placing the file and committing the row finds and reuses the same file
 * instead of leaving an orphan behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/store_private.h"

#define STORE_COPY_CHUNK 65536

/*
 * "d" + the first 128 bits of SHA-256(delivery_id) in hex: fixed length,
 * no '/', never "." or "..", whatever the id holds.  A collision-resistant
 * hash matters: two ids sharing a name would share one file.
 */
int
store_file_name(const char *delivery_id, char name_r[STORE_FILE_NAME_MAX],
    const char **error_r)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t i;

	if (EVP_Digest(delivery_id, strlen(delivery_id), md, &mdlen,
	    EVP_sha256(), NULL) != 1 || mdlen < (STORE_FILE_NAME_MAX - 2) / 2) {
		*error_r = "SHA-256 failed";
		return -1;
	}
	name_r[0] = 'd';
	for (i = 0; i < (STORE_FILE_NAME_MAX - 2) / 2; i++) {
		name_r[1 + 2 * i] = hex[md[i] >> 4];
		name_r[2 + 2 * i] = hex[md[i] & 15];
	}
	name_r[1 + 2 * i] = '\0';
	return 0;
}

/* Copies all of in (from its start) to out; errno is set on -1. */
static int
store_file_copy_data(int in, int out)
{
	/* Heap, not stack: thread pool stacks may be small; copies rare. */
	char *chunk = xmalloc(STORE_COPY_CHUNK);
	off_t off = 0;
	ssize_t n, w;

	for (;;) {
		n = pread(in, chunk, STORE_COPY_CHUNK, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
		for (ssize_t done = 0; done < n; done += w) {
			w = write(out, chunk + done, (size_t)(n - done));
			if (w == -1 && errno == EINTR) {
				w = 0;
			} else if (w == -1) {
				n = -1;
				goto out;
			}
		}
	}
out:
	x_free(&chunk);
	return n < 0 ? -1 : 0;
}

/*
 * Writes a copy under a temporary name, fsyncs it, then links it to name.
 * link() rather than rename(): if a concurrent or earlier attempt already
 * put the message there, its file stays as it is.
 */
int
store_file_copy(struct store *store, int src_fd, const char *name,
    const char **error_r)
{
	unsigned char rnd[8];
	char tmp[STORE_FILE_NAME_MAX + 32];
	int fd, ret = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return store_fail_errno(store, error_r, "getrandom");
	snprintf(tmp, sizeof(tmp), "tmp.%s.%02x%02x%02x%02x%02x%02x%02x%02x",
	    name, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
	    rnd[7]);
	fd = openat(store->msg_fd, tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, STORE_FILE_MODE);
	if (fd == -1)
		return store_fail_errno(store, error_r, "create message file");
	if (store_file_copy_data(src_fd, fd) < 0)
		ret = store_fail_errno(store, error_r, "copy message file");
	else if (fsync(fd) == -1)
		ret = store_fail_errno(store, error_r, "fsync message file");
	if (close(fd) == -1 && ret == 0)
		ret = store_fail_errno(store, error_r, "close message file");
	if (ret == 0 && linkat(store->msg_fd, tmp, store->msg_fd, name, 0) ==
	    -1 && errno != EEXIST)
		ret = store_fail_errno(store, error_r, "link message file");
	if (unlinkat(store->msg_fd, tmp, 0) == -1)
		log_warn("store %s: unlink %s", store->account, tmp);
	return ret;
}

/*
 * Links spool_path to msg/name, or copies it when a link cannot be made
 * (EXDEV: another file system; EPERM: file systems without hard links;
 * EMLINK: link count at its limit).
 */
static int
store_file_link(struct store *store, const char *spool_path, int src_fd,
    const char *name, const char **error_r)
{
	/* flags 0: a symlink would be linked itself; the caller refused it. */
	if (linkat(AT_FDCWD, spool_path, store->msg_fd, name, 0) == 0)
		return 0;
	switch (errno) {
	case EEXIST:
		/* An earlier attempt placed it; see the top of this file. */
		return 0;
	case EXDEV:
	case EPERM:
	case EMLINK:
		return store_file_copy(store, src_fd, name, error_r);
	default:
		return store_fail_errno(store, error_r, "link message file");
	}
}

int
store_file_place(struct store *store, const char *spool_path,
    const char *name, uint64_t *size_r, const char **error_r)
{
	struct stat sst, dst;
	int fd, ret = 0;

	fd = open(spool_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return store_fail_errno(store, error_r, "open spool file");
	if (fstat(fd, &sst) == -1)
		ret = store_fail_errno(store, error_r, "stat spool file");
	else if (!S_ISREG(sst.st_mode))
		ret = store_fail(store, error_r, "spool file is not a file");
	else
		ret = store_file_link(store, spool_path, fd, name, error_r);
	close(fd);
	if (ret < 0)
		return -1;
	if (fstatat(store->msg_fd, name, &dst, AT_SYMLINK_NOFOLLOW) == -1)
		return store_fail_errno(store, error_r, "stat message file");
	/* Same name, other content: a hash collision or a damaged store. */
	if (!S_ISREG(dst.st_mode) || dst.st_size != sst.st_size)
		return store_fail(store, error_r,
		    "message file %s exists and differs", name);
	/* The new directory entry must be on disk before the row is; a
	 * batch fsyncs once before its COMMIT. */
	if (store->batch)
		store->dir_dirty = true;
	else if (fsync(store->msg_fd) == -1)
		return store_fail_errno(store, error_r, "fsync msg directory");
	*size_r = (uint64_t)dst.st_size;
	return 0;
}
