/*
 * config.c - the configuration table.  Each key is one row: section, key,
 * type, default, bounds, where it lands in struct config, and its doc.
 * Loading collects the raw text of every key (file first, then the
 * environment MAILFORT_<SECTION>_<KEY>), then converts every row and
 * reports every mistake with file, line and key.  Nothing is half-applied:
 * a failed load frees everything.
 */
#include <ctype.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config.h"

enum cfg_type {
	CFG_STR, CFG_PATH, CFG_U64, CFG_BOOL, CFG_DOMAINS, CFG_LISTEN,
	CFG_CIDRS, CFG_PROFILE, CFG_RELAY_TLS, CFG_CHAR, CFG_LOGLEVEL,
	CFG_LOGDEST, CFG_PROXY, CFG_HOSTPORT,
};

struct cfg_row {
	const char *section;
	const char *key;
	enum cfg_type type;
	const char *def;
	uint64_t min, max;
	size_t off;		/* into struct config; listener index for LISTEN */
	const char *doc;
};

#define OFF(f) offsetof(struct config, f)
#define U64MAX UINT64_MAX

static const struct cfg_row cfg_rows[] = {
{ "server", "hostname", CFG_STR, "localhost", 0, 0, OFF(hostname),
  "name in the banner, Received headers and outbound HELO" },
{ "server", "domains", CFG_DOMAINS, "", 0, 0, OFF(domains),
  "local domains, comma separated" },
{ "server", "data_dir", CFG_PATH, "./var", 0, 0, OFF(data_dir),
  "spool, queue and mail stores" },
{ "server", "user", CFG_STR, "mailfort", 0, 0, OFF(user),
  "unprivileged user the children run as when started as root" },
{ "server", "workers", CFG_U64, "0", 0, 64, OFF(workers),
  "worker processes; 0 = one per core" },
{ "server", "log", CFG_LOGDEST, "stderr", 0, 0, OFF(log_syslog),
  "stderr or syslog" },
{ "server", "log_level", CFG_LOGLEVEL, "info", 0, 0, OFF(log_level),
  "warn, info or debug" },
{ "listen", "smtp", CFG_LISTEN, "0.0.0.0:25", 0, 0, LISTENER_SMTP,
  "inbound MX listener (ADDR:PORT list or off)" },
{ "listen", "submissions", CFG_LISTEN, "0.0.0.0:465", 0, 0,
  LISTENER_SUBMISSIONS, "submission with implicit TLS" },
{ "listen", "submission", CFG_LISTEN, "0.0.0.0:587", 0, 0,
  LISTENER_SUBMISSION, "submission with STARTTLS required" },
{ "listen", "imap", CFG_LISTEN, "0.0.0.0:143", 0, 0, LISTENER_IMAP,
  "IMAP with STARTTLS required before login" },
{ "listen", "imaps", CFG_LISTEN, "0.0.0.0:993", 0, 0, LISTENER_IMAPS,
  "IMAP with implicit TLS" },
{ "listen", "pop3", CFG_LISTEN, "off", 0, 0, LISTENER_POP3,
  "POP3 with STLS required" },
{ "listen", "pop3s", CFG_LISTEN, "off", 0, 0, LISTENER_POP3S,
  "POP3 with implicit TLS" },
{ "listen", "proxy_protocol", CFG_PROXY, "no", 0, 0, 0,
  "listeners expecting a PROXY v1/v2 header: no, yes (all) or a list "
  "of listener names" },
{ "listen", "proxy_trusted_networks", CFG_CIDRS, "", 0, 0,
  OFF(proxy_trusted), "proxies allowed to send a PROXY header" },
{ "tls", "cert", CFG_PATH, "", 0, 0, 0,
  "certificate chain (PEM); cert.NAME adds one for SNI name NAME" },
{ "tls", "key", CFG_PATH, "", 0, 0, 0,
  "private key (PEM); key.NAME pairs with cert.NAME" },
{ "tls", "profile", CFG_PROFILE, "intermediate", 0, 0, OFF(tls_profile),
  "intermediate (TLS 1.2+1.3, Mozilla ciphers) or modern (TLS 1.3)" },
{ "accounts", "users", CFG_PATH, "", 0, 0, OFF(users_file),
  "postfix-accounts.cf (user@domain\\|{SCHEME}hash lines)" },
{ "accounts", "aliases", CFG_PATH, "", 0, 0, OFF(aliases_file),
  "postfix-virtual.cf (alias target[,target...])" },
{ "accounts", "subaddress_delimiter", CFG_CHAR, "+", 0, 0,
  OFF(subaddress_delimiter), "user+tag@domain goes to user@domain; "
  "empty turns it off" },
{ "accounts", "lockout_failures", CFG_U64, "5", 1, 1000,
  OFF(lockout_failures), "failed logins from one address before lockout" },
{ "accounts", "lockout_time", CFG_U64, "900", 1, 86400,
  OFF(lockout_seconds), "seconds an address stays locked out" },
{ "accounts", "quotas", CFG_PATH, "", 0, 0, OFF(quotas_file),
  "dovecot-quotas.cf (user@domain:SIZE lines, SIZE in bytes or with "
  "K, M, G, T)" },
{ "accounts", "default_quota", CFG_U64, "0", 0, 1ULL << 50,
  OFF(default_quota), "bytes of mail per account without a quotas line; "
  "0 = unlimited" },
{ "smtp", "trusted_networks", CFG_CIDRS, "", 0, 0, OFF(trusted),
  "clients that may relay without AUTH; empty: nobody" },
{ "smtp", "max_message_size", CFG_U64, "26214400", 1024, 1ULL << 31,
  OFF(max_message_size), "bytes; SIZE limit (552 5.3.4)" },
{ "smtp", "max_recipients", CFG_U64, "100", 1, 100000,
  OFF(max_recipients), "recipients per message (452 4.5.3 beyond)" },
{ "smtp", "max_errors", CFG_U64, "10", 1, 1000, OFF(max_errors),
  "protocol errors before 421 and close" },
{ "smtp", "timeout", CFG_U64, "300", 1, 3600, OFF(timeout),
  "seconds idle between commands" },
{ "smtp", "data_timeout", CFG_U64, "600", 1, 7200, OFF(data_timeout),
  "seconds idle while receiving DATA/BDAT" },
{ "smtp", "submission_privacy", CFG_BOOL, "yes", 0, 0,
  OFF(submission_privacy), "drop User-Agent, X-Mailer, X-Originating-IP "
  "and hide the client address on submission" },
{ "outbound", "mx_port", CFG_U64, "25", 1, 65535, OFF(mx_port),
  "port of remote MX hosts" },
{ "outbound", "concurrency", CFG_U64, "100", 1, 10000,
  OFF(out_concurrency), "outbound SMTP connections in all" },
{ "outbound", "destination_concurrency", CFG_U64, "20", 1, 1000,
  OFF(out_dest_concurrency), "outbound connections per destination "
  "domain (or to the relay)" },
{ "outbound", "connect_timeout", CFG_U64, "30", 1, 600,
  OFF(out_connect_timeout), "seconds to wait for a TCP connection" },
{ "outbound", "command_timeout", CFG_U64, "300", 1, 3600,
  OFF(out_command_timeout), "seconds to wait for the greeting and each "
  "reply (RFC 5321 §4.5.3.2: 300)" },
{ "outbound", "data_timeout", CFG_U64, "600", 1, 7200,
  OFF(out_data_timeout), "seconds to wait for the reply to the end of "
  "the message (RFC 5321: 600)" },
{ "outbound", "ipv6", CFG_BOOL, "yes", 0, 0, OFF(out_ipv6),
  "also connect to IPv6 addresses (tried before IPv4)" },
{ "relay", "host", CFG_HOSTPORT, "", 0, 0, OFF(relay_host),
  "HOST:PORT of a relay host; empty: direct MX delivery" },
{ "relay", "tls", CFG_RELAY_TLS, "auto", 0, 0, OFF(relay_tls),
  "implicit, starttls or auto (465 implicit, else starttls)" },
{ "relay", "user", CFG_STR, "", 0, 0, OFF(relay_user),
  "AUTH user at the relay" },
{ "relay", "password_file", CFG_PATH, "", 0, 0, OFF(relay_password_file),
  "file holding the relay password" },
{ "relay", "verify", CFG_BOOL, "yes", 0, 0, OFF(relay_verify),
  "the relay's certificate must verify (chain and host name)" },
{ "relay", "ca_file", CFG_PATH, "", 0, 0, OFF(relay_ca_file),
  "CA certificates (PEM) for the relay; empty: the system's" },
{ "relay", "sender_map", CFG_PATH, "", 0, 0, OFF(relay_sender_map),
  "relay per sender domain (postfix-relaymap.cf: @domain [host]:port, "
  "or @domain alone for direct delivery)" },
{ "relay", "password_map", CFG_PATH, "", 0, 0, OFF(relay_password_map),
  "relay credentials (postfix-sasl-password.cf: @domain or [host]:port, "
  "then user:password); mode 0600" },
{ "dns", "resolver", CFG_HOSTPORT, "", 0, 0, OFF(dns_resolver),
  "ADDR:PORT of the DNS resolver; empty: the system's" },
{ "dns", "trust_anchor", CFG_PATH, "", 0, 0, OFF(dns_trust_anchor),
  "DNSSEC trust anchor file; empty: the root's" },
{ "queue", "max_lifetime", CFG_U64, "432000", 60, 31536000,
  OFF(queue_max_lifetime), "seconds before undeliverable mail bounces" },
{ "queue", "retry_min", CFG_U64, "300", 1, 86400, OFF(queue_retry_min),
  "first retry delay, seconds" },
{ "queue", "retry_max", CFG_U64, "3600", 1, 604800, OFF(queue_retry_max),
  "longest retry delay, seconds" },
{ "queue", "delay_warning", CFG_U64, "14400", 0, 31536000,
  OFF(queue_delay_warning), "seconds before the sender is told that "
  "mail is delayed (once); 0: never" },
{ "dkim", "selector", CFG_STR, "mail", 0, 0, OFF(dkim_selector),
  "DNS selector of the RSA key (SELECTOR._domainkey.DOMAIN); the "
  "Ed25519 key's is SELECTOR-ed25519" },
{ "dkim", "key_dir", CFG_PATH, "", 0, 0, OFF(dkim_key_dir),
  "DKIM keys as DOMAIN/SELECTOR.rsa.key and .ed25519.key; "
  "empty: DATA_DIR/dkim" },
{ "dkim", "sign", CFG_BOOL, "yes", 0, 0, OFF(dkim_sign),
  "sign mail submitted on 465/587 from local domains that have keys" },
};

