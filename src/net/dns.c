/*
 * dns.c - where outbound mail goes: MX records (RFC 5321 §5.1), null MX
 * (RFC 7505), then each host's AAAA and A records, all through one
 * validating libunbound context per process.
 *
 * libunbound runs in its threaded async mode: one resolver thread of its
 * own, answers come back over a pipe (ub_fd()) that a libevent read event
 * watches; ub_process() then runs our lookup callbacks on the loop thread.
 * The fork mode would add a child process to every process that resolves
 * (and confuse whoever reaps children); the event mode (ub_resolve_event)
 * hands back raw packets we would have to parse, CNAMEs and all.  Create
 * the resolver after fork(): the thread does not survive one.
 *
 * A struct dns_query is one caller request; it owns the struct dns_lookup
 * rows (one ub_resolve_async() each) it waits for.  Completed requests
 * reach the caller through a per-query event made active, so callbacks
 * never run inside dns_resolve_*() or ub_process().  Cancelling orphans
 * the lookups (ub_cancel(); libunbound then drops their answers).
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <idn2.h>
#include <unbound.h>
#include <unistd.h>

#include "net/net.h"

#define DNS_MX_MAX 16		/* MX hosts kept per domain */
#define DNS_ADDR_FAMILY_MAX 8	/* addresses per host and family */
#define DNS_NAME_MAX 253	/* text form, no trailing dot (RFC 1035) */
#define DNS_LABEL_MAX 63
#define DNS_QUERY_TIMEOUT 30	/* seconds for one dns_resolve_*() */
#define DNS_ROOT_KEY "/usr/share/dns/root.key"	/* dns-root-data */

#define DNS_TYPE_A 1
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_NXDOMAIN 3
#define DNS_HOST_NONE ((size_t)-1)	/* a lookup for the MX RRset */

struct dns_query;

struct dns_lookup {
	struct dns *d;
	struct dns_query *q;	/* NULL: orphaned, answer ignored */
	size_t host;		/* index into q->res->hosts, or NONE */
	int rrtype;
	int id;			/* libunbound's async id */
	struct dns_lookup *prev, *next;
};

struct dns_query {
	struct dns *d;
	dns_mx_cb *cb;
	void *arg;
	uint16_t port;
	bool want_mx;		/* dns_resolve_mx() rather than _host() */
	char *name;		/* the domain or host, validated */
	struct dns_mx *res;
	char *first_error;	/* of a failed address lookup */
	size_t pending;		/* lookups outstanding */
	bool any_tempfail;
	bool finished;		/* res final; done_ev is active */
	struct event *done_ev;
	struct event *timer;
	struct dns_query *prev, *next;
};

struct dns {
	struct event_base *base;
	struct ub_ctx *ub;
	struct event *ub_ev;	/* ub_fd() readable */
	bool ipv6;
	bool broken;		/* ub_process() failed: the thread is gone */
	struct dns_lookup *lookups;	/* every row libunbound may answer */
	struct dns_query *queries;	/* every query not yet called back */
};

static void dns_on_ub(void *arg, int err, struct ub_result *r);
static void dns_finish(struct dns_query *q);

/* ---- names ---- */

/*
 * Checks an ASCII host name (LDH labels of 1..63, no hyphen at either
 * end, at most 253 characters without the optional trailing dot) and
 * copies it lower-cased, without the dot, into out (DNS_NAME_MAX + 1).
 * Returns NULL or what is wrong.
 */
static const char *dns_name_check_ascii(const char *name, char *out);

/* As dns_name_check_ascii(), but a U-label name (UTF-8, RFC 6531
 * addresses) is first converted to its A-label form (IDNA2008 with
 * UTS #46 mapping, libidn2). */
static const char *
dns_name_check(const char *name, char *out)
{
	const char *err;
	char *ascii = NULL;

	for (const char *p = name; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x80)
			continue;
		if (strlen(name) > DNS_NAME_MAX * 4 ||
		    idn2_to_ascii_8z(name, &ascii, IDN2_NONTRANSITIONAL) !=
		    IDN2_OK)
			return "invalid internationalized domain name";
		err = dns_name_check_ascii(ascii, out);
		idn2_free(ascii);
		return err;
	}
	return dns_name_check_ascii(name, out);
}

