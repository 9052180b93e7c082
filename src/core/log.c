/*
 * log.c - one line per event to stderr or syslog.  Untrusted text must go
 * through log_escape() first; nothing here escapes on the caller's behalf.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

static char log_proc[32] = "mailfort";
static bool log_use_syslog;
static enum log_level log_max = LOG_LVL_INFO;

void
log_init(const char *proc, bool use_syslog, enum log_level level)
{
	log_set_proc(proc);
	log_use_syslog = use_syslog;
	log_max = level;
	if (use_syslog)
		openlog("mailfort", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_proc(const char *proc)
{
	str_lcpy(log_proc, proc, sizeof(log_proc));
}

static void
log_vwrite(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048];
	int n;

	if (lvl > log_max)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		str_lcpy(msg, "(log format error)", sizeof(msg));
	if (err != 0) {
		size_t len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(err));
	}
	if (log_use_syslog) {
		syslog(prio[lvl], "%s %s", log_proc, msg);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%d] %s\n", when, ts.tv_nsec / 1000000,
	    log_proc, (int)getpid(), msg);
}

#define LOG_FN(name, lvl, with_errno)					\
void									\
name(const char *fmt, ...)						\
{									\
	int saved = errno;						\
	va_list ap;							\
	va_start(ap, fmt);						\
	log_vwrite(lvl, with_errno ? saved : 0, fmt, ap);		\
	va_end(ap);							\
	errno = saved;							\
}
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

void
panic_at(const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s[%d] panic at %s:%d: %s\n", log_proc,
	    (int)getpid(), file, line, msg);
	if (log_use_syslog)
		syslog(LOG_CRIT, "%s panic at %s:%d: %s", log_proc, file,
		    line, msg);
	abort();
}

const char *
log_escape(const char *s, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < len && i < LOG_ESCAPE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (i < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
