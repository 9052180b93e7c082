/*
 * smtp_cmd.c - the SMTP command table and dispatcher.  The dispatcher
 * alone checks state, TLS and authentication (the ports policy of
 * DESIGN.md §1, one row per verb); handlers validate their arguments and
 * answer through smtp_reply().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_private.h"

/* Allowed on the submission port before STARTTLS (DESIGN.md §1). */
#define CMD_PRE_TLS	0x01
/* Needs HELO/EHLO first (RFC 5321 §4.1.4; 503 5.5.1). */
#define CMD_NEED_HELO	0x02
/* Needs AUTH first on the submission listeners. */
#define CMD_NEED_AUTH	0x04

struct smtp_cmd {
	enum smtp_verb verb;
	const char *name;
	unsigned flags;
	void (*handler)(struct smtp_session *s, const char *args);
};

static void smtp_cmd_helo(struct smtp_session *s, const char *args);
static void smtp_cmd_ehlo(struct smtp_session *s, const char *args);
static void smtp_cmd_rset(struct smtp_session *s, const char *args);
static void smtp_cmd_noop(struct smtp_session *s, const char *args);
static void smtp_cmd_quit(struct smtp_session *s, const char *args);
static void smtp_cmd_vrfy(struct smtp_session *s, const char *args);
static void smtp_cmd_expn(struct smtp_session *s, const char *args);
static void smtp_cmd_help(struct smtp_session *s, const char *args);
static void smtp_cmd_starttls(struct smtp_session *s, const char *args);

static const struct smtp_cmd smtp_cmds[] = {
	{ SMTP_VERB_HELO, "HELO", CMD_PRE_TLS, smtp_cmd_helo },
	{ SMTP_VERB_EHLO, "EHLO", CMD_PRE_TLS, smtp_cmd_ehlo },
	{ SMTP_VERB_STARTTLS, "STARTTLS", CMD_PRE_TLS, smtp_cmd_starttls },
	{ SMTP_VERB_NOOP, "NOOP", CMD_PRE_TLS, smtp_cmd_noop },
	{ SMTP_VERB_QUIT, "QUIT", CMD_PRE_TLS, smtp_cmd_quit },
	{ SMTP_VERB_RSET, "RSET", 0, smtp_cmd_rset },
	{ SMTP_VERB_AUTH, "AUTH", CMD_NEED_HELO, smtp_cmd_auth },
	{ SMTP_VERB_MAIL, "MAIL", CMD_NEED_HELO | CMD_NEED_AUTH,
	  smtp_cmd_mail },
	{ SMTP_VERB_RCPT, "RCPT", CMD_NEED_HELO | CMD_NEED_AUTH,
	  smtp_cmd_rcpt },
	{ SMTP_VERB_DATA, "DATA", CMD_NEED_HELO | CMD_NEED_AUTH,
	  smtp_cmd_data },
	{ SMTP_VERB_BDAT, "BDAT", CMD_NEED_HELO | CMD_NEED_AUTH,
	  smtp_cmd_bdat },
	{ SMTP_VERB_VRFY, "VRFY", 0, smtp_cmd_vrfy },
	{ SMTP_VERB_EXPN, "EXPN", 0, smtp_cmd_expn },
	{ SMTP_VERB_HELP, "HELP", 0, smtp_cmd_help },
};

void
smtp_greet(struct smtp_session *s)
{
	/* No software name or version (issue #3). */
	smtp_reply(s, "220 %s ESMTP", s->srv->cfg->hostname);
	smtp_set_state(s, SMTP_ST_HELO);
}

static bool
smtp_tls_required(const struct smtp_session *s)
{
	return s->kind == LISTENER_SUBMISSION && !conn_is_tls(s->conn);
}

/*
 * A refused BDAT still announced a chunk: its bytes are data, never
 * commands (RFC 3030 §2), so they are skipped to stay in sync.
 */
static void
smtp_skip_bdat_chunk(struct smtp_session *s, const char *args)
{
	uint64_t size;
	bool last;

	if (s->state == SMTP_ST_CLOSING)
		return;
	if (smtp_parse_bdat(args, &size, &last) < 0) {
		smtp_close_after_reply(s);
		return;
	}
	s->bdat_left = size;
	s->resume_state = s->state;
	smtp_set_state(s, SMTP_ST_BDAT);
}

static void
smtp_refuse(struct smtp_session *s, enum smtp_verb verb, const char *args,
    const char *reply)
{
	smtp_reply_error(s, "%s", reply);
	if (verb == SMTP_VERB_BDAT)
		smtp_skip_bdat_chunk(s, args);
}