static const char *
dns_name_check_ascii(const char *name, char *out)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty domain name";
	if (len > DNS_NAME_MAX)
		return "domain name longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x80)
			return "non-ASCII domain name";
		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return "malformed domain name";
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			if (++label > DNS_LABEL_MAX)
				return "domain name label longer than 63";
		} else {
			return "malformed domain name";
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	if (label == 0 || name[len - 1] == '-')	/* "a..": empty last label */
		return "malformed domain name";
	out[len] = '\0';
	return NULL;
}

/*
 * The uncompressed wire name at p (at most len bytes) as text into out
 * (DNS_NAME_MAX + 1): "" for the root.  Returns the bytes used or -1.
 */
static int
dns_name_from_wire(const unsigned char *p, size_t len, char *out)
{
	size_t pos = 0, o = 0;

	while (pos < len && p[pos] != 0) {
		size_t n = p[pos];

		if (n > DNS_LABEL_MAX || pos + 1 + n >= len ||
		    o + n + 1 > DNS_NAME_MAX)
			return -1;
		/* a '.' or NUL inside a label would change the name's text */
		if (memchr(p + pos + 1, '.', n) != NULL ||
		    memchr(p + pos + 1, '\0', n) != NULL)
			return -1;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, p + pos + 1, n);
		o += n;
		pos += 1 + n;
	}
	if (pos >= len)
		return -1;
	out[o] = '\0';
	return (int)(pos + 1);
}

int
dns_mx_rdata_parse(const void *rdata, size_t len, unsigned *pref_r,
    char name_r[DNS_NAME_TEXT_MAX + 1])
{
	const unsigned char *p = rdata;
	char name[DNS_NAME_MAX + 1];

	if (len < 3 || dns_name_from_wire(p + 2, len - 2, name) < 0)
		return -1;
	*pref_r = (unsigned)(p[0] << 8 | p[1]);
	if (name[0] == '\0')
		return 0;
	/* an exchange is a host name: ASCII only, never an IDN to map */
	return dns_name_check_ascii(name, name_r) == NULL ? 1 : -1;
}

const char *
dns_name_normalize(const char *name, char out[DNS_NAME_TEXT_MAX + 1])
{
	return dns_name_check(name, out);
}

/* ---- results ---- */

void
dns_mx_free(struct dns_mx **res)
{
	if (*res == NULL)
		return;
	for (size_t i = 0; i < (*res)->nhosts; i++) {
		free((*res)->hosts[i].name);
		free((*res)->hosts[i].addrs);
	}
	free((*res)->hosts);
	free((*res)->error);
	x_free(res);
}

static struct dns_host *
dns_host_add(struct dns_mx *res, const char *name, unsigned pref)
{
	struct dns_host *h;

	res->hosts = xreallocarray(res->hosts, res->nhosts + 1,
	    sizeof(*res->hosts));
	h = &res->hosts[res->nhosts++];
	memset(h, 0, sizeof(*h));
	h->name = xstrdup(name);
	h->pref = pref;
	return h;
}

static size_t
dns_host_count(const struct dns_host *h, int family)
{
	size_t n = 0;

	for (size_t i = 0; i < h->naddrs; i++)
		if (h->addrs[i].ss.ss_family == family)
			n++;
	return n;
}

/*
 * Adds one address (4 or 16 bytes) with port; IPv6 goes before every
 * IPv4 address.  Drops duplicates and addresses past the family's cap.
 */
static void
dns_host_addr(struct dns_host *h, const void *ip, size_t len, uint16_t port)
{
	struct dns_addr a;
	int family = len == 4 ? AF_INET : AF_INET6;
	size_t at;

	memset(&a, 0, sizeof(a));
	if (len == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip, 4);
		a.len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip, 16);
		a.len = sizeof(*sin6);
	}
	if (dns_host_count(h, family) >= DNS_ADDR_FAMILY_MAX)
		return;
	for (size_t i = 0; i < h->naddrs; i++)
		if (h->addrs[i].len == a.len &&
		    memcmp(&h->addrs[i].ss, &a.ss, a.len) == 0)
			return;
	at = family == AF_INET6 ? dns_host_count(h, AF_INET6) : h->naddrs;
	h->addrs = xreallocarray(h->addrs, h->naddrs + 1, sizeof(*h->addrs));
	memmove(&h->addrs[at + 1], &h->addrs[at],
	    (h->naddrs - at) * sizeof(*h->addrs));
	h->addrs[at] = a;
	h->naddrs++;
}

