/*
 * test_auth.c - unit tests for password schemes, the account and alias
 * tables, recipient resolution, lockout, the user/alias commands, and
 * the quota file and `quota` command.
 * Hashes are made at test time with explicit salts (crypt_r, argon2_hash),
 * plus one fixed vector from Python's crypt module to catch a verifier
 * that only agrees with itself.
 */
#include <argon2.h>
#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/test.h"

static char tmpdir[] = "/tmp/test_auth.XXXXXX";

/* ---- helpers ---- */

static char *
tpath(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	xassert(fp != NULL);
	fputs(text, fp);
	xassert(fclose(fp) == 0);
}

/* Replaces path the way an editor or our CLI does: new inode. */
static void
replace_file(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.new", path);

	write_file(tmp, text);
	xassert(rename(tmp, path) == 0);
	x_free(&tmp);
}

static char *
read_file(const char *path)
{
	struct buf b;
	char chunk[4096];
	size_t n;
	FILE *fp = fopen(path, "r");

	buf_init(&b, 0);
	buf_adds(&b, "");
	if (fp == NULL)
		return b.data;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	return b.data;
}

static char *
crypt_of(const char *pw, const char *setting)
{
	struct crypt_data *cd = xmalloc(sizeof(*cd));
	char *out = crypt_r(pw, setting, cd);
	char *s = out != NULL && out[0] != '*' ? xstrdup(out) : NULL;

	x_free(&cd);
	return s;
}

static char *
argon2_of(const char *pw, argon2_type type)
{
	static const char salt[] = "somesaltsomesalt";
	char enc[256];

	xassert(argon2_hash(2, 1024, 1, pw, strlen(pw), salt, 16, NULL, 32,
	    enc, sizeof(enc), type, ARGON2_VERSION_13) == ARGON2_OK);
	return xstrdup(enc);
}

/* ---- passwords ---- */

static void
test_password_schemes(void)
{
	static const struct {
		const char *scheme;	/* prefix put before the hash */
		const char *setting;	/* crypt setting, or NULL: argon2 */
		argon2_type type;
	} rows[] = {
		{ "{SHA512-CRYPT}", "$6$saltsalt$", 0 },
		{ "{SHA256-CRYPT}", "$5$saltsalt$", 0 },
		{ "{BLF-CRYPT}", "$2b$05$abcdefghijklmnopqrstuu", 0 },
		{ "{BLF-CRYPT}", "$2y$05$abcdefghijklmnopqrstuu", 0 },
		{ "{CRYPT}", "$6$othersalt$", 0 },
		{ "{crypt}", "$5$lowercase$", 0 },
		{ "", "$6$baresalt$", 0 },
		{ "", "$2b$04$ABCDEFGHIJKLMNOPQRSTUu", 0 },
		{ "{ARGON2I}", NULL, Argon2_i },
		{ "{ARGON2ID}", NULL, Argon2_id },
		{ "", NULL, Argon2_id },
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(rows); i++) {
		char *h = rows[i].setting != NULL ?
		    crypt_of("Secret-1", rows[i].setting) :
		    argon2_of("Secret-1", rows[i].type);
		char *stored;

		TEST_TRUE(h != NULL);
		if (h == NULL)
			continue;
		stored = xasprintf("%s%s", rows[i].scheme, h);
		TEST_CHECK(auth_password_verify(stored, "Secret-1"),
		    "right password refused: %s", stored);
		TEST_CHECK(!auth_password_verify(stored, "Secret-2"),
		    "wrong password taken: %s", stored);
		TEST_CHECK(!auth_password_verify(stored, ""),
		    "empty password taken: %s", stored);
		TEST_CHECK(!auth_password_verify(stored, "secret-1"),
		    "case-folded password taken: %s", stored);
		x_free(&stored);
		x_free(&h);
	}
}

static void
test_password_fixed_and_bad(void)
{
	/* python3 -c 'import crypt; print(crypt.crypt("secret",
	 * "$6$abcdefgh"))' */
	static const char fixed[] = "{SHA512-CRYPT}$6$abcdefgh$ltjgWl6579NluT"
	    "/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/"
	    "O6IND4WQhG.";
	char *h6 = crypt_of("pw", "$6$saltsalt$");
	char *s;

	TEST_TRUE(auth_password_verify(fixed, "secret"));
	TEST_TRUE(!auth_password_verify(fixed, "Secret"));
	TEST_TRUE(!auth_password_verify(fixed, "secret "));

	/* A scheme must match its prefix; unknown schemes never verify. */
	s = xasprintf("{SHA256-CRYPT}%s", h6);
	TEST_TRUE(!auth_password_verify(s, "pw"));
	x_free(&s);
	s = xasprintf("{BLF-CRYPT}%s", h6);
	TEST_TRUE(!auth_password_verify(s, "pw"));
	x_free(&s);
	s = xasprintf("{MYSTERY}%s", h6);
	TEST_TRUE(!auth_password_verify(s, "pw"));
	x_free(&s);
	s = xasprintf("{SHA512-CRYPT%s", h6);
	TEST_TRUE(!auth_password_verify(s, "pw"));
	x_free(&s);
	TEST_TRUE(!auth_password_verify("{PLAIN}pw", "pw"));
	TEST_TRUE(!auth_password_verify("pw", "pw"));
	TEST_TRUE(!auth_password_verify("", ""));
	TEST_TRUE(!auth_password_verify("{SHA512-CRYPT}", ""));
	TEST_TRUE(!auth_password_verify("{SHA512-CRYPT}$6$", ""));
	TEST_TRUE(!auth_password_verify("{ARGON2ID}$argon2id$garbage", "pw"));
	TEST_TRUE(!auth_password_verify(NULL, "pw"));
	/* Truncated hash: crypt output differs in length. */
	s = xstrndup(h6, strlen(h6) - 3);
	TEST_TRUE(!auth_password_verify(s, "pw"));
	x_free(&s);
	x_free(&h6);
}

