/* cli_dns.c - placeholder, being written. */
#include "cli/cli.h"

int
cli_dns(const struct config *cfg, int argc, char **argv)
{
	(void)cfg; (void)argc; (void)argv;
	return 2;
}