const char *const listener_names[LISTENER_COUNT] = {
	"smtp", "submissions", "submission", "imap", "imaps", "pop3", "pop3s",
};

#define CFG_NROWS MF_ARRAY_LEN(cfg_rows)

/* Debian's libinih passes no line number: count lines in the reader. */
struct cfg_reader {
	FILE *f;
	int line;
};

struct cfg_raw {
	char *value;
	const char *file;	/* NULL: default; "environment" */
	int line;
};

struct cfg_load {
	const char *path;
	struct cfg_raw raw[CFG_NROWS];
	/* cert.NAME / key.NAME */
	struct { char *name, *cert, *key; int line; } sni[CONFIG_MAX_CERTS];
	size_t sni_count;
	config_report_fn *report;
	void *ctx;
	int errors;
	struct cfg_reader reader;
};

static void
cfg_error(struct cfg_load *l, const char *file, int line, const char *key,
    const char *msg)
{
	l->errors++;
	l->report(file, line, key, msg, l->ctx);
}

static int
cfg_find(const char *section, const char *key)
{
	for (size_t i = 0; i < CFG_NROWS; i++)
		if (strcmp(cfg_rows[i].section, section) == 0 &&
		    strcmp(cfg_rows[i].key, key) == 0)
			return (int)i;
	return -1;
}