static void
test_password_hash(void)
{
	char *h = auth_password_hash("n3w pass");
	char *h2 = auth_password_hash("n3w pass");

	TEST_TRUE(h != NULL && h2 != NULL);
	if (h == NULL || h2 == NULL)
		return;
	TEST_TRUE(strncmp(h, "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$",
	    41) == 0);
	TEST_TRUE(strcmp(h, h2) != 0);	/* fresh salt each time */
	TEST_TRUE(auth_password_verify(h, "n3w pass"));
	TEST_TRUE(!auth_password_verify(h, "n3w pas"));
	x_free(&h);
	x_free(&h2);
}

struct verify_job {
	const char *stored;
	int ok;
};

static void *
verify_thread(void *arg)
{
	struct verify_job *j = arg;

	for (int i = 0; i < 4; i++)
		j->ok += auth_password_verify(j->stored, "threads") &&
		    !auth_password_verify(j->stored, "threadz");
	return NULL;
}

/* crypt_r with per-call data: concurrent verifies do not interfere. */
static void
test_password_threads(void)
{
	char *h6 = crypt_of("threads", "$6$thrsalt$");
	char *s = xasprintf("{SHA512-CRYPT}%s", h6);
	struct verify_job jobs[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct verify_job){ .stored = s };
		xassert(pthread_create(&th[i], NULL, verify_thread,
		    &jobs[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		TEST_INT(jobs[i].ok, 4);
	}
	x_free(&s);
	x_free(&h6);
}

/* ---- accounts and aliases ---- */

static const char users_text[] =
    "# docker-mailserver accounts\n"
    "\n"
    "Alice@Example.test|{SHA512-CRYPT}$6$x$alicehash|extra|fields\n"
    "bob@example.test|{SHA512-CRYPT}$6$x$bobhash\n"
    "  carol@example.test | {BLF-CRYPT}$2y$05$carolhash  \n"
    "dave@example.test|{ARGON2ID}$argon2id$davehash\n"
    "catchall@example.test|{ARGON2ID}$argon2id$x\n"
    "line without a bar\n"
    "@example.test|{ARGON2ID}$argon2id$x\n"
    "nohash@example.test|\n"
    "alice@example.test|{SHA512-CRYPT}$6$x$duplicate\n";

static const char aliases_text[] =
    "# aliases\n"
    "team@example.test alice@example.test,bob@example.test\n"
    "Sales@Example.test  carol@example.test \t remote@other.test\n"
    "@example.test catchall@example.test\n"
    "info@example.test info@example.test, bob@example.test\n"
    "dave@example.test dave@example.test,archive@remote.test\n"
    "dup@example.test alice@example.test,ALICE@example.test,"
    "team@example.test\n"
    "loop1@example.test loop2@example.test\n"
    "loop2@example.test loop1@example.test\n"
    "deep0@example.test deep1@example.test\n"
    "deep1@example.test deep2@example.test\n"
    "deep2@example.test deep3@example.test\n"
    "deep3@example.test deep4@example.test\n"
    "deep4@example.test deep5@example.test\n"
    "deep5@example.test deep6@example.test\n"
    "deep6@example.test deep7@example.test\n"
    "deep7@example.test deep8@example.test\n"
    "deep8@example.test deep9@example.test\n"
    "deep9@example.test alice@example.test\n"
    "merged@example.test alice@example.test\n"
    "merged@example.test carol@example.test\n"
    "@alias-domain.test postmaster@example.test\n"
    "badalias target@example.test\n"
    "lonely@example.test\n";

/* Resolves addr and compares with want, a ","-joined list in order. */
static void
check_resolve(struct accounts *acc, const char *addr, char delim,
    const char *want, int line)
{
	char **t = NULL;
	size_t n = accounts_resolve(acc, addr, delim, &t);
	struct buf b;

	buf_init(&b, 0);
	buf_adds(&b, "");
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", t[i]);
	TEST_CHECK(strcmp(b.data, want) == 0 && t[n] == NULL,
	    "line %d: resolve %s = \"%s\", want \"%s\"", line, addr, b.data,
	    want);
	buf_free(&b);
	accounts_targets_free(&t);
	TEST_TRUE(t == NULL);
}
#define RESOLVE(acc, addr, delim, want) \
	check_resolve(acc, addr, delim, want, __LINE__)

static void
test_accounts_load(struct accounts *acc)
{
	char *h;

	TEST_INT(accounts_count(acc), 5);
	TEST_TRUE(accounts_user_exists(acc, "alice@example.test"));
	TEST_TRUE(accounts_user_exists(acc, "ALICE@EXAMPLE.TEST"));
	TEST_TRUE(accounts_user_exists(acc, "carol@example.test"));
	TEST_TRUE(!accounts_user_exists(acc, "team@example.test"));
	TEST_TRUE(!accounts_user_exists(acc, "nohash@example.test"));
	TEST_TRUE(!accounts_user_exists(acc, "nobody@example.test"));
	TEST_TRUE(!accounts_user_exists(acc, ""));
	TEST_TRUE(!accounts_user_exists(acc, "@example.test"));
	h = accounts_get_hash(acc, "Alice@example.test");
	TEST_STR(h, "{SHA512-CRYPT}$6$x$alicehash"); /* 1st line wins */
	x_free(&h);
	h = accounts_get_hash(acc, "carol@example.test");
	TEST_STR(h, "{BLF-CRYPT}$2y$05$carolhash");
	x_free(&h);
	TEST_TRUE(accounts_get_hash(acc, "nobody@example.test") == NULL);
}

static void
test_accounts_resolve(struct accounts *acc)
{
	RESOLVE(acc, "team@example.test", '+',
	    "alice@example.test,bob@example.test");
	RESOLVE(acc, "SALES@example.test", '+',
	    "carol@example.test,remote@other.test");
	RESOLVE(acc, "alice@example.test", '+', "alice@example.test");
	RESOLVE(acc, "Alice@Example.Test", 0, "alice@example.test");
	/* Catch-all only for unknown local parts. */
	RESOLVE(acc, "whoever@example.test", '+', "catchall@example.test");
	RESOLVE(acc, "bob@example.test", '+', "bob@example.test");
	/* Sub-addressing before the catch-all, and only with a delimiter. */
	RESOLVE(acc, "alice+news@example.test", '+', "alice@example.test");
	RESOLVE(acc, "alice+news@example.test", 0, "catchall@example.test");
	RESOLVE(acc, "alice-news@example.test", '-', "alice@example.test");
	RESOLVE(acc, "team+x@example.test", '+',
	    "alice@example.test,bob@example.test");
	RESOLVE(acc, "+x@example.test", '+', "catchall@example.test");
	/* An alias listing itself keeps the mailbox. */
	RESOLVE(acc, "info@example.test", '+',
	    "info@example.test,bob@example.test");
	RESOLVE(acc, "dave@example.test", '+',
	    "dave@example.test,archive@remote.test");
	RESOLVE(acc, "dup@example.test", '+',
	    "alice@example.test,bob@example.test");
	RESOLVE(acc, "merged@example.test", '+',
	    "alice@example.test,carol@example.test");
	/* Loops and over-deep chains end, with nothing. */
	RESOLVE(acc, "loop1@example.test", '+', "");
	RESOLVE(acc, "deep0@example.test", '+', "");
	RESOLVE(acc, "deep3@example.test", '+', "alice@example.test");
	/* Targets resolve fully, through another domain's catch-all too. */
	RESOLVE(acc, "x@alias-domain.test", '+', "catchall@example.test");
	RESOLVE(acc, "x@nowhere.test", '+', "");
	RESOLVE(acc, "not an address", '+', "");
	RESOLVE(acc, "a@b@example.test", '+', "");
	RESOLVE(acc, "badalias", '+', "");
	RESOLVE(acc, "lonely@example.test", '+', "catchall@example.test");
}

static void
test_accounts_send_as(struct accounts *acc)
{
	static const struct {
		const char *user, *addr;
		bool ok;
	} rows[] = {
		{ "alice@example.test", "alice@example.test", true },
		{ "alice@example.test", "ALICE@example.test", true },
		{ "alice@example.test", "alice+list@example.test", true },
		{ "alice@example.test", "team@example.test", true },
		{ "alice@example.test", "team+x@example.test", true },
		{ "bob@example.test", "Team@Example.Test", true },
		{ "alice@example.test", "dup@example.test", true },
		{ "alice@example.test", "deep5@example.test", true },
		{ "bob@example.test", "info@example.test", true },
		{ "carol@example.test", "team@example.test", false },
		{ "alice@example.test", "bob@example.test", false },
		{ "alice@example.test", "alicex@example.test", false },
		{ "alice@example.test", "alice@other.test", false },
		/* Catch-all expansions never grant an address. */
		{ "catchall@example.test", "random@example.test", false },
		{ "postmaster@example.test", "x@alias-domain.test", false },
		{ "alice@example.test", "loop1@example.test", false },
		{ "alice@example.test", "", false },
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(rows); i++)
		TEST_CHECK(accounts_may_send_as(acc, rows[i].user,
		    rows[i].addr) == rows[i].ok, "may_send_as(%s, %s) != %d",
		    rows[i].user, rows[i].addr, rows[i].ok);
}

/* More targets than AUTH_TARGETS_MAX are cut there. */
static void
test_accounts_targets_max(void)
{
	char *users = tpath("big-users.cf"), *aliases = tpath("big-virt.cf");
	struct accounts *acc;
	struct buf b;
	char **t = NULL;

	buf_init(&b, 0);
	for (int i = 0; i < AUTH_TARGETS_MAX + 10; i++)
		buf_printf(&b, "u%d@big.test|{ARGON2ID}$argon2id$x\n", i);
	write_file(users, b.data);
	buf_reset(&b);
	buf_adds(&b, "all@big.test");
	for (int i = 0; i < AUTH_TARGETS_MAX; i++)
		buf_printf(&b, "%su%d@big.test", i ? "," : " ", i);
	buf_adds(&b, "\nmore@big.test all@big.test");
	for (int i = AUTH_TARGETS_MAX; i < AUTH_TARGETS_MAX + 10; i++)
		buf_printf(&b, " u%d@big.test", i);
	buf_adds(&b, "\n");
	write_file(aliases, b.data);
	buf_free(&b);

	acc = accounts_open(users, aliases);
	TEST_INT(accounts_count(acc), AUTH_TARGETS_MAX + 10);
	TEST_TRUE(accounts_user_exists(acc, "u1009@big.test"));
	TEST_INT(accounts_resolve(acc, "all@big.test", '+', &t),
	    AUTH_TARGETS_MAX);
	TEST_TRUE(t[AUTH_TARGETS_MAX] == NULL);
	accounts_targets_free(&t);
	TEST_INT(accounts_resolve(acc, "more@big.test", '+', &t),
	    AUTH_TARGETS_MAX);
	accounts_targets_free(&t);
	accounts_free(&acc);
	TEST_TRUE(acc == NULL);
	x_free(&users);
	x_free(&aliases);
}

static void
test_accounts_refresh(void)
{
	char *users = tpath("r-users.cf"), *aliases = tpath("r-virt.cf");
	struct accounts *acc;

	write_file(users, "a@r.test|{ARGON2ID}$argon2id$x\n");
	acc = accounts_open(users, aliases);	/* aliases file missing */
	TEST_INT(accounts_count(acc), 1);
	RESOLVE(acc, "x@r.test", '+', "");
	accounts_refresh(acc);
	TEST_INT(accounts_count(acc), 1);

	replace_file(users, "a@r.test|{ARGON2ID}$argon2id$x\n"
	    "b@r.test|{ARGON2ID}$argon2id$y\n");
	write_file(aliases, "@r.test b@r.test\n");
	usleep(1100 * 1000);
	accounts_refresh(acc);
	TEST_INT(accounts_count(acc), 2);
	TEST_TRUE(accounts_user_exists(acc, "b@r.test"));
	RESOLVE(acc, "x@r.test", '+', "b@r.test");

	/* Same size, same inode, new content: mtime tells. */
	write_file(users, "c@r.test|{ARGON2ID}$argon2id$x\n"
	    "b@r.test|{ARGON2ID}$argon2id$y\n");
	usleep(1100 * 1000);
	accounts_refresh(acc);
	TEST_TRUE(accounts_user_exists(acc, "c@r.test"));
	TEST_TRUE(!accounts_user_exists(acc, "a@r.test"));

	/* A deleted file means no entries. */
	xassert(unlink(aliases) == 0);
	usleep(1100 * 1000);
	accounts_refresh(acc);
	RESOLVE(acc, "x@r.test", '+', "");
	TEST_INT(accounts_count(acc), 2);
	accounts_free(&acc);

	acc = accounts_open(NULL, "");
	TEST_INT(accounts_count(acc), 0);
	RESOLVE(acc, "a@r.test", '+', "");
	accounts_refresh(acc);
	accounts_free(&acc);
	x_free(&users);
	x_free(&aliases);
}

static void
test_accounts(void)
{
	char *users = tpath("postfix-accounts.cf");
	char *aliases = tpath("postfix-virtual.cf");
	struct accounts *acc;

	write_file(users, users_text);
	write_file(aliases, aliases_text);
	acc = accounts_open(users, aliases);
	test_accounts_load(acc);
	test_accounts_resolve(acc);
	test_accounts_send_as(acc);
	accounts_free(&acc);
	x_free(&users);
	x_free(&aliases);
	test_accounts_targets_max();
	test_accounts_refresh();
}

/* ---- lockout ---- */

static struct sockaddr_in
sin_of(const char *ip, unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons((uint16_t)port);
	xassert(inet_pton(AF_INET, ip, &sin.sin_addr) == 1);
	return sin;
}

static struct sockaddr_in6
sin6_of(const char *ip)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	xassert(inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1);
	return sin6;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void
test_lockout_basic(struct lockout *lo)
{
	struct sockaddr_in a = sin_of("192.0.2.1", 1111);
	struct sockaddr_in a2 = sin_of("192.0.2.1", 2222);
	struct sockaddr_in b = sin_of("192.0.2.2", 1111);
	struct sockaddr_in6 mapped = sin6_of("::ffff:192.0.2.1");
	struct sockaddr_in6 v6 = sin6_of("2001:db8::1");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	time_t t = 1000000;

	TEST_TRUE(!lockout_is_locked(lo, SA(a), t));
	TEST_INT(lockout_fail(lo, SA(a), t), 1);
	TEST_INT(lockout_fail(lo, SA(a2), t + 1), 2);	/* port ignored */
	TEST_TRUE(!lockout_is_locked(lo, SA(a), t + 1));
	TEST_INT(lockout_fail(lo, SA(mapped), t + 2), 3);	/* v4-mapped */
	TEST_TRUE(lockout_is_locked(lo, SA(a), t + 2));
	TEST_TRUE(lockout_is_locked(lo, SA(mapped), t + 3));
	TEST_TRUE(lockout_is_locked(lo, SA(a2), t + 61));
	TEST_TRUE(!lockout_is_locked(lo, SA(b), t + 3));
	TEST_TRUE(!lockout_is_locked(lo, SA(v6), t + 3));
	TEST_TRUE(!lockout_is_locked(lo, SA(a), t + 62));	/* expired */
	/* After the lock, counting starts afresh. */
	TEST_INT(lockout_fail(lo, SA(a), t + 62), 1);
	TEST_TRUE(!lockout_is_locked(lo, SA(a), t + 62));
	lockout_success(lo, SA(a));
	TEST_INT(lockout_fail(lo, SA(a), t + 63), 1);

	/* Failures further apart than the window never lock. */
	TEST_INT(lockout_fail(lo, SA(v6), t), 1);
	TEST_INT(lockout_fail(lo, SA(v6), t + 30), 2);
	TEST_INT(lockout_fail(lo, SA(v6), t + 60), 1);
	TEST_INT(lockout_fail(lo, SA(v6), t + 61), 2);
	TEST_TRUE(!lockout_is_locked(lo, SA(v6), t + 61));
	TEST_INT(lockout_fail(lo, SA(v6), t + 62), 3);
	TEST_TRUE(lockout_is_locked(lo, SA(v6), t + 62));
	lockout_success(lo, SA(v6));
	TEST_TRUE(!lockout_is_locked(lo, SA(v6), t + 62));

	/* Non-IP peers are not counted. */
	TEST_INT(lockout_fail(lo, SA(un), t), 0);
	TEST_TRUE(!lockout_is_locked(lo, SA(un), t));
	TEST_TRUE(!lockout_is_locked(lo, NULL, t));
}

static void
test_lockout_config_and_fork(struct lockout *lo)
{
	struct sockaddr_in c = sin_of("198.51.100.7", 25);
	time_t t = 2000000;
	pid_t pid;
	int status;

	lockout_configure(lo, 1, 10);
	TEST_INT(lockout_fail(lo, SA(c), t), 1);
	TEST_TRUE(lockout_is_locked(lo, SA(c), t + 9));
	TEST_TRUE(!lockout_is_locked(lo, SA(c), t + 10));
	lockout_success(lo, SA(c));
	lockout_configure(lo, 2, 100);

	/* A child's failures are seen by the parent: the table is shared. */
	pid = fork();
	xassert(pid != -1);
	if (pid == 0) {
		lockout_fail(lo, SA(c), t);
		lockout_fail(lo, SA(c), t);
		_exit(0);
	}
	xassert(waitpid(pid, &status, 0) == pid);
	TEST_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	TEST_TRUE(lockout_is_locked(lo, SA(c), t + 1));
}

/* A full table recycles slots and keeps working. */
static void
test_lockout_full(struct lockout *lo)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6 };
	struct sockaddr_in d = sin_of("203.0.113.9", 0);
	time_t t = 3000000;

	lockout_configure(lo, 5, 100);
	TEST_INT(lockout_fail(lo, SA(d), t), 1);
	for (unsigned i = 0; i < 20000; i++) {
		s.sin6_addr.s6_addr[0] = 0x20;
		s.sin6_addr.s6_addr[13] = (uint8_t)(i >> 16);
		s.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
		s.sin6_addr.s6_addr[15] = (uint8_t)i;
		(void)lockout_fail(lo, SA(s), t + 1);
	}
	/* d was the oldest entry of its set: forgotten. */
	TEST_INT(lockout_fail(lo, SA(d), t + 2), 1);
	TEST_INT(lockout_fail(lo, SA(s), t + 2), 2);
}