static void
dns_fail(struct dns_query *q, enum dns_status status, const char *error)
{
	q->res->status = status;
	free(q->res->error);
	q->res->error = xstrdup(error);
}

/* ---- lookups ---- */

static void
dns_lookup_unlink(struct dns_lookup *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		l->d->lookups = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
}

/* Starts one lookup of name; on failure counts a temporary failure. */
static void
dns_lookup_start(struct dns_query *q, const char *name, int rrtype,
    size_t host)
{
	struct dns *d = q->d;
	struct dns_lookup *l = xmalloc(sizeof(*l));
	int rc;

	l->d = d;
	l->q = q;
	l->host = host;
	l->rrtype = rrtype;
	rc = d->broken ? UB_PIPE : ub_resolve_async(d->ub, name, rrtype,
	    DNS_CLASS_IN, l, dns_on_ub, &l->id);
	if (rc != 0) {
		char *e = xasprintf("DNS: %s", ub_strerror(rc));

		free(l);
		q->any_tempfail = true;
		if (host != DNS_HOST_NONE)
			q->res->hosts[host].tempfail = true;
		if (q->first_error == NULL)
			q->first_error = xstrdup(e);
		if (host == DNS_HOST_NONE)
			dns_fail(q, DNS_TEMPFAIL, e);
		free(e);
		return;
	}
	l->next = d->lookups;
	if (d->lookups != NULL)
		d->lookups->prev = l;
	d->lookups = l;
	q->pending++;
}

/* Orphans every lookup of q: libunbound will not call back for them. */
static void
dns_lookups_cancel(struct dns_query *q)
{
	struct dns_lookup *l, *next;

	for (l = q->d->lookups; l != NULL; l = next) {
		next = l->next;
		if (l->q != q)
			continue;
		l->q = NULL;
		if (ub_cancel(q->d->ub, l->id) == 0) {
			dns_lookup_unlink(l);
			free(l);
		}
	}
	q->pending = 0;
}

static const char *
dns_type_name(int rrtype)
{
	return rrtype == DNS_TYPE_MX ? "MX" : rrtype == DNS_TYPE_A ? "A" :
	    "AAAA";
}

/*
 * Classifies an answer: 1 data or NODATA, 0 NXDOMAIN, -1 temporary
 * failure with *error_r (allocated).
 */
static int
dns_answer_check(const char *name, int rrtype, int err, struct ub_result *r,
    char **error_r)
{
	if (err != 0 || r == NULL) {
		*error_r = xasprintf("DNS lookup of %s %s failed: %s", name,
		    dns_type_name(rrtype), ub_strerror(err));
		return -1;
	}
	if (r->bogus) {
		*error_r = xasprintf("DNSSEC validation failed for %s %s: %s",
		    name, dns_type_name(rrtype), r->why_bogus != NULL ?
		    r->why_bogus : "bogus answer");
		return -1;
	}
	if (r->nxdomain || r->rcode == DNS_RCODE_NXDOMAIN)
		return 0;
	if (r->rcode != DNS_RCODE_NOERROR) {
		*error_r = xasprintf("DNS lookup of %s %s failed: rcode %d%s",
		    name, dns_type_name(rrtype), r->rcode, r->rcode == 2 ?
		    " (SERVFAIL)" : r->rcode == 5 ? " (REFUSED)" : "");
		return -1;
	}
	return 1;
}

/* ---- answers ---- */

static int
dns_mx_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/*
 * The MX RRset into hosts: by preference, ties in random order (RFC 5321
 * §5.1), duplicates and unusable names dropped, at most DNS_MX_MAX.
 * Keys are pref << 48 | random << 16 | index.  Returns the number of
 * root (".") exchanges seen.
 */