static void
cfg_set_sni(struct cfg_load *l, const char *key, const char *value, int line)
{
	bool is_cert = strncmp(key, "cert.", 5) == 0;
	const char *name = key + 5;
	size_t i;

	for (i = 0; i < l->sni_count; i++)
		if (strcasecmp(l->sni[i].name, name) == 0)
			break;
	if (i == l->sni_count) {
		if (l->sni_count + 1 >= CONFIG_MAX_CERTS) {
			cfg_error(l, l->path, line, key, "too many certificates");
			return;
		}
		l->sni[i].name = str_lower(xstrdup(name));
		l->sni[i].line = line;
		l->sni_count++;
	}
	char **slot = is_cert ? &l->sni[i].cert : &l->sni[i].key;
	free(*slot);
	*slot = xstrdup(value);
}


static char *
cfg_reader_gets(char *str, int num, void *stream)
{
	struct cfg_reader *r = stream;
	char *p = fgets(str, num, r->f);

	if (p != NULL)
		r->line++;
	return p;
}

static int
cfg_ini_handler(void *user, const char *section, const char *key,
    const char *value)
{
	struct cfg_load *l = user;
	char where[128];
	int line = l->reader.line;
	int i;

	snprintf(where, sizeof(where), "%s.%s", section, key);
	if (strcmp(section, "tls") == 0 && (strncmp(key, "cert.", 5) == 0 ||
	    strncmp(key, "key.", 4) == 0)) {
		if (strncmp(key, "key.", 4) == 0) {
			char k2[128];
			snprintf(k2, sizeof(k2), "kkey.%s", key + 4);
			/* normalise "key.NAME" to the 5-char prefix form */
			cfg_set_sni(l, k2, value, line);
		} else {
			cfg_set_sni(l, key, value, line);
		}
		return 1;
	}
	i = cfg_find(section, key);
	if (i < 0) {
		cfg_error(l, l->path, line, where, "unknown key");
		return 1;
	}
	free(l->raw[i].value);
	l->raw[i].value = xstrdup(value);
	l->raw[i].file = l->path;
	l->raw[i].line = line;
	return 1;
}

