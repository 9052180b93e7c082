/*
 * config.h - the configuration: one INI file (libinih) plus environment
 * overrides MAILFORT_<SECTION>_<KEY>.  Every key is one row of the table in
 * config.c with its type, default, bounds and doc; everything is checked
 * before anything starts.
 */
#ifndef MAILFORT_CONFIG_H
#define MAILFORT_CONFIG_H

#include "core/core.h"

enum listener_kind {
	LISTENER_SMTP,
	LISTENER_SUBMISSIONS,
	LISTENER_SUBMISSION,
	LISTENER_IMAP,
	LISTENER_IMAPS,
	LISTENER_POP3,
	LISTENER_POP3S,
	LISTENER_COUNT
};

#define CONFIG_MAX_ADDRS 8	/* addresses per listener */
#define CONFIG_MAX_CERTS 16	/* SNI certificate pairs */

struct listen_addr {
	char host[64];		/* numeric address */
	char port[8];
};

struct listen_cfg {
	size_t count;		/* 0: off */
	struct listen_addr addrs[CONFIG_MAX_ADDRS];
	bool proxy_protocol;
};

struct cert_cfg {
	char *name;		/* NULL for the default pair */
	char *cert;
	char *key;
};

enum tls_profile { TLS_PROFILE_INTERMEDIATE, TLS_PROFILE_MODERN };
enum relay_tls { RELAY_TLS_AUTO, RELAY_TLS_IMPLICIT, RELAY_TLS_STARTTLS };

struct config {
	char *path;		/* the file read, or NULL */
	/* [server] */
	char *hostname;
	char **domains;		/* lower-case, NULL-terminated */
	size_t domain_count;
	char *data_dir;
	char *user;
	uint64_t workers;	/* 0: one per core */
	bool log_syslog;
	enum log_level log_level;
	/* [listen] */
	struct listen_cfg listen[LISTENER_COUNT];
	struct cidr_list proxy_trusted;
	/* [tls] */
	struct cert_cfg certs[CONFIG_MAX_CERTS];
	size_t cert_count;
	enum tls_profile tls_profile;
	/* [accounts] */
	char *users_file;
	char *aliases_file;
	char subaddress_delimiter;	/* 0: off */
	uint64_t lockout_failures;
	uint64_t lockout_seconds;
	char *quotas_file;		/* dovecot-quotas.cf, NULL: none */
	uint64_t default_quota;		/* bytes; 0: unlimited */
	/* [smtp] */
	struct cidr_list trusted;
	uint64_t max_message_size;
	uint64_t max_recipients;
	uint64_t max_errors;
	uint64_t timeout;
	uint64_t data_timeout;
	bool submission_privacy;
	/* [outbound] */
	uint64_t mx_port;
	uint64_t out_concurrency;	/* connections in all */
	uint64_t out_dest_concurrency;	/* connections per destination */
	uint64_t out_connect_timeout;
	uint64_t out_command_timeout;
	uint64_t out_data_timeout;
	bool out_ipv6;
	/* [relay] */
	char *relay_host;
	enum relay_tls relay_tls;
	char *relay_user;
	char *relay_password_file;
	bool relay_verify;
	char *relay_ca_file;		/* "": the system's CA store */
	char *relay_sender_map;		/* postfix-relaymap.cf */
	char *relay_password_map;	/* postfix-sasl-password.cf */
	/* [dns] */
	char *dns_resolver;
	char *dns_trust_anchor;
	/* [queue] */
	uint64_t queue_max_lifetime;
	uint64_t queue_retry_min;
	uint64_t queue_retry_max;
	uint64_t queue_delay_warning;	/* 0: off */
	/* [dkim] */
	char *dkim_selector;
	char *dkim_key_dir;		/* "": DATA_DIR/dkim */
	bool dkim_sign;
};

extern const char *const listener_names[LISTENER_COUNT];

/*
 * Reads path (NULL: defaults and environment only) into *cfg.  Every
 * problem is reported through report(file, line, key, message) - all of
 * them, not just the first.  Returns 0 when the configuration is usable,
 * -1 otherwise (then *cfg is freed).
 */
typedef void config_report_fn(const char *file, int line, const char *key,
			      const char *msg, void *ctx);
int config_load(const char *path, struct config *cfg,
		config_report_fn *report, void *ctx) MF_WUR;
void config_free(struct config *cfg);
/* True when domain (any case) is one of ours. */
bool config_is_local_domain(const struct config *cfg, const char *domain);
/* Prints the key reference (README format) to stdout. */
void config_print_reference(void);

#endif
