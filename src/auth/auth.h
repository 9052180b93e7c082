/*
 * auth.h - accounts, aliases, password schemes and login lockout.
 *
 * Accounts and aliases are read from docker-mailserver's files as they are:
 *   postfix-accounts.cf  user@domain|{SCHEME}hash   (one per line, # comments)
 *   postfix-virtual.cf   alias@domain target[,target...]  ("@domain" catch-all)
 * Addresses are compared lower-case.  A running server sees edits without a
 * restart: accounts_refresh() re-reads a file whose identity (inode, size,
 * mtime) changed, at most once per second.
 */
#ifndef MAILFORT_AUTH_H
#define MAILFORT_AUTH_H

#include <sys/socket.h>
#include <time.h>

#include "core/config.h"

#define AUTH_ADDR_MAX 320	/* longest address we accept (64 + 1 + 255) */
#define AUTH_ALIAS_DEPTH 8	/* alias expansion depth limit */
#define AUTH_TARGETS_MAX 1000	/* targets one address may expand to */

struct accounts;

/*
 * Loads both files (either may be NULL or "": then empty).  A file that
 * cannot be read or has bad lines is logged (file:line) and the good lines
 * are kept; never fails.
 */
struct accounts *accounts_open(const char *users_file,
    const char *aliases_file);
void accounts_free(struct accounts **acc);
/* Cheap when nothing changed (stat, at most once per second). */
void accounts_refresh(struct accounts *acc);
/* Number of accounts loaded (for logs and tests). */
size_t accounts_count(const struct accounts *acc);

/* True when addr (any case) is a real account. */
bool accounts_user_exists(struct accounts *acc, const char *addr);

/*
 * Resolves a recipient to its final addresses, in this order:
 *   1. an explicit alias entry for addr expands (it may list the account
 *      itself, as Postfix virtual aliases do);
 *   2. a real account is itself;
 *   3. with sub-addressing (delim != 0), "user+tag@d" is retried as
 *      "user@d" through steps 1-2;
 *   4. only then the catch-all "@d" alias expands: a real account always
 *      wins over a catch-all.
 * Aliases expand recursively up to AUTH_ALIAS_DEPTH; targets may be remote
 * addresses.  Duplicates are removed.
 * Returns the number of targets (0: unknown recipient), *targets_r is a
 * NULL-terminated xmalloc'd array of xmalloc'd lower-case strings that the
 * caller frees with accounts_targets_free().
 */
size_t accounts_resolve(struct accounts *acc, const char *addr, char delim,
    char ***targets_r);
void accounts_targets_free(char ***targets);

/* Copy of the stored "{SCHEME}hash" of user (xmalloc'd) or NULL. */
char *accounts_get_hash(struct accounts *acc, const char *user);

/*
 * May the authenticated user put addr in MAIL FROM / From:?  Yes for its
 * own address (and its +tag forms) and for any alias (not catch-all) whose
 * expansion includes user.
 */
bool accounts_may_send_as(struct accounts *acc, const char *user,
    const char *addr);

/*
 * Verifies password against a stored "{SCHEME}hash": SHA512-CRYPT,
 * SHA256-CRYPT, BLF-CRYPT, ARGON2I, ARGON2ID (also a bare "$6$..." etc. by
 * its prefix).  Thread-safe, slow by design: call it from the thread pool.
 * Compares in constant time; unknown schemes never verify.
 */
bool auth_password_verify(const char *stored, const char *password);
/*
 * Verified instead when the user does not exist, so timing does not tell
 * which users exist: same scheme and cost as auth_password_hash().
 */
#define AUTH_DUMMY_HASH \
	"{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$58IZFNZiR4ovnOBXFm1pKA$" \
	"/ndx0j0zDaLW2pChjd4LvtWFCpsymQvyzFEiGE11R1w"

