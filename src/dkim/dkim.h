/*
 * dkim.h - DKIM signing of outgoing mail (RFC 6376), relaxed/relaxed,
 * with rsa-sha256 and ed25519-sha256 (RFC 8463).  No verification.
 *
 * The queue runner, when it sends a message from a local domain, loads the
 * domain's keys (dkim_keys_load()), creates one signer for all of them,
 * streams the stored message through dkim_signer_feed() in chunks of any
 * size (headers, blank line, body: the file as stored, CRLF line ends,
 * our Received header on top), and dkim_signer_finish() appends one folded
 * DKIM-Signature header field per key to prepend to the message.  One pass
 * over the message serves every key: the body hash and the signed header
 * fields are the same for all of them; only b= differs.
 *
 * Decisions (details in dkim_sign.c):
 * - Signed header fields: those of dkim_default_headers[] present in the
 *   message (RFC 6376 §5.4.1's recommended set plus Message-ID and the
 *   MIME fields), every instance, named once per instance in h= so that
 *   verifiers take them bottom-up (§5.4.2).  Received, Return-Path and
 *   earlier DKIM-Signature fields are never signed: they change in transit.
 * - From is mandatory: a message without exactly one From is refused
 *   (RFC 5322 §3.6 allows exactly one; two are a spoofing trick).  From is
 *   "oversigned": h= names it once more than it occurs, and the missing
 *   instance signs as empty (§5.4.2), so nobody can add a second From
 *   later without breaking the signature.
 * - The header field is folded at DKIM_FOLD_WIDTH columns with CRLF TAB,
 *   only where FWS is allowed (between tags, after ':' in h=, inside b=).
 * - Keys live in KEY_DIR/DOMAIN/SELECTOR.rsa.key and .ed25519.key (PEM,
 *   PKCS#8, mode 0600); KEY_DIR is [dkim] key_dir or DATA_DIR/dkim.  In
 *   DNS the RSA key is SELECTOR._domainkey.DOMAIN, the Ed25519 key
 *   SELECTOR-ed25519._domainkey.DOMAIN (dkim_selector()).
 *
 * Thread safety: a signer and its keys are used by one thread at a time;
 * nothing here keeps global mutable state, so pool jobs may sign.
 */
#ifndef MAILFORT_DKIM_H
#define MAILFORT_DKIM_H

#include <time.h>

#include "core/config.h"
#include "core/core.h"

#define DKIM_RSA_BITS 2048		/* keys we generate */
/* RFC 8301 §3.2: signers MUST use at least 1024 bits; verifiers need
 * not accept more than 4096 */
#define DKIM_RSA_MIN_BITS 1024
#define DKIM_RSA_MAX_BITS 4096
#define DKIM_FIELD_MAX (64 * 1024)	/* bytes of one header field kept */
#define DKIM_SIGNED_MAX 64		/* header fields signed, From
					 * included */
#define DKIM_SIGNED_BYTES_MAX (256 * 1024) /* bytes of them, canonical */
#define DKIM_NAME_MAX 253		/* a domain or selector */
#define DKIM_FOLD_WIDTH 78		/* RFC 5322 §2.1.1 SHOULD */
#define DKIM_TXT_CHUNK 255		/* RFC 1035 §3.3 character-string */
#define DKIM_SELECTOR_DEFAULT "mail"
#define DKIM_ED25519_SUFFIX "-ed25519" /* see dkim_selector() */

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_COUNT
};

struct dkim_key;
struct dkim_signer;
struct dkim_body_canon;

/* Lower-case header field names signed when present, NULL-terminated. */
extern const char *const dkim_default_headers[];

/* "rsa-sha256" or "ed25519-sha256": the a= tag (RFC 6376 §3.5). */
const char *dkim_alg_name(enum dkim_alg alg);
/* "rsa" or "ed25519": the k= tag (RFC 6376 §3.6.1) and file suffix. */
const char *dkim_alg_key_type(enum dkim_alg alg);
/* A domain or selector we accept: LDH labels separated by single dots,
 * 1..DKIM_NAME_MAX bytes (RFC 6376 §3.1, RFC 5321 §4.1.2).  Keeps CR, LF,
 * ';', '/' and ".." out of headers and paths. */
bool dkim_valid_name(const char *name);
/*
 * The selector (s=, DNS name SEL._domainkey.DOMAIN) of alg's key for the
 * configured selector base: rsa-sha256 uses base itself, ed25519-sha256
 * base + DKIM_ED25519_SUFFIX ("mail" -> "mail-ed25519"), because RFC 6376
 * §3.6.2.2 leaves several TXT records under one name undefined.  Writes
 * out (DKIM_NAME_MAX + 1 bytes); false when the result is no valid name.
 */
bool dkim_selector(const char *base, enum dkim_alg alg,
		   char out[DKIM_NAME_MAX + 1]) MF_WUR;

/* ---- keys (dkim_key.c) ---- */

/* Fresh RSA-DKIM_RSA_BITS or Ed25519 key; *key_r is the caller's. */
int dkim_key_generate(enum dkim_alg alg, struct dkim_key **key_r,
		      const char **error_r) MF_WUR;
/* Reads a PEM private key; the algorithm follows the key type.  Refuses a
 * world-accessible file, RSA outside DKIM_RSA_MIN_BITS..MAX_BITS and other
 * key types.  *error_r is a static string; the caller names the path. */
int dkim_key_load(const char *path, struct dkim_key **key_r,
		  const char **error_r) MF_WUR;
