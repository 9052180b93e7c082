/*
 * outbound_private.h - shared by outbound.c (scheduler and connections),
 * outbound_result.c (recording outcomes, DSNs) and outbound_dkim.c
 * (DKIM signature and SMTPUTF8 need of a message).
 */
#ifndef MAILFORT_OUTBOUND_PRIVATE_H
#define MAILFORT_OUTBOUND_PRIVATE_H

#include <pthread.h>

#include "dkim/dkim.h"
#include "net/net.h"
#include "queue/queue_private.h"
#include "smtp/smtp.h"

#define OB_TICK_MS 500		/* look for due work this often */
#define OB_WAKE_GAP_MS 50	/* new mail: look at most this often */
#define OB_WATCH_MS 100		/* is there news in the queue database? */
#define OB_LOAD_MAX 2000	/* recipients read per look */
#define OB_INFLIGHT_MAX 20000	/* recipients held in memory */
#define OB_JOB_RCPTS 50		/* recipients per transaction */
#define OB_REUSE_MAX 100	/* transactions per connection */
#define OB_ADDR_TRIES 5		/* addresses tried per connection */
#define OB_STOP_WAIT_MS 10000	/* graceful stop: finish transactions */
#define OB_HASH_SIZE 4096
#define OB_DKIM_RECHECK 60	/* seconds before a missing key is sought
				 * again */
#define OB_HEADER_PEEK (64 * 1024)

struct ob;
struct ob_dest;

struct ob_rcpt {
	char *addr;
	int attempts;
	bool bounce_now;	/* status 3: bounce without an attempt */
	char status[16];	/* then with this status */
	char *why;		/* and this reason */
};

struct ob_job {
	char id[QUEUE_ID_LEN + 1];
	char *sender;
	uint64_t size;
	int64_t created;
	int body;
	bool smtputf8;
	bool warned;
	char *auth;
	char *dkim;		/* DKIM-Signature fields cached in the queue */
	struct ob_rcpt *rcpts[OB_JOB_RCPTS];
	size_t nrcpts;
	struct ob_dest *dest;
	struct ob_job *next;
};

struct ob_result;

/* One connection attempt chain and, once up, its transactions. */
struct ob_conn {
	struct ob *ob;
	struct ob_dest *dest;
	struct dns_query *q;
	struct dns_mx *mx;
	size_t host_i, addr_i;	/* next address to try */
	size_t cur_host, cur_addr;	/* the one tried last */
	unsigned tries;
	bool plaintext_retry;	/* MAY's handshake failed: same address */
	struct smtpc *c;
	char *host;		/* peer name of the current attempt */
	char addr_text[64], port_text[8];
	bool ready;
	unsigned txns;
	struct ob_job *job;	/* in a transaction */
	struct smtpc_txn txn;
	const char **rcpt_list;
	int fd;
	struct buf prefix;
	bool waiting_commit;	/* its last result is not recorded yet */
	char *last_error;	/* why the last address failed */
	char last_status[16];
	struct ob_conn *next;
};

struct ob_dest {
	char *name;		/* domain, or the relay's name */
	const struct ob_relay *relay;	/* NULL: MX delivery */
	struct ob_job *head, *tail;
	size_t njobs;
	unsigned active;	/* connections */
	unsigned busy;		/* of them in a transaction */
	unsigned limit;		/* connections allowed now: lowered when
				 * some fail while others work */
	bool worked;		/* a connection got ready */
	struct ob_dest *next;
};

/* A recipient's outcome, waiting for the next commit. */
struct ob_result {
	struct ob_job *job;	/* shared; freed with the last result */
	struct ob_rcpt *rcpt;
	int code;		/* 2xx done, 4xx deferred, 5xx failed */
	char status[16];
	char *text;
	char *remote;		/* MX host or NULL (for DSNs) */
	char *via;		/* host[addr] and TLS (for logs) */
	struct ob_result *next;
};

struct ob_dkim_keys {
	char *domain;
	struct dkim_key *keys[DKIM_ALG_COUNT];
	size_t n;
	time_t loaded;
	struct ob_dkim_keys *next;
};

/* A recipient in memory, keyed by its message id and address. */
struct ob_key {
	char id[QUEUE_ID_LEN + 1];
	struct ob_rcpt *rcpt;
	struct ob_key *next;
};

struct ob {
	const struct config *cfg;
	volatile int *stop;
	struct event_base *base;
	struct net_timer *tick, *flush, *soon, *watch;
	uint64_t last_load_ms;
	int64_t last_data_version;
	struct dns *dns;
	struct tls_ctx *tls, *relay_tls;
	struct accounts *acc;
	struct ob_relays *relays;
	sqlite3 *db;
	sqlite3_stmt *due, *done, *fail, *defer, *left, *del, *warned,
	    *set_dkim, *get_dkim, *data_version;
	struct ob_dest *dests;
	struct ob_conn *conns;
	unsigned nconns;
	size_t inflight;
	struct ob_key *keys[OB_HASH_SIZE];	/* the in-flight set */
	struct ob_result *results, *results_tail;
	struct ob_dkim_keys *dkim;
	bool stopping;
	uint64_t stop_at;
	pthread_t thread;
	int wake[2];		/* outbound_wake() -> the loop (a pipe) */
	struct event *wake_ev;
};

/* outbound.c */
void ob_inflight_del(struct ob *ob, const char *id, struct ob_rcpt *r);
const char *ob_domain(const char *addr);
bool ob_is_ascii(const char *s);
char *ob_spool_path(const struct ob *ob, const char *id);
void ob_job_free(struct ob_job *j);
/* Starts the next job on a ready connection, or quits. */
void ob_conn_next(struct ob_conn *oc);
/* Starts connections where jobs wait and limits allow. */
void ob_kick(struct ob *ob);

/* outbound_result.c: outcomes, recorded once per loop turn */
/* Outcome of recipient i of j; remote: MX host (DSN), via: for logs. */
void ob_result_add(struct ob *ob, struct ob_job *j, size_t i, int code,
    const char *status, const char *text, const char *remote,
    const char *via);
/* Every recipient of j gets the same outcome. */
void ob_job_result(struct ob *ob, struct ob_job *j, int code,
    const char *status, const char *text, const char *remote);
/* Records what finished (the flush timer; also called directly). */
void ob_flush(void *arg);

/* outbound_dkim.c: what a message needs before it goes */
void ob_dkim_prepare(struct ob *ob, struct ob_job *j);
bool ob_needs_utf8(struct ob *ob, const struct ob_job *j);
void ob_dkim_free_all(struct ob *ob);

#endif