static void
cfg_read_env(struct cfg_load *l)
{
	char name[128], *p;

	for (size_t i = 0; i < CFG_NROWS; i++) {
		snprintf(name, sizeof(name), "MAILFORT_%s_%s",
		    cfg_rows[i].section, cfg_rows[i].key);
		for (p = name; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		const char *v = getenv(name);
		if (v == NULL)
			continue;
		free(l->raw[i].value);
		l->raw[i].value = xstrdup(v);
		l->raw[i].file = "environment";
		l->raw[i].line = 0;
	}
}

static bool
cfg_parse_bool(const char *v, bool *out)
{
	if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0)
		*out = true;
	else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 ||
	    strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0)
		*out = false;
	else
		return false;
	return true;
}

static bool
cfg_valid_domain(const char *d)
{
	size_t len = strlen(d);

	if (len == 0 || len > 253 || d[0] == '.' || d[0] == '-')
		return false;
	for (const char *p = d; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return false;
	return true;
}

/* "ADDR:PORT" or "[v6]:PORT"; a bare port means 0.0.0.0. */
static const char *
cfg_parse_addr(char *item, struct listen_addr *a)
{
	char *host = item, *port;
	uint64_t p;

	if (item[0] == '[') {
		char *end = strchr(item, ']');
		if (end == NULL || end[1] != ':')
			return "bad [IPv6]:PORT";
		*end = '\0';
		host = item + 1;
		port = end + 2;
	} else if ((port = strrchr(item, ':')) != NULL) {
		*port++ = '\0';
	} else {
		port = item;
		host = "0.0.0.0";
	}
	if (*host == '\0' || strcmp(host, "*") == 0)
		host = "0.0.0.0";
	if (str_to_u64(port, 1, 65535, &p) < 0)
		return "bad port";
	if (strlen(host) >= sizeof(a->host))
		return "address too long";
	str_lcpy(a->host, host, sizeof(a->host));
	snprintf(a->port, sizeof(a->port), "%u", (unsigned)p);
	return NULL;
}

static const char *
cfg_parse_listen(const char *v, struct listen_cfg *lc)
{
	char *copy, *save = NULL, *tok;
	const char *err = NULL;

	lc->count = 0;
	if (*v == '\0' || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0)
		return NULL;
	copy = xstrdup(v);
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL && err == NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (lc->count == CONFIG_MAX_ADDRS) {
			err = "too many addresses";
			break;
		}
		err = cfg_parse_addr(tok, &lc->addrs[lc->count++]);
	}
	free(copy);
	return err;
}

