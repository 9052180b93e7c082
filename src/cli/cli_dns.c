/*
 * cli_dns.c - `mailfort dns mx DOMAIN | host NAME`: what outbound
 * delivery would resolve, with the configured resolver and trust anchor.
 * Output is stable for scripts and tests:
 *   status=ok secure=yes implicit=no
 *   mx 10 mx1.example.net [2001:db8::25]:25 192.0.2.25:25
 *   mx 20 mx2.example.net 192.0.2.26:25
 * (`host NAME` prints "host NAME ADDR..." lines), or on failure
 *   status=tempfail secure=no implicit=no
 *   error DNS lookup of example.net MX failed: rcode 2 (SERVFAIL)
 * status is ok, null-mx, not-found or tempfail; exit 0 only for ok.
 * Addresses carry [outbound] mx_port.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/net.h"

struct cli_dns_run {
	struct event_base *base;
	bool host;		/* `dns host` rather than `dns mx` */
	int rc;
};

static const char *
cli_dns_status(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NULL_MX:
		return "null-mx";
	case DNS_NOT_FOUND:
		return "not-found";
	case DNS_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}

/* "192.0.2.1:25" or "[2001:db8::1]:25". */
static void
cli_dns_print_addr(const struct dns_addr *a)
{
	char text[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;

		if (inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text)))
			printf(" [%s]:%u", text, ntohs(s6->sin6_port));
	} else if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)&a->ss;

		if (inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text)))
			printf(" %s:%u", text, ntohs(s4->sin_port));
	}
}

static void
cli_dns_on_result(void *arg, struct dns_mx *res)
{
	struct cli_dns_run *run = arg;

	printf("status=%s secure=%s implicit=%s\n",
	    cli_dns_status(res->status), res->secure ? "yes" : "no",
	    res->implicit ? "yes" : "no");
	if (res->status != DNS_OK)
		printf("error %s\n", res->error != NULL ? res->error : "?");
	for (size_t i = 0; i < res->nhosts; i++) {
		const struct dns_host *h = &res->hosts[i];

		if (run->host)
			printf("host %s", h->name);
		else
			printf("mx %u %s", h->pref, h->name);
		for (size_t j = 0; j < h->naddrs; j++)
			cli_dns_print_addr(&h->addrs[j]);
		printf("\n");
	}
	run->rc = res->status == DNS_OK ? 0 : 1;
	dns_mx_free(&res);
	event_base_loopbreak(run->base);
}

int
cli_dns(const struct config *cfg, int argc, char **argv)
{
	struct cli_dns_run run = { .rc = 1 };
	struct dns *d;
	struct dns_query *q;
	const char *err = NULL;

	if (argc != 3 || (strcmp(argv[1], "mx") != 0 &&
	    strcmp(argv[1], "host") != 0)) {
		fprintf(stderr, "usage: mailfort dns mx DOMAIN | host NAME\n");
		return 2;
	}
	run.host = strcmp(argv[1], "host") == 0;
	if ((run.base = event_base_new()) == NULL) {
		fprintf(stderr, "mailfort: event_base_new failed\n");
		return 1;
	}
	if ((d = dns_new(run.base, cfg, &err)) == NULL) {
		fprintf(stderr, "mailfort: %s\n", err);
		event_base_free(run.base);
		return 1;
	}
	if (run.host)
		q = dns_resolve_host(d, argv[2], (uint16_t)cfg->mx_port,
		    cli_dns_on_result, &run);
	else
		q = dns_resolve_mx(d, argv[2], (uint16_t)cfg->mx_port,
		    cli_dns_on_result, &run);
	(void)q;	/* answered through cli_dns_on_result() */
	if (event_base_dispatch(run.base) < 0)
		fprintf(stderr, "mailfort: event loop failed\n");
	fflush(stdout);
	dns_free(&d);
	event_base_free(run.base);
	return run.rc;
}
