/*
 * test_core.c - unit tests for buf, str, cidr and config.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "test.h"

static void
test_buf(void)
{
	struct buf b;

	buf_init(&b, 16);
	buf_adds(&b, "hello");
	buf_printf(&b, " %d", 42);
	TEST_STR(b.data, "hello 42");
	TEST_INT(buf_room(&b), 8);
	buf_consume(&b, 6);
	TEST_STR(b.data, "42");
	buf_free(&b);
}

static void
test_str(void)
{
	uint64_t v;
	char s[] = "  Hello World \r\n";

	TEST_INT(str_to_u64("123", 0, 200, &v), 0);
	TEST_INT(v, 123);
	TEST_INT(str_to_u64("123", 0, 100, &v), -1);
	TEST_INT(str_to_u64("12x", 0, 1000, &v), -1);
	TEST_INT(str_to_u64("-1", 0, 1000, &v), -1);
	TEST_INT(str_to_u64("", 0, 1000, &v), -1);
	{
		static const struct {
			const char *in, *host;
			int port;
		} hp[] = {
			{ "mx.example:25", "mx.example", 25 },
			{ "[::1]:587", "::1", 587 },
			{ "127.0.0.1:65535", "127.0.0.1", 65535 },
			{ "::1:25", NULL, 0 },		/* needs brackets */
			{ "host", NULL, 0 },
			{ ":25", NULL, 0 },
			{ "host:0", NULL, 0 },
			{ "host:65536", NULL, 0 },
			{ "host:", NULL, 0 },
			{ "[]:25", NULL, 0 },
			{ "[::1:25", NULL, 0 },
			{ "a]b:25", NULL, 0 },
		};
		char host[64];
		uint16_t port;

		for (size_t i = 0; i < MF_ARRAY_LEN(hp); i++) {
			int rc = str_split_hostport(hp[i].in, host,
			    sizeof(host), &port);
			TEST_CHECK(rc == (hp[i].host ? 0 : -1), "%s: rc %d",
			    hp[i].in, rc);
			if (rc == 0 && hp[i].host != NULL) {
				TEST_STR(host, hp[i].host);
				TEST_INT(port, hp[i].port);
			}
		}
		TEST_INT(str_split_hostport("longer.example:25", host, 8,
		    &port), -1);
	}
	TEST_STR(str_lower(str_trim(s)), "hello world");
	char out[LOG_ESCAPE_BUF];
	TEST_STR(log_escape("a\r\nb", 4, out), "a\\x0d\\x0ab");
	char longs[300];
	memset(longs, 'x', sizeof(longs));
	TEST_INT(strlen(log_escape(longs, sizeof(longs), out)), 103);
}

static void
test_cidr(void)
{
	struct cidr_list l;
	const char *err;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	TEST_INT(cidr_list_parse("10.0.0.0/8, ::1 192.0.2.7", &l, &err), 0);
	TEST_INT(l.count, 3);
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	TEST_TRUE(cidr_list_match(&l, &sin));
	inet_pton(AF_INET, "11.1.2.3", &sin.sin_addr);
	TEST_TRUE(!cidr_list_match(&l, &sin));
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	TEST_TRUE(!cidr_list_match(&l, &sin));
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	TEST_TRUE(cidr_list_match(&l, &sin6));
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
	TEST_TRUE(cidr_list_match(&l, &sin6));
	cidr_list_free(&l);
	TEST_INT(cidr_list_parse("10.0.0.0/33", &l, &err), -1);
	TEST_INT(cidr_list_parse("bogus", &l, &err), -1);
	TEST_INT(cidr_list_parse("", &l, &err), 0);
	TEST_INT(l.count, 0);
}

static int report_count;
static char report_last[256];

static void
report(const char *file, int line, const char *key, const char *msg,
    void *ctx)
{
	report_count++;
	snprintf(report_last, sizeof(report_last), "%d %s %s", line, key, msg);
}