static void
test_lockout(void)
{
	struct lockout *lo = lockout_create(3, 60);

	test_lockout_basic(lo);
	test_lockout_config_and_fork(lo);
	test_lockout_full(lo);
	lockout_destroy(&lo);
	TEST_TRUE(lo == NULL);
	lockout_destroy(&lo);
}

/* ---- user and alias commands ---- */

typedef int cli_fn(const struct config *, int, char **);

/*
 * Runs a command with stdin from in_text (NULL: untouched); returns its
 * status and its stdout in *out_r (xmalloc'd, may be NULL).
 */
static int
cli_run(cli_fn *fn, const struct config *cfg, const char *in_text,
    char **out_r, int argc, ...)
{
	char *argv[8], *outp = tpath("stdout"), *inp = tpath("stdin");
	int saved_out, saved_in = -1, fd, rc;
	va_list ap;

	xassert(argc < 8);
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	argv[argc] = NULL;
	va_end(ap);
	fflush(stdout);
	saved_out = dup(STDOUT_FILENO);
	fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	xassert(saved_out != -1 && fd != -1);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	if (in_text != NULL) {
		write_file(inp, in_text);
		saved_in = dup(STDIN_FILENO);
		fd = open(inp, O_RDONLY);
		xassert(saved_in != -1 && fd != -1);
		dup2(fd, STDIN_FILENO);
		close(fd);
		__fpurge(stdin);
		clearerr(stdin);
	}
	rc = fn(cfg, argc, argv);
	fflush(stdout);
	dup2(saved_out, STDOUT_FILENO);
	close(saved_out);
	if (saved_in != -1) {
		dup2(saved_in, STDIN_FILENO);
		close(saved_in);
		__fpurge(stdin);
		clearerr(stdin);
	}
	if (out_r != NULL)
		*out_r = read_file(outp);
	x_free(&outp);
	x_free(&inp);
	return rc;
}

