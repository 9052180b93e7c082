/*
 * pop3_cmd.c - the POP3 command table and dispatcher.  The dispatcher
 * alone checks TLS, state and the error count (the ports policy of
 * DESIGN.md §1: on the pop3 listener nothing but CAPA, STLS, NOOP and QUIT
 * before TLS); handlers validate what the parser cannot and answer
 * through pop3_reply().  Also the commands that need no maildrop: CAPA
 * (RFC 2449 §5), STLS (RFC 2595 §4), NOOP and QUIT in AUTHORIZATION.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_private.h"

/* Allowed on the pop3 listener before STLS (DESIGN.md §1). */
#define CMD_PRE_TLS	0x01

#define ST(x) (1u << (POP3_ST_ ## x))
#define ST_AUTHZ ST(AUTHORIZATION)
#define ST_TRANS ST(TRANSACTION)

struct pop3_cmd_row {
	enum pop3_verb verb;
	unsigned states;	/* ST() bits the verb is valid in */
	unsigned flags;
	pop3_handler *handler;
};

static pop3_handler pop3_cmd_capa, pop3_cmd_stls, pop3_cmd_noop,
    pop3_cmd_quit;

static const struct pop3_cmd_row pop3_cmds[] = {
	/* verb           states               flags        handler */
	{ POP3_VERB_CAPA, ST_AUTHZ | ST_TRANS, CMD_PRE_TLS, pop3_cmd_capa },
	{ POP3_VERB_STLS, ST_AUTHZ,            CMD_PRE_TLS, pop3_cmd_stls },
	{ POP3_VERB_NOOP, ST_AUTHZ | ST_TRANS, CMD_PRE_TLS, pop3_cmd_noop },
	{ POP3_VERB_QUIT, ST_AUTHZ | ST_TRANS, CMD_PRE_TLS, pop3_cmd_quit },
	{ POP3_VERB_USER, ST_AUTHZ,            0,           pop3_cmd_user },
	{ POP3_VERB_PASS, ST_AUTHZ,            0,           pop3_cmd_pass },
	{ POP3_VERB_APOP, ST_AUTHZ,            0,           pop3_cmd_apop },
	{ POP3_VERB_AUTH, ST_AUTHZ,            0,           pop3_cmd_auth },
	{ POP3_VERB_STAT, ST_TRANS,            0,           pop3_cmd_stat },
	{ POP3_VERB_LIST, ST_TRANS,            0,           pop3_cmd_list },
	{ POP3_VERB_RETR, ST_TRANS,            0,           pop3_cmd_retr },
	{ POP3_VERB_DELE, ST_TRANS,            0,           pop3_cmd_dele },
	{ POP3_VERB_RSET, ST_TRANS,            0,           pop3_cmd_rset },
	{ POP3_VERB_TOP,  ST_TRANS,            0,           pop3_cmd_top },
	{ POP3_VERB_UIDL, ST_TRANS,            0,           pop3_cmd_uidl },
};

void
pop3_greet(struct pop3_session *s)
{
	/* No software name or version; no APOP timestamp (APOP is not
	 * offered: it needs the password in clear on the server). */
	pop3_reply(s, "+OK %s POP3 server ready", s->srv->cfg->hostname);
	pop3_set_state(s, POP3_ST_AUTHORIZATION);
}

static bool
pop3_tls_required(const struct pop3_session *s)
{
	return s->kind == LISTENER_POP3 && !conn_is_tls(s->conn);
}

void
pop3_dispatch(struct pop3_session *s, const char *line, size_t len)
{
	const struct pop3_cmd_row *row = NULL;
	struct pop3_cmd cmd;
	const char *reply;
	char esc[LOG_ESCAPE_BUF];

	if (pop3_parse_command(line, len, &cmd, &reply) < 0) {
		pop3_reply_error(s, "%s", reply);
		return;
	}
	for (size_t i = 0; i < MF_ARRAY_LEN(pop3_cmds); i++)
		if (pop3_cmds[i].verb == cmd.verb)
			row = &pop3_cmds[i];
	if (row == NULL) {
		log_debug("%s pop3 unknown command \"%s\"", s->sid,
		    log_escape(line, len, esc));
		pop3_reply_error(s, "-ERR Unknown command");
		return;
	}
	if (s->srv->shutting_down && cmd.verb != POP3_VERB_QUIT) {
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		pop3_close_after_reply(s);
		return;
	}
	if (!(row->flags & CMD_PRE_TLS) && pop3_tls_required(s)) {
		/* RFC 3206 §4: a login against policy is an [AUTH] matter. */
		pop3_reply_error(s, "-ERR [AUTH] Must issue STLS first");
		return;
	}
	if (!(row->states & (1u << s->state))) {
		pop3_reply_error(s, s->state == POP3_ST_TRANSACTION ?
		    "-ERR Already logged in" : "-ERR Not logged in");
		return;
	}
	row->handler(s, &cmd);
}

/* RFC 2449 §5.  Before STLS on the pop3 listener nothing but the way to
 * TLS; USER and SASL only where a login can happen. */
static void
pop3_cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "CAPA");
	if (pop3_tls_required(s)) {
		if (s->srv->tls != NULL)
			pop3_reply(s, "STLS");
		pop3_reply(s, "RESP-CODES");
		pop3_reply(s, "AUTH-RESP-CODE");
		pop3_reply(s, ".");
		return;
	}
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	if (s->state == POP3_ST_AUTHORIZATION) {
		pop3_reply(s, "USER");
		pop3_reply(s, "SASL PLAIN");
	}
	pop3_reply(s, "IMPLEMENTATION Mailfort");
	pop3_reply(s, ".");
}

static void
pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (conn_is_tls(s->conn)) {
		pop3_reply_error(s, "-ERR TLS already active");
		return;
	}
	if (s->srv->tls == NULL) {
		pop3_reply_error(s, "-ERR TLS not available");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	/* conn_starttls() discards whatever the client pipelined after
	 * STLS (RFC 2595 §3.1, CVE-2011-0411). */
	if (conn_starttls(s->conn, s->srv->tls) < 0) {
		pop3_reply(s, "-ERR TLS not available");
		return;
	}
	pop3_set_state(s, POP3_ST_TLS);
}

static void
pop3_cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	pop3_reply(s, "+OK");
}

static void
pop3_cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (s->state == POP3_ST_TRANSACTION) {
		pop3_txn_quit(s);	/* RFC 1939 §6: UPDATE */
		return;
	}
	pop3_reply(s, "+OK Bye");
	pop3_close_after_reply(s);
}
