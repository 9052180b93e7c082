/*
 * dkim_private.h - what the files of src/dkim share with each other and
 * with their unit test: the key behind struct dkim_key and the signing
 * primitive.  OpenSSL stays out of dkim.h.
 */
#ifndef MAILFORT_DKIM_PRIVATE_H
#define MAILFORT_DKIM_PRIVATE_H

#include <openssl/evp.h>

#include "dkim/dkim.h"

#define DKIM_SIG_MAX 512	/* bytes of a signature (RSA-4096) */

struct dkim_key {
	enum dkim_alg alg;
	EVP_PKEY *pkey;		/* owned */
};

/* Wraps pkey (ownership moves to the key); NULL for unusable key types or
 * sizes, then pkey is freed. */
struct dkim_key *dkim_key_wrap(EVP_PKEY *pkey, const char **error_r);
/*
 * Signs the header hash input data (RFC 6376 §3.7) and appends the
 * signature in base64 to b64.  rsa-sha256: RSASSA-PKCS1-v1_5 over SHA-256
 * of data (RFC 6376 §3.3.1).  ed25519-sha256: PureEdDSA over the 32-byte
 * SHA-256 digest of data (RFC 8463 §3).
 */
int dkim_key_sign(const struct dkim_key *key, const void *data, size_t len,
		  struct buf *b64, const char **error_r) MF_WUR;

#endif