static const char *
cfg_parse_domains(const char *v, struct config *cfg)
{
	char *copy = xstrdup(v), *save = NULL, *tok;
	const char *err = NULL;

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (!cfg_valid_domain(tok)) {
			err = "not a valid domain name";
			break;
		}
		cfg->domains = xreallocarray(cfg->domains,
		    cfg->domain_count + 2, sizeof(char *));
		cfg->domains[cfg->domain_count++] = str_lower(xstrdup(tok));
		cfg->domains[cfg->domain_count] = NULL;
	}
	free(copy);
	return err;
}

static const char *
cfg_parse_proxy(const char *v, struct config *cfg)
{
	bool all;
	char *copy, *save = NULL, *tok;
	const char *err = NULL;

	if (cfg_parse_bool(v, &all)) {
		for (int i = 0; i < LISTENER_COUNT; i++)
			cfg->listen[i].proxy_protocol = all;
		return NULL;
	}
	copy = xstrdup(v);
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		int i;
		for (i = 0; i < LISTENER_COUNT; i++)
			if (strcmp(tok, listener_names[i]) == 0)
				break;
		if (i == LISTENER_COUNT) {
			err = "unknown listener name";
			break;
		}
		cfg->listen[i].proxy_protocol = true;
	}
	free(copy);
	return err;
}

static const char *
cfg_parse_hostport(const char *v)
{
	char host[256];
	uint16_t port;

	if (*v == '\0')
		return NULL;
	if (str_split_hostport(v, host, sizeof(host), &port) < 0)
		return "expected HOST:PORT or [HOST]:PORT (port 1-65535)";
	return NULL;
}

/* Converts one row; returns an error message or NULL. */
static const char *
cfg_apply(const struct cfg_row *r, const char *v, struct config *cfg)
{
	char *base = (char *)cfg;
	const char *err = NULL;
	uint64_t u;
	bool b;

	switch (r->type) {
	case CFG_STR:
	case CFG_PATH:
		if (strchr(v, '\n') != NULL)
			return "newline in value";
		if (r->off != 0 || strcmp(r->section, "tls") != 0)
			*(char **)(base + r->off) = xstrdup(v);
		return NULL;
	case CFG_HOSTPORT:
		if ((err = cfg_parse_hostport(v)) != NULL)
			return err;
		*(char **)(base + r->off) = xstrdup(v);
		return NULL;
	case CFG_U64:
		if (str_to_u64(v, r->min, r->max, &u) < 0)
			return "not a number in the allowed range";
		*(uint64_t *)(base + r->off) = u;
		return NULL;
	case CFG_BOOL:
		if (!cfg_parse_bool(v, &b))
			return "expected yes or no";
		*(bool *)(base + r->off) = b;
		return NULL;
	case CFG_DOMAINS:
		return cfg_parse_domains(v, cfg);
	case CFG_LISTEN:
		return cfg_parse_listen(v, &cfg->listen[r->off]);
	case CFG_CIDRS:
		if (cidr_list_parse(v, (struct cidr_list *)(base + r->off),
		    &err) < 0)
			return err;
		return NULL;
	case CFG_PROFILE:
		if (strcasecmp(v, "intermediate") == 0)
			cfg->tls_profile = TLS_PROFILE_INTERMEDIATE;
		else if (strcasecmp(v, "modern") == 0)
			cfg->tls_profile = TLS_PROFILE_MODERN;
		else
			return "expected intermediate or modern";
		return NULL;
	case CFG_RELAY_TLS:
		if (strcasecmp(v, "auto") == 0)
			cfg->relay_tls = RELAY_TLS_AUTO;
		else if (strcasecmp(v, "implicit") == 0)
			cfg->relay_tls = RELAY_TLS_IMPLICIT;
		else if (strcasecmp(v, "starttls") == 0)
			cfg->relay_tls = RELAY_TLS_STARTTLS;
		else
			return "expected implicit, starttls or auto";
		return NULL;
	case CFG_CHAR:
		if (strlen(v) > 1 || (v[0] != '\0' &&
		    (isalnum((unsigned char)v[0]) || v[0] == '@' ||
		    v[0] == '.' || !isgraph((unsigned char)v[0]))))
			return "expected one punctuation character or nothing";
		*(char *)(base + r->off) = v[0];
		return NULL;
	case CFG_LOGLEVEL:
		if (strcasecmp(v, "warn") == 0)
			cfg->log_level = LOG_LVL_WARN;
		else if (strcasecmp(v, "info") == 0)
			cfg->log_level = LOG_LVL_INFO;
		else if (strcasecmp(v, "debug") == 0)
			cfg->log_level = LOG_LVL_DEBUG;
		else
			return "expected warn, info or debug";
		return NULL;
	case CFG_LOGDEST:
		if (strcasecmp(v, "stderr") == 0)
			cfg->log_syslog = false;
		else if (strcasecmp(v, "syslog") == 0)
			cfg->log_syslog = true;
		else
			return "expected stderr or syslog";
		return NULL;
	case CFG_PROXY:
		return cfg_parse_proxy(v, cfg);
	}
	return "internal: bad row type";
}

