/*
 * imap_cmd.c - the dispatcher and the commands of any state and of the
 * not-authenticated state (RFC 9051 §6.1, §6.2): CAPABILITY, NOOP, LOGOUT,
 * STARTTLS, ID (RFC 2971), ENABLE (RFC 5161: CONDSTORE, QRESYNC,
 * IMAP4rev2, UTF8=ACCEPT).  The dispatcher alone checks state and the
 * ports policy of DESIGN.md §1: on 143 before STARTTLS only CAPABILITY,
 * STARTTLS, NOOP and LOGOUT exist (LOGINDISABLED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_private.h"

static void imap_cmd_capability(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_noop(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_logout(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_starttls(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_id(struct imap_session *s,
    const struct imap_command *cmd, bool uid);
static void imap_cmd_enable(struct imap_session *s,
    const struct imap_command *cmd, bool uid);

static const struct imap_cmd imap_core[] = {
	{ "CAPABILITY", IMAP_CMD_ANY | IMAP_CMD_PRE_TLS, imap_cmd_capability },
	{ "NOOP", IMAP_CMD_NOTAUTH | IMAP_CMD_AUTH | IMAP_CMD_PRE_TLS,
	  imap_cmd_noop },
	{ "LOGOUT", IMAP_CMD_ANY | IMAP_CMD_PRE_TLS, imap_cmd_logout },
	{ "STARTTLS", IMAP_CMD_NOTAUTH | IMAP_CMD_PRE_TLS, imap_cmd_starttls },
	{ "LOGIN", IMAP_CMD_NOTAUTH, imap_cmd_login },
	{ "AUTHENTICATE", IMAP_CMD_NOTAUTH, imap_cmd_authenticate },
	{ "ID", IMAP_CMD_ANY, imap_cmd_id },
	{ "ENABLE", IMAP_CMD_AUTH, imap_cmd_enable },
};

const struct imap_cmd_table imap_cmds_core = {
	/* RFC 6855: UTF8=ACCEPT is switched on with ENABLE */
	imap_core, MF_ARRAY_LEN(imap_core), "UTF8=ACCEPT",
};

static const struct imap_cmd_table *const imap_tables[] = {
	&imap_cmds_selected, &imap_cmds_mailbox, &imap_cmds_core,
};

void
imap_greet(struct imap_session *s)
{
	struct buf caps;

	/* RFC 9051 §7.1.1: capabilities in the greeting save a round trip;
	 * no software name or version. */
	buf_init(&caps, 0);
	imap_capabilities(s, &caps);
	imap_untagged(s, "OK [CAPABILITY %s] %s ready", caps.data,
	    s->srv->cfg->hostname);
	buf_free(&caps);
	imap_set_state(s, IMAP_ST_NOTAUTH);
}

void
imap_capabilities(const struct imap_session *s, struct buf *out)
{
	/* RFC 9051 §7.2.2: both versions; IMAP4rev1 stays the default
	 * until ENABLE IMAP4rev2 */
	buf_adds(out, "IMAP4rev1 IMAP4rev2");
	if (imap_tls_required(s)) {
		buf_adds(out, " STARTTLS LOGINDISABLED");
		return;
	}
	buf_adds(out, " SASL-IR LITERAL+ ID ENABLE");
	if (s->state == IMAP_ST_NOTAUTH || s->state == IMAP_ST_GREETING) {
		buf_adds(out, " AUTH=PLAIN");
		return;
	}
	for (size_t i = 0; i < MF_ARRAY_LEN(imap_tables); i++)
		if (imap_tables[i]->caps[0] != '\0')
			buf_printf(out, " %s", imap_tables[i]->caps);
}

static unsigned
imap_state_flag(const struct imap_session *s)
{
	switch (s->state) {
	case IMAP_ST_NOTAUTH:
		return IMAP_CMD_NOTAUTH;
	case IMAP_ST_AUTH:
		return IMAP_CMD_AUTH;
	case IMAP_ST_SELECTED:
		return IMAP_CMD_SELECTED;
	default:
		return 0;
	}
}

/* The command allowed now, or NULL with *exists telling whether the name
 * is known at all. */
static const struct imap_cmd *
imap_find(const struct imap_session *s, const char *name, bool uid,
    bool *exists)
{
	unsigned st = imap_state_flag(s);

	*exists = false;
	for (size_t t = 0; t < MF_ARRAY_LEN(imap_tables); t++) {
		const struct imap_cmd_table *tab = imap_tables[t];
		for (size_t i = 0; i < tab->count; i++) {
			const struct imap_cmd *c = &tab->cmds[i];
			if (strcmp(c->name, name) != 0 ||
			    (uid && !(c->flags & IMAP_CMD_UID)))
				continue;
			*exists = true;
			if (c->flags & st)
				return c;
		}
	}
	return NULL;
}

