/* smtp_client.c - placeholder, being written. */
#include "core/core.h"
