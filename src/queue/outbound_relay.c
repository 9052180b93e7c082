/*
 * outbound_relay.c - which relay host (if any) takes a message, and the
 * credentials for it.
 *
 * [relay] host sends everything through one relay (docker-mailserver's
 * RELAY_HOST) with AUTH as relay.user and the password on the first line of
 * relay.password_file.  Per sender domain, relay.sender_map (the format of
 * docker-mailserver's postfix-relaymap.cf) overrides that:
 *
 *     @example.org   [smtp.provider.example]:587
 *     @example.net                          # no relay: direct MX delivery
 *
 * and relay.password_map (postfix-sasl-password.cf) holds credentials:
 *
 *     @example.org                   user:password   # for that sender domain
 *     [smtp.provider.example]:587    user:password   # for that relay
 *
 * Credentials for mail from domain D through relay R: "@D", else R's
 * "[host]:port" (or "host:port") entry, else, for relay.host itself,
 * relay.user and relay.password_file; else no AUTH.  Files with passwords
 * must be readable by nobody but the server user (mode 0600 or 0400);
 * they are refused otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "queue/queue_private.h"

#define RELAY_LINE_MAX 2048
#define RELAY_MAP_MAX 10000	/* lines of one map */

struct relay_route {
	char *domain;		/* lower-case, without '@' */
	struct ob_relay *relay;	/* NULL: direct */
	struct relay_route *next;
};

struct relay_cred {
	char *key;		/* "@domain" or "host:port", lower-case */
	char *user, *password;
	struct relay_cred *next;
};

struct ob_relays {
	struct ob_relay *relays;	/* every relay object */
	struct ob_relay *def;		/* relay.host, or NULL */
	struct relay_route *routes;
	struct relay_cred *creds;
};

static bool
relay_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static void
relay_wipe(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static const struct relay_cred *
relay_cred_find(const struct ob_relays *rs, const char *key)
{
	for (const struct relay_cred *c = rs->creds; c != NULL; c = c->next)
		if (strcasecmp(c->key, key) == 0)
			return c;
	return NULL;
}

static struct ob_relay *
relay_new(struct ob_relays *rs, const struct config *cfg, const char *spec,
    const char *sender_domain, const char **error_r)
{
	struct ob_relay *r = xcalloc(1, sizeof(*r));
	const struct relay_cred *c = NULL;
	char key[600], host[256];

	if (str_split_hostport(spec, host, sizeof(host), &r->port) < 0) {
		free(r);
		*error_r = "not HOST:PORT or [HOST]:PORT";
		return NULL;
	}
	r->host = xstrdup(host);
	r->name = xstrdup(spec);
	r->mode = cfg->relay_tls == RELAY_TLS_IMPLICIT ||
	    (cfg->relay_tls == RELAY_TLS_AUTO && r->port == 465) ?
	    SMTPC_TLS_IMPLICIT : SMTPC_TLS_STARTTLS;
	if (sender_domain != NULL) {
		snprintf(key, sizeof(key), "@%s", sender_domain);
		c = relay_cred_find(rs, key);
	}
	if (c == NULL) {
		snprintf(key, sizeof(key), "[%s]:%u", r->host, r->port);
		c = relay_cred_find(rs, key);
	}
	if (c == NULL) {
		snprintf(key, sizeof(key), "%s:%u", r->host, r->port);
		c = relay_cred_find(rs, key);
	}
	if (c != NULL) {
		r->user = xstrdup(c->user);
		r->password = xstrdup(c->password);
	}
	r->next = rs->relays;
	rs->relays = r;
	return r;
}

/* Opens a map that may hold secrets: refused when others may read it. */
static FILE *
relay_open(const char *key, const char *path, bool secret)
{
	struct stat sb;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		log_warn("%s %s", key, path);
		return NULL;
	}
	if (secret && fstat(fileno(f), &sb) == 0 && (sb.st_mode & 0077) != 0) {
		log_warnx("%s %s: readable by others (chmod 600 it)", key, path);
		fclose(f);
		return NULL;
	}
	return f;
}

/*
 * The next line of a map into line (size bytes); false at the end.  A
 * line longer than that is logged, skipped whole and comes back empty,
 * never cut into two entries.
 */
static bool
relay_getline(FILE *f, const char *key, const char *path, unsigned n,
    char *line, size_t size, int *rc_r)
{
	size_t len;
	int c;

	if (fgets(line, (int)size, f) == NULL)
		return false;
	len = strlen(line);
	if (len == size - 1 && line[len - 1] != '\n' && !feof(f)) {
		log_warnx("%s %s:%u: line longer than %zu bytes, ignored", key,
		    path, n, size - 2);
		while ((c = getc(f)) != EOF && c != '\n')
			;
		line[0] = '\0';
		*rc_r = -1;
	}
	return true;
}

/* Splits a map line into at most two words; false for blank/comment. */
static bool
relay_words(char *line, char **a_r, char **b_r)
{
	char *p, *save = NULL;

	if ((p = strchr(line, '#')) != NULL)
		*p = '\0';
	*a_r = strtok_r(line, " \t\r\n", &save);
	*b_r = *a_r != NULL ? strtok_r(NULL, " \t\r\n", &save) : NULL;
	return *a_r != NULL;
}