static bool
user_verifies(const struct config *cfg, const char *user, const char *pw)
{
	struct accounts *acc = accounts_open(cfg->users_file, NULL);
	char *h = accounts_get_hash(acc, user);
	bool ok = h != NULL && auth_password_verify(h, pw);

	x_free(&h);
	accounts_free(&acc);
	return ok;
}

static void
test_cli_user(struct config *cfg)
{
	cli_fn *u = auth_cli_user;
	struct stat st;
	char *out, *text;

	/* An existing file keeps its comments, extra fields and mode. */
	write_file(cfg->users_file, "# accounts\nold@example.test|"
	    "{SHA512-CRYPT}$6$x$y|quota\n");
	xassert(chmod(cfg->users_file, 0600) == 0);

	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "add",
	    "New@Example.test", "pw one"), 0);
	TEST_TRUE(user_verifies(cfg, "new@example.test", "pw one"));
	TEST_TRUE(!user_verifies(cfg, "new@example.test", "pw two"));
	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "add",
	    "NEW@example.test", "x"), 1);
	TEST_INT(cli_run(u, cfg, "from stdin\nsecond line\n", NULL, 3, "user",
	    "add", "piped@elsewhere.test"), 0);
	TEST_TRUE(user_verifies(cfg, "piped@elsewhere.test", "from stdin"));
	TEST_INT(cli_run(u, cfg, "\n", NULL, 3, "user", "add",
	    "empty@example.test"), 1);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "passwd",
	    "old@example.test", "changed"), 0);
	TEST_TRUE(user_verifies(cfg, "old@example.test", "changed"));
	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "passwd",
	    "new@example.test", "pw two"), 0);
	TEST_TRUE(user_verifies(cfg, "new@example.test", "pw two"));
	TEST_TRUE(!user_verifies(cfg, "new@example.test", "pw one"));
	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "passwd",
	    "ghost@example.test", "x"), 1);

	text = read_file(cfg->users_file);
	TEST_TRUE(strncmp(text, "# accounts\nold@example.test|{ARGON2ID}",
	    38) == 0);
	TEST_TRUE(strstr(text, "|quota\nnew@example.test|{ARGON2ID}") != NULL);
	x_free(&text);
	TEST_TRUE(stat(cfg->users_file, &st) == 0 &&
	    (st.st_mode & 07777) == 0600);

	TEST_INT(cli_run(u, cfg, NULL, &out, 2, "user", "list"), 0);