void
imap_dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd *c;
	const struct imap_command *use = cmd;
	struct imap_command sub;
	bool uid = false, exists;

	if (strcmp(cmd->name, "UID") == 0) {
		/* "UID FETCH ...": the first argument names the command */
		if (cmd->args == NULL || cmd->args->type != IMAP_ARG_ATOM) {
			imap_tagged(s, cmd->tag, "BAD", "UID needs a command");
			return;
		}
		char name[IMAP_NAME_MAX + 1];
		str_lcpy(name, cmd->args->str, sizeof(name));
		for (char *p = name; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		sub = *cmd;
		sub.name = xstrdup(name);
		sub.args = cmd->args->next;
		sub.count = cmd->count - 1;
		use = &sub;
		uid = true;
	}
	c = imap_find(s, use->name, uid, &exists);
	if (c != NULL && imap_tls_required(s) &&
	    !(c->flags & IMAP_CMD_PRE_TLS)) {
		/* DESIGN.md §1: nothing but the way to TLS before it */
		imap_tagged(s, cmd->tag, "NO", "[PRIVACYREQUIRED] Use STARTTLS "
		    "first");
	} else if (c != NULL) {
		str_lcpy(s->tag, cmd->tag, sizeof(s->tag));
		c->handler(s, use, uid);
	} else if (exists) {
		imap_tagged(s, cmd->tag, "BAD", "Command not allowed in this "
		    "state");
	} else {
		imap_tagged(s, cmd->tag, "BAD", "Unknown command");
	}
	if (use != cmd)
		free((char *)sub.name);
}

static void
imap_cmd_capability(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct buf caps;

	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", "CAPABILITY takes no "
		    "arguments");
		return;
	}
	buf_init(&caps, 0);
	imap_capabilities(s, &caps);
	imap_untagged(s, "CAPABILITY %s", caps.data);
	buf_free(&caps);
	imap_tagged(s, cmd->tag, "OK", "CAPABILITY completed");
}

static void
imap_cmd_noop(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	imap_tagged(s, cmd->tag, "OK", "NOOP completed");
}

static void
imap_cmd_logout(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	imap_untagged(s, "BYE Logging out");
	imap_tagged(s, cmd->tag, "OK", "LOGOUT completed");
	imap_close_after_reply(s);
}

static void
imap_cmd_starttls(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	if (conn_is_tls(s->conn) || s->srv->tls == NULL) {
		imap_tagged(s, cmd->tag, "BAD", "TLS is %s",
		    conn_is_tls(s->conn) ? "already active" : "not available");
		return;
	}
	imap_tagged(s, cmd->tag, "OK", "Begin TLS negotiation now");
	/* Whatever the client pipelined after STARTTLS is discarded
	 * (CVE-2011-0411 class), the reader starts afresh. */
	imap_parser_free(&s->parser);
	s->parser = imap_parser_new();
	if (conn_starttls(s->conn, s->srv->tls) < 0) {
		imap_untagged(s, "BYE TLS not available");
		imap_close_after_reply(s);
		return;
	}
	imap_set_wait(s, IMAP_WAIT_TLS);
}

static void
imap_cmd_id(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	char esc[LOG_ESCAPE_BUF];
	const struct imap_arg *a = cmd->args;

	if (cmd->count != 1 || (a->type != IMAP_ARG_NIL &&
	    a->type != IMAP_ARG_LIST)) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: ID NIL or ID (...)");
		return;
	}
	for (a = a->type == IMAP_ARG_LIST ? a->list : NULL; a != NULL &&
	    a->next != NULL; a = a->next->next) {
		const char *k = imap_arg_string(a), *v =
		    imap_arg_string(a->next);
		if (k != NULL && v != NULL && (strcasecmp(k, "name") == 0 ||
		    strcasecmp(k, "version") == 0))
			log_info("%s imap id %s=%s", s->sid, k,
			    log_escape(v, strlen(v), esc));
	}
	/* RFC 2971 §3.3: we tell nothing about the software */
	imap_untagged(s, "ID NIL");
	imap_tagged(s, cmd->tag, "OK", "ID completed");
}

/* RFC 9051 §6.3.1 IMAP4rev2 (which implies UTF-8 mailbox names,
 * §5.1) and RFC 6855 §3 UTF8=ACCEPT. */
static void
imap_enable_utf8(struct imap_session *s, const struct imap_arg *a,
    struct buf *on)
{
	if (imap_arg_is_atom(a, "IMAP4rev2")) {
		if (!s->rev2)
			buf_adds(on, " IMAP4rev2");
		s->rev2 = s->utf8 = true;
	} else if (imap_arg_is_atom(a, "UTF8=ACCEPT")) {
		if (!s->utf8)
			buf_adds(on, " UTF8=ACCEPT");
		s->utf8 = true;
	}
}

static void
imap_cmd_enable(struct imap_session *s, const struct imap_command *cmd,
    bool uid)
{
	struct buf on;

	if (cmd->count == 0) {
		imap_tagged(s, cmd->tag, "BAD", "Syntax: ENABLE capability...");
		return;
	}
	/* RFC 5161 §3.1: unknown capabilities are ignored; only those we
	 * serve in full are enabled. */
	buf_init(&on, 0);
	buf_adds(&on, "ENABLED");
	for (const struct imap_arg *a = cmd->args; a != NULL; a = a->next) {
		/* RFC 7162 §3.2.3: QRESYNC implies CONDSTORE */
		bool q = imap_arg_is_atom(a, "QRESYNC");
		if (q || imap_arg_is_atom(a, "CONDSTORE")) {
			if ((q && !s->qresync) || (!q && !s->condstore))
				buf_adds(&on, q ? " QRESYNC" : " CONDSTORE");
			s->condstore = true;
			s->qresync |= q;
		}
		imap_enable_utf8(s, a, &on);
	}
	imap_untagged(s, "%s", on.data);
	buf_free(&on);
	imap_tagged(s, cmd->tag, "OK", "ENABLE completed");
}