static int
relay_load_creds(struct ob_relays *rs, const char *path)
{
	char line[RELAY_LINE_MAX], *k, *v, *colon;
	unsigned n = 0;
	int rc = 0;
	FILE *f;

	if ((f = relay_open("relay.password_map", path, true)) == NULL)
		return -1;
	while (++n <= RELAY_MAP_MAX && relay_getline(f, "relay.password_map",
	    path, n, line, sizeof(line), &rc)) {
		if (!relay_words(line, &k, &v))
			continue;
		if (v == NULL || (colon = strchr(v, ':')) == NULL ||
		    colon == v) {
			log_warnx("relay.password_map %s:%u: not KEY "
			    "user:password", path, n);
			rc = -1;
			continue;
		}
		struct relay_cred *c = xcalloc(1, sizeof(*c));
		c->key = xstrdup(k);
		str_lower(c->key);
		c->user = xstrndup(v, (size_t)(colon - v));
		c->password = xstrdup(colon + 1);
		c->next = rs->creds;
		rs->creds = c;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return rc;
}

static int
relay_load_routes(struct ob_relays *rs, const struct config *cfg,
    const char *path)
{
	char line[RELAY_LINE_MAX], *k, *v;
	const char *err;
	unsigned n = 0;
	int rc = 0;
	FILE *f;

	if ((f = relay_open("relay.sender_map", path, false)) == NULL)
		return -1;
	while (++n <= RELAY_MAP_MAX && relay_getline(f, "relay.sender_map",
	    path, n, line, sizeof(line), &rc)) {
		if (!relay_words(line, &k, &v))
			continue;
		if (k[0] != '@' || k[1] == '\0') {
			log_warnx("relay.sender_map %s:%u: not @DOMAIN "
			    "[[HOST]:PORT]", path, n);
			rc = -1;
			continue;
		}
		struct relay_route *rt = xcalloc(1, sizeof(*rt));
		rt->domain = xstrdup(k + 1);
		str_lower(rt->domain);
		if (v != NULL && (rt->relay = relay_new(rs, cfg, v, rt->domain,
		    &err)) == NULL) {
			log_warnx("relay.sender_map %s:%u: %s: %s", path, n, v,
			    err);
			free(rt->domain);
			free(rt);
			rc = -1;
			continue;
		}
		rt->next = rs->routes;
		rs->routes = rt;
	}
	fclose(f);
	return rc;
}

/* relay.password_file: the first line. */
static int
relay_read_password(const struct config *cfg, char **password_r)
{
	char line[1024];
	FILE *f;

	if ((f = relay_open("relay.password_file", cfg->relay_password_file,
	    true)) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	*password_r = xstrdup(line);
	explicit_bzero(line, sizeof(line));
	return 0;
}

int
ob_relays_load(const struct config *cfg, struct ob_relays **rs_r)
{
	struct ob_relays *rs = xcalloc(1, sizeof(*rs));
	const char *err;
	int rc = 0;

	*rs_r = rs;
	if (relay_set(cfg->relay_password_map) &&
	    relay_load_creds(rs, cfg->relay_password_map) < 0)
		rc = -1;
	if (relay_set(cfg->relay_host)) {
		if ((rs->def = relay_new(rs, cfg, cfg->relay_host, NULL,
		    &err)) == NULL) {
			log_warnx("relay.host %s: %s", cfg->relay_host, err);
			return -1;
		}
		if (relay_set(cfg->relay_user)) {
			if (!relay_set(cfg->relay_password_file)) {
				log_warnx("relay.user is set but "
				    "relay.password_file is not");
				return -1;
			}
			relay_wipe(rs->def->user);
			relay_wipe(rs->def->password);
			rs->def->user = xstrdup(cfg->relay_user);
			if (relay_read_password(cfg, &rs->def->password) < 0)
				return -1;
		}
	}
	if (relay_set(cfg->relay_sender_map) &&
	    relay_load_routes(rs, cfg, cfg->relay_sender_map) < 0)
		rc = -1;
	return rc;
}

const struct ob_relay *
ob_relays_route(const struct ob_relays *rs, const char *sender)
{
	const char *at = strrchr(sender, '@');

	if (at != NULL) {
		for (const struct relay_route *rt = rs->routes; rt != NULL;
		    rt = rt->next)
			if (strcasecmp(rt->domain, at + 1) == 0)
				return rt->relay;
	}
	return rs->def;
}

bool
ob_relays_any(const struct ob_relays *rs)
{
	return rs->relays != NULL;
}

void
ob_relays_free(struct ob_relays **rsp)
{
	struct ob_relays *rs = *rsp;

	if (rs == NULL)
		return;
	*rsp = NULL;
	while (rs->relays != NULL) {
		struct ob_relay *r = rs->relays;
		rs->relays = r->next;
		free(r->name);
		free(r->host);
		relay_wipe(r->user);
		relay_wipe(r->password);
		free(r);
	}
	while (rs->routes != NULL) {
		struct relay_route *rt = rs->routes;
		rs->routes = rt->next;
		free(rt->domain);
		free(rt);
	}
	while (rs->creds != NULL) {
		struct relay_cred *c = rs->creds;
		rs->creds = c->next;
		free(c->key);
		relay_wipe(c->user);
		relay_wipe(c->password);
		free(c);
	}
	free(rs);
}

int
queue_check_relays(const struct config *cfg)
{
	struct ob_relays *rs = NULL;
	int rc = ob_relays_load(cfg, &rs);

	ob_relays_free(&rs);
	return rc;
}