void
smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_cmd *cmd = NULL;
	enum smtp_verb verb;
	const char *args;
	char esc[LOG_ESCAPE_BUF];

	verb = SMTP_VERB_UNKNOWN;
	if (smtp_parse_command(line, len, &verb, &args) < 0) {
		smtp_reply_error(s, verb == SMTP_VERB_MAIL ?
		    "501 5.5.4 Syntax: MAIL FROM:<address>" :
		    verb == SMTP_VERB_RCPT ? "501 5.5.4 Syntax: RCPT TO:<address>" :
		    "500 5.5.2 Invalid characters in command");
		return;
	}
	for (size_t i = 0; i < MF_ARRAY_LEN(smtp_cmds); i++)
		if (smtp_cmds[i].verb == verb)
			cmd = &smtp_cmds[i];
	if (cmd == NULL) {
		log_debug("%s smtp unknown command \"%s\"", s->sid,
		    log_escape(line, len, esc));
		smtp_reply_error(s, "500 5.5.2 Command unrecognized");
		return;
	}
	/* A BDAT transfer admits only more BDAT, RSET, NOOP and QUIT. */
	if (s->state == SMTP_ST_BDAT_WAIT && verb != SMTP_VERB_BDAT &&
	    verb != SMTP_VERB_RSET && verb != SMTP_VERB_NOOP &&
	    verb != SMTP_VERB_QUIT) {
		smtp_reply_error(s, "503 5.5.1 Error: BDAT transfer in "
		    "progress");
		return;
	}
	if (!(cmd->flags & CMD_PRE_TLS) && smtp_tls_required(s)) {
		smtp_refuse(s, verb, args, "530 5.7.0 Must issue a STARTTLS "
		    "command first");
		return;
	}
	if ((cmd->flags & CMD_NEED_HELO) && s->state == SMTP_ST_HELO) {
		smtp_refuse(s, verb, args, "503 5.5.1 Error: send HELO/EHLO "
		    "first");
		return;
	}
	if ((cmd->flags & CMD_NEED_AUTH) && smtp_is_submission(s) &&
	    s->auth_user == NULL) {
		smtp_refuse(s, verb, args, "530 5.7.0 Authentication "
		    "required");
		return;
	}
	cmd->handler(s, args);
}

static int
smtp_check_helo(struct smtp_session *s, const char *args)
{
	size_t len = strlen(args);

	if (len == 0) {
		smtp_reply_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return -1;
	}
	if (len > SMTP_HELO_MAX || strpbrk(args, " \t") != NULL) {
		smtp_reply_error(s, "501 5.5.4 Invalid EHLO argument");
		return -1;
	}
	smtp_reset_transaction(s);
	str_lcpy(s->helo, args, sizeof(s->helo));
	return 0;
}

static void
smtp_cmd_helo(struct smtp_session *s, const char *args)
{
	if (smtp_check_helo(s, args) < 0)
		return;
	s->esmtp = false;
	smtp_reply(s, "250 %s", s->srv->cfg->hostname);
	smtp_set_state(s, SMTP_ST_READY);
}

static void
smtp_cmd_ehlo(struct smtp_session *s, const char *args)
{
	const struct config *cfg = s->srv->cfg;

	if (smtp_check_helo(s, args) < 0)
		return;
	s->esmtp = true;
	smtp_reply(s, "250-%s", cfg->hostname);
	if (smtp_tls_required(s)) {
		/* Nothing but the way to TLS before it (DESIGN.md §1). */
		smtp_reply(s, "250-ENHANCEDSTATUSCODES");
		smtp_reply(s, "250 STARTTLS");
		smtp_set_state(s, SMTP_ST_READY);
		return;
	}
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
	    (unsigned long long)cfg->max_message_size);
	if (!conn_is_tls(s->conn) && s->srv->tls != NULL)
		smtp_reply(s, "250-STARTTLS");
	if (smtp_is_submission(s) && conn_is_tls(s->conn) &&
	    s->auth_user == NULL)
		smtp_reply(s, "250-AUTH PLAIN LOGIN");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250 CHUNKING");
	smtp_set_state(s, SMTP_ST_READY);
}

static void
smtp_cmd_rset(struct smtp_session *s, const char *args)
{
	smtp_reset_transaction(s);
	if (s->state != SMTP_ST_HELO)
		smtp_set_state(s, SMTP_ST_READY);
	smtp_reply(s, "250 2.0.0 OK");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "250 2.0.0 OK");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_close_after_reply(s);
}

static void
smtp_cmd_vrfy(struct smtp_session *s, const char *args)
{
	/* RFC 5321 §3.5.3: no address harvesting. */
	smtp_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *args)
{
	smtp_reply_error(s, "502 5.5.1 EXPN not available");
}

static void
smtp_cmd_help(struct smtp_session *s, const char *args)
{
	smtp_reply(s, "214 2.0.0 See RFC 5321");
}

static void
smtp_cmd_starttls(struct smtp_session *s, const char *args)
{
	if (*args != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (conn_is_tls(s->conn)) {
		smtp_reply_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (s->srv->tls == NULL) {
		smtp_reply_error(s, "454 4.7.0 TLS not available");
		return;
	}
	if (s->state != SMTP_ST_HELO && s->state != SMTP_ST_READY) {
		smtp_reply_error(s, "503 5.5.1 Error: mail transaction in "
		    "progress");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* conn_starttls() discards whatever the client pipelined after
	 * STARTTLS (CVE-2011-0411). */
	if (conn_starttls(s->conn, s->srv->tls) < 0) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	smtp_set_state(s, SMTP_ST_TLS);
}