/*
 * One login check, shared by SMTP AUTH, POP3 and IMAP: prepared on the
 * loop thread (copies only), run on a pool thread, cleared (password
 * wiped) by the owner.  An unknown user is verified against
 * AUTH_DUMMY_HASH so the time taken does not tell who exists.
 */
struct auth_check {
	char *user;		/* lower-cased */
	char *hash;		/* NULL: no such account */
	char *password;
	bool ok;		/* after auth_check_run() */
};
/* -1 (nothing allocated) when user is empty or over AUTH_ADDR_MAX. */
int auth_check_init(struct auth_check *c, struct accounts *acc,
    const char *user, const char *password) MF_WUR;
void auth_check_run(struct auth_check *c);
void auth_check_clear(struct auth_check *c);

/* A new "{ARGON2ID}$argon2id$..." hash (xmalloc'd), or NULL on failure. */
char *auth_password_hash(const char *password);

/*
 * Lockout: failed logins counted per client address in a table shared by
 * all processes (MAP_SHARED, created by the master before forking).
 * After `failures` failures within `seconds`, the address is locked out
 * for `seconds`.  Fixed size; the oldest entry is recycled when full.
 */
struct lockout;
struct lockout *lockout_create(unsigned failures, unsigned seconds);
void lockout_destroy(struct lockout **lo);
/* Changes limits in place (config reload). */
void lockout_configure(struct lockout *lo, unsigned failures,
    unsigned seconds);
bool lockout_is_locked(struct lockout *lo, const struct sockaddr *sa,
    time_t now);
/* Counts one failure; returns the failures counted so far. */
unsigned lockout_fail(struct lockout *lo, const struct sockaddr *sa,
    time_t now);
void lockout_success(struct lockout *lo, const struct sockaddr *sa);

/* `mailfort user add|del|passwd|list` and `mailfort alias add|del|list`;
 * argv[0] is "user"/"alias".  Return the process exit status. */
int auth_cli_user(const struct config *cfg, int argc, char **argv);
int auth_cli_alias(const struct config *cfg, int argc, char **argv);

/*
 * Storage quotas (quota.c): docker-mailserver's dovecot-quotas.cf
 * ("user@domain:SIZE" lines, [accounts] quotas) over [accounts]
 * default_quota.  Bytes throughout; 0 means unlimited.
 */
#define QUOTA_SIZE_MAX (1ULL << 60)	/* largest SIZE accepted */
#define QUOTA_REFRESH_SECONDS 1		/* file stat at most this often */

/*
 * SIZE of the file and of `mailfort quota set`: digits, optionally K, M,
 * G or T (1024-based, any case), optionally a trailing B ("50M", "50MB",
 * "2g", "1024K", "123").  Returns -1 for anything else or above
 * QUOTA_SIZE_MAX.
 */
int quota_parse_size(const char *s, uint64_t *bytes_r) MF_WUR;

/*
 * A quota table: file (NULL or "": none; missing: empty) read now, bad
 * lines logged and skipped; never fails.  One thread owns a table.
 */
struct quota_table;
struct quota_table *quota_table_open(const char *file,
    uint64_t default_bytes);
void quota_table_free(struct quota_table **qt);
/* Re-reads a changed file; cheap (stat at most once a second). */
void quota_table_refresh(struct quota_table *qt);
/* Lines loaded (logs, tests). */
size_t quota_table_count(const struct quota_table *qt);
/* The quota of user (any case): its line, else the default; *explicit_r
 * (may be NULL) tells whether a line set it. */
uint64_t quota_table_get(const struct quota_table *qt, const char *user,
    bool *explicit_r);

/*
 * The quota of user under cfg, from this process's table (opened on
 * first use, refreshed on each call).  Event loop thread only.
 */
uint64_t quota_get(const struct config *cfg, const char *user);

/* `mailfort quota set USER SIZE | del USER`; argv[0] is "quota". */
int auth_cli_quota(const struct config *cfg, int argc, char **argv);

#endif