static void
cfg_add_cert(struct config *cfg, const char *name, const char *cert,
    const char *key)
{
	struct cert_cfg *c = &cfg->certs[cfg->cert_count++];

	c->name = name != NULL ? xstrdup(name) : NULL;
	c->cert = xstrdup(cert);
	c->key = xstrdup(key);
}

static void
cfg_check_file(struct cfg_load *l, const struct cfg_raw *raw,
    const char *key, const char *path)
{
	char msg[600];

	if (path == NULL || *path == '\0' || access(path, R_OK) == 0)
		return;
	snprintf(msg, sizeof(msg), "cannot read %s", path);
	cfg_error(l, raw->file, raw->line, key, msg);
}

static void
cfg_finish_tls(struct cfg_load *l, struct config *cfg)
{
	int ic = cfg_find("tls", "cert"), ik = cfg_find("tls", "key");
	const char *cert = l->raw[ic].value, *key = l->raw[ik].value;

	if ((*cert == '\0') != (*key == '\0'))
		cfg_error(l, l->path, l->raw[ic].line, "tls.cert",
		    "cert and key must be set together");
	cfg_check_file(l, &l->raw[ic], "tls.cert", cert);
	cfg_check_file(l, &l->raw[ik], "tls.key", key);
	if (*cert != '\0' && *key != '\0')
		cfg_add_cert(cfg, NULL, cert, key);
	for (size_t i = 0; i < l->sni_count; i++) {
		struct cfg_raw r = { NULL, l->path, l->sni[i].line };
		if (l->sni[i].cert == NULL || l->sni[i].key == NULL) {
			cfg_error(l, l->path, l->sni[i].line, l->sni[i].name,
			    "cert.NAME and key.NAME must be set together");
			continue;
		}
		cfg_check_file(l, &r, "tls.cert.NAME", l->sni[i].cert);
		cfg_check_file(l, &r, "tls.key.NAME", l->sni[i].key);
		cfg_add_cert(cfg, l->sni[i].name, l->sni[i].cert,
		    l->sni[i].key);
	}
	bool need_tls = false;
	for (int i = 0; i < LISTENER_COUNT; i++)
		if (cfg->listen[i].count > 0 && i != LISTENER_SMTP)
			need_tls = true;
	if (need_tls && cfg->cert_count == 0)
		cfg_error(l, l->path, 0, "tls.cert",
		    "a certificate is required by the TLS listeners");
}

static void
cfg_load_free(struct cfg_load *l)
{
	for (size_t i = 0; i < CFG_NROWS; i++)
		free(l->raw[i].value);
	for (size_t i = 0; i < l->sni_count; i++) {
		free(l->sni[i].name);
		free(l->sni[i].cert);
		free(l->sni[i].key);
	}
}