static size_t
dns_mx_hosts(struct dns_query *q, const struct ub_result *r)
{
	size_t n = 0, nroot = 0;
	uint64_t *keys;
	char check[DNS_NAME_MAX + 1];

	while (r->data[n] != NULL && n < 0xFFFF)
		n++;
	keys = xcalloc(n, sizeof(*keys));
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)r->data[i];
		uint64_t pref = r->len[i] >= 3 ? (uint64_t)(p[0] << 8 | p[1]) :
		    0xFFFF;

		keys[i] = pref << 48 | (uint64_t)arc4random_uniform(1u << 31)
		    << 16 | i;
	}
	qsort(keys, n, sizeof(*keys), dns_mx_cmp);
	for (size_t k = 0; k < n && q->res->nhosts < DNS_MX_MAX; k++) {
		size_t i = keys[k] & 0xFFFF;
		const unsigned char *p = (const unsigned char *)r->data[i];
		bool dup = false;

		unsigned pref;
		int rc = dns_mx_rdata_parse(p, (size_t)r->len[i], &pref,
		    check);

		if (rc == 0)
			nroot++;
		if (rc <= 0)
			continue;
		for (size_t h = 0; h < q->res->nhosts; h++)
			dup = dup || strcmp(q->res->hosts[h].name, check) == 0;
		if (!dup)
			dns_host_add(q->res, check, (unsigned)(keys[k] >> 48));
	}
	free(keys);
	return nroot;
}

/* Starts the AAAA (when wanted) and A lookups of every host. */
static void
dns_addrs_start(struct dns_query *q)
{
	for (size_t i = 0; i < q->res->nhosts; i++) {
		char *name = xstrdup(q->res->hosts[i].name);

		if (q->d->ipv6)
			dns_lookup_start(q, name, DNS_TYPE_AAAA, i);
		dns_lookup_start(q, name, DNS_TYPE_A, i);
		free(name);
	}
}

static void
dns_on_mx(struct dns_query *q, int err, struct ub_result *r)
{
	char *error = NULL;
	size_t nroot;

	switch (dns_answer_check(q->name, DNS_TYPE_MX, err, r, &error)) {
	case -1:
		dns_fail(q, DNS_TEMPFAIL, error);
		free(error);
		return;
	case 0:
		q->res->secure = r->secure != 0;
		error = xasprintf("%s: no such domain (NXDOMAIN)", q->name);
		dns_fail(q, DNS_NOT_FOUND, error);
		free(error);
		return;
	}
	q->res->secure = r->secure != 0;
	if (!r->havedata) {
		/* RFC 5321 §5.1: no MX RRset, the domain is its own MX. */
		q->res->implicit = true;
		dns_host_add(q->res, q->name, 0);
	} else {
		nroot = dns_mx_hosts(q, r);
		if (q->res->nhosts == 0 && nroot > 0) {
			dns_fail(q, DNS_NULL_MX, "domain does not accept mail "
			    "(null MX, RFC 7505)");
			return;
		}
		if (q->res->nhosts == 0) {
			error = xasprintf("%s: no usable MX host name",
			    q->name);
			dns_fail(q, DNS_NOT_FOUND, error);
			free(error);
			return;
		}
	}
	dns_addrs_start(q);
}

static void
dns_on_addr(struct dns_query *q, size_t host, int rrtype, int err,
    struct ub_result *r)
{
	struct dns_host *h = &q->res->hosts[host];
	char *error = NULL;
	size_t len = rrtype == DNS_TYPE_A ? 4 : 16;

	if (!q->want_mx || q->res->implicit)
		q->res->secure = q->res->secure && r != NULL && r->secure;
	if (dns_answer_check(h->name, rrtype, err, r, &error) < 0) {
		h->tempfail = true;
		q->any_tempfail = true;
		if (q->first_error == NULL)
			q->first_error = error;
		else
			free(error);
		return;
	}
	for (size_t i = 0; r->havedata && r->data[i] != NULL; i++)
		if (r->len[i] == (int)len)
			dns_host_addr(h, r->data[i], len, q->port);
}

