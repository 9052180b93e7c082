/* smtp_client_parse.c - placeholder, being written. */
#include "core/core.h"
