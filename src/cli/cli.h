/*
 * cli.h - subcommands that live in src/cli.
 */
#ifndef MAILFORT_CLI_H
#define MAILFORT_CLI_H

#include "core/config.h"

/* `mailfort queue list|flush|delete ID`; returns the exit status. */
int cli_queue(const struct config *cfg, int argc, char **argv);
/* `mailfort dns mx DOMAIN | host NAME`: what outbound delivery would use. */
int cli_dns(const struct config *cfg, int argc, char **argv);

#endif
