/*
 * tls.c - server and client TLS contexts.  Policy (DESIGN.md §1): TLS 1.2
 * and 1.3 only; "intermediate" follows Mozilla's intermediate configuration,
 * "modern" allows TLS 1.3 only.  Several certificates: the unnamed pair
 * is the default, named pairs are chosen by SNI.  The master loads the
 * contexts (it can read the keys) and workers inherit them at fork; a
 * reload builds new contexts for the next generation of workers.  The
 * queue runner's client context (tls_client_ctx_new) is one entry with
 * the CA store for peers that must verify.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"
#include "net/net_private.h"

/* Mozilla intermediate, TLS 1.2 part (TLS 1.3 suites are OpenSSL's). */
#define TLS_CIPHERS_INTERMEDIATE \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" \
	"DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"

struct tls_entry {
	char *name;		/* NULL: default */
	SSL_CTX *ctx;
};

struct tls_ctx {
	struct tls_entry entries[CONFIG_MAX_CERTS];
	size_t count;
	bool client;		/* tls_client_ctx_new(): entries[0] only */
};

/* Longest name handed to SNI or verification (RFC 1035 §2.3.4). */
#define TLS_NAME_MAX 255

static const char *
tls_err(char *buf, size_t len, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "";

	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(buf, len, "%s %s: %s", what, path ? path : "", detail);
	return buf;
}

static bool
tls_name_match(const char *pattern, const char *name)
{
	if (strcasecmp(pattern, name) == 0)
		return true;
	if (strncmp(pattern, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');
		return dot != NULL && strcasecmp(pattern + 1, dot) == 0;
	}
	return false;
}

static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_ctx *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < t->count; i++) {
		if (t->entries[i].name != NULL &&
		    tls_name_match(t->entries[i].name, name)) {
			SSL_set_SSL_CTX(ssl, t->entries[i].ctx);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;	/* default certificate */
}

static SSL_CTX *
tls_ctx_one(const struct config *cfg, const struct cert_cfg *cc,
    char *errbuf, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	static const unsigned char sid[] = "mailfort";

	if (ctx == NULL) {
		tls_err(errbuf, errlen, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, cfg->tls_profile ==
	    TLS_PROFILE_MODERN ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_INTERMEDIATE) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		tls_err(errbuf, errlen, "cipher setup", NULL);
		goto fail;
	}
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cc->cert) != 1) {
		tls_err(errbuf, errlen, "cannot load certificate", cc->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cc->key, SSL_FILETYPE_PEM) != 1) {
		tls_err(errbuf, errlen, "cannot load key", cc->key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(errbuf, errlen, "key does not match certificate",
		    cc->cert);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_ctx *
tls_ctx_load(const struct config *cfg, char *errbuf, size_t errlen)
{
	struct tls_ctx *t = xmalloc(sizeof(*t));

	for (size_t i = 0; i < cfg->cert_count; i++) {
		SSL_CTX *ctx = tls_ctx_one(cfg, &cfg->certs[i], errbuf, errlen);
		if (ctx == NULL) {
			tls_ctx_free(&t);
			return NULL;
		}
		t->entries[t->count].ctx = ctx;
		t->entries[t->count].name = cfg->certs[i].name ?
		    xstrdup(cfg->certs[i].name) : NULL;
		t->count++;
	}
	if (t->count == 0) {
		tls_ctx_free(&t);
		snprintf(errbuf, errlen, "no certificate configured");
		return NULL;
	}
	/* The default context is the first unnamed one, else the first. */
	for (size_t i = 1; i < t->count; i++) {
		if (t->entries[i].name == NULL && t->entries[0].name != NULL) {
			struct tls_entry tmp = t->entries[0];
			t->entries[0] = t->entries[i];
			t->entries[i] = tmp;
		}
	}
	for (size_t i = 0; i < t->count; i++) {
		SSL_CTX_set_tlsext_servername_callback(t->entries[i].ctx,
		    tls_sni_cb);
		SSL_CTX_set_tlsext_servername_arg(t->entries[i].ctx, t);
	}
	return t;
}

void
tls_ctx_free(struct tls_ctx **tp)
{
	struct tls_ctx *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->count; i++) {
		SSL_CTX_free(t->entries[i].ctx);
		free(t->entries[i].name);
	}
	free(t);
	*tp = NULL;
}

SSL *
tls_ctx_new_ssl(struct tls_ctx *t)
{
	xassert(!t->client);
	return SSL_new(t->entries[0].ctx);
}

struct tls_ctx *
tls_client_ctx_new(const char *ca_file, const char **error_r)
{
	/* *error_r points here: one buffer per thread */
	static _Thread_local char errbuf[512];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct tls_ctx *t;
	int ok;

	if (ctx == NULL) {
		*error_r = tls_err(errbuf, sizeof(errbuf), "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (ca_file != NULL && ca_file[0] != '\0')
		ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		*error_r = tls_err(errbuf, sizeof(errbuf),
		    "cannot load CA certificates", ca_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	t = xmalloc(sizeof(*t));
	t->client = true;
	t->entries[0].ctx = ctx;
	t->count = 1;
	return t;
}

/*
 * The name to verify and send: an address literal "[192.0.2.1]" or
 * "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3) loses its brackets and tag.
 * Returns false when nothing usable is left.
 */
static bool
tls_client_name(const char *name, char out[TLS_NAME_MAX + 1], bool *is_ip_r)
{
	size_t len = strlen(name);
	unsigned char addr[16];

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len >= 5 && strncasecmp(name, "IPv6:", 5) == 0) {
			name += 5;
			len -= 5;
		}
	}
	if (len == 0 || len > TLS_NAME_MAX)
		return false;
	memcpy(out, name, len);
	out[len] = '\0';
	*is_ip_r = inet_pton(AF_INET, out, addr) == 1 ||
	    inet_pton(AF_INET6, out, addr) == 1;
	return true;
}

/*
 * A client SSL: SNI for host names (RFC 6066 §3: never for addresses),
 * the name checked against the certificate (SSL_set1_host, or the
 * iPAddress for literals) whether or not verify is asked for, so that
 * SSL_get_verify_result() tells afterwards whether it would have
 * verified.  With verify the handshake fails on a bad chain or name.
 */
SSL *
tls_client_new_ssl(struct tls_ctx *t, const char *name, bool verify,
    bool *name_set_r)
{
	char host[TLS_NAME_MAX + 1];
	bool is_ip = false, named = false;
	SSL *ssl;

	xassert(t->client);
	*name_set_r = false;
	if ((ssl = SSL_new(t->entries[0].ctx)) == NULL)
		return NULL;
	if (name != NULL && tls_client_name(name, host, &is_ip)) {
		if (is_ip)
			named = X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(ssl), host) == 1;
		else
			named = SSL_set_tlsext_host_name(ssl, host) == 1 &&
			    SSL_set1_host(ssl, host) == 1;
		if (named)
			SSL_set_hostflags(ssl,
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	if (verify && !named) {
		/* nothing to check the certificate against */
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	*name_set_r = named;
	return ssl;
}