static void
test_config(void)
{
	char path[] = "/tmp/mf-test-config-XXXXXX";
	int fd = mkstemp(path);
	struct config cfg;
	FILE *f;

	TEST_TRUE(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "[server]\nhostname = mx.example.test\n"
	    "domains = Example.TEST, example.org\n"
	    "[listen]\nsmtp = 127.0.0.1:2525\nsubmissions = off\n"
	    "submission = off\nimap = off\nimaps = off\n"
	    "proxy_protocol = smtp\n"
	    "[smtp]\ntrusted_networks = 192.0.2.0/24\n");
	fclose(f);
	report_count = 0;
	TEST_INT(config_load(path, &cfg, report, NULL), 0);
	TEST_INT(report_count, 0);
	TEST_STR(cfg.hostname, "mx.example.test");
	TEST_INT(cfg.domain_count, 2);
	TEST_TRUE(config_is_local_domain(&cfg, "EXAMPLE.test"));
	TEST_TRUE(!config_is_local_domain(&cfg, "example.net"));
	TEST_INT(cfg.listen[LISTENER_SMTP].count, 1);
	TEST_STR(cfg.listen[LISTENER_SMTP].addrs[0].port, "2525");
	TEST_TRUE(cfg.listen[LISTENER_SMTP].proxy_protocol);
	TEST_TRUE(!cfg.listen[LISTENER_SUBMISSION].proxy_protocol);
	TEST_INT(cfg.max_message_size, 26214400);
	TEST_INT(cfg.trusted.count, 1);
	config_free(&cfg);

	setenv("MAILFORT_SMTP_MAX_MESSAGE_SIZE", "2048", 1);
	TEST_INT(config_load(path, &cfg, report, NULL), 0);
	TEST_INT(cfg.max_message_size, 2048);
	config_free(&cfg);
	setenv("MAILFORT_SMTP_MAX_MESSAGE_SIZE", "12", 1);
	TEST_INT(config_load(path, &cfg, report, NULL), -1);
	TEST_TRUE(strstr(report_last, "smtp.max_message_size") != NULL);
	unsetenv("MAILFORT_SMTP_MAX_MESSAGE_SIZE");

	f = fopen(path, "w");
	fprintf(f, "[server]\ndomains = example.test\nbogus = 1\n"
	    "[listen]\nsmtp = 127.0.0.1:99999\n");
	fclose(f);
	report_count = 0;
	TEST_INT(config_load(path, &cfg, report, NULL), -1);
	/* bogus key, bad port, and the TLS listeners without a cert */
	TEST_TRUE(report_count >= 3);
	unlink(path);
}

static void
id_test_del_self(void *item, void *ctx)
{
	struct id_table *t = ctx;
	int *v = item;

	if (*v % 2 == 0)
		id_table_del(t, (uint64_t)*v);
}

static void
test_id_table(void)
{
	struct id_table *t = id_table_new();
	int vals[3000];

	for (int i = 0; i < 3000; i++) {
		vals[i] = i;
		id_table_add(t, (uint64_t)i, &vals[i]);
	}
	TEST_INT(id_table_count(t), 3000);
	TEST_TRUE(id_table_get(t, 2047) == &vals[2047]);
	TEST_TRUE(id_table_get(t, 5000) == NULL);
	id_table_del(t, 2047);
	id_table_del(t, 2047);		/* twice: no effect */
	TEST_TRUE(id_table_get(t, 2047) == NULL);
	TEST_INT(id_table_count(t), 2999);
	/* removing the visited item while iterating is allowed */
	id_table_foreach(t, id_test_del_self, t);
	TEST_INT(id_table_count(t), 1499);
	TEST_TRUE(id_table_get(t, 1001) == &vals[1001]);
	TEST_TRUE(id_table_get(t, 1000) == NULL);
	void *p;
	while ((p = id_table_any(t)) != NULL)
		id_table_del(t, (uint64_t)*(int *)p);
	TEST_INT(id_table_count(t), 0);
	id_table_free(&t);
	TEST_TRUE(t == NULL);
}

int
main(void)
{
	test_id_table();
	test_buf();
	test_str();
	test_cidr();
	test_config();
	return test_done("core");
}
