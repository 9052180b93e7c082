/*
 * dkim_key.c - DKIM keys: generation, PEM files, the DNS TXT records that
 * publish them, and the signing primitive.  Key files are
 * KEY_DIR/DOMAIN/SELECTOR.{rsa,ed25519}.key, PKCS#8 PEM, mode 0600; a new
 * file is written under a temporary name, fsync'd, then linked (never
 * replacing anything) or, with force, renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim/dkim_private.h"

#define DKIM_KEY_MODE 0600
#define DKIM_LABEL_MAX 63	/* RFC 1035 §2.3.4 */
#define DKIM_ED25519_RAW 32	/* RFC 8032 §5.1.5 public key bytes */
#define DKIM_SPKI_MAX 1024	/* DER SubjectPublicKeyInfo of RSA-4096 */

const char *
dkim_alg_name(enum dkim_alg alg)
{
	xassert(alg < DKIM_ALG_COUNT);
	return alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256";
}

const char *
dkim_alg_key_type(enum dkim_alg alg)
{
	xassert(alg < DKIM_ALG_COUNT);
	return alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519";
}

bool
dkim_valid_name(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > DKIM_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.' || c == '\0') {
			/* Let-dig [Ldh-str] (RFC 5321 §4.1.2) */
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c == '-' && label > 0)))
			return false;
		if (++label > DKIM_LABEL_MAX)
			return false;
	}
	return true;
}

bool
dkim_selector(const char *base, enum dkim_alg alg,
    char out[DKIM_NAME_MAX + 1])
{
	int n = snprintf(out, DKIM_NAME_MAX + 1, "%s%s", base,
	    alg == DKIM_ALG_ED25519_SHA256 ? DKIM_ED25519_SUFFIX : "");

	return n > 0 && n <= DKIM_NAME_MAX && dkim_valid_name(out);
}

struct dkim_key *
dkim_key_wrap(EVP_PKEY *pkey, const char **error_r)
{
	struct dkim_key *key;
	enum dkim_alg alg;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		int bits = EVP_PKEY_get_bits(pkey);
		if (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS) {
			*error_r = "RSA key size outside 1024..4096 bits";
			EVP_PKEY_free(pkey);
			return NULL;
		}
		alg = DKIM_ALG_RSA_SHA256;
	} else if (EVP_PKEY_is_a(pkey, "ED25519")) {
		alg = DKIM_ALG_ED25519_SHA256;
	} else {
		*error_r = "not an RSA or Ed25519 key";
		EVP_PKEY_free(pkey);
		return NULL;
	}
	key = xmalloc(sizeof(*key));
	key->alg = alg;
	key->pkey = pkey;
	return key;
}

int
dkim_key_generate(enum dkim_alg alg, struct dkim_key **key_r,
    const char **error_r)
{
	EVP_PKEY *pkey;

	if (alg == DKIM_ALG_RSA_SHA256)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
		    (size_t)DKIM_RSA_BITS);
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL) {
		*error_r = "key generation failed";
		return -1;
	}
	*key_r = dkim_key_wrap(pkey, error_r);
	return *key_r != NULL ? 0 : -1;
}

/* Encrypted keys are refused rather than prompting on a terminal. */
static int
dkim_key_no_password(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int
dkim_key_load(const char *path, struct dkim_key **key_r,
    const char **error_r)
{
	struct stat st;
	EVP_PKEY *pkey;
	FILE *fp;
	int fd;

	*key_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		*error_r = errno == ENOENT ? "no such file" : "cannot open";
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*error_r = "not a regular file";
		close(fd);
		return -1;
	}
	if ((st.st_mode & S_IRWXO) != 0) {
		*error_r = "private key accessible to others (chmod 600)";
		close(fd);
		return -1;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		*error_r = "cannot open";
		close(fd);
		return -1;
	}
	pkey = PEM_read_PrivateKey(fp, NULL, dkim_key_no_password, NULL);
	fclose(fp);
	if (pkey == NULL) {
		*error_r = "not a PEM private key without passphrase";
		return -1;
	}
	*key_r = dkim_key_wrap(pkey, error_r);
	return *key_r != NULL ? 0 : -1;
}

static int
dkim_key_write_fd(const struct dkim_key *key, int fd, uid_t uid, gid_t gid,
    const char **error_r)
{
	FILE *fp;
	int ok;

	/* the umask must not widen or narrow what we promise */
	if (fchmod(fd, DKIM_KEY_MODE) == -1 ||
	    (uid != (uid_t)-1 && fchown(fd, uid, gid) == -1)) {
		*error_r = "cannot set owner or mode";
		close(fd);
		return -1;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		*error_r = "cannot write";
		close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(fp, key->pkey, NULL, NULL, 0, NULL, NULL)
	    == 1 && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	if (fclose(fp) != 0)
		ok = 0;
	if (!ok)
		*error_r = "cannot write";
	return ok ? 0 : -1;
}

static void
dkim_key_sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int
dkim_key_save(const struct dkim_key *key, const char *path, uid_t uid,
    gid_t gid, bool force, const char **error_r)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd, rc = 0;

	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, DKIM_KEY_MODE);
	if (fd == -1) {
		*error_r = "cannot create";
		free(tmp);
		return -1;
	}
	if (dkim_key_write_fd(key, fd, uid, gid, error_r) < 0) {
		rc = -1;
	} else if (force) {
		if (rename(tmp, path) == -1) {
			*error_r = "cannot rename into place";
			rc = -1;
		}
	} else if (link(tmp, path) == -1) {
		/* link() never replaces: two keygens cannot both win */
		*error_r = errno == EEXIST ? "exists" :
		    "cannot link into place";
		rc = -1;
	}
	(void)unlink(tmp);
	free(tmp);
	if (rc == 0)
		dkim_key_sync_dir(path);
	return rc;
}