/* Writes key as PEM (PKCS#8) to path with mode 0600, owned by uid/gid
 * unless uid is (uid_t)-1, fsync'd.  An existing file is replaced only
 * when force is set; otherwise returns -1 with *error_r "exists". */
int dkim_key_save(const struct dkim_key *key, const char *path, uid_t uid,
		  gid_t gid, bool force, const char **error_r) MF_WUR;
void dkim_key_free(struct dkim_key **key);
enum dkim_alg dkim_key_alg(const struct dkim_key *key);
/* Appends the DNS TXT record data: "v=DKIM1; k=rsa; p=<base64 SPKI DER>"
 * (RFC 6376 §3.6.1) or "v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte
 * key>" (RFC 8463 §4.2). */
void dkim_key_txt(const struct dkim_key *key, struct buf *out);
/* Appends a zone file line: "SEL._domainkey.DOMAIN. IN TXT "..." "..."\n"
 * with txt split into DKIM_TXT_CHUNK-byte character-strings. */
void dkim_txt_line(const char *selector, const char *domain,
		   const char *txt, struct buf *out);
/* KEY_DIR/domain/selector.TYPE.key; xmalloc'd, domain lower-cased. */
char *dkim_key_path(const char *key_dir, const char *domain,
		    const char *selector, enum dkim_alg alg);
/* [dkim] key_dir, or DATA_DIR/dkim when empty; xmalloc'd. */
char *dkim_key_dir(const struct config *cfg);
/* Loads every key of domain/selector that exists, in enum order, into
 * keys_r[0..*n_r).  Returns 1 with *n_r > 0, 0 when the domain has no key
 * (send unsigned), -1 with *error_r and *path_r (xmalloc'd) when a key
 * file exists but cannot be used. */
int dkim_keys_load(const char *key_dir, const char *domain,
		   const char *selector,
		   struct dkim_key *keys_r[DKIM_ALG_COUNT], size_t *n_r,
		   char **path_r, const char **error_r) MF_WUR;

/* ---- signing (dkim_sign.c) ---- */

/*
 * A signer for nkeys keys (1..DKIM_ALG_COUNT, borrowed: they must outlive
 * the signer).  domain and selector (the base, copied) must pass
 * dkim_valid_name() and dkim_selector() for each key's algorithm.
 * headers: names to sign when present (any case), NULL-terminated,
 * copied; NULL means dkim_default_headers.  From is always signed.
 */
struct dkim_signer *dkim_signer_new(const char *domain, const char *selector,
				    struct dkim_key *const *keys, size_t nkeys,
				    const char *const *headers);
/* Streams the next len bytes of the message; never fails (errors show at
 * finish).  Memory stays bounded by the DKIM_* limits whatever the input. */
void dkim_signer_feed(struct dkim_signer *s, const void *data, size_t len);
/*
 * Ends the message and appends one folded, CRLF-terminated
 * "DKIM-Signature: v=1; a=...; ...; b=..." field per key to out, with
 * t=now.  Returns 0, or -1 with *error_r (static string) when the message
 * cannot be signed (no or several From fields, a signed field or the set
 * of them past the limits) or a key fails.  Call once.
 */
int dkim_signer_finish(struct dkim_signer *s, time_t now, struct buf *out,
		       const char **error_r) MF_WUR;
void dkim_signer_free(struct dkim_signer **s);

/* ---- canonicalization (dkim_canon.c), pure ---- */

/*
 * Relaxed header canonicalization (RFC 6376 §3.4.2) of one raw header
 * field (name, ':', value with its folding CRLFs, optionally its final
 * CRLF): appends "name:value\r\n" with the name lower-cased, CRLFs
 * removed, WSP runs as one SP, WSP around the colon and at the ends of
 * the value removed.  Returns the length of the name, or -1 (nothing
 * appended) when field has no ':' or its name is not 1*ftext (RFC 5322
 * §3.6.8) followed by optional WSP.
 */
int dkim_canon_header(const char *field, size_t len, struct buf *out) MF_WUR;

/* Receives canonical output; data is valid during the call only. */
typedef void dkim_sink_fn(void *ctx, const void *data, size_t len);
/*
 * Streaming relaxed body canonicalization (RFC 6376 §3.4.4): WSP at the
 * end of a line dropped, WSP runs as one SP, empty lines at the end
 * dropped, CRLF added to a last line without one.  An empty body (or one
 * of empty lines only) canonicalizes to nothing, so bh= of an empty body
 * is SHA-256(""): §3.4.4 adds a CRLF only "if the body is non-empty",
 * unlike "simple" where an empty body becomes one CRLF (§3.4.3).  Only
 * CRLF ends a line; a bare CR or LF is an ordinary byte.  Output goes to
 * sink in pieces of any size.
 */
struct dkim_body_canon *dkim_body_canon_new(dkim_sink_fn *sink, void *ctx);
void dkim_body_canon_feed(struct dkim_body_canon *c, const void *data,
			  size_t len);
/* Flushes everything; the canonicalizer is spent afterwards. */
void dkim_body_canon_finish(struct dkim_body_canon *c);
void dkim_body_canon_free(struct dkim_body_canon **c);

/* ---- command line (dkim_cli.c) ---- */

/* `mailfort dkim keygen|show|sign ...`; argv[0] is "dkim".  Returns the
 * exit status. */
int dkim_cli(const struct config *cfg, int argc, char **argv);

#endif