/* libunbound's callback, from ub_process() on the loop thread. */
static void
dns_on_ub(void *arg, int err, struct ub_result *r)
{
	struct dns_lookup *l = arg;
	struct dns_query *q = l->q;

	dns_lookup_unlink(l);
	if (q != NULL) {
		xassert(q->pending > 0);
		q->pending--;
		if (l->host == DNS_HOST_NONE)
			dns_on_mx(q, err, r);
		else
			dns_on_addr(q, l->host, l->rrtype, err, r);
		if (q->pending == 0)
			dns_finish(q);
	}
	free(l);
	ub_resolve_free(r);
}

/* ---- queries ---- */

/* Makes res final and schedules the caller's callback. */
static void
dns_finish(struct dns_query *q)
{
	struct dns_mx *res = q->res;
	size_t kept = 0;

	if (q->finished)
		return;
	q->finished = true;
	evtimer_del(q->timer);
	if (res->status == DNS_OK) {
		for (size_t i = 0; i < res->nhosts; i++) {
			if (res->hosts[i].naddrs > 0) {
				res->hosts[kept++] = res->hosts[i];
				continue;
			}
			free(res->hosts[i].name);
			free(res->hosts[i].addrs);
		}
		res->nhosts = kept;
	}
	if (res->status == DNS_OK && kept == 0) {
		char *e = q->first_error != NULL ? xstrdup(q->first_error) :
		    xasprintf("%s: no %saddress found", q->name,
		    q->want_mx && !res->implicit ? "MX host " : "");

		dns_fail(q, q->any_tempfail ? DNS_TEMPFAIL : DNS_NOT_FOUND, e);
		free(e);
	}
	if (res->status != DNS_OK)
		res->secure = res->secure && res->status != DNS_TEMPFAIL;
	event_active(q->done_ev, 0, 0);
}

static void
dns_query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->d->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
}

static void
dns_query_free(struct dns_query *q)
{
	event_free(q->done_ev);
	event_free(q->timer);
	dns_mx_free(&q->res);
	free(q->name);
	free(q->first_error);
	free(q);
}

static void
dns_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_mx *res = q->res;
	dns_mx_cb *cb = q->cb;
	void *cb_arg = q->arg;

	dns_query_unlink(q);
	q->res = NULL;
	dns_query_free(q);
	cb(cb_arg, res);
}

static void
dns_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	char *e = xasprintf("DNS lookup of %s timed out after %d s", q->name,
	    DNS_QUERY_TIMEOUT);

	dns_lookups_cancel(q);
	q->any_tempfail = true;
	for (size_t i = 0; i < q->res->nhosts; i++)
		if (q->res->hosts[i].naddrs == 0)
			q->res->hosts[i].tempfail = true;
	if (q->res->nhosts == 0 && q->res->status == DNS_OK)
		dns_fail(q, DNS_TEMPFAIL, e);
	if (q->first_error == NULL)
		q->first_error = e;
	else
		free(e);
	dns_finish(q);
}

static struct dns_query *
dns_query_new(struct dns *d, uint16_t port, bool want_mx, dns_mx_cb *cb,
    void *arg)
{
	struct dns_query *q = xmalloc(sizeof(*q));
	struct timeval tv = { DNS_QUERY_TIMEOUT, 0 };

	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->port = port;
	q->want_mx = want_mx;
	q->res = xmalloc(sizeof(*q->res));
	q->res->status = DNS_OK;
	q->done_ev = event_new(d->base, -1, 0, dns_on_done, q);
	q->timer = evtimer_new(d->base, dns_on_timeout, q);
	if (q->done_ev == NULL || q->timer == NULL)
		fatalx("dns: event_new failed");
	if (evtimer_add(q->timer, &tv) < 0)
		fatalx("dns: evtimer_add failed");
	q->next = d->queries;
	if (d->queries != NULL)
		d->queries->prev = q;
	d->queries = q;
	return q;
}

/*
 * A numeric address: "[192.0.2.1]", "[IPv6:2001:db8::1]" (RFC 5321
 * §4.1.3) or, with bare set, "192.0.2.1", "2001:db8::1" and
 * "[2001:db8::1]" (relay host names from HOST:PORT).  Returns
 * false when text is none of these; otherwise answers q (OK or, for a
 * literal we cannot use, NOT_FOUND).
 */