void
dkim_key_free(struct dkim_key **key)
{
	if (*key == NULL)
		return;
	EVP_PKEY_free((*key)->pkey);	/* OpenSSL clears the secret */
	x_free(key);
}

enum dkim_alg
dkim_key_alg(const struct dkim_key *key)
{
	return key->alg;
}

void
dkim_key_txt(const struct dkim_key *key, struct buf *out)
{
	unsigned char raw[DKIM_SPKI_MAX], *der = NULL;
	char b64[4 * ((DKIM_SPKI_MAX + 2) / 3) + 1];
	size_t len = sizeof(raw);
	int n;

	if (key->alg == DKIM_ALG_RSA_SHA256) {
		/* RFC 6376 §3.6.1: p= is the DER SubjectPublicKeyInfo */
		n = i2d_PUBKEY(key->pkey, &der);
		xassert(n > 0 && (size_t)n <= sizeof(raw));
		memcpy(raw, der, (size_t)n);
		OPENSSL_free(der);
		len = (size_t)n;
	} else {
		/* RFC 8463 §4.2: p= is the raw 32-byte public key */
		xassert(EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) ==
		    1 && len == DKIM_ED25519_RAW);
	}
	base64_encode(raw, len, b64);
	buf_printf(out, "v=DKIM1; k=%s; p=%s", dkim_alg_key_type(key->alg),
	    b64);
}

void
dkim_txt_line(const char *selector, const char *domain, const char *txt,
    struct buf *out)
{
	size_t len = strlen(txt), at = 0;

	xassert(strpbrk(txt, "\"\\\r\n") == NULL);
	buf_printf(out, "%s._domainkey.%s. IN TXT", selector, domain);
	/* RFC 1035 §3.3: a character-string holds at most 255 bytes; the
	 * record is their concatenation (RFC 6376 §3.6.2.2) */
	do {
		size_t n = len - at < DKIM_TXT_CHUNK ? len - at :
		    DKIM_TXT_CHUNK;
		buf_adds(out, " \"");
		buf_add(out, txt + at, n);
		buf_addc(out, '"');
		at += n;
	} while (at < len);
	buf_addc(out, '\n');
}

char *
dkim_key_path(const char *key_dir, const char *domain, const char *selector,
    enum dkim_alg alg)
{
	char *d = str_lower(xstrdup(domain));
	char *path = xasprintf("%s/%s/%s.%s.key", key_dir, d, selector,
	    dkim_alg_key_type(alg));

	free(d);
	return path;
}

char *
dkim_key_dir(const struct config *cfg)
{
	if (cfg->dkim_key_dir != NULL && cfg->dkim_key_dir[0] != '\0')
		return xstrdup(cfg->dkim_key_dir);
	return xasprintf("%s/dkim", cfg->data_dir);
}

int
dkim_keys_load(const char *key_dir, const char *domain, const char *selector,
    struct dkim_key *keys_r[DKIM_ALG_COUNT], size_t *n_r, char **path_r,
    const char **error_r)
{
	*n_r = 0;
	*path_r = NULL;
	for (int alg = 0; alg < DKIM_ALG_COUNT; alg++) {
		char *path = dkim_key_path(key_dir, domain, selector, alg);
		struct dkim_key *key;

		if (access(path, F_OK) == -1 && errno == ENOENT) {
			free(path);
			continue;
		}
		if (dkim_key_load(path, &key, error_r) < 0) {
			while (*n_r > 0)
				dkim_key_free(&keys_r[--*n_r]);
			*path_r = path;
			return -1;
		}
		free(path);
		keys_r[(*n_r)++] = key;
	}
	return *n_r > 0 ? 1 : 0;
}

int
dkim_key_sign(const struct dkim_key *key, const void *data, size_t len,
    struct buf *b64, const char **error_r)
{
	unsigned char sig[DKIM_SIG_MAX], digest[EVP_MAX_MD_SIZE];
	char text[4 * ((DKIM_SIG_MAX + 2) / 3) + 1];
	size_t sig_len = sizeof(sig);
	unsigned int digest_len = 0;
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int ok;

	xassert(mctx != NULL);
	xassert(EVP_PKEY_get_size(key->pkey) <= (int)sizeof(sig));
	if (key->alg == DKIM_ALG_RSA_SHA256) {
		/* RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 with SHA-256 */
		ok = EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL,
		    key->pkey) == 1 && EVP_DigestSign(mctx, sig, &sig_len,
		    data, len) == 1;
	} else {
		/* RFC 8463 §3: PureEdDSA over the SHA-256 hash of the data,
		 * not over the data itself (no digest inside Ed25519) */
		ok = EVP_Digest(data, len, digest, &digest_len, EVP_sha256(),
		    NULL) == 1 && EVP_DigestSignInit(mctx, NULL, NULL, NULL,
		    key->pkey) == 1 && EVP_DigestSign(mctx, sig, &sig_len,
		    digest, digest_len) == 1;
	}
	EVP_MD_CTX_free(mctx);
	if (!ok) {
		*error_r = "signing failed";
		return -1;
	}
	base64_encode(sig, sig_len, text);
	buf_adds(b64, text);
	return 0;
}
