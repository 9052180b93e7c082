"""IMAP authenticated-state commands (issue #4, RFC 9051 §6.3): LIST with
LIST-EXTENDED/LIST-STATUS/SPECIAL-USE, LSUB, NAMESPACE, CREATE, DELETE,
RENAME (INBOX too), SUBSCRIBE/UNSUBSCRIBE, STATUS and APPEND with
MULTIAPPEND, UIDPLUS and LITERAL+.  imaplib over TLS, raw commands where
imaplib lacks them, and the store read back with sqlite3."""
import imaplib
import os
import re
import socket
import sqlite3
import time

import pytest

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"
PW = PASSWORDS[USER]
MSG = b"From: a@example.org\r\nSubject: hello\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def srv(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True,
               extra={"smtp.max_message_size": str(8 * 1024 * 1024)},
               accounts={USER: PW, "other@example.test":
                         PASSWORDS["other@example.test"],
                         "fresh@example.test": "secret-fresh"}).start()
    yield s
    check_log_clean(s.cleanup())


def login(srv, pki, user=USER, pw=PW):
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(user, pw)
    return c


class Raw:
    """A logged-in TLS connection speaking raw IMAP."""

    def __init__(self, srv, pki, user=USER, pw=PW):
        s = socket.create_connection(("127.0.0.1", srv.imaps_port),
                                     timeout=20)
        self.t = client_ctx(pki).wrap_socket(
            s, server_hostname="mail.example.test")
        self.f = self.t.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        assert self.cmd("LOGIN %s %s" % (user, pw))[-1].startswith(b"t1 OK")

    def send(self, data):
        self.t.sendall(data)

    def line(self):
        return self.f.readline()

    def until_tagged(self, tag):
        lines = []
        while True:
            ln = self.line()
            assert ln, "connection closed: %r" % lines
            lines.append(ln)
            if ln.startswith(tag.encode() + b" "):
                return lines

    def cmd(self, text):
        self.n += 1
        tag = "t%d" % self.n
        self.send(("%s %s\r\n" % (tag, text)).encode())
        return self.until_tagged(tag)

    def close(self):
        try:
            self.send(b"z LOGOUT\r\n")
        except OSError:
            pass
        self.t.close()


def untagged(lines, word):
    return [ln.decode().rstrip("\r\n") for ln in lines
            if ln.startswith(("* " + word + " ").encode())]


def db_rows(srv, addr, sql, args=()):
    db = os.path.join(srv.store_dir(addr), "index.db")
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def mailbox_messages(srv, addr, mailbox):
    """Raw messages of one mailbox, in UID order, with uid and flags."""
    rows = db_rows(srv, addr, "SELECT m.uid, m.flags, m.keywords,"
                   " m.internaldate, m.file FROM messages m JOIN mailboxes"
                   " b ON b.id = m.mailbox_id WHERE b.name = ? ORDER BY"
                   " m.uid", (mailbox,))
    out = []
    for uid, flags, kw, date, name in rows:
        with open(os.path.join(srv.store_dir(addr), "msg", name),
                  "rb") as f:
            out.append((uid, flags, kw, date, f.read()))
    return out


def names(lines, word="LIST"):
    out = {}
    for ln in untagged(lines, word):
        m = re.match(r'\* \w+ \(([^)]*)\) "/" "((?:[^"\\]|\\.)*)"(.*)$', ln)
        assert m, ln
        out[m.group(2)] = (set(m.group(1).split()), m.group(3).strip())
    return out


# ---- LIST, NAMESPACE ----