static bool
dns_numeric(struct dns_query *q, const char *text, bool bare)
{
	char inner[INET6_ADDRSTRLEN + 8], shown[INET6_ADDRSTRLEN];
	unsigned char ip[16];
	size_t len = strlen(text);
	int family = AF_INET;
	const char *a = inner;

	if (text[0] == '[') {
		if (len < 3 || text[len - 1] != ']' || len - 2 >= sizeof(inner))
			return false;
		memcpy(inner, text + 1, len - 2);
		inner[len - 2] = '\0';
		if (str_case_prefix(inner, "IPv6:")) {
			family = AF_INET6;
			a = inner + 5;
		} else if (bare && strchr(inner, ':') != NULL) {
			family = AF_INET6;	/* "[::1]" of HOST:PORT */
		}
	} else if (!bare || len >= sizeof(inner)) {
		return false;
	} else {
		str_lcpy(inner, text, sizeof(inner));
		family = strchr(inner, ':') != NULL ? AF_INET6 : AF_INET;
	}
	if (inet_pton(family, a, ip) != 1) {
		if (text[0] != '[')
			return false;
		dns_fail(q, DNS_NOT_FOUND, "unusable address literal");
	} else if (family == AF_INET6 && !q->d->ipv6) {
		dns_fail(q, DNS_NOT_FOUND, "IPv6 address, but outbound IPv6 "
		    "is off");
	} else {
		if (inet_ntop(family, ip, shown, sizeof(shown)) == NULL)
			str_lcpy(shown, a, sizeof(shown));
		dns_host_addr(dns_host_add(q->res, shown, 0), ip,
		    family == AF_INET ? 4 : 16, q->port);
	}
	dns_finish(q);
	return true;
}

/* Validates name into q->name; false (q answered NOT_FOUND) if bad. */
static bool
dns_query_name(struct dns_query *q, const char *name)
{
	char norm[DNS_NAME_MAX + 1];
	const char *why = dns_name_check(name, norm);

	if (why != NULL) {
		char esc[LOG_ESCAPE_BUF];
		char *e = xasprintf("%s: %s", log_escape(name, strlen(name),
		    esc), why);

		dns_fail(q, DNS_NOT_FOUND, e);
		free(e);
		dns_finish(q);
		return false;
	}
	q->name = xstrdup(norm);
	return true;
}

struct dns_query *
dns_resolve_mx(struct dns *d, const char *domain, uint16_t port,
    dns_mx_cb *cb, void *arg)
{
	struct dns_query *q = dns_query_new(d, port, true, cb, arg);

	if (dns_numeric(q, domain, false) || !dns_query_name(q, domain))
		return q;
	dns_lookup_start(q, q->name, DNS_TYPE_MX, DNS_HOST_NONE);
	if (q->pending == 0)
		dns_finish(q);
	return q;
}

struct dns_query *
dns_resolve_host(struct dns *d, const char *host, uint16_t port,
    dns_mx_cb *cb, void *arg)
{
	struct dns_query *q = dns_query_new(d, port, false, cb, arg);

	if (dns_numeric(q, host, true) || !dns_query_name(q, host))
		return q;
	q->res->secure = true;	/* until an address answer is not */
	dns_host_add(q->res, q->name, 0);
	dns_addrs_start(q);
	if (q->pending == 0)
		dns_finish(q);
	return q;
}

void
dns_cancel(struct dns_query **qp)
{
	struct dns_query *q = *qp;

	if (q == NULL)
		return;
	dns_lookups_cancel(q);
	dns_query_unlink(q);
	dns_query_free(q);
	*qp = NULL;
}

/* ---- the resolver ---- */

static void
dns_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	int rc = ub_process(d->ub);

	/* A broken pipe stays readable: stop watching, fail new lookups
	 * at once; those outstanding end by their timeout. */
	if (rc != 0) {
		log_warnx("dns: ub_process: %s; resolving stops",
		    ub_strerror(rc));
		event_del(d->ub_ev);
		d->broken = true;
	}
}

