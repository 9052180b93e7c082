/*
 * main.c - the one binary and its subcommands:
 *   mailfort serve [-c FILE]           run the server in the foreground
 *   mailfort check-config [-c FILE]    report every configuration mistake
 *   mailfort user add|del|passwd|list  accounts (postfix-accounts.cf)
 *   mailfort alias add|del|list        aliases (postfix-virtual.cf)
 *   mailfort quota set|del             quotas (dovecot-quotas.cf)
 *   mailfort queue list|show|flush|delete|bounce   the mail queue
 *   mailfort dns mx|host               outbound DNS resolution
 *   mailfort dkim keygen|show|sign     DKIM keys and DNS records
 *   mailfort config-keys               the configuration reference
 *   mailfort version
 * -c FILE may appear anywhere; default $MAILFORT_CONFIG, then
 * /etc/mailfort/mailfort.ini.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "core/config.h"
#include "dkim/dkim.h"
#include "queue/queue.h"
#include "server/server.h"
#include "store/store.h"

#define CLI_DEFAULT_CONFIG "/etc/mailfort/mailfort.ini"
#define CLI_VERSION "0.1.0"

static void
cli_usage(void)
{
	fprintf(stderr,
	    "usage: mailfort [-c FILE] COMMAND [ARGS]\n"
	    "  serve                       run the server (foreground)\n"
	    "  check-config                check the configuration\n"
	    "  user add ADDRESS [PASSWORD] | del ADDRESS |\n"
	    "       passwd ADDRESS [PASSWORD] | list\n"
	    "  alias add ALIAS TARGET | del ALIAS [TARGET] | list\n"
	    "  quota set ADDRESS SIZE | del ADDRESS\n"
	    "  queue list | show ID | flush | delete ID | bounce ID\n"
	    "  dkim keygen DOMAIN [--selector S] [--force] |\n"
	    "       show DOMAIN [--selector S] | sign DOMAIN FILE\n"
	    "  dns mx DOMAIN | host NAME   resolve as outbound delivery does\n"
	    "  config-keys                 print every configuration key\n"
	    "  version\n");
}

static void
cli_report(const char *file, int line, const char *key, const char *msg,
    void *ctx)
{
	int *count = ctx;

	(*count)++;
	if (line > 0)
		fprintf(stderr, "%s:%d: %s: %s\n", file, line, key, msg);
	else
		fprintf(stderr, "%s: %s: %s\n", file, key, msg);
}

static int
cli_load(const char *path, struct config *cfg)
{
	int count = 0;

	if (config_load(path, cfg, cli_report, &count) < 0) {
		fprintf(stderr, "%s: %d error%s\n", path, count,
		    count == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = getenv("MAILFORT_CONFIG");
	char *args[64];
	int n = 0, rc;
	struct config cfg;

	store_library_init();
	log_init("mailfort", false, LOG_LVL_INFO);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (n < (int)MF_ARRAY_LEN(args) - 1) {
			args[n++] = argv[i];
		}
	}
	args[n] = NULL;
	if (path == NULL)
		path = CLI_DEFAULT_CONFIG;
	if (n == 0) {
		cli_usage();
		return 2;
	}
	if (strcmp(args[0], "version") == 0) {
		printf("mailfort %s\n", CLI_VERSION);
		return 0;
	}
	if (strcmp(args[0], "config-keys") == 0) {
		config_print_reference();
		return 0;
	}
	if (strcmp(args[0], "serve") == 0)
		return server_main(path);
	if (cli_load(path, &cfg) < 0)
		return 1;
	if (strcmp(args[0], "check-config") == 0) {
		if (queue_check_relays(&cfg) < 0) {
			fprintf(stderr, "%s: the relay settings have errors "
			    "(above)\n", path);
			rc = 1;
		} else {
			printf("%s: configuration OK\n", path);
			rc = 0;
		}
	} else if (strcmp(args[0], "user") == 0) {
		rc = auth_cli_user(&cfg, n, args);
	} else if (strcmp(args[0], "alias") == 0) {
		rc = auth_cli_alias(&cfg, n, args);
	} else if (strcmp(args[0], "quota") == 0) {
		rc = auth_cli_quota(&cfg, n, args);
	} else if (strcmp(args[0], "queue") == 0) {
		rc = cli_queue(&cfg, n, args);
	} else if (strcmp(args[0], "dkim") == 0) {
		rc = dkim_cli(&cfg, n, args);
	} else if (strcmp(args[0], "dns") == 0) {
		rc = cli_dns(&cfg, n, args);
	} else {
		cli_usage();
		rc = 2;
	}
	config_free(&cfg);
	return rc;
}
