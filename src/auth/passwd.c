/*
 * passwd.c - password schemes: verifying every scheme docker-mailserver
 * users have ({SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {ARGON2I},
 * {ARGON2ID}, crypt strings by prefix) and hashing new passwords with
 * Argon2id.  Called from the thread pool: no static state, crypt_r with
 * its own struct crypt_data per call.
 */
#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "auth/auth.h"

/*
 * Longer passwords are refused before hashing: SHA-crypt costs grow with
 * the password length, and no real password comes near this.
 */
#define AUTH_PW_MAX 1024

/* New hashes: OWASP's Argon2id minimum (19 MiB, 2 passes, 1 lane). */
#define AUTH_PW_ARGON2_T 2
#define AUTH_PW_ARGON2_M 19456
#define AUTH_PW_ARGON2_P 1
#define AUTH_PW_SALT_LEN 16
#define AUTH_PW_HASH_LEN 32

enum auth_pw_kind {
	AUTH_PW_CRYPT,		/* libxcrypt crypt_r */
	AUTH_PW_ARGON2I,
	AUTH_PW_ARGON2ID,
};

/* A {SCHEME} and the hash prefixes it may carry. */
struct auth_pw_scheme {
	const char *name;
	enum auth_pw_kind kind;
	const char *prefixes[6];
};

static const struct auth_pw_scheme auth_pw_schemes[] = {
	{ "SHA512-CRYPT", AUTH_PW_CRYPT, { "$6$" } },
	{ "SHA256-CRYPT", AUTH_PW_CRYPT, { "$5$" } },
	{ "BLF-CRYPT", AUTH_PW_CRYPT, { "$2y$", "$2b$", "$2a$" } },
	{ "ARGON2I", AUTH_PW_ARGON2I, { "$argon2i$" } },
	{ "ARGON2ID", AUTH_PW_ARGON2ID, { "$argon2id$" } },
	/* Dovecot's {CRYPT} and bare strings: strong crypt(3) methods. */
	{ "CRYPT", AUTH_PW_CRYPT, { "$6$", "$5$", "$2y$", "$2b$", "$2a$",
	    "$y$" } },
};

static bool
auth_pw_has_prefix(const struct auth_pw_scheme *s, const char *hash)
{
	for (size_t i = 0; i < MF_ARRAY_LEN(s->prefixes); i++)
		if (s->prefixes[i] != NULL &&
		    strncmp(hash, s->prefixes[i], strlen(s->prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * Splits "{SCHEME}hash" or a bare hash; returns the scheme whose prefix
 * the hash carries, or NULL (unknown scheme or a mismatched prefix).
 */
static const struct auth_pw_scheme *
auth_pw_scheme(const char *stored, const char **hash_r)
{
	const char *end;
	size_t len;

	if (stored[0] != '{') {
		*hash_r = stored;
		for (size_t i = 0; i < MF_ARRAY_LEN(auth_pw_schemes); i++)
			if (auth_pw_has_prefix(&auth_pw_schemes[i], stored))
				return &auth_pw_schemes[i];
		return NULL;
	}
	if ((end = strchr(stored, '}')) == NULL)
		return NULL;
	len = (size_t)(end - stored - 1);
	*hash_r = end + 1;
	for (size_t i = 0; i < MF_ARRAY_LEN(auth_pw_schemes); i++) {
		const struct auth_pw_scheme *s = &auth_pw_schemes[i];
		if (strlen(s->name) == len &&
		    strncasecmp(stored + 1, s->name, len) == 0)
			return auth_pw_has_prefix(s, *hash_r) ? s : NULL;
	}
	return NULL;
}

/* Equal-length comparison whose time does not depend on the contents. */
static bool
auth_pw_ct_eq(const char *a, const char *b, size_t len)
{
	volatile unsigned char diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

static bool
auth_pw_crypt_verify(const char *hash, const char *password)
{
	struct crypt_data *cd;
	const char *out;
	bool ok = false;
	int rc;

	/*
	 * Malformed settings stop here, before the costly call.  It is also
	 * our one libcrypt symbol that ASan does not intercept: without it,
	 * --as-needed drops libcrypt when ASan's crypt_r stands in, and the
	 * interceptor then calls a NULL crypt_r.
	 */
	rc = crypt_checksalt(hash);
	if (rc == CRYPT_SALT_INVALID || rc == CRYPT_SALT_METHOD_DISABLED)
		return false;
	cd = xmalloc(sizeof(*cd));
	out = crypt_r(password, hash, cd);
	/* libxcrypt fails with NULL or a "*"-string, never a match. */
	if (out != NULL && out[0] != '*' && strlen(out) == strlen(hash))
		ok = auth_pw_ct_eq(out, hash, strlen(hash));
	x_wipe(cd, sizeof(*cd));
	x_free(&cd);
	return ok;
}

bool
auth_password_verify(const char *stored, const char *password)
{
	const struct auth_pw_scheme *s;
	const char *hash;
	size_t pwlen;

	if (stored == NULL || password == NULL)
		return false;
	pwlen = strlen(password);
	if (pwlen > AUTH_PW_MAX || (s = auth_pw_scheme(stored, &hash)) == NULL)
		return false;
	switch (s->kind) {
	case AUTH_PW_CRYPT:
		return auth_pw_crypt_verify(hash, password);
	case AUTH_PW_ARGON2I:
		/* argon2_verify compares in constant time itself. */
		return argon2i_verify(hash, password, pwlen) == ARGON2_OK;
	case AUTH_PW_ARGON2ID:
		return argon2id_verify(hash, password, pwlen) == ARGON2_OK;
	}
	return false;
}

/* Fills buf from the kernel's CSPRNG; -1 when it cannot. */
static int
auth_pw_random(void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = getrandom((char *)buf + done, len - done, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

char *
auth_password_hash(const char *password)
{
	unsigned char salt[AUTH_PW_SALT_LEN];
	size_t pwlen = strlen(password), enclen;
	char *enc, *out = NULL;
	int rc;

	if (pwlen > AUTH_PW_MAX || auth_pw_random(salt, sizeof(salt)) == -1)
		return NULL;
	enclen = argon2_encodedlen(AUTH_PW_ARGON2_T, AUTH_PW_ARGON2_M,
	    AUTH_PW_ARGON2_P, sizeof(salt), AUTH_PW_HASH_LEN, Argon2_id);
	enc = xmalloc(enclen);
	rc = argon2id_hash_encoded(AUTH_PW_ARGON2_T, AUTH_PW_ARGON2_M,
	    AUTH_PW_ARGON2_P, password, pwlen, salt, sizeof(salt),
	    AUTH_PW_HASH_LEN, enc, enclen);
	if (rc == ARGON2_OK)
		out = xasprintf("{ARGON2ID}%s", enc);
	else
		log_warnx("auth password hash failed: %s",
		    argon2_error_message(rc));
	x_wipe(salt, sizeof(salt));
	x_free(&enc);
	return out;
}
