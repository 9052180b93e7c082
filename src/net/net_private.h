/*
 * net_private.h - shared between the files of src/net only.
 */
#ifndef MAILFORT_NET_PRIVATE_H
#define MAILFORT_NET_PRIVATE_H

#include <openssl/ssl.h>

/* A new server SSL for one connection, or NULL. */
SSL *tls_ctx_new_ssl(struct tls_ctx *tls);

#endif