#define NOQ " quota=unlimited used=0 messages=0\n"
	TEST_STR(out, "old@example.test" NOQ "new@example.test" NOQ
	    "piped@elsewhere.test" NOQ);
	x_free(&out);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 3, "user", "del",
	    "NEW@example.test"), 0);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 3, "user", "del",
	    "new@example.test"), 1);
	TEST_INT(cli_run(u, cfg, NULL, &out, 2, "user", "list"), 0);
	TEST_STR(out, "old@example.test" NOQ "piped@elsewhere.test" NOQ);
#undef NOQ
	x_free(&out);
}

static void
test_cli_user_errors(struct config *cfg)
{
	static const char *const bad[] = {
		"no-at-sign", "a@b@example.test", "a b@example.test",
		"a|b@example.test", "a,b@example.test", "@example.test",
		"a@", "a@.example.test", "a@example..test", "a@exa mple.test",
		"#a@example.test", "a\t@example.test", "a@example.test.",
	};
	cli_fn *u = auth_cli_user;
	char *saved = cfg->users_file;
	struct stat st;

	for (size_t i = 0; i < MF_ARRAY_LEN(bad); i++)
		TEST_CHECK(cli_run(u, cfg, NULL, NULL, 4, "user", "add",
		    bad[i], "pw") == 2, "accepted address \"%s\"", bad[i]);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 2, "user", "frob"), 2);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 2, "user", "add"), 2);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 1, "user"), 2);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 3, "user", "list", "x"), 2);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 5, "user", "add", "a@b.test",
	    "pw", "extra"), 2);
	cfg->users_file = NULL;
	TEST_INT(cli_run(u, cfg, NULL, NULL, 2, "user", "list"), 2);
	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "add", "a@b.test",
	    "pw"), 2);
	cfg->users_file = tpath("fresh-users.cf");
	TEST_INT(cli_run(u, cfg, NULL, NULL, 4, "user", "add", "a@b.test",
	    "pw"), 0);
	TEST_TRUE(stat(cfg->users_file, &st) == 0 &&
	    (st.st_mode & 07777) == 0640);
	x_free(&cfg->users_file);
	cfg->users_file = saved;
}

