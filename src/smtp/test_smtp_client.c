/*
 * test_smtp_client.c - the outbound SMTP client.  First the pure reply
 * parsers, table-driven; then whole conversations of the real client on
 * a libevent loop against a scripted fake server on a loopback socket
 * (a thread with blocking I/O; TLS through OpenSSL with a throwaway
 * certificate made here): pipelining order, per-recipient replies, SIZE
 * and SMTPUTF8 refusals, dot-stuffing across chunks, connection reuse,
 * lost connections, HELO fallback, STARTTLS, verification, AUTH, BDAT.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/test.h"
#include "net/net.h"
#include "smtp/smtp.h"

#define TEST_GUARD_SECS 20	/* a hung conversation fails, not hangs */

/* ---- parsers ---- */

struct line_case {
	const char *in;
	int ret;
	int code;
	bool last;
	const char *text;
};

static const struct line_case line_cases[] = {
	{ "250 ok", 0, 250, true, "ok" },
	{ "250-PIPELINING", 0, 250, false, "PIPELINING" },
	{ "250", 0, 250, true, "" },
	{ "250-", 0, 250, false, "" },
	{ "354 go ahead", 0, 354, true, "go ahead" },
	{ "559 x", 0, 559, true, "x" },
	{ "569 x", -1, 0, false, NULL },
	{ "199 x", -1, 0, false, NULL },
	{ "600 x", -1, 0, false, NULL },
	{ "260 x", -1, 0, false, NULL },
	{ "2x0 ok", -1, 0, false, NULL },
	{ "25", -1, 0, false, NULL },
	{ "", -1, 0, false, NULL },
	{ "250x", -1, 0, false, NULL },
	{ "250\tok", -1, 0, false, NULL },
	{ "250 a\rb", -1, 0, false, NULL },
	{ " 250 ok", -1, 0, false, NULL },
};

struct status_case {
	int code;
	const char *text;
	bool ok;
	const char *status;
};

static const struct status_case status_cases[] = {
	{ 550, "5.1.1 <a@b>: user unknown", true, "5.1.1" },
	{ 250, "2.0.0", true, "2.0.0" },
	{ 451, "4.7.1 later", true, "4.7.1" },
	{ 550, "5.100.999 x", true, "5.100.999" },
	{ 550, "4.1.1 wrong class", false, NULL },
	{ 250, "2.0.0x", false, NULL },
	{ 550, "5.1234.1 x", false, NULL },
	{ 550, "5.1.1234 x", false, NULL },
	{ 550, "5..1 x", false, NULL },
	{ 550, "5.1. x", false, NULL },
	{ 550, "5.1", false, NULL },
	{ 550, "5.", false, NULL },
	{ 550, "5", false, NULL },
	{ 550, "", false, NULL },
	{ 550, "user unknown", false, NULL },
	{ 354, "3.0.0 go", false, NULL },
	{ 250, "2.1.5\tok", false, NULL },
};

static void
test_parse(void)
{
	const char *text;
	char st[16];
	bool last;
	int code;

	for (size_t i = 0; i < MF_ARRAY_LEN(line_cases); i++) {
		const struct line_case *c = &line_cases[i];
		int ret = smtpc_parse_line(c->in, strlen(c->in), &code, &last,
		    &text);
		TEST_CHECK(ret == c->ret, "line \"%s\": %d", c->in, ret);
		if (ret != 0 || c->ret != 0)
			continue;
		TEST_INT(code, c->code);
		TEST_INT(last, c->last);
		TEST_STR(text, c->text);
	}
	/* a NUL inside the line is refused */
	TEST_INT(smtpc_parse_line("250 a\0b", 7, &code, &last, &text), -1);
	for (size_t i = 0; i < MF_ARRAY_LEN(status_cases); i++) {
		const struct status_case *c = &status_cases[i];
		bool ok = smtpc_parse_status(c->code, c->text, st);
		TEST_CHECK(ok == c->ok, "status %d \"%s\": %d", c->code,
		    c->text, ok);
		if (ok && c->ok)
			TEST_STR(st, c->status);
	}
}

/* ---- a throwaway certificate for "mx.test" ---- */

static EVP_PKEY *test_key;
static X509 *test_cert;
static char test_ca_file[64];

