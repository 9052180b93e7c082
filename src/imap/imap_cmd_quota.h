/*
 * imap_cmd_quota.h - the QUOTA extension (RFC 9208, imap_cmd_quota.c):
 * its commands for the authenticated-state table and the check APPEND
 * and COPY share.
 */
#ifndef MAILFORT_IMAP_CMD_QUOTA_H
#define MAILFORT_IMAP_CMD_QUOTA_H

#include "imap/imap_private.h"

/* The tagged NO text of a refusal over quota (RFC 9208 §4.4). */
#define IMAP_QUOTA_OVER_TEXT "[OVERQUOTA] Quota exceeded"

/* The storage quota of the session's user in bytes, 0: unlimited. */
uint64_t imap_quota_limit(const struct imap_session *s);
/* Would adding add bytes to used go past limit (0: never)? */
bool imap_quota_exceeded(uint64_t limit, uint64_t used, uint64_t add);

void imap_cmd_getquota(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
void imap_cmd_getquotaroot(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
void imap_cmd_setquota(struct imap_session *s,
    const struct imap_command *cmd, bool uid);

#endif
