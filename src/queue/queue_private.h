/*
 * queue_private.h - shared by the files of src/queue only.
 */
#ifndef MAILFORT_QUEUE_PRIVATE_H
#define MAILFORT_QUEUE_PRIVATE_H

#include <sqlite3.h>

#include "queue/queue.h"

#define SPOOL_WRITE_CHUNK (64 * 1024)

struct spool_rcpt {
	char *addr;
	bool local;
};

struct spool_msg {
	char id[QUEUE_ID_LEN + 1];
	char *tmp_path;
	char *msg_path;
	int fd;
	struct buf pending;	/* not yet written */
	uint64_t size;
	bool write_failed;
	char *sender;
	struct spool_rcpt *rcpts;
	size_t rcpt_count;
	int64_t created;
};

/* Opens (creating the schema of) data_dir/queue/queue.db. */
int queue_db_open(const char *data_dir, sqlite3 **db_r, const char **error_r)
    MF_WUR;
/* Flushes buffered data; -1 on error. */
int spool_msg_flush(struct spool_msg *m) MF_WUR;
void spool_msg_free(struct spool_msg **m);

#endif