static void
test_make_cert(void)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_NAME *name;
	FILE *fp;
	int fd;

	test_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	xassert(test_key != NULL);
	test_cert = X509_new();
	X509_set_version(test_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(test_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(test_cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(test_cert), 86400);
	X509_set_pubkey(test_cert, test_key);
	name = X509_get_subject_name(test_cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(test_cert, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, test_cert, test_cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:mx.test");
	xassert(ext != NULL);
	X509_add_ext(test_cert, ext, -1);
	X509_EXTENSION_free(ext);
	xassert(X509_sign(test_cert, test_key, EVP_sha256()) > 0);
	str_lcpy(test_ca_file, "/tmp/test_smtpc_ca.XXXXXX",
	    sizeof(test_ca_file));
	fd = mkstemp(test_ca_file);
	xassert(fd >= 0 && (fp = fdopen(fd, "w")) != NULL);
	xassert(PEM_write_X509(fp, test_cert) == 1);
	fclose(fp);
}

/* ---- the fake server: one connection, blocking, in a thread ---- */

enum fake_tls { FAKE_TLS_NONE, FAKE_TLS_OK, FAKE_TLS_DROP, FAKE_TLS_REFUSE };

struct fake_cfg {
	const char *greeting;	/* whole reply; NULL: 220 */
	const char *ehlo;	/* keyword lines joined by "\n"; NULL: 502 */
	bool strict;		/* hold MAIL/RCPT/RSET replies until DATA */
	const char *mail_first;	/* reply to the first MAIL; NULL: 250 */
	const char *final;	/* reply after the data; NULL: 250 */
	size_t drop_after;	/* close after this many data bytes */
	bool always_354;	/* DATA gets 354 even without recipients */
	unsigned chaos;		/* seed: every line gets a random reply */
	enum fake_tls starttls;
	bool implicit;
	const char *user, *pass;	/* AUTH credentials accepted */
};

struct fake {
	struct fake_cfg cfg;
	int lfd, fd;
	SSL_CTX *ctx;
	SSL *ssl;
	struct sockaddr_in addr;
	pthread_t thread;
	struct buf in, out;
	struct buf transcript;	/* command lines, "\n" after each */
	struct buf data;	/* message data as received (stuffed) */
	int mails, mails_seen, naccepted, txns;
};

static bool
fake_fill(struct fake *f)
{
	char tmp[16384];
	ssize_t n;

	if (f->ssl != NULL)
		n = SSL_read(f->ssl, tmp, sizeof(tmp));
	else
		n = read(f->fd, tmp, sizeof(tmp));
	if (n <= 0)
		return false;
	buf_add(&f->in, tmp, (size_t)n);
	return true;
}

/* One line with its CRLF into line (NUL-terminated); false on EOF. */
static bool
fake_getline(struct fake *f, char *line, size_t max)
{
	char *lf;
	size_t n;

	while (f->in.len == 0 ||
	    (lf = memchr(f->in.data, '\n', f->in.len)) == NULL)
		if (!fake_fill(f))
			return false;
	n = (size_t)(lf - f->in.data) + 1;
	xassert(n < max);
	memcpy(line, f->in.data, n);
	line[n] = '\0';
	buf_consume(&f->in, n);
	return true;
}

static bool
fake_getbytes(struct fake *f, size_t n)
{
	while (f->in.len < n)
		if (!fake_fill(f))
			return false;
	buf_add(&f->data, f->in.data, n);
	buf_consume(&f->in, n);
	return true;
}

static void
fake_flush(struct fake *f)
{
	size_t off = 0;
	ssize_t n;

	while (off < f->out.len) {
		if (f->ssl != NULL)
			n = SSL_write(f->ssl, f->out.data + off,
			    (int)(f->out.len - off));
		else
			n = write(f->fd, f->out.data + off, f->out.len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	buf_reset(&f->out);
}

static bool
fake_tls(struct fake *f)
{
	f->ssl = SSL_new(f->ctx);
	SSL_set_fd(f->ssl, f->fd);
	return SSL_accept(f->ssl) == 1;
}

static void
fake_ehlo(struct fake *f)
{
	const char *p = f->cfg.ehlo, *nl;

	if (p == NULL) {
		buf_adds(&f->out, "502 5.5.2 command not recognized\r\n");
		return;
	}
	buf_adds(&f->out, *p ? "250-fake.test\r\n" : "250 fake.test\r\n");
	while (*p) {
		nl = strchr(p, '\n');
		buf_printf(&f->out, "250%c%.*s\r\n", nl ? '-' : ' ',
		    nl ? (int)(nl - p) : (int)strlen(p), p);
		p = nl ? nl + 1 : p + strlen(p);
	}
}

static bool
fake_auth_ok(struct fake *f, const char *user, const char *pass)
{
	return f->cfg.user != NULL && strcmp(user, f->cfg.user) == 0 &&
	    strcmp(pass, f->cfg.pass) == 0;
}

/* base64 text up to CR into out (NUL-terminated raw bytes). */
static ssize_t
fake_b64(const char *s, unsigned char *out)
{
	return base64_decode(s, strcspn(s, "\r\n"), out);
}

static void
fake_auth(struct fake *f, const char *line)
{
	unsigned char raw[512], u[256], p[256];
	char l2[512];
	ssize_t n;

	if (strncmp(line, "AUTH PLAIN ", 11) == 0) {
		n = fake_b64(line + 11, raw);
		bool ok = n > 2 && raw[0] == '\0' && fake_auth_ok(f,
		    (char *)raw + 1, (char *)raw + 2 + strlen((char *)raw + 1));
		buf_adds(&f->out, ok ? "235 2.7.0 ok\r\n" :
		    "535 5.7.8 bad credentials\r\n");
		return;
	}
	buf_adds(&f->out, "334 VXNlcm5hbWU6\r\n");
	fake_flush(f);
	if (!fake_getline(f, l2, sizeof(l2)) || fake_b64(l2, u) < 0)
		return;
	buf_adds(&f->out, "334 UGFzc3dvcmQ6\r\n");
	fake_flush(f);
	if (!fake_getline(f, l2, sizeof(l2)) || fake_b64(l2, p) < 0)
		return;
	buf_adds(&f->out, fake_auth_ok(f, (char *)u, (char *)p) ?
	    "235 2.7.0 ok\r\n" : "535 5.7.8 bad credentials\r\n");
}

static void
fake_rcpt(struct fake *f, const char *line)
{
	const char *a = line + 9;

	if (f->mails == 0)
		buf_adds(&f->out, "503 5.5.1 need MAIL\r\n");
	else if (strncmp(a, "temp", 4) == 0)
		buf_adds(&f->out, "450 4.2.0 mailbox busy\r\n");
	else if (strncmp(a, "bad", 3) == 0)
		buf_printf(&f->out, "550-5.1.1 <%.*s>: user unknown\r\n"
		    "550 5.1.1 second line\r\n", (int)strcspn(a, ">"), a);
	else {
		buf_adds(&f->out, "250 2.1.5 ok\r\n");
		f->naccepted++;
	}
}

/* DATA: false when the connection is to end. */
static bool
fake_data(struct fake *f)
{
	char line[SMTPC_LINE_MAX * 40];

	if (f->naccepted == 0 && !f->cfg.always_354) {
		buf_adds(&f->out, "554 5.5.1 no valid recipients\r\n");
		return true;
	}
	buf_adds(&f->out, "354 go ahead\r\n");
	fake_flush(f);
	for (;;) {
		if (!fake_getline(f, line, sizeof(line)))
			return false;
		if (strcmp(line, ".\r\n") == 0)
			break;
		buf_adds(&f->data, line);
		if (f->cfg.drop_after && f->data.len >= f->cfg.drop_after)
			return false;
	}
	f->txns++;
	buf_printf(&f->out, "%s\r\n", f->cfg.final ? f->cfg.final :
	    "250 2.0.0 queued");
	return true;
}

static bool
fake_bdat(struct fake *f, const char *line)
{
	unsigned long n = strtoul(line + 5, NULL, 10);

	if (!fake_getbytes(f, n))
		return false;
	if (strstr(line, " LAST") != NULL) {
		f->txns++;
		buf_adds(&f->out, "250 2.0.0 queued\r\n");
	} else {
		buf_printf(&f->out, "250 2.0.0 %lu octets\r\n", n);
	}
	return true;
}

/* One command; false when the connection is to end. */
static bool
fake_command(struct fake *f, const char *line)
{
	bool hold = false;

	if (strncmp(line, "EHLO ", 5) == 0) {
		fake_ehlo(f);
	} else if (strncmp(line, "HELO ", 5) == 0) {
		buf_adds(&f->out, "250 fake.test\r\n");
	} else if (strcmp(line, "STARTTLS\r\n") == 0 &&
	    f->cfg.starttls == FAKE_TLS_REFUSE) {
		buf_adds(&f->out, "454 4.7.0 TLS not available\r\n");
	} else if (strcmp(line, "STARTTLS\r\n") == 0) {
		buf_adds(&f->out, "220 2.0.0 ready to start TLS\r\n");
		fake_flush(f);
		return f->cfg.starttls == FAKE_TLS_OK && fake_tls(f);
	} else if (strncmp(line, "AUTH ", 5) == 0) {
		fake_auth(f, line);
	} else if (strncmp(line, "MAIL FROM:", 10) == 0) {
		hold = true;
		f->naccepted = 0;
		if (f->mails_seen++ == 0 && f->cfg.mail_first != NULL) {
			buf_printf(&f->out, "%s\r\n", f->cfg.mail_first);
		} else {
			f->mails = 1;
			buf_adds(&f->out, "250 2.1.0 ok\r\n");
		}
	} else if (strncmp(line, "RCPT TO:<", 9) == 0) {
		hold = true;
		fake_rcpt(f, line);
	} else if (strcmp(line, "DATA\r\n") == 0) {
		if (!fake_data(f))
			return false;
	} else if (strncmp(line, "BDAT ", 5) == 0) {
		if (!fake_bdat(f, line))
			return false;
	} else if (strcmp(line, "RSET\r\n") == 0) {
		f->mails = f->naccepted = 0;
		buf_adds(&f->out, "250 2.0.0 ok\r\n");
	} else if (strcmp(line, "QUIT\r\n") == 0) {
		buf_adds(&f->out, "221 2.0.0 bye\r\n");
		fake_flush(f);
		return false;
	} else {
		buf_adds(&f->out, "500 5.5.2 unknown command\r\n");
	}
	if (!hold || !f->cfg.strict)
		fake_flush(f);
	return true;
}

/* Complete replies only (a partial one would just wait for the
 * timeout), sane and not. */
static const char *const fake_chaos_replies[] = {
	"220 ok", "250 ok", "250-a\r\n250 b",
	"250-PIPELINING\r\n250-SIZE 10\r\n250-8BITMIME\r\n250 SMTPUTF8",
	"250-PIPELINING\r\n250 SIZE", "354 go", "334 x", "421 4.3.2 bye",
	"450 4.1.1 no", "550 5.1.1 no", "552 5.3.4 big", "500 what",
	"garbage", "2", "250-a\r\n550 b", "", "221 bye", "250 2.0.0 ok",
	"999 x", "235 ok", "250 2.0.0 ok", "250 ok", "354 go",
};

static unsigned
fake_rand(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) & 0x7fff;
}

static void
fake_chaos(struct fake *f)
{
	unsigned seed = f->cfg.chaos;
	char line[SMTPC_LINE_MAX * 2];
	size_t n = MF_ARRAY_LEN(fake_chaos_replies);

	buf_printf(&f->out, "%s\r\n", fake_rand(&seed) % 8 == 0 ?
	    fake_chaos_replies[fake_rand(&seed) % n] : "220 chaos");
	fake_flush(f);
	while (fake_getline(f, line, sizeof(line))) {
		buf_printf(&f->out, "%s\r\n",
		    fake_chaos_replies[fake_rand(&seed) % n]);
		fake_flush(f);
	}
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	char line[SMTPC_LINE_MAX * 2];

	if ((f->fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	if (f->cfg.implicit && !fake_tls(f))
		goto out;
	if (f->cfg.chaos != 0) {
		fake_chaos(f);
		goto out;
	}
	buf_adds(&f->out, f->cfg.greeting ? f->cfg.greeting :
	    "220 fake.test ESMTP\r\n");
	fake_flush(f);
	while (fake_getline(f, line, sizeof(line))) {
		buf_adds(&f->transcript, line);
		f->transcript.len -= 2;		/* CRLF -> LF */
		buf_addc(&f->transcript, '\n');
		if (!fake_command(f, line))
			break;
	}
out:
	if (f->ssl != NULL) {
		SSL_free(f->ssl);
		f->ssl = NULL;
	}
	close(f->fd);
	return NULL;
}

static void
fake_start(struct fake *f, const struct fake_cfg *cfg)
{
	socklen_t len = sizeof(f->addr);

	memset(f, 0, sizeof(*f));
	f->cfg = *cfg;
	buf_init(&f->in, 0);
	buf_init(&f->out, 0);
	buf_init(&f->transcript, 0);
	buf_init(&f->data, 0);
	f->ctx = SSL_CTX_new(TLS_server_method());
	xassert(SSL_CTX_use_certificate(f->ctx, test_cert) == 1);
	xassert(SSL_CTX_use_PrivateKey(f->ctx, test_key) == 1);
	f->addr.sin_family = AF_INET;
	f->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	xassert(f->lfd >= 0);
	xassert(bind(f->lfd, (struct sockaddr *)&f->addr, len) == 0);
	xassert(listen(f->lfd, 4) == 0);
	xassert(getsockname(f->lfd, (struct sockaddr *)&f->addr, &len) == 0);
	xassert(pthread_create(&f->thread, NULL, fake_main, f) == 0);
}

static void
fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);	/* wakes an accept() still waiting */
	pthread_join(f->thread, NULL);
	close(f->lfd);
	SSL_CTX_free(f->ctx);
	buf_free(&f->in);
	buf_free(&f->out);
	buf_adds(&f->transcript, "");	/* data never NULL */
	buf_adds(&f->data, "");
}

static void
fake_free(struct fake *f)
{
	buf_free(&f->transcript);
	buf_free(&f->data);
}

/* ---- the client side ---- */

struct tc {
	struct event_base *base;
	struct smtpc *c;
	struct smtpc_txn *txns;
	size_t ntxns, next;
	int ready, done;
	bool closed, tls_failed, verified, close_after_done;
	struct smtpc_reply why;
	char tls_version[32];
	uint64_t peer_size;
};

static void
tc_next(struct tc *tc)
{
	const char *v = smtpc_tls_version(tc->c);

	str_lcpy(tc->tls_version, v ? v : "", sizeof(tc->tls_version));
	tc->verified = smtpc_tls_verified(tc->c);
	tc->peer_size = smtpc_peer_size(tc->c);
	if (tc->next < tc->ntxns)
		smtpc_send(tc->c, &tc->txns[tc->next++]);
	else
		smtpc_quit(tc->c);
}

static void
tc_on_ready(void *arg)
{
	struct tc *tc = arg;

	tc->ready++;
	tc_next(tc);
}

static void
tc_on_txn_done(void *arg, struct smtpc_txn *t)
{
	struct tc *tc = arg;

	tc->done++;
	if (!tc->closed)
		tc_next(tc);
}

static void
tc_on_close(void *arg, const struct smtpc_reply *why, bool tls_failed)
{
	struct tc *tc = arg;

	tc->closed = true;
	tc->tls_failed = tls_failed;
	tc->why.code = why->code;
	str_lcpy(tc->why.status, why->status, sizeof(tc->why.status));
	tc->why.text = xstrdup(why->text ? why->text : "");
	smtpc_free(&tc->c);
	event_base_loopbreak(tc->base);
}

static const struct smtpc_ops tc_ops = {
	.on_ready = tc_on_ready,
	.on_txn_done = tc_on_txn_done,
	.on_close = tc_on_close,
};

static void
tc_guard(evutil_socket_t fd, short what, void *arg)
{
	struct tc *tc = arg;

	TEST_CHECK(false, "%s", "conversation hung");
	smtpc_free(&tc->c);
	event_base_loopbreak(tc->base);
}

/* Runs the client against addr until on_close. */
static void
tc_run(struct tc *tc, const struct sockaddr_in *addr,
    const struct smtpc_params *p)
{
	struct timeval tv = { .tv_sec = TEST_GUARD_SECS };
	struct event *guard;

	tc->base = event_base_new();
	guard = evtimer_new(tc->base, tc_guard, tc);
	evtimer_add(guard, &tv);
	tc->c = smtpc_connect(tc->base, (const struct sockaddr *)addr,
	    sizeof(*addr), p, &tc_ops, tc);
	event_base_dispatch(tc->base);
	event_free(guard);
	event_base_free(tc->base);
}

static void
tc_free(struct tc *tc)
{
	for (size_t i = 0; i < tc->ntxns; i++)
		smtpc_txn_clear(&tc->txns[i]);
	free(tc->why.text);
}

/* A spool file holding content; the caller closes it. */
static int
test_spool(const char *content, size_t len)
{
	char path[] = "/tmp/test_smtpc_spool.XXXXXX";
	int fd = mkstemp(path);

	xassert(fd >= 0);
	unlink(path);
	xassert(write(fd, content, len) == (ssize_t)len);
	return fd;
}

static const struct smtpc_params test_plain = {
	.helo = "client.test", .peer_name = "mx.test",
	.tls = SMTPC_TLS_NONE, .connect_timeout = 5,
};

static struct smtpc_txn
test_txn(const char *const *rcpts, size_t n, int fd, uint64_t size)
{
	struct smtpc_txn t = {
		.sender = "a@x.test", .rcpts = rcpts, .nrcpts = n, .fd = fd,
		.size = size,
	};

	return t;
}

#define TEST_HAS(hay, needle) TEST_CHECK((hay) != NULL &&		\
	strstr((hay), (needle)) != NULL, "\"%s\" lacks \"%s\"",		\
	(hay) ? (hay) : "(null)", (needle))

/* One conversation with a fake server configured by cfg: the client,
 * with the parameters p, sends the ntxns transactions txns (none: 0),
 * then QUIT.  The caller checks tc and f, then frees them. */
static void
test_converse(struct tc *tc, struct fake *f, const struct fake_cfg *cfg,
    const struct smtpc_params *p, struct smtpc_txn *txns, size_t ntxns)
{
	tc->txns = txns;
	tc->ntxns = ntxns;
	fake_start(f, cfg);
	tc_run(tc, &f->addr, p);
	fake_stop(f);
}

/* The same with the one transaction txn (from test_txn(), fd -1) whose
 * message is content, spooled for this conversation only. */
static void
test_converse_one(struct tc *tc, struct fake *f, const struct fake_cfg *cfg,
    const struct smtpc_params *p, struct smtpc_txn *txn, const char *content,
    size_t len)
{
	txn->fd = test_spool(content, len);
	test_converse(tc, f, cfg, p, txn, 1);
	close(txn->fd);
	txn->fd = -1;
}

/* ---- conversations ---- */

/* Stuffs like RFC 5321 §4.5.2 for the expected wire image. */
static void
test_stuff(struct buf *out, const char *in, size_t len)
{
	bool bol = true;

	for (size_t i = 0; i < len; i++) {
		if (bol && in[i] == '.')
			buf_addc(out, '.');
		buf_addc(out, in[i]);
		bol = in[i] == '\n';
	}
}

static void
test_pipelining(void)
{
	static const char *const r1[] = { "ok1@y.test", "temp@y.test",
	    "bad@y.test", "ok2@y.test" };
	static const char *const r2[] = { "ok3@y.test" };
	struct fake_cfg cfg = { .strict = true, .ehlo = "PIPELINING\n"
	    "SIZE 1000000\n8BITMIME\nENHANCEDSTATUSCODES" };
	struct smtpc_txn txns[2];
	struct buf body, want;
	struct tc tc = { 0 };
	struct fake f;
	int fd1, fd2;

	/* a "." at the start of a line right at the 64 KiB chunk border,
	 * and no CRLF at the end */
	buf_init(&body, 0);
	buf_adds(&body, ".hidden\r\nline\r\n..two\r\n");
	while (body.len < 65536 - 2)
		buf_adds(&body, body.len + 70 < 65534 ? "0123456789012345678"
		    "901234567890123456789012345678901234567890123456\r\n" :
		    "x");
	buf_adds(&body, "\r\n.at border\r\n.\r\nend");
	fd1 = test_spool(body.data, body.len);
	fd2 = test_spool(".\r\n", 3);
	txns[0] = test_txn(r1, 4, fd1, body.len);
	txns[0].body = 1;
	txns[1] = test_txn(r2, 1, fd2, 24);
	txns[1].prefix = "DKIM-Signature: v=1\r\n";
	txns[1].prefix_len = strlen(txns[1].prefix);
	test_converse(&tc, &f, &cfg, &test_plain, txns, 2);

	TEST_INT(tc.ready, 1);
	TEST_INT(tc.done, 2);
	TEST_INT(tc.why.code, 221);
	TEST_INT(tc.peer_size, 1000000);
	TEST_INT(txns[0].results[0].code, 250);
	TEST_STR(txns[0].results[0].text, "250 2.0.0 queued");
	TEST_INT(txns[0].results[1].code, 450);
	TEST_STR(txns[0].results[1].status, "4.2.0");
	TEST_INT(txns[0].results[2].code, 550);
	TEST_STR(txns[0].results[2].status, "5.1.1");
	TEST_STR(txns[0].results[2].text, "550-5.1.1 <bad@y.test>: user "
	    "unknown 550 5.1.1 second line");
	TEST_INT(txns[0].results[3].code, 250);
	TEST_INT(txns[1].results[0].code, 250);
	TEST_INT(f.txns, 2);
	char *mail = xasprintf("EHLO client.test\nMAIL FROM:<a@x.test> "
	    "SIZE=%zu BODY=8BITMIME\nRCPT TO:<ok1@y.test>\nRCPT "
	    "TO:<temp@y.test>\nRCPT TO:<bad@y.test>\nRCPT TO:<ok2@y.test>\n"
	    "DATA\nMAIL FROM:<a@x.test> SIZE=24\nRCPT TO:<ok3@y.test>\n"
	    "DATA\nQUIT\n", body.len);
	TEST_STR(f.transcript.data, mail);
	free(mail);
	buf_init(&want, 0);
	test_stuff(&want, body.data, body.len);
	buf_adds(&want, "\r\n");
	buf_adds(&want, "DKIM-Signature: v=1\r\n..\r\n");
	TEST_INT(f.data.len, want.len);
	TEST_TRUE(f.data.len == want.len &&
	    memcmp(f.data.data, want.data, want.len) == 0);
	TEST_HAS(f.data.data, "\r\n..at border\r\n..\r\nend\r\n");
	buf_free(&want);
	buf_free(&body);
	close(fd1);
	close(fd2);
	tc_free(&tc);
	fake_free(&f);
}

/* No PIPELINING: lock-step; a refused MAIL, RSET, then reuse. */
static void
test_lockstep(void)
{
	static const char *const r[] = { "ok@y.test", "bad@y.test" };
	struct fake_cfg cfg = { .ehlo = "SIZE", .mail_first =
	    "451 4.3.0 try later" };
	struct smtpc_txn txns[2];
	struct tc tc = { 0 };
	struct fake f;
	int fd = test_spool("hi\r\n", 4);

	txns[0] = test_txn(r, 2, fd, 4);
	txns[1] = test_txn(r, 2, fd, 4);
	test_converse(&tc, &f, &cfg, &test_plain, txns, 2);
	TEST_INT(tc.done, 2);
	TEST_INT(txns[0].results[0].code, 451);
	TEST_INT(txns[0].results[1].code, 451);
	TEST_STR(txns[0].results[1].status, "4.3.0");
	TEST_INT(txns[1].results[0].code, 250);
	TEST_INT(txns[1].results[1].code, 550);
	TEST_STR(f.transcript.data, "EHLO client.test\n"
	    "MAIL FROM:<a@x.test> SIZE=4\nRSET\n"
	    "MAIL FROM:<a@x.test> SIZE=4\nRCPT TO:<ok@y.test>\n"
	    "RCPT TO:<bad@y.test>\nDATA\nQUIT\n");
	TEST_STR(f.data.data, "hi\r\n");
	close(fd);
	tc_free(&tc);
	fake_free(&f);
}

/* SIZE and SMTPUTF8 refusals before MAIL; all RCPTs refused. */
static void
test_refusals(void)
{
	static const char *const r[] = { "bad1@y.test", "bad2@y.test" };
	struct fake_cfg cfg = { .strict = true, .ehlo = "PIPELINING\n"
	    "SIZE 100" };
	struct smtpc_txn txns[3];
	struct tc tc = { 0 };
	struct fake f;
	int fd = test_spool("hi\r\n", 4);

	txns[0] = test_txn(r, 2, fd, 1000);
	txns[1] = test_txn(r, 2, fd, 10);
	txns[1].smtputf8 = true;
	txns[2] = test_txn(r, 2, fd, 10);
	test_converse(&tc, &f, &cfg, &test_plain, txns, 3);
	TEST_INT(tc.done, 3);
	TEST_INT(txns[0].results[1].code, 552);
	TEST_STR(txns[0].results[1].status, "5.3.4");
	TEST_HAS(txns[0].results[1].text, "size limit 100 of mx.test[");
	TEST_INT(txns[1].results[0].code, 550);
	TEST_STR(txns[1].results[0].status, "5.6.7");
	TEST_INT(txns[2].results[0].code, 550);
	TEST_STR(txns[2].results[1].status, "5.1.1");
	TEST_STR(f.transcript.data, "EHLO client.test\n"
	    "MAIL FROM:<a@x.test> SIZE=10\nRCPT TO:<bad1@y.test>\n"
	    "RCPT TO:<bad2@y.test>\nDATA\nRSET\nQUIT\n");
	TEST_INT(f.data.len, 0);
	close(fd);
	tc_free(&tc);
	fake_free(&f);
}

/* RFC 2920 §3.1: DATA answered 354 though no RCPT was accepted: a
 * lone "." whose reply does not count. */
static void
test_354_without_rcpts(void)
{
	static const char *const r[] = { "bad@y.test", "temp@y.test" };
	struct fake_cfg cfg = { .strict = true, .ehlo = "PIPELINING",
	    .always_354 = true };
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;

	txn = test_txn(r, 2, -1, 7);
	test_converse_one(&tc, &f, &cfg, &test_plain, &txn, "never\r\n", 7);
	TEST_INT(tc.done, 1);
	TEST_INT(txn.results[0].code, 550);
	TEST_INT(txn.results[1].code, 450);
	TEST_INT(f.data.len, 0);
	TEST_STR(f.transcript.data, "EHLO client.test\n"
	    "MAIL FROM:<a@x.test>\nRCPT TO:<bad@y.test>\n"
	    "RCPT TO:<temp@y.test>\nDATA\nRSET\nQUIT\n");
	tc_free(&tc);
	fake_free(&f);
}

/* Megabytes over STARTTLS: backpressure through the TLS filter. */
static void
test_tls_big(struct tls_ctx *own)
{
	static const char *const r[] = { "ok@y.test" };
	struct fake_cfg cfg = { .ehlo = "STARTTLS\nPIPELINING",
	    .starttls = FAKE_TLS_OK };
	struct smtpc_params p = test_plain;
	size_t n = 5 << 20;
	char *big = xmalloc(n);
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;

	for (size_t i = 0; i < n; i++)
		big[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' :
		    (char)('a' + i % 26);
	p.tls = SMTPC_TLS_MAY;
	p.tls_ctx = own;
	txn = test_txn(r, 1, -1, n);
	test_converse_one(&tc, &f, &cfg, &p, &txn, big, n);
	TEST_INT(txn.results[0].code, 250);
	TEST_TRUE(tc.tls_version[0] != '\0');
	TEST_INT(f.data.len, n);
	TEST_TRUE(f.data.len == n && memcmp(f.data.data, big, n) == 0);
	free(big);
	tc_free(&tc);
	fake_free(&f);
}

/* Random replies: the client must end every conversation with one
 * on_close, and every finished transaction with a result per
 * recipient. */
static void
test_chaos(void)
{
	static const char *const r[] = { "a@y.test", "b@y.test",
	    "c@y.test" };
	struct fake_cfg cfg = { 0 };
	const char *msg = "Subject: x\r\n\r\n.body\r\n";
	int fd = test_spool(msg, strlen(msg));

	for (unsigned seed = 1; seed <= 300; seed++) {
		struct smtpc_txn txns[3];
		struct tc tc = { 0 };
		struct fake f;

		for (size_t i = 0; i < 3; i++) {
			txns[i] = test_txn(r, 1 + i, fd, 23);
			txns[i].body = (int)i % 2;
		}
		cfg.chaos = seed;
		test_converse(&tc, &f, &cfg, &test_plain, txns, 3);
		TEST_CHECK(tc.closed, "seed %u: no on_close", seed);
		TEST_CHECK(tc.why.code >= 200 && tc.why.code <= 599,
		    "seed %u: why %d", seed, tc.why.code);
		for (int t = 0; t < tc.done; t++)
			for (size_t i = 0; i < txns[t].nrcpts; i++)
				TEST_CHECK(txns[t].results[i].code >= 200 &&
				    txns[t].results[i].code <= 599 &&
				    txns[t].results[i].text != NULL,
				    "seed %u txn %d: result %d", seed, t,
				    txns[t].results[i].code);
		tc.ntxns = tc.next;	/* only those sent have results */
		tc_free(&tc);
		fake_free(&f);
	}
	close(fd);
}

/* The peer drops the connection in the middle of the data. */
static void
test_lost(void)
{
	static const char *const r[] = { "ok@y.test", "bad@y.test" };
	struct fake_cfg cfg = { .ehlo = "PIPELINING", .drop_after = 1000 };
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;
	size_t n = 16 << 20;	/* more than the socket buffers hold */
	char *big = xmalloc(n);

	for (size_t i = 0; i < n; i++)
		big[i] = i % 100 == 98 ? '\r' : i % 100 == 99 ? '\n' : 'a';
	txn = test_txn(r, 2, -1, n);
	test_converse_one(&tc, &f, &cfg, &test_plain, &txn, big, n);
	TEST_INT(tc.done, 1);
	TEST_TRUE(tc.closed);
	TEST_INT(txn.results[0].code, 451);
	TEST_STR(txn.results[0].status, "4.4.2");
	TEST_HAS(txn.results[0].text, "lost connection with mx.test[127.0.0.1]"
	    " while sending message body");
	TEST_INT(txn.results[1].code, 550);
	TEST_INT(tc.why.code, 451);
	free(big);
	tc_free(&tc);
	fake_free(&f);
}

/* EHLO refused: HELO, and no extensions. */
static void
test_helo(void)
{
	static const char *const r[] = { "ok@y.test" };
	struct fake_cfg cfg = { .ehlo = NULL };
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;

	txn = test_txn(r, 1, -1, 3);
	txn.body = 1;
	test_converse_one(&tc, &f, &cfg, &test_plain, &txn, "x\r\n", 3);
	TEST_INT(txn.results[0].code, 250);
	TEST_STR(f.transcript.data, "EHLO client.test\nHELO client.test\n"
	    "MAIL FROM:<a@x.test>\nRCPT TO:<ok@y.test>\nDATA\nQUIT\n");
	tc_free(&tc);
	fake_free(&f);
}

/* Greetings that end the connection, and hostile replies. */
static void
test_bad_peers(void)
{
	static const struct {
		const char *greeting;
		int code;
		const char *text;
	} cases[] = {
		{ "554 5.7.1 go away\r\n", 554, "554 5.7.1 go away" },
		{ "421 4.3.2 busy\r\n", 421, "421 4.3.2 busy" },
		{ "hello\r\n", 451, "malformed reply line" },
		{ "220-a\r\n230 b\r\n", 451, "inconsistent codes" },
		{ "250 not a greeting\r\n", 451, "greeting is not 220" },
		{ "354 what\r\n", 451, "unexpected 3xx" },
	};
	struct fake_cfg cfg = { 0 };
	struct fake f;
	char *many, *longl;

	for (size_t i = 0; i < MF_ARRAY_LEN(cases); i++) {
		struct tc tc = { 0 };
		cfg.greeting = cases[i].greeting;
		test_converse(&tc, &f, &cfg, &test_plain, NULL, 0);
		TEST_INT(tc.ready, 0);
		TEST_INT(tc.why.code, cases[i].code);
		TEST_HAS(tc.why.text, cases[i].text);
		tc_free(&tc);
		fake_free(&f);
	}
	/* too many lines; one line too long */
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < SMTPC_REPLY_LINES_MAX + 1; i++)
		buf_adds(&b, "220-x\r\n");
	buf_adds(&b, "220 x\r\n");
	many = xstrdup(b.data);
	buf_reset(&b);
	buf_adds(&b, "220 ");
	for (int i = 0; i < SMTPC_LINE_MAX; i++)
		buf_addc(&b, 'x');
	buf_adds(&b, "\r\n");
	longl = xstrdup(b.data);
	buf_free(&b);
	const char *g[] = { many, longl };
	const char *want[] = { "too many lines", "too long" };
	for (size_t i = 0; i < 2; i++) {
		struct tc tc = { 0 };
		cfg.greeting = g[i];
		test_converse(&tc, &f, &cfg, &test_plain, NULL, 0);
		TEST_INT(tc.why.code, 451);
		TEST_STR(tc.why.status, "4.5.0");
		TEST_HAS(tc.why.text, want[i]);
		tc_free(&tc);
		fake_free(&f);
	}
	free(many);
	free(longl);
}

static void
test_connect_refused(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	struct tc tc = { 0 };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	/* a port nobody listens on: bound, never listening */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	xassert(bind(s, (struct sockaddr *)&a, len) == 0);
	xassert(getsockname(s, (struct sockaddr *)&a, &len) == 0);
	tc_run(&tc, &a, &test_plain);
	close(s);
	TEST_INT(tc.ready, 0);
	TEST_INT(tc.why.code, 451);
	TEST_STR(tc.why.status, "4.4.1");
	TEST_HAS(tc.why.text, "connect to mx.test[127.0.0.1]: Connection "
	    "refused");
	tc_free(&tc);

	/* socket() itself fails: reported on the next loop turn */
	struct tc tc2 = { 0 };
	a.sin_family = AF_UNSPEC;
	tc_run(&tc2, &a, &test_plain);
	TEST_INT(tc2.why.code, 451);
	TEST_HAS(tc2.why.text, "connect to mx.test[unknown]: Address family "
	    "not supported");
	tc_free(&tc2);
}

/* A listener whose accept queue is full drops our SYN: the connect
 * timeout ends it. */
static void
test_connect_timeout(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct smtpc_params p = test_plain;
	socklen_t len = sizeof(a);
	struct tc tc = { 0 };
	int l = socket(AF_INET, SOCK_STREAM, 0), fill[4];
	uint64_t t0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	xassert(bind(l, (struct sockaddr *)&a, len) == 0);
	xassert(listen(l, 0) == 0);
	xassert(getsockname(l, (struct sockaddr *)&a, &len) == 0);
	for (size_t i = 0; i < MF_ARRAY_LEN(fill); i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[i], (struct sockaddr *)&a, len);
	}
	usleep(100000);
	p.connect_timeout = 1;
	t0 = time_mono_ms();
	tc_run(&tc, &a, &p);
	TEST_INT(tc.why.code, 451);
	TEST_HAS(tc.why.text, "connect to mx.test[127.0.0.1]: timeout");
	TEST_TRUE(time_mono_ms() - t0 < 5000);
	for (size_t i = 0; i < MF_ARRAY_LEN(fill); i++)
		close(fill[i]);
	close(l);
	tc_free(&tc);
}

/* The peer's final reply is 421: the result, then the close. */
static void
test_final_421(void)
{
	static const char *const r[] = { "ok@y.test" };
	struct fake_cfg cfg = { .ehlo = "PIPELINING", .final =
	    "421 4.3.2 shutting down" };
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;

	txn = test_txn(r, 1, -1, 3);
	test_converse_one(&tc, &f, &cfg, &test_plain, &txn, "x\r\n", 3);
	TEST_INT(tc.done, 1);
	TEST_INT(txn.results[0].code, 421);
	TEST_INT(tc.why.code, 421);
	tc_free(&tc);
	fake_free(&f);
}

/* BINARYMIME over BDAT: no stuffing, chunks, LAST. */
static void
test_bdat(void)
{
	static const char *const r[] = { "ok@y.test" };
	struct fake_cfg cfg = { .ehlo = "PIPELINING\nCHUNKING\nBINARYMIME\n"
	    "8BITMIME" };
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;
	size_t n = 150000;
	char *big = xmalloc(n);

	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i % 7 == 0 ? '.' : i % 5 == 0 ? '\n' : i);
	txn = test_txn(r, 1, -1, n + 20);
	txn.body = 2;
	txn.prefix = "DKIM-Signature: x\r\n";
	txn.prefix_len = 19;
	test_converse_one(&tc, &f, &cfg, &test_plain, &txn, big, n);
	TEST_INT(txn.results[0].code, 250);
	TEST_INT(f.data.len, n + 19);
	TEST_TRUE(f.data.len == n + 19 &&
	    memcmp(f.data.data, txn.prefix, 19) == 0 &&
	    memcmp(f.data.data + 19, big, n) == 0);
	TEST_STR(f.transcript.data, "EHLO client.test\nMAIL FROM:<a@x.test> "
	    "BODY=BINARYMIME\nRCPT TO:<ok@y.test>\nBDAT 19\nBDAT 65536\n"
	    "BDAT 65536\nBDAT 18928 LAST\nQUIT\n");
	free(big);
	tc_free(&tc);
	fake_free(&f);
}

/* ---- TLS ---- */

struct tls_case {
	const char *name;
	enum smtpc_tls mode;
	enum fake_tls starttls;
	bool implicit;
	const char *ehlo;
	const char *peer_name;
	bool own_ca;		/* trust the test certificate */
	bool verify;
	const char *user, *pass;
	/* outcome */
	int why_code;
	const char *why_text;
	bool tls_failed;
	bool delivered;
	bool verified;
	const char *transcript;	/* NULL: don't check */
};

static const struct tls_case tls_cases[] = {
	{ "starttls may", SMTPC_TLS_MAY, FAKE_TLS_OK, false,
	  "STARTTLS\nPIPELINING", "mx.test", true, false, NULL, NULL,
	  221, NULL, false, true, true,
	  "EHLO client.test\nSTARTTLS\nEHLO client.test\n"
	  "MAIL FROM:<a@x.test>\nRCPT TO:<ok@y.test>\nDATA\nQUIT\n" },
	{ "may, not offered", SMTPC_TLS_MAY, FAKE_TLS_OK, false,
	  "PIPELINING", "mx.test", true, false, NULL, NULL,
	  221, NULL, false, true, false, NULL },
	{ "unverified name", SMTPC_TLS_MAY, FAKE_TLS_OK, false,
	  "STARTTLS", "other.test", true, false, NULL, NULL,
	  221, NULL, false, true, false, NULL },
	{ "required, not offered", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "PIPELINING", "mx.test", true, true, NULL, NULL,
	  451, "451 4.7.4 STARTTLS required but not offered by peer",
	  false, false, false, "EHLO client.test\n" },
	{ "verify: unknown CA", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS", "mx.test", false, true, NULL, NULL,
	  451, "certificate verify failed", true, false, false, NULL },
	{ "verify: wrong name", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS", "other.test", true, true, NULL, NULL,
	  451, "certificate verify failed", true, false, false, NULL },
	{ "verify ok", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS", "mx.test", true, true, NULL, NULL,
	  221, NULL, false, true, true, NULL },
	{ "may, refused", SMTPC_TLS_MAY, FAKE_TLS_REFUSE, false,
	  "STARTTLS", "mx.test", true, false, NULL, NULL,
	  221, NULL, false, true, false,
	  "EHLO client.test\nSTARTTLS\nMAIL FROM:<a@x.test>\n"
	  "RCPT TO:<ok@y.test>\nDATA\nQUIT\n" },
	{ "required, refused", SMTPC_TLS_STARTTLS, FAKE_TLS_REFUSE, false,
	  "STARTTLS", "mx.test", true, false, NULL, NULL,
	  451, "STARTTLS required but refused by peer", false, false, false,
	  "EHLO client.test\nSTARTTLS\n" },
	{ "handshake dropped", SMTPC_TLS_MAY, FAKE_TLS_DROP, false,
	  "STARTTLS", "mx.test", true, false, NULL, NULL,
	  451, "TLS handshake with mx.test[127.0.0.1] failed", true, false,
	  false, NULL },
	{ "auth plain", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS\nAUTH LOGIN PLAIN", "mx.test", true, true, "u@x.test",
	  "pw", 221, NULL, false, true, true, NULL },
	{ "auth login", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS\nAUTH=LOGIN", "mx.test", true, true, "u@x.test",
	  "pw", 221, NULL, false, true, true, NULL },
	{ "auth refused", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS\nAUTH PLAIN", "mx.test", true, true, "u@x.test",
	  "wrong", 535, "535 5.7.8 bad credentials", false, false, true,
	  NULL },
	{ "no auth offered", SMTPC_TLS_STARTTLS, FAKE_TLS_OK, false,
	  "STARTTLS", "mx.test", true, true, "u@x.test", "pw",
	  451, "relay offers no AUTH", false, false, true, NULL },
	{ "no auth in plaintext", SMTPC_TLS_MAY, FAKE_TLS_OK, false,
	  "AUTH PLAIN", "mx.test", true, false, "u@x.test", "pw",
	  451, "without TLS", false, false, false, "EHLO client.test\n" },
	{ "implicit + auth", SMTPC_TLS_IMPLICIT, FAKE_TLS_NONE, true,
	  "AUTH PLAIN", "mx.test", true, true, "u@x.test", "pw",
	  221, NULL, false, true, true,
	  "EHLO client.test\nAUTH PLAIN AHVAeC50ZXN0AHB3\n"
	  "MAIL FROM:<a@x.test>\nRCPT TO:<ok@y.test>\nDATA\nQUIT\n" },
	{ "implicit, bad CA", SMTPC_TLS_IMPLICIT, FAKE_TLS_NONE, true,
	  "", "mx.test", false, true, NULL, NULL,
	  451, "certificate verify failed", true, false, false, NULL },
};

static void
test_tls_one(const struct tls_case *tcase, struct tls_ctx *own,
    struct tls_ctx *sys)
{
	static const char *const r[] = { "ok@y.test" };
	struct fake_cfg cfg = { .ehlo = tcase->ehlo, .starttls =
	    tcase->starttls, .implicit = tcase->implicit, .user = "u@x.test",
	    .pass = "pw" };
	struct smtpc_params p = test_plain;
	struct smtpc_txn txn;
	struct tc tc = { 0 };
	struct fake f;

	p.tls = tcase->mode;
	p.tls_ctx = tcase->own_ca ? own : sys;
	p.peer_name = tcase->peer_name;
	p.verify = tcase->verify;
	p.auth_user = tcase->user;
	p.auth_password = tcase->pass;
	txn = test_txn(r, 1, -1, 5);
	test_converse_one(&tc, &f, &cfg, &p, &txn, "tls\r\n", 5);
	TEST_CHECK(tc.why.code == tcase->why_code, "%s: why %d %s",
	    tcase->name, tc.why.code, tc.why.text);
	if (tcase->why_text != NULL)
		TEST_HAS(tc.why.text, tcase->why_text);
	TEST_CHECK(tc.tls_failed == tcase->tls_failed, "%s: tls_failed %d",
	    tcase->name, tc.tls_failed);
	TEST_CHECK((f.txns == 1) == tcase->delivered, "%s: delivered %d",
	    tcase->name, f.txns);
	if (tcase->delivered) {
		TEST_CHECK(txn.results && txn.results[0].code == 250,
		    "%s: result", tcase->name);
		TEST_CHECK(tc.verified == tcase->verified, "%s: verified %d",
		    tcase->name, tc.verified);
		bool want_tls = tcase->implicit ||
		    (strstr(tcase->ehlo, "STARTTLS") != NULL &&
		    tcase->starttls == FAKE_TLS_OK);
		TEST_CHECK((tc.tls_version[0] != '\0') == want_tls,
		    "%s: tls version \"%s\"", tcase->name, tc.tls_version);
		TEST_STR(f.data.data, "tls\r\n");
	}
	if (tcase->transcript != NULL)
		TEST_STR(f.transcript.data, tcase->transcript);
	tc_free(&tc);
	fake_free(&f);
}

static void
test_tls(void)
{
	struct tls_ctx *own, *sys;
	const char *err = NULL;

	own = tls_client_ctx_new(test_ca_file, &err);
	TEST_TRUE(own != NULL);
	sys = tls_client_ctx_new(NULL, &err);
	TEST_TRUE(sys != NULL);
	TEST_TRUE(tls_client_ctx_new("/nonexistent/ca.pem", &err) == NULL &&
	    err != NULL);
	if (own == NULL || sys == NULL)
		return;
	for (size_t i = 0; i < MF_ARRAY_LEN(tls_cases); i++)
		test_tls_one(&tls_cases[i], own, sys);
	test_tls_big(own);
	tls_ctx_free(&own);
	tls_ctx_free(&sys);
}

int
main(void)
{
	log_init("test", false, getenv("TEST_DEBUG") ? LOG_LVL_DEBUG :
	    LOG_LVL_WARN);
	test_parse();
	test_make_cert();
	test_pipelining();
	test_lockstep();
	test_refusals();
	test_354_without_rcpts();
	test_lost();
	test_helo();
	test_bad_peers();
	test_connect_refused();
	test_connect_timeout();
	test_final_421();
	test_chaos();
	test_bdat();
	test_tls();
	unlink(test_ca_file);
	X509_free(test_cert);
	EVP_PKEY_free(test_key);
	return test_done("smtp_client");
}
