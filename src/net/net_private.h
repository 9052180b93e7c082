/*
 * net_private.h - shared between the files of src/net only.
 */
#ifndef MAILFORT_NET_PRIVATE_H
#define MAILFORT_NET_PRIVATE_H

#include <openssl/ssl.h>

/* A new server SSL for one connection, or NULL. */
SSL *tls_ctx_new_ssl(struct tls_ctx *tls);
/*
 * A new client SSL from a tls_client_ctx_new() context, for peer name
 * (host name or address literal; NULL: none): SNI, name check, and
 * SSL_VERIFY_PEER when verify.  *name_set_r tells whether a name is
 * checked.  NULL on failure, or when verify has no usable name.
 */
SSL *tls_client_new_ssl(struct tls_ctx *tls, const char *name, bool verify,
    bool *name_set_r);

#endif