int
config_load(const char *path, struct config *cfg, config_report_fn *report,
    void *ctx)
{
	struct cfg_load l = { .path = path, .report = report, .ctx = ctx };
	char where[128];
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CFG_NROWS; i++)
		l.raw[i].value = xstrdup(cfg_rows[i].def);
	if (path != NULL) {
		l.reader.f = fopen(path, "r");
		rc = -1;
		if (l.reader.f != NULL) {
			rc = ini_parse_stream(cfg_reader_gets, &l.reader,
			    cfg_ini_handler, &l);
			fclose(l.reader.f);
		}
		if (rc < 0)
			cfg_error(&l, path, 0, "-", "cannot open file");
		else if (rc > 0)
			cfg_error(&l, path, rc, "-", "syntax error");
		cfg->path = xstrdup(path);
	}
	cfg_read_env(&l);
	for (size_t i = 0; i < CFG_NROWS; i++) {
		const struct cfg_row *r = &cfg_rows[i];
		char *v = str_trim(l.raw[i].value);
		const char *err = cfg_apply(r, v, cfg);
		if (err != NULL) {
			snprintf(where, sizeof(where), "%s.%s", r->section,
			    r->key);
			cfg_error(&l, l.raw[i].file ? l.raw[i].file : "default",
			    l.raw[i].line, where, err);
		}
	}
	if (cfg->domain_count == 0)
		cfg_error(&l, path ? path : "default", 0, "server.domains",
		    "at least one local domain is required");
	if (cfg->hostname != NULL && !cfg_valid_domain(cfg->hostname))
		cfg_error(&l, path ? path : "default", 0, "server.hostname",
		    "not a valid host name");
	if (cfg->dkim_selector != NULL && !cfg_valid_domain(cfg->dkim_selector))
		cfg_error(&l, path ? path : "default", 0, "dkim.selector",
		    "not a valid selector (letters, digits, '-', '.')");
	if (cfg->queue_retry_min > cfg->queue_retry_max)
		cfg_error(&l, path ? path : "default", 0, "queue.retry_min",
		    "larger than queue.retry_max");
	cfg_finish_tls(&l, cfg);
	{
		int ia = cfg_find("accounts", "users");
		cfg_check_file(&l, &l.raw[ia], "accounts.users",
		    cfg->users_file);
	}
	rc = l.errors == 0 ? 0 : -1;
	cfg_load_free(&l);
	if (rc < 0)
		config_free(cfg);
	return rc;
}

void
config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->domain_count; i++)
		free(cfg->domains[i]);
	free(cfg->domains);
	for (size_t i = 0; i < cfg->cert_count; i++) {
		free(cfg->certs[i].name);
		free(cfg->certs[i].cert);
		free(cfg->certs[i].key);
	}
	cidr_list_free(&cfg->trusted);
	cidr_list_free(&cfg->proxy_trusted);
	free(cfg->path);
	free(cfg->hostname);
	free(cfg->data_dir);
	free(cfg->user);
	free(cfg->users_file);
	free(cfg->aliases_file);
	free(cfg->quotas_file);
	free(cfg->relay_host);
	free(cfg->relay_user);
	free(cfg->relay_password_file);
	free(cfg->relay_ca_file);
	free(cfg->relay_sender_map);
	free(cfg->relay_password_map);
	free(cfg->dns_resolver);
	free(cfg->dns_trust_anchor);
	free(cfg->dkim_selector);
	free(cfg->dkim_key_dir);
	memset(cfg, 0, sizeof(*cfg));
}

bool
config_is_local_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->domain_count; i++)
		if (strcasecmp(cfg->domains[i], domain) == 0)
			return true;
	return false;
}

void
config_print_reference(void)
{
	const char *section = "";

	for (size_t i = 0; i < CFG_NROWS; i++) {
		const struct cfg_row *r = &cfg_rows[i];
		if (strcmp(section, r->section) != 0) {
			printf("\n[%s]\n", r->section);
			section = r->section;
		}
		printf("| `%s` | `%s` | %s |\n", r->key, r->def, r->doc);
	}
}