static void
test_cli_alias(struct config *cfg)
{
	cli_fn *a = auth_cli_alias;
	struct accounts *acc;
	char *out, *text;

	write_file(cfg->aliases_file, "# virtual\nkeep@example.test  "
	    "x@example.test   y@example.test\n");
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "add",
	    "Team@example.test", "a@remote.test"), 0);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "add",
	    "team@example.test", "B@Remote.test"), 0);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "add",
	    "team@example.test", "a@remote.test"), 1);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "add",
	    "@example.test", "old@example.test"), 0);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "add",
	    "x@example.test", "@example.test"), 2);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 3, "alias", "add",
	    "x@example.test"), 2);
	TEST_INT(cli_run(a, cfg, NULL, &out, 2, "alias", "list"), 0);
	TEST_STR(out, "keep@example.test x@example.test,y@example.test\n"
	    "team@example.test a@remote.test,b@remote.test\n"
	    "@example.test old@example.test\n");
	x_free(&out);
	text = read_file(cfg->aliases_file);
	TEST_TRUE(strncmp(text, "# virtual\nkeep@example.test  "
	    "x@example.test   y@example.test\n", 59) == 0);
	x_free(&text);

	acc = accounts_open(cfg->users_file, cfg->aliases_file);
	RESOLVE(acc, "team@example.test", '+', "a@remote.test,b@remote.test");
	RESOLVE(acc, "nobody@example.test", '+', "old@example.test");
	accounts_free(&acc);

	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "del",
	    "team@example.test", "a@remote.test"), 0);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "del",
	    "team@example.test", "a@remote.test"), 1);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 4, "alias", "del",
	    "team@example.test", "b@remote.test"), 0);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 3, "alias", "del",
	    "team@example.test"), 1);	/* its last target took it away */
	TEST_INT(cli_run(a, cfg, NULL, NULL, 3, "alias", "del",
	    "@example.test"), 0);
	TEST_INT(cli_run(a, cfg, NULL, &out, 2, "alias", "list"), 0);
	TEST_STR(out, "keep@example.test x@example.test,y@example.test\n");
	x_free(&out);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 2, "alias", "frob"), 2);
	TEST_INT(cli_run(a, cfg, NULL, NULL, 1, "alias"), 2);
}