def test_default_mailboxes_with_special_use(srv, pki):
    r = Raw(srv, pki, "fresh@example.test", "secret-fresh")
    got = names(r.cmd('LIST "" "*"'))
    assert set(got) == {"INBOX", "Drafts", "Sent", "Trash", "Junk",
                        "Archive"}
    assert got["Sent"][0] == {"\\HasNoChildren", "\\Sent"}
    assert got["Drafts"][0] == {"\\HasNoChildren", "\\Drafts"}
    assert got["INBOX"][0] == {"\\HasNoChildren"}
    # RFC 6154 §2 selection option: only the special-use ones
    got = names(r.cmd('LIST (SPECIAL-USE) "" "*"'))
    assert set(got) == {"Drafts", "Sent", "Trash", "Junk", "Archive"}
    # all of them subscribed
    got = names(r.cmd('LIST "" "*" RETURN (SUBSCRIBED SPECIAL-USE)'))
    assert all("\\Subscribed" in a for a, _ in got.values())
    lines = r.cmd("LSUB \"\" *")
    assert len(untagged(lines, "LSUB")) == 6
    lines = r.cmd("NAMESPACE")
    assert untagged(lines, "NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL']
    caps = r.cmd("CAPABILITY")[0].decode()
    for cap in ("NAMESPACE", "UIDPLUS", "MULTIAPPEND", "LIST-EXTENDED",
                "LIST-STATUS", "SPECIAL-USE", "CHILDREN", "STATUS=SIZE",
                "LITERAL+"):
        assert " " + cap in caps, cap
    r.close()


def test_list_patterns_and_hierarchy(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE lp/a/b")[-1].startswith(b"t2 OK")
    assert r.cmd("CREATE lp/c/")[-1].startswith(b"t3 OK")  # trailing /
    got = names(r.cmd('LIST "" "lp/%"'))
    assert set(got) == {"lp/a", "lp/c"}
    assert got["lp/a"][0] == {"\\HasChildren"}
    assert got["lp/c"][0] == {"\\HasNoChildren"}
    assert set(names(r.cmd('LIST "" "lp*"'))) == {"lp", "lp/a", "lp/a/b",
                                                  "lp/c"}
    assert set(names(r.cmd('LIST "lp/" "%"'))) == {"lp/a", "lp/c"}
    assert set(names(r.cmd('LIST "" "lp/%/b"'))) == {"lp/a/b"}
    assert set(names(r.cmd('LIST "" "inbox"'))) == {"INBOX"}
    # the delimiter query
    assert untagged(r.cmd('LIST "" ""'), "LIST") == [
        '* LIST (\\Noselect) "/" ""']
    # several patterns (RFC 5258)
    assert set(names(r.cmd('LIST "" ("lp/a" "lp/c")'))) == {"lp/a", "lp/c"}
    r.close()


def test_list_status_and_return_options(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE ls")[-1].startswith(b"t2 OK")
    r.send(b"a APPEND ls (\\Seen) {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    assert r.until_tagged("a")[-1].startswith(b"a OK")
    lines = r.cmd('LIST "" "ls" RETURN (CHILDREN STATUS (MESSAGES UNSEEN '
                  'SIZE))')
    assert untagged(lines, "LIST") == ['* LIST (\\HasNoChildren) "/" "ls"']
    assert untagged(lines, "STATUS") == [
        '* STATUS "ls" (MESSAGES 1 UNSEEN 0 SIZE %d)' % len(MSG)]
    # a STATUS line follows its LIST line
    assert lines[0].startswith(b"* LIST") and lines[1].startswith(b"* STATUS")
    # bad options are BAD
    assert r.cmd('LIST (RECURSIVEMATCH) "" "*"')[-1].startswith(b"t4 BAD")
    assert r.cmd('LIST (FOO) "" "*"')[-1].startswith(b"t5 BAD")
    assert r.cmd('LIST "" "*" RETURN (FOO)')[-1].startswith(b"t6 BAD")
    assert r.cmd('LIST ""')[-1].startswith(b"t7 BAD")
    r.close()


# ---- SUBSCRIBE, LSUB ----

def test_subscribe_lsub_and_nonexistent(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE sub/x")[-1].startswith(b"t2 OK")
    assert r.cmd("SUBSCRIBE sub/x")[-1].startswith(b"t3 OK")
    assert r.cmd("SUBSCRIBE ghost/y")[-1].startswith(b"t4 OK")
    got = names(r.cmd('LSUB "" "sub/*"'), "LSUB")
    assert got == {"sub/x": ({"\\HasNoChildren"}, "")}
    # "%" shows the unsubscribed parent as \Noselect (RFC 3501 §6.3.9)
    got = names(r.cmd('LSUB "" "ghost"'), "LSUB")
    assert got == {}
    got = names(r.cmd('LSUB "" "%"'), "LSUB")
    assert got["ghost"][0] == {"\\Noselect"}
    assert got["sub"][0] == {"\\Noselect"}
    # LIST (SUBSCRIBED): the nonexistent one is \NonExistent
    got = names(r.cmd('LIST (SUBSCRIBED) "" "ghost/*"'))
    assert got == {"ghost/y": ({"\\NonExistent", "\\Subscribed"}, "")}
    got = names(r.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'))
    assert got["ghost"] == ({"\\NonExistent"},
                            '("CHILDINFO" ("SUBSCRIBED"))')
    assert got["sub"] == ({"\\HasChildren"}, '("CHILDINFO" ("SUBSCRIBED"))')
    assert "\\Subscribed" in got["INBOX"][0]
    # the subscription outlives a DELETE (RFC 9051 §6.3.9)
    assert r.cmd("DELETE sub/x")[-1].startswith(b"t10 OK")
    got = names(r.cmd('LIST (SUBSCRIBED) "" "sub/x"'))
    assert got == {"sub/x": ({"\\NonExistent", "\\Subscribed"}, "")}
    assert r.cmd("UNSUBSCRIBE sub/x")[-1].startswith(b"t12 OK")
    line = r.cmd("UNSUBSCRIBE sub/x")[-1]
    assert line.startswith(b"t13 NO [NONEXISTENT]"), line
    assert names(r.cmd('LSUB "" "sub/*"'), "LSUB") == {}
    r.close()


# ---- CREATE, DELETE, RENAME ----

def test_create_delete(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE cd")[-1].startswith(b"t2 OK")
    assert r.cmd("CREATE cd")[-1].startswith(b"t3 NO [ALREADYEXISTS]")
    assert r.cmd("CREATE inbox")[-1].startswith(b"t4 NO [ALREADYEXISTS]")
    assert r.cmd("CREATE cd/sub")[-1].startswith(b"t5 OK")
    assert r.cmd("DELETE cd")[-1].startswith(b"t6 NO [HASCHILDREN]")
    assert r.cmd("DELETE INBOX")[-1].startswith(b"t7 NO")
    assert r.cmd("DELETE nope")[-1].startswith(b"t8 NO [NONEXISTENT]")
    assert r.cmd('CREATE "a*b"')[-1].startswith(b"t9 NO [CANNOT]")
    assert r.cmd('CREATE "a//b"')[-1].startswith(b"t10 NO [CANNOT]")
    assert r.cmd('CREATE "' + "/".join(["d"] * 17) + '"')[-1].startswith(
        b"t11 NO")
    assert r.cmd("CREATE")[-1].startswith(b"t12 BAD")
    # special-use at creation (RFC 6154 §3)
    assert r.cmd("CREATE cd/flagged (USE (\\Flagged))")[-1].startswith(
        b"t13 OK")
    got = names(r.cmd('LIST "" "cd/flagged" RETURN (SPECIAL-USE)'))
    assert got["cd/flagged"][0] == {"\\HasNoChildren", "\\Flagged"}
    assert r.cmd("CREATE cd/x (USE (\\Bogus))")[-1].startswith(
        b"t15 NO [USEATTR]")
    # a deleted mailbox takes its messages; re-created, new UIDVALIDITY
    r.send(b"a APPEND cd/sub {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    old = r.until_tagged("a")[-1]
    assert old.startswith(b"a OK [APPENDUID ")
    assert r.cmd("DELETE cd/sub")[-1].startswith(b"t16 OK")
    assert r.cmd("CREATE cd/sub")[-1].startswith(b"t17 OK")
    st = untagged(r.cmd("STATUS cd/sub (MESSAGES UIDVALIDITY)"), "STATUS")
    m = re.search(rb"APPENDUID (\d+)", old)
    assert st[0].startswith('* STATUS "cd/sub" (MESSAGES 0 UIDVALIDITY ')
    assert int(st[0].split()[-1].rstrip(")")) > int(m.group(1))
    r.close()


def test_rename_with_children_and_subscriptions(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE rn/a/b")[-1].startswith(b"t2 OK")
    assert r.cmd("SUBSCRIBE rn/a/b")[-1].startswith(b"t3 OK")
    r.send(b"a APPEND rn/a {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    assert r.until_tagged("a")[-1].startswith(b"a OK")
    st1 = untagged(r.cmd("STATUS rn/a (UIDVALIDITY MESSAGES)"), "STATUS")
    assert r.cmd("RENAME rn/a new/place")[-1].startswith(b"t5 OK")
    got = names(r.cmd('LIST "" "new*"'))
    assert set(got) == {"new", "new/place", "new/place/b"}
    assert names(r.cmd('LIST "" "rn/*"')) == {}
    st2 = untagged(r.cmd("STATUS new/place (UIDVALIDITY MESSAGES)"),
                   "STATUS")
    assert st1[0].split("(")[1] == st2[0].split("(")[1]
    assert set(names(r.cmd('LSUB "" "new/*"'), "LSUB")) == {"new/place/b"}
    assert r.cmd("RENAME new/place new/place/x")[-1].startswith(b"t10 NO")
    assert r.cmd("RENAME new/place INBOX")[-1].startswith(b"t11 NO")
    assert r.cmd("RENAME nope x")[-1].startswith(b"t12 NO [NONEXISTENT]")
    assert r.cmd("RENAME new Drafts")[-1].startswith(
        b"t13 NO [ALREADYEXISTS]")
    r.close()


def test_rename_inbox(srv, pki):
    r = Raw(srv, pki, "other@example.test", PASSWORDS["other@example.test"])
    for i in range(2):
        r.send(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(MSG)) + MSG + b"\r\n")
        assert r.until_tagged("a%d" % i)[-1].startswith(b"a%d OK" % i)
    assert r.cmd("CREATE INBOX/kid")[-1].startswith(b"t2 OK")
    before = untagged(r.cmd("STATUS INBOX (UIDNEXT UIDVALIDITY)"), "STATUS")
    assert r.cmd("RENAME inbox old-inbox")[-1].startswith(b"t4 OK")
    st = untagged(r.cmd("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)"),
                  "STATUS")
    # INBOX stays, empty, same UIDVALIDITY, UIDs not reused
    assert st[0] == before[0].replace("(UIDNEXT", "(MESSAGES 0 UIDNEXT")
    st = untagged(r.cmd("STATUS old-inbox (MESSAGES)"), "STATUS")
    assert st == ['* STATUS "old-inbox" (MESSAGES 2)']
    # INBOX's children stay where they are
    assert set(names(r.cmd('LIST "" "INBOX*"'))) == {"INBOX", "INBOX/kid"}
    assert [m[4] for m in mailbox_messages(
        srv, "other@example.test", "old-inbox")] == [MSG, MSG]
    assert srv.messages("other@example.test") == []
    r.close()


# ---- STATUS ----

def test_status_items_exact(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE st")[-1].startswith(b"t2 OK")
    m2 = MSG + b"more\r\n"
    r.send(b"a APPEND st (\\Seen) {%d+}\r\n" % len(MSG) + MSG +
           b" (\\Deleted) {%d+}\r\n" % len(m2) + m2 + b"\r\n")
    ok = r.until_tagged("a")[-1].decode()
    m = re.match(r"a OK \[APPENDUID (\d+) (\d+):(\d+)\]", ok)
    assert m, ok
    uv = int(m.group(1))
    lines = r.cmd("STATUS st (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED "
                  "SIZE HIGHESTMODSEQ RECENT)")
    st = untagged(lines, "STATUS")
    hms = db_rows(srv, USER, "SELECT highestmodseq FROM mailboxes WHERE "
                  "name = 'st'")[0][0]
    assert st == ['* STATUS "st" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY %d '
                  'UNSEEN 1 DELETED 1 SIZE %d HIGHESTMODSEQ %d RECENT 0)'
                  % (uv, len(MSG) + len(m2), hms)]
    assert lines[-1].startswith(b"t3 OK")
    assert r.cmd("STATUS st (FOO)")[-1].startswith(b"t4 BAD")
    assert r.cmd("STATUS st")[-1].startswith(b"t5 BAD")
    assert r.cmd("STATUS nope (MESSAGES)")[-1].startswith(
        b"t6 NO [NONEXISTENT]")
    r.close()


# ---- APPEND ----

def test_append_flags_date_appenduid(srv, pki):
    c = login(srv, pki)
    typ, data = c.create("ap")
    assert typ == "OK"
    date = imaplib.Time2Internaldate(1700000000)
    typ, data = c.append("ap", "(\\Seen \\Flagged $Label1 Work $label1)",
                         date, MSG)
    assert typ == "OK"
    m = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m, data
    uv = db_rows(srv, USER, "SELECT uidvalidity FROM mailboxes WHERE "
                 "name = 'ap'")[0][0]
    assert int(m.group(1)) == uv and int(m.group(2)) == 1
    (uid, flags, kw, idate, raw), = mailbox_messages(srv, USER, "ap")
    assert (uid, flags, kw, idate, raw) == (1, 1 | 4, "$Label1 Work",
                                            1700000000, MSG)
    typ, data = c.append("ap", None, '"05-Jan-2024 10:00:00 -0130"', MSG)
    assert typ == "OK" and b"APPENDUID %d 2]" % uv in data[0]
    assert mailbox_messages(srv, USER, "ap")[1][3] == 1704448800 + 5400
    # no such mailbox: TRYCREATE (RFC 9051 §6.3.12)
    typ, data = c.append("nope", None, None, MSG)
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    c.logout()


def test_append_to_inbox_is_seen_by_store(srv, pki):
    before = len(srv.messages(USER))
    c = login(srv, pki)
    typ, _ = c.append("INBOX", None, None, MSG)
    assert typ == "OK"
    c.logout()
    assert srv.messages(USER)[before:] == [MSG]


def test_multiappend_all_or_nothing(srv, pki):
    r = Raw(srv, pki)
    assert r.cmd("CREATE ma")[-1].startswith(b"t2 OK")
    msgs = [MSG, MSG + b"two\r\n", MSG + b"three\r\n"]
    # synchronizing literals: "+" for each
    r.send(b"a APPEND ma {%d}\r\n" % len(msgs[0]))
    assert r.line().startswith(b"+ ")
    r.send(msgs[0] + b" (\\Draft) {%d}\r\n" % len(msgs[1]))
    assert r.line().startswith(b"+ ")
    r.send(msgs[1] + b' "01-Feb-2023 12:00:00 +0000" {%d}\r\n' % len(msgs[2]))
    assert r.line().startswith(b"+ ")
    r.send(msgs[2] + b"\r\n")
    ok = r.until_tagged("a")[-1]
    assert re.match(rb"a OK \[APPENDUID \d+ 1:3\]", ok), ok
    assert [m[4] for m in mailbox_messages(srv, USER, "ma")] == msgs
    # one bad message (bare LF) and none is stored
    r.send(b"b APPEND ma {%d+}\r\n" % len(MSG) + MSG +
           b" {7+}\r\nbare\nLF\r\n")
    line = r.until_tagged("b")[-1]
    assert line.startswith(b"b NO"), line
    assert len(mailbox_messages(srv, USER, "ma")) == 3
    leftovers = [n for n in os.listdir(os.path.join(srv.store_dir(USER),
                                                    "msg"))
                 if n.startswith("tmp.")]
    assert leftovers == []
    r.close()


def test_append_big_streamed(srv, pki):
    big = (b"X" * 998 + b"\r\n") * (5 * 1024 * 1024 // 1000)
    body = b"Subject: big\r\n\r\n" + big
    c = login(srv, pki)
    c.create("big")
    typ, data = c.append("big", None, None, body)
    assert typ == "OK", data
    c.logout()
    (_, _, _, _, raw), = mailbox_messages(srv, USER, "big")
    assert raw == body


def test_append_too_big_and_literal_plus(srv, pki):
    r = Raw(srv, pki)
    limit = 8 * 1024 * 1024
    # synchronizing: refused before any data, no "+"
    r.send(b"a APPEND INBOX {%d}\r\n" % (limit + 1))
    line = r.line()
    assert line.startswith(b"a NO [TOOBIG]"), line
    # non-synchronizing (LITERAL+): the data is drained, then NO
    r.send(b"b APPEND INBOX {%d+}\r\n" % (limit + 1) +
           b"x" * (limit + 1) + b"\r\n")
    line = r.until_tagged("b")[-1]
    assert line.startswith(b"b NO [TOOBIG]"), line
    # the session goes on
    assert r.cmd("NOOP")[-1].startswith(b"t2 OK")
    # literal8 is refused
    r.send(b"c APPEND INBOX ~{5}\r\n")
    assert r.line().startswith(b"c NO [UNKNOWN-CTE]")
    # LITERAL+ for an ordinary APPEND
    r.send(b"d APPEND INBOX (\\Seen) {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    assert r.until_tagged("d")[-1].startswith(b"d OK [APPENDUID")
    r.close()


def test_append_bad_syntax_and_content(srv, pki):
    r = Raw(srv, pki)
    cases = [
        (b"APPEND INBOX (\\Bogus) {%d+}\r\n" % len(MSG) + MSG, b"BAD"),
        (b'APPEND INBOX "32-Jan-2024 10:00:00 +0000" {%d+}\r\n' % len(MSG)
         + MSG, b"BAD"),
        (b"APPEND INBOX", b"BAD"),
        (b"APPEND INBOX {5+}\r\nab\rcd", b"NO"),
        (b"APPEND INBOX {0+}\r\n", b"NO"),
        (b"APPEND INBOX {%d+}\r\n" % len(MSG) + MSG + b" foo", b"BAD"),
    ]
    for i, (text, want) in enumerate(cases):
        tag = b"x%d" % i
        r.send(tag + b" " + text + b"\r\n")
        line = r.until_tagged(tag.decode())[-1]
        assert line.startswith(tag + b" " + want), (text, line)
    assert r.cmd("NOOP")[-1].startswith(b"t2 OK")
    leftovers = [n for n in os.listdir(os.path.join(srv.store_dir(USER),
                                                    "msg"))
                 if n.startswith("tmp.")]
    assert leftovers == []
    r.close()


def test_append_wakes_other_session(srv, pki):
    """The append is announced to the account (ipc_notify_changed), so
    STATUS from another session sees it at once."""
    a = Raw(srv, pki)
    b = Raw(srv, pki)
    a.cmd("CREATE wake")
    a.send(b"x APPEND wake {%d+}\r\n" % len(MSG) + MSG + b"\r\n")
    assert a.until_tagged("x")[-1].startswith(b"x OK")
    st = untagged(b.cmd("STATUS wake (MESSAGES)"), "STATUS")
    assert st == ['* STATUS "wake" (MESSAGES 1)']
    a.close()
    b.close()


# ---- names ----

def test_mutf7_names_for_rev1(srv, pki):
    r = Raw(srv, pki)
    # "Entwürfe/日本" in modified UTF-7 (RFC 3501 §5.1.3)
    assert r.cmd('CREATE "Entw&APw-rfe/&ZeVnLA-"')[-1].startswith(b"t2 OK")
    got = names(r.cmd('LIST "" "Entw*"'))
    assert set(got) == {"Entw&APw-rfe", "Entw&APw-rfe/&ZeVnLA-"}
    rows = db_rows(srv, USER, "SELECT name FROM mailboxes WHERE name LIKE"
                   " 'Entw%' ORDER BY name")
    assert [n for (n,) in rows] == ["Entwürfe", "Entwürfe/日本"]
    # invalid modified UTF-7 is refused
    assert r.cmd('CREATE "bad&-x&Zz"')[-1].startswith(b"t4 NO")
    assert r.cmd('STATUS "Entw&APw-rfe" (MESSAGES)')[-1].startswith(b"t5 OK")
    r.close()


def test_commands_need_login_and_bad_syntax(srv, pki):
    s = socket.create_connection(("127.0.0.1", srv.imaps_port), timeout=10)
    t = client_ctx(pki).wrap_socket(s, server_hostname="mail.example.test")
    f = t.makefile("rb")
    f.readline()
    for i, cmd in enumerate([b"LIST \"\" *", b"CREATE x", b"STATUS INBOX "
                             b"(MESSAGES)", b"APPEND INBOX {3+}\r\nabc"]):
        t.sendall(b"n%d %s\r\n" % (i, cmd))
        line = f.readline()
        assert line.startswith(b"n%d BAD" % i), line
    t.close()
    r = Raw(srv, pki)
    assert r.cmd("RENAME onlyone")[-1].startswith(b"t2 BAD")
    assert r.cmd("DELETE")[-1].startswith(b"t3 BAD")
    assert r.cmd("SUBSCRIBE")[-1].startswith(b"t4 BAD")
    assert r.cmd("NAMESPACE x")[-1].startswith(b"t5 BAD")
    assert r.cmd("LSUB \"\" (a b)")[-1].startswith(b"t6 BAD")
    r.close()
    assert srv.proc.poll() is None


def test_schema_v1_store_is_migrated(make_server, pki):
    """A store written by schema version 1 (subscribed column) opens as
    the current version (3) with its subscriptions kept."""
    s = make_server(imap=True, start=False)
    d = s.store_dir(USER)
    os.makedirs(os.path.join(d, "msg"))
    con = sqlite3.connect(os.path.join(d, "index.db"))
    con.executescript(
        "PRAGMA journal_mode = WAL;"
        "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value ANY)"
        " STRICT;"
        "CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, name TEXT NOT NULL"
        " UNIQUE CHECK (name <> ''), uidvalidity INTEGER NOT NULL,"
        " uidnext INTEGER NOT NULL DEFAULT 1, highestmodseq INTEGER NOT"
        " NULL DEFAULT 1, subscribed INTEGER NOT NULL DEFAULT 0 CHECK"
        " (subscribed IN (0, 1)), special_use TEXT) STRICT;"
        "CREATE TABLE messages (mailbox_id INTEGER NOT NULL REFERENCES"
        " mailboxes (id), uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
        " flags INTEGER NOT NULL DEFAULT 0, keywords TEXT NOT NULL DEFAULT"
        " '', internaldate INTEGER NOT NULL, size INTEGER NOT NULL, file"
        " TEXT NOT NULL, delivery_id TEXT UNIQUE, envelope TEXT,"
        " bodystructure TEXT, PRIMARY KEY (mailbox_id, uid)) STRICT;"
        "CREATE TABLE expunged (mailbox_id INTEGER NOT NULL REFERENCES"
        " mailboxes (id) ON DELETE CASCADE, uid INTEGER NOT NULL, modseq"
        " INTEGER NOT NULL, PRIMARY KEY (mailbox_id, uid)) STRICT,"
        " WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('uidvalidity_last', 100),"
        " ('usage_bytes', 0), ('usage_messages', 0), ('created', 0);"
        "INSERT INTO mailboxes (name, uidvalidity, subscribed) VALUES"
        " ('INBOX', 99, 1), ('Old', 100, 1), ('Unsub', 98, 0);"
        "PRAGMA user_version = 1;")
    con.close()
    os.system("chown -R nobody %s 2>/dev/null" % srv_dir_root(s))
    s.start()
    r = Raw(s, pki)
    got = names(r.cmd('LIST "" "*" RETURN (SUBSCRIBED)'))
    assert got["Old"][0] == {"\\HasNoChildren", "\\Subscribed"}
    assert got["Unsub"][0] == {"\\HasNoChildren"}
    r.close()
    assert db_rows(s, USER, "PRAGMA user_version") == [(3,)]


def srv_dir_root(s):
    return os.path.join(s.data_dir, "mail")


def test_append_to_selected_mailbox_reports_exists_first(make_server, pki):
    """RFC 9051 §6.3.12: the new message is announced before the OK, so
    the UID from APPENDUID can be used at once (found by bench/imap.py:
    the UID STORE right after an APPEND changed nothing)."""
    import imaplib
    from conftest import PASSWORDS, client_ctx
    s = make_server(imap=True)
    c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login("user@example.test", PASSWORDS["user@example.test"])
    c.select("INBOX")
    typ, data = c.append("INBOX", None, None,
                         b"Subject: a\r\n\r\nappended\r\n")
    assert typ == "OK"
    assert c.untagged_responses.get("EXISTS")[-1] == b"1"
    uid = data[0].decode().split("APPENDUID ")[1].split()[1].rstrip("]")
    typ, data = c.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
    assert typ == "OK" and data[0] is not None and b"Deleted" in data[0]
    typ, data = c.uid("EXPUNGE", uid)
    assert typ == "OK"
    typ, data = c.uid("SEARCH", None, "ALL")
    assert typ == "OK" and data[0] == b""
    c.logout()