/* [dns] resolver "ADDR:PORT" or "[ADDR]:PORT" as libunbound's ADDR@PORT. */
static int
dns_forwarder(const char *v, char *out, size_t outlen)
{
	unsigned char ip[16];
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;

	if (str_split_hostport(v, addr, sizeof(addr), &port) < 0)
		return -1;
	if (inet_pton(AF_INET, addr, ip) != 1 &&
	    inet_pton(AF_INET6, addr, ip) != 1)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s@%u", addr, port) >= outlen)
		return -1;
	return 0;
}

/* Applies cfg to a new context; NULL or a static error. */
static const char *
dns_configure(struct ub_ctx *ub, const struct config *cfg)
{
	const char *res = cfg->dns_resolver, *ta = cfg->dns_trust_anchor;
	char fwd[INET6_ADDRSTRLEN + 16];

	if (ub_ctx_async(ub, 1) != 0)
		return "dns: cannot enable threaded async mode";
	/* Forwarders on loopback (a local unbound, systemd-resolved). */
	if (ub_ctx_set_option(ub, "do-not-query-localhost:", "no") != 0)
		return "dns: cannot set do-not-query-localhost";
	if (res != NULL && res[0] != '\0') {
		if (dns_forwarder(res, fwd, sizeof(fwd)) < 0 ||
		    ub_ctx_set_fwd(ub, fwd) != 0)
			return "[dns] resolver must be a numeric ADDR:PORT";
	} else {
		if (ub_ctx_resolvconf(ub, NULL) != 0)
			return "dns: cannot read /etc/resolv.conf";
		if (ub_ctx_hosts(ub, NULL) != 0)
			log_warnx("dns: cannot read /etc/hosts, ignored");
	}
	if (ta == NULL || ta[0] == '\0')
		ta = access(DNS_ROOT_KEY, R_OK) == 0 ? DNS_ROOT_KEY : NULL;
	if (ta == NULL) {
		log_warnx("dns: no trust anchor (%s missing): DNSSEC "
		    "validation is off", DNS_ROOT_KEY);
	} else if (access(ta, R_OK) != 0) {
		return "[dns] trust_anchor is not readable";
	} else if (ub_ctx_add_ta_file(ub, ta) != 0) {
		return "[dns] trust_anchor cannot be used";
	}
	/*
	 * libunbound answers test. itself (NXDOMAIN, as a local zone);
	 * RFC 6761 §6.2 leaves such names to the resolver, and test setups
	 * serve them.  Removing the zone also finalizes the context, which
	 * reads the trust anchor now rather than at the first query.
	 */
	if (ub_ctx_zone_remove(ub, "test.") != 0)
		return ta != NULL ? "dns: libunbound setup failed (is [dns] "
		    "trust_anchor a file of DS or DNSKEY records?)" :
		    "dns: libunbound setup failed";
	return NULL;
}

struct dns *
dns_new(struct event_base *base, const struct config *cfg,
    const char **error_r)
{
	struct dns *d;
	struct ub_ctx *ub = ub_ctx_create();
	const char *err;

	if (ub == NULL) {
		*error_r = "dns: ub_ctx_create failed";
		return NULL;
	}
	if ((err = dns_configure(ub, cfg)) != NULL || ub_fd(ub) < 0) {
		*error_r = err != NULL ? err : "dns: no libunbound fd";
		ub_ctx_delete(ub);
		return NULL;
	}
	d = xmalloc(sizeof(*d));
	d->base = base;
	d->ub = ub;
	d->ipv6 = cfg->out_ipv6;
	d->ub_ev = event_new(base, ub_fd(ub), EV_READ | EV_PERSIST,
	    dns_on_readable, d);
	if (d->ub_ev == NULL || event_add(d->ub_ev, NULL) < 0)
		fatalx("dns: cannot watch the libunbound fd");
	return d;
}

void
dns_free(struct dns **dp)
{
	struct dns *d = *dp;
	struct dns_lookup *l;
	struct dns_query *q;

	if (d == NULL)
		return;
	while ((q = d->queries) != NULL)
		dns_cancel(&q);
	event_free(d->ub_ev);
	/* Stops the resolver thread; no callbacks after this. */
	ub_ctx_delete(d->ub);
	while ((l = d->lookups) != NULL) {
		d->lookups = l->next;
		free(l);
	}
	x_free(dp);
}