static void
test_cli(void)
{
	char *domains[] = { "example.test", NULL };
	struct config cfg = { .domains = domains, .domain_count = 1 };

	cfg.users_file = tpath("cli-accounts.cf");
	cfg.aliases_file = tpath("cli-virtual.cf");
	test_cli_user(&cfg);
	test_cli_user_errors(&cfg);
	test_cli_alias(&cfg);
	x_free(&cfg.users_file);
	x_free(&cfg.aliases_file);
}

/* ---- quotas ---- */

static void
test_quota_sizes(void)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0, 0 },
		{ "123", 0, 123 },
		{ "123B", 0, 123 },
		{ "1024k", 0, 1024ULL * 1024 },
		{ "1K", 0, 1024 },
		{ "50M", 0, 50ULL << 20 },
		{ "50mb", 0, 50ULL << 20 },
		{ "2G", 0, 2ULL << 30 },
		{ "2GB", 0, 2ULL << 30 },
		{ "1T", 0, 1ULL << 40 },
		{ "1048576T", 0, 1ULL << 60 },	/* QUOTA_SIZE_MAX */
		{ "1048577T", -1, 0 },
		{ "1152921504606846977", -1, 0 },
		{ "99999999999999999999999", -1, 0 },
		{ "", -1, 0 },
		{ "M", -1, 0 },
		{ "-1", -1, 0 },
		{ "+5", -1, 0 },
		{ "5 M", -1, 0 },
		{ "5MM", -1, 0 },
		{ "5P", -1, 0 },
		{ "5BB", -1, 0 },
		{ "5.5M", -1, 0 },
		{ " 5", -1, 0 },
		{ "5 ", -1, 0 },
		{ "0x10", -1, 0 },
	};

	for (size_t i = 0; i < MF_ARRAY_LEN(cases); i++) {
		uint64_t b = 7;
		int rc = quota_parse_size(cases[i].in, &b);
		TEST_CHECK(rc == cases[i].rc, "\"%s\" rc %d", cases[i].in, rc);
		if (rc == 0)
			TEST_CHECK(b == cases[i].bytes, "\"%s\" = %llu",
			    cases[i].in, (unsigned long long)b);
	}
}

static void
test_quota_table(void)
{
	char *path = tpath("dovecot-quotas.cf");
	struct quota_table *qt;
	bool ex = true;

	write_file(path, "# quotas\n"
	    "alice@example.test:50M\n"
	    "  Bob@Example.TEST : 1024 \n"
	    "carol@example.test:0\n"
	    "bad line without colon\n"
	    "dave@example.test:lots\n"
	    "@example.test:5M\n"
	    "eve@example.test:\n"
	    "two@ats@example.test:5M\n"
	    "alice@example.test:1G\n"
	    "\n");
	qt = quota_table_open(path, 4096);
	TEST_INT(quota_table_count(qt), 3);
	TEST_INT(quota_table_get(qt, "alice@example.test", &ex), 50 << 20);
	TEST_TRUE(ex);
	TEST_INT(quota_table_get(qt, "ALICE@example.test", NULL), 50 << 20);
	TEST_INT(quota_table_get(qt, "bob@example.test", NULL), 1024);
	/* 0 on a line: unlimited, whatever the default */
	TEST_INT(quota_table_get(qt, "carol@example.test", &ex), 0);
	TEST_TRUE(ex);
	TEST_INT(quota_table_get(qt, "dave@example.test", &ex), 4096);
	TEST_TRUE(!ex);
	TEST_INT(quota_table_get(qt, "not an address", NULL), 4096);

	/* a new version is seen after the refresh interval, not before */
	replace_file(path, "dave@example.test:2K\n");
	quota_table_refresh(qt);
	sleep(QUOTA_REFRESH_SECONDS + 1);
	quota_table_refresh(qt);
	TEST_INT(quota_table_count(qt), 1);
	TEST_INT(quota_table_get(qt, "dave@example.test", NULL), 2048);
	TEST_INT(quota_table_get(qt, "alice@example.test", NULL), 4096);
	/* a deleted file: nobody has a line any more */
	xassert(unlink(path) == 0);
	sleep(QUOTA_REFRESH_SECONDS + 1);
	quota_table_refresh(qt);
	TEST_INT(quota_table_count(qt), 0);
	TEST_INT(quota_table_get(qt, "dave@example.test", NULL), 4096);
	quota_table_free(&qt);
	TEST_TRUE(qt == NULL);

	qt = quota_table_open(NULL, 0);
	TEST_INT(quota_table_get(qt, "dave@example.test", NULL), 0);
	quota_table_free(&qt);
	x_free(&path);
}

static void
test_cli_quota(void)
{
	char *domains[] = { "example.test", NULL };
	struct config cfg = { .domains = domains, .domain_count = 1 };
	cli_fn *q = auth_cli_quota;
	struct quota_table *qt;
	char *out, *text;

	cfg.users_file = tpath("q-accounts.cf");
	cfg.quotas_file = tpath("q-quotas.cf");
	cfg.default_quota = 100;
	write_file(cfg.users_file, "a@example.test|{SHA512-CRYPT}$6$x$y\n"
	    "b@example.test|{SHA512-CRYPT}$6$x$y\n");
	write_file(cfg.quotas_file, "# keep me\nb@example.test:1M\n"
	    "b@example.test:2M\n");
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 4, "quota", "set",
	    "A@example.test", "50M"), 0);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 4, "quota", "set",
	    "b@example.test", "3G"), 0);
	text = read_file(cfg.quotas_file);
	TEST_STR(text, "# keep me\nb@example.test:3G\na@example.test:50M\n");
	x_free(&text);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 4, "quota", "set",
	    "ghost@example.test", "1M"), 1);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 4, "quota", "set",
	    "a@example.test", "lots"), 2);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 4, "quota", "set",
	    "a:b@example.test", "1M"), 2);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 3, "quota", "set",
	    "a@example.test"), 2);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 2, "quota", "frob"), 2);

	TEST_INT(cli_run(auth_cli_user, &cfg, NULL, &out, 2, "user", "list"),
	    0);
	TEST_STR(out, "a@example.test quota=52428800 used=0 messages=0\n"
	    "b@example.test quota=3221225472 used=0 messages=0\n");
	x_free(&out);

	TEST_INT(cli_run(q, &cfg, NULL, NULL, 3, "quota", "del",
	    "b@example.test"), 0);
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 3, "quota", "del",
	    "b@example.test"), 1);
	qt = quota_table_open(cfg.quotas_file, cfg.default_quota);
	TEST_INT(quota_table_get(qt, "a@example.test", NULL), 50 << 20);
	TEST_INT(quota_table_get(qt, "b@example.test", NULL), 100);
	quota_table_free(&qt);
	cfg.quotas_file[0] = '\0';
	TEST_INT(cli_run(q, &cfg, NULL, NULL, 3, "quota", "del",
	    "a@example.test"), 2);
	x_free(&cfg.users_file);
	x_free(&cfg.quotas_file);
}

int
main(void)
{
	char *cmd;

	log_init("test_auth", false, LOG_LVL_WARN);
	xassert(mkdtemp(tmpdir) != NULL);
	test_password_schemes();
	test_password_fixed_and_bad();
	test_password_hash();
	test_password_threads();
	test_accounts();
	test_lockout();
	test_cli();
	test_quota_sizes();
	test_quota_table();
	test_cli_quota();
	cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	x_free(&cmd);
	return test_done("auth");
}
