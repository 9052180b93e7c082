"""POP3 on the pop3 (STLS required) and pop3s (implicit TLS) listeners:
the ports policy of DESIGN.md §1, every command of RFC 1939 with CAPA
(RFC 2449), SASL PLAIN (RFC 5034) and STLS (RFC 2595), the maildrop
semantics (snapshot, DELE/RSET/QUIT, [IN-USE], stable UIDL), hostile
input, and fetchmail from Debian downloading and deleting over TLS.
Clients: Python's poplib, raw sockets where poplib lacks a feature, and
fetchmail."""
import base64
import os
import poplib
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import PASSWORDS, Server, check_log_clean, client_ctx, send

# One account per test, so tests never see each other's mail.
ACCOUNTS = dict(PASSWORDS)
ACCOUNTS.update({"p%d@example.test" % i: "pw-p%d" % i for i in range(40)})
LISTENERS = ["stls", "implicit"]


def acct(i):
    a = "p%d@example.test" % i
    return a, ACCOUNTS[a]


@pytest.fixture(scope="module")
def pserver(pki):
    s = Server(pki, accounts=ACCOUNTS, pop3=True,
               extra={"accounts.lockout_failures": "1000"}).start()
    yield s
    check_log_clean(s.cleanup())


def deliver(server, addr, body, n=None):
    """Sends body to addr over SMTP and waits until the store has it."""
    before = len(server.messages(addr))
    send(server, server.smtp_port, "sender@remote.example", [addr], body)
    msgs = server.wait_messages(addr, before + 1 if n is None else n)
    assert len(msgs) >= before + 1
    return msgs


def connect(server, pki, how):
    if how == "implicit":
        return poplib.POP3_SSL("127.0.0.1", server.pop3s_port,
                               context=client_ctx(pki), timeout=30)
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
    p.stls(context=client_ctx(pki))
    return p


def login(server, pki, how, addr, pw, tries=50):
    """Logs in; retries while a just-closed session still holds the
    maildrop lock (released on the pool right after the disconnect)."""
    for _ in range(tries):
        p = connect(server, pki, how)
        p.user(addr)
        try:
            p.pass_(pw)
            return p
        except poplib.error_proto as e:
            p.close()
            if b"[IN-USE]" not in e.args[0]:
                raise
            time.sleep(0.1)
    raise AssertionError("maildrop stays locked")


class Raw:
    """A line-oriented POP3 client on a raw socket (TLS optional)."""

    def __init__(self, port, pki=None, implicit=False, timeout=10):
        self.pki = pki
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        if implicit:
            self.tls()
        self.buf = b""

    def tls(self):
        self.sock = client_ctx(self.pki).wrap_socket(
            self.sock, server_hostname="mail.example.test")

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def multi(self):
        """The lines of a multi-line body, still stuffed, up to "."."""
        out = []
        while True:
            line = self.line()
            if line == b".":
                return out
            out.append(line)

    def closed(self):
        """True when the server closed (EOF) without more data."""
        try:
            return self.sock.recv(100) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self):
        self.sock.close()


def raw_stls(server, pki):
    r = Raw(server.pop3_port, pki)
    assert r.line().startswith(b"+OK")
    assert r.cmd("STLS").startswith(b"+OK")
    r.tls()
    return r


def raw_login(server, pki, addr, pw):
    r = raw_stls(server, pki)
    assert r.cmd("USER " + addr).startswith(b"+OK")
    for _ in range(50):
        reply = r.cmd("PASS " + pw)
        if b"[IN-USE]" not in reply:
            break
        assert r.cmd("USER " + addr).startswith(b"+OK")
        time.sleep(0.1)
    assert reply.startswith(b"+OK"), reply
    return r


def store_db(server, addr):
    return os.path.join(server.store_dir(addr), "index.db")


def sql(server, addr, query):
    con = sqlite3.connect("file:%s?mode=ro" % store_db(server, addr),
                          uri=True, timeout=10)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


# ---- ports policy (DESIGN.md §1) ----

def test_listeners_off_by_default(make_server):
    s = make_server()
    assert "(smtp)" in s.log() and "(pop3" not in s.log()


def test_greeting_has_no_software_name(pserver):
    r = Raw(pserver.pop3_port)
    assert r.line() == b"+OK mail.example.test POP3 server ready"
    r.close()


def test_plaintext_refuses_credentials_before_stls(pserver):
    addr, pw = acct(0)
    plain = base64.b64encode(b"\0" + addr.encode() + b"\0" + pw.encode())
    cmds = ["USER " + addr, "PASS " + pw, "APOP %s %s" % (addr, "0" * 32),
            "AUTH PLAIN " + plain.decode(), "AUTH PLAIN", "AUTH", "STAT",
            "LIST", "RETR 1", "UIDL", "TOP 1 1", "DELE 1", "RSET"]
    # a few per connection: each refusal counts towards the error limit
    for i in range(0, len(cmds), 4):
        r = Raw(pserver.pop3_port)
        r.line()
        for cmd in cmds[i:i + 4]:
            reply = r.cmd(cmd)
            assert reply == b"-ERR [AUTH] Must issue STLS first", (cmd, reply)
        assert r.cmd("NOOP") == b"+OK"
        assert r.cmd("QUIT") == b"+OK Bye"
        r.close()
    # and the account was never logged in
    assert "user=%s result=ok" % addr not in pserver.log()


def test_capa_before_and_after_stls(pserver, pki):
    r = Raw(pserver.pop3_port, pki)
    r.line()
    assert r.cmd("CAPA").startswith(b"+OK")
    before = r.multi()
    assert b"STLS" in before and b"CAPA" in before
    assert b"USER" not in before
    assert not any(l.startswith(b"SASL") for l in before)
    assert not any(l.startswith(b"IMPLEMENTATION") for l in before)
    assert r.cmd("STLS").startswith(b"+OK")
    r.tls()
    assert r.cmd("CAPA").startswith(b"+OK")
    after = r.multi()
    for cap in (b"USER", b"SASL PLAIN", b"TOP", b"UIDL", b"PIPELINING",
                b"RESP-CODES", b"AUTH-RESP-CODE"):
        assert cap in after, cap
    assert b"STLS" not in after
    assert b"IMPLEMENTATION Mailfort" in after
    assert r.cmd("STLS").startswith(b"-ERR")
    r.close()


def test_capa_on_pop3s_and_in_transaction(pserver, pki):
    addr, pw = acct(1)
    p = poplib.POP3_SSL("127.0.0.1", pserver.pop3s_port,
                        context=client_ctx(pki))
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["PLAIN"]
    p.user(addr)
    p.pass_(pw)
    caps = p.capa()
    assert "USER" not in caps and "SASL" not in caps and "UIDL" in caps
    p.quit()


def test_stls_discards_pipelined_input(pserver, pki):
    addr, pw = acct(2)
    r = Raw(pserver.pop3_port, pki)
    r.line()
    # CVE-2011-0411: what follows STLS in the same packet is dropped
    r.send(("STLS\r\nUSER %s\r\n" % addr).encode())
    assert r.line().startswith(b"+OK")
    assert r.buf == b""
    r.tls()
    # the injected USER did not happen: PASS has no user to go with
    assert r.cmd("PASS " + pw) == b"-ERR USER first"
    # the session started over: a new CAPA lists the login methods
    assert r.cmd("CAPA").startswith(b"+OK")
    assert b"USER" in r.multi()
    r.close()


def test_stls_resets_user(pserver, pki):
    addr, pw = acct(2)
    r = Raw(pserver.pop3_port, pki)
    r.line()
    # USER before STLS is refused anyway; nothing carries over
    assert r.cmd("USER " + addr).startswith(b"-ERR")
    assert r.cmd("STLS").startswith(b"+OK")
    r.tls()
    assert r.cmd("PASS " + pw) == b"-ERR USER first"
    r.close()


# ---- every command ----

@pytest.mark.parametrize("how", LISTENERS)
def test_every_command(pserver, pki, how):
    addr, pw = acct(3 if how == "stls" else 4)
    m1 = (b"From: a@remote.example\r\nSubject: one\r\n\r\n"
          b"line 1\r\nline 2\r\nline 3\r\n")
    m2 = b"From: a@remote.example\r\nSubject: two\r\n\r\nsecond\r\n"
    deliver(pserver, addr, m1)
    stored = deliver(pserver, addr, m2)
    p = login(pserver, pki, how, addr, pw)
    sizes = [len(m) for m in stored]
    assert p.stat() == (2, sum(sizes))
    resp, lines, _ = p.list()
    assert resp.startswith(b"+OK")
    assert lines == [b"1 %d" % sizes[0], b"2 %d" % sizes[1]]
    assert p.list(2) == b"+OK 2 %d" % sizes[1]
    resp, uidls, _ = p.uidl()
    ids = [l.split()[1] for l in uidls]
    assert [l.split()[0] for l in uidls] == [b"1", b"2"]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(rb"[\x21-\x7e]{1,70}", i) for i in ids)
    assert p.uidl(1).split()[2] == ids[0]
    resp, body, octets = p.retr(1)
    assert resp.startswith(b"+OK %d octets" % sizes[0])
    assert b"\r\n".join(body) + b"\r\n" == stored[0]
    # TOP: headers, the empty line, then n body lines
    resp, top, _ = p.top(1, 2)
    head = stored[0].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert top == head + [b"", b"line 1", b"line 2"]
    assert p.top(1, 0)[1] == head + [b""]
    assert p.noop().startswith(b"+OK")
    assert p.dele(1).startswith(b"+OK")
    assert p.stat() == (1, sizes[1])
    assert p.list()[1] == [b"2 %d" % sizes[1]]
    for call in (lambda: p.retr(1), lambda: p.dele(1), lambda: p.list(1),
                 lambda: p.uidl(1), lambda: p.top(1, 1), lambda: p.retr(3),
                 lambda: p.list(99)):
        with pytest.raises(poplib.error_proto):
            call()
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (2, sum(sizes))
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    # message 2 is gone, message 1 kept its UIDL
    p = login(pserver, pki, how, addr, pw)
    assert p.stat() == (1, sizes[0])
    assert p.uidl()[1] == [b"1 " + ids[0]]
    p.dele(1)
    p.quit()
    assert pserver.messages(addr) == []


def test_auth_plain(pserver, pki):
    addr, pw = acct(5)
    creds = base64.b64encode(b"\0" + addr.encode() + b"\0" + pw.encode())
    bad = base64.b64encode(b"\0" + addr.encode() + b"\0wrong")
    r = raw_stls(pserver, pki)
    assert r.cmd("AUTH") == b"+OK Mechanisms follow"
    assert r.multi() == [b"PLAIN"]
    assert r.cmd("AUTH LOGIN").startswith(b"-ERR")
    # cancelled exchange, then a wrong one, then the "+ " continuation
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("*").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN " + bad.decode()).startswith(b"-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd("not base64!").startswith(b"-ERR")
    assert r.cmd("AUTH PLAIN") == b"+ "
    assert r.cmd(creds.decode()).startswith(b"+OK")
    assert r.cmd("STAT").startswith(b"+OK 0 ")
    assert r.cmd("AUTH PLAIN").startswith(b"-ERR")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()
    # with the initial response, on pop3s
    r = Raw(pserver.pop3s_port, pki, implicit=True)
    r.line()
    assert r.cmd("AUTH PLAIN " + creds.decode()).startswith(b"+OK")
    r.cmd("QUIT")
    r.close()
    assert "user=%s result=ok" % addr in pserver.log()


def test_wrong_password_and_apop(pserver, pki):
    addr, pw = acct(6)
    r = raw_stls(pserver, pki)
    assert r.cmd("APOP %s %s" % (addr, "a" * 32)).startswith(b"-ERR")
    assert r.cmd("USER " + addr).startswith(b"+OK")
    assert r.cmd("PASS nope").startswith(b"-ERR [AUTH]")
    # USER starts over after a failure (RFC 1939 §7)
    assert r.cmd("PASS " + pw) == b"-ERR USER first"
    assert r.cmd("USER nobody@example.test").startswith(b"+OK")
    assert r.cmd("PASS " + pw).startswith(b"-ERR [AUTH]")
    r.close()
    assert "result=failed" in pserver.log()
    assert pw not in pserver.log()


def test_pipelining(pserver, pki):
    addr, pw = acct(7)
    deliver(pserver, addr, b"Subject: p\r\n\r\nbody\r\n")
    r = raw_stls(pserver, pki)
    r.send(("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\n"
            "NOOP\r\nQUIT\r\n" % (addr, pw)).encode())
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK Logged in")
    assert r.line().startswith(b"+OK 1 ")
    assert r.line().startswith(b"+OK") and len(r.multi()) == 1
    assert r.line().startswith(b"+OK") and len(r.multi()) == 1
    assert r.line().startswith(b"+OK") and r.multi()[-1] == b"body"
    assert r.line() == b"+OK"
    assert r.line().startswith(b"+OK Bye")
    r.close()


def test_client_not_reading_is_paused_not_buffered(pserver, pki):
    # thousands of pipelined commands while the client reads nothing: the
    # server stops reading once its output backs up, and every command
    # still gets its answer in order when the client catches up
    addr, pw = acct(24)
    deliver(pserver, addr, b"Subject: flood\r\n\r\n" + b"y" * 2000 + b"\r\n")
    r = raw_login(pserver, pki, addr, pw)
    n = 3000
    r.send(b"UIDL\r\nRETR 1\r\n" * n + b"NOOP\r\n")
    time.sleep(0.5)
    for _ in range(n):
        assert r.line().startswith(b"+OK")
        assert len(r.multi()) == 1
        assert r.line().startswith(b"+OK")
        assert r.multi()[-1] == b"y" * 2000
    assert r.line() == b"+OK"
    r.cmd("QUIT")
    r.close()


# ---- maildrop semantics ----

def test_uidl_stable_across_reconnect_and_restart(make_server, pki):
    addr, pw = acct(8)
    s = make_server(accounts=ACCOUNTS, pop3=True)
    for i in range(3):
        deliver(s, addr, b"Subject: %d\r\n\r\nx\r\n" % i)
    p = login(s, pki, "implicit", addr, pw)
    first = p.uidl()[1]
    p.quit()
    p = login(s, pki, "stls", addr, pw)
    assert p.uidl()[1] == first
    p.dele(2)
    p.quit()
    s.stop()
    s.start()
    p = login(s, pki, "implicit", addr, pw)
    assert p.uidl()[1] == [b"1 " + first[0].split()[1],
                           b"2 " + first[2].split()[1]]
    p.quit()
    # a new message gets a new id, never a reused one
    deliver(s, addr, b"Subject: new\r\n\r\nx\r\n")
    p = login(s, pki, "stls", addr, pw)
    ids = [l.split()[1] for l in p.uidl()[1]]
    assert len(ids) == 3 and ids[2] not in [l.split()[1] for l in first]
    p.quit()


def test_killed_session_deletes_nothing(pserver, pki):
    addr, pw = acct(9)
    deliver(pserver, addr, b"Subject: a\r\n\r\nx\r\n")
    deliver(pserver, addr, b"Subject: b\r\n\r\ny\r\n")
    r = raw_login(pserver, pki, addr, pw)
    assert r.cmd("DELE 1").startswith(b"+OK")
    assert r.cmd("DELE 2").startswith(b"+OK")
    r.sock.shutdown(socket.SHUT_RDWR)
    r.close()
    p = login(pserver, pki, "implicit", addr, pw)
    assert p.stat()[0] == 2
    p.quit()
    assert len(pserver.messages(addr)) == 2


def test_rset_then_quit_deletes_nothing(pserver, pki):
    addr, pw = acct(10)
    deliver(pserver, addr, b"Subject: a\r\n\r\nx\r\n")
    p = login(pserver, pki, "stls", addr, pw)
    p.dele(1)
    p.rset()
    assert p.quit().startswith(b"+OK")
    assert len(pserver.messages(addr)) == 1


def test_new_mail_invisible_until_next_login(pserver, pki):
    addr, pw = acct(11)
    deliver(pserver, addr, b"Subject: first\r\n\r\nx\r\n")
    p = login(pserver, pki, "implicit", addr, pw)
    assert p.stat()[0] == 1
    deliver(pserver, addr, b"Subject: second\r\n\r\ny\r\n", n=2)
    assert p.stat()[0] == 1
    assert len(p.list()[1]) == 1
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    p.dele(1)
    p.quit()
    p = login(pserver, pki, "implicit", addr, pw)
    assert p.stat()[0] == 1
    assert b"Subject: second" in p.retr(1)[1]
    p.quit()


def test_second_session_in_use(pserver, pki):
    addr, pw = acct(12)
    deliver(pserver, addr, b"Subject: a\r\n\r\nx\r\n")
    first = login(pserver, pki, "implicit", addr, pw)
    # several tries: with two workers they land on both processes
    for how in LISTENERS * 3:
        p = connect(pserver, pki, how)
        p.user(addr)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(pw)
        assert e.value.args[0].startswith(b"-ERR [IN-USE]")
        # the refused session may still log out cleanly
        p.quit()
    assert first.stat()[0] == 1
    first.quit()
    p = login(pserver, pki, "stls", addr, pw)
    assert p.stat()[0] == 1
    p.quit()
    assert "result=in-use" in pserver.log()


def test_expunge_is_recorded_in_store(pserver, pki):
    addr, pw = acct(13)
    for i in range(3):
        deliver(pserver, addr, b"Subject: %d\r\n\r\nx\r\n" % i)
    before = sql(pserver, addr, "SELECT m.uid, m.file FROM messages m JOIN "
                 "mailboxes b ON b.id = m.mailbox_id WHERE b.name = 'INBOX'"
                 " ORDER BY m.uid")
    modseq = sql(pserver, addr, "SELECT highestmodseq FROM mailboxes "
                 "WHERE name = 'INBOX'")[0][0]
    p = login(pserver, pki, "stls", addr, pw)
    p.dele(1)
    p.dele(3)
    assert b"2 messages deleted" in p.quit()
    gone = [before[0][0], before[2][0]]
    uids = [u for (u,) in sql(pserver, addr, "SELECT uid FROM messages")]
    assert uids == [before[1][0]]
    exp = sql(pserver, addr, "SELECT uid, modseq FROM expunged ORDER BY uid")
    assert exp == [(gone[0], modseq + 1), (gone[1], modseq + 1)]
    assert sql(pserver, addr, "SELECT highestmodseq FROM mailboxes "
               "WHERE name = 'INBOX'")[0][0] == modseq + 1
    msgdir = os.path.join(pserver.store_dir(addr), "msg")
    assert not os.path.exists(os.path.join(msgdir, before[0][1]))
    assert os.path.exists(os.path.join(msgdir, before[1][1]))
    assert re.search(r"pop3 quit expunged=2", pserver.log())


def test_shared_file_survives_other_recipients_expunge(pserver, pki):
    a, apw = acct(14)
    b, bpw = acct(15)
    body = b"Subject: both\r\n\r\nshared\r\n"
    send(pserver, pserver.smtp_port, "x@remote.example", [a, b], body)
    pserver.wait_messages(a, 1)
    stored = pserver.wait_messages(b, 1)
    p = login(pserver, pki, "implicit", a, apw)
    p.dele(1)
    p.quit()
    p = login(pserver, pki, "implicit", b, bpw)
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == stored[0]
    p.quit()


# ---- message content ----

def test_dot_stuffing(pserver, pki):
    addr, pw = acct(16)
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n. space\r\n"
            b"middle.dot\r\n...\r\nend\r\n")
    stored = deliver(pserver, addr, body)[0]
    r = raw_login(pserver, pki, addr, pw)
    assert r.cmd("RETR 1") == b"+OK %d octets" % len(stored)
    wire = r.multi()
    # on the wire every line starting with "." got one more
    assert wire[-7:] == [b"..", b"...", b"..hidden", b".. space",
                         b"middle.dot", b"....", b"end"]
    assert r.cmd("TOP 1 2") == b"+OK Top of message follows"
    top = r.multi()
    assert top[-3:] == [b"", b"..", b"..."]
    r.cmd("QUIT")
    r.close()
    # poplib undoes it: identical to the stored file
    p = login(pserver, pki, "stls", addr, pw)
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == stored
    p.quit()


def test_large_message_streams_intact(pserver, pki):
    addr, pw = acct(17)
    line = b"." + b"x" * 70 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * 60000   # ~4.3 MB, 64 KiB chunks
    stored = deliver(pserver, addr, body)[0]
    p = login(pserver, pki, "implicit", addr, pw)
    resp, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == stored
    # pipelined commands behind a big response still get answers
    assert p.stat()[0] == 1
    p.quit()


def test_message_without_final_newline(pserver, pki):
    # a stored file always ends in CRLF from SMTP; the end marker still
    # starts on its own line whatever the file holds
    addr, pw = acct(18)
    stored = deliver(pserver, addr, b"Subject: x\r\n\r\nno newline")[0]
    p = login(pserver, pki, "stls", addr, pw)
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == stored
    p.quit()


# ---- hostile input ----

def test_bad_input_keeps_session(pserver, pki):
    addr, pw = acct(19)
    r = raw_login(pserver, pki, addr, pw)
    assert r.cmd("X" * 5000).startswith(b"-ERR")
    assert r.cmd("NOOP") == b"+OK"
    assert r.cmd("FOO").startswith(b"-ERR")
    assert r.cmd("RETR x").startswith(b"-ERR")
    assert r.cmd("LIST 0").startswith(b"-ERR")
    assert r.cmd("USER x").startswith(b"-ERR")   # wrong state
    r.send(b"NO\x00OP\r\n")
    assert r.line().startswith(b"-ERR")
    assert r.cmd("STAT").startswith(b"+OK")
    r.cmd("QUIT")
    r.close()


def test_error_limit_closes(pserver, pki):
    r = raw_stls(pserver, pki)
    for i in range(9):
        assert r.cmd("BOGUS %d" % i).startswith(b"-ERR")
    assert r.cmd("BOGUS").startswith(b"-ERR")
    assert r.line() == b"-ERR Too many errors, closing"
    assert r.closed()
    r.close()


def test_plaintext_garbage_and_long_lines(pserver):
    r = Raw(pserver.pop3_port)
    r.line()
    assert r.cmd("\x16\x03\x01garbage").startswith(b"-ERR")
    assert r.cmd("A" * 3000).startswith(b"-ERR")
    assert r.cmd("CAPA").startswith(b"+OK")
    r.multi()
    assert r.cmd("QUIT").startswith(b"+OK")
    assert r.closed()
    r.close()


def test_lockout_shared_with_smtp(make_server, pki):
    import smtplib
    addr, pw = acct(20)
    s = make_server(accounts=ACCOUNTS, pop3=True,
                    extra={"accounts.lockout_failures": "3",
                           "accounts.lockout_time": "60"})
    r = raw_stls(s, pki)
    for _ in range(3):
        assert r.cmd("USER " + addr).startswith(b"+OK")
        assert r.cmd("PASS wrong").startswith(b"-ERR [AUTH]")
    # locked now, even with the right password
    assert r.cmd("USER " + addr).startswith(b"+OK")
    assert r.cmd("PASS " + pw).startswith(b"-ERR [SYS/TEMP]")
    creds = base64.b64encode(b"\0" + addr.encode() + b"\0" + pw.encode())
    assert r.cmd("AUTH PLAIN " + creds.decode()).startswith(
        b"-ERR [SYS/TEMP]")
    r.close()
    # pop3s on another connection, and SMTP AUTH, share the table
    r = Raw(s.pop3s_port, pki, implicit=True)
    r.line()
    r.cmd("USER " + addr)
    assert r.cmd("PASS " + pw).startswith(b"-ERR [SYS/TEMP]")
    r.close()
    c = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port,
                         context=client_ctx(pki))
    with pytest.raises(smtplib.SMTPException):
        c.login(addr, pw)
    c.close()
    assert "pop3 auth client=127.0.0.1 result=locked-out" in s.log()


def test_graceful_stop_deletes_nothing(make_server, pki):
    addr, pw = acct(21)
    s = make_server(accounts=ACCOUNTS, pop3=True)
    deliver(s, addr, b"Subject: a\r\n\r\nx\r\n")
    r = raw_login(s, pki, addr, pw)
    assert r.cmd("DELE 1").startswith(b"+OK")
    t = time.time()
    assert s.stop() == 0
    assert time.time() - t < 10      # an idle session does not hold it up
    assert r.closed()
    r.close()
    assert len(s.messages(addr)) == 1


# ---- a real client: fetchmail ----

def run_fetchmail(server, pki, addr, pw, how, tmp):
    mda = os.path.join(tmp, "mda.sh")
    out = os.path.join(tmp, "out")
    os.makedirs(out, exist_ok=True)
    with open(mda, "w") as f:
        f.write('#!/bin/sh\nexec cat > "%s/msg.$(date +%%s%%N).$$"\n' % out)
    os.chmod(mda, 0o755)
    rc = os.path.join(tmp, "fetchmailrc")
    port = server.pop3s_port if how == "implicit" else server.pop3_port
    with open(rc, "w") as f:
        f.write('poll 127.0.0.1 service %d protocol pop3 auth password\n'
                '  user "%s" password "%s"\n'
                '  sslproto TLS1.2+ %s sslcertck sslcertfile "%s"\n'
                '  sslcommonname mail.example.test\n'
                '  fetchall nokeep mda "%s"\n'
                % (port, addr, pw, "ssl" if how == "implicit" else "",
                   pki["ca"], mda))
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=tmp)
    proc = subprocess.run(
        ["fetchmail", "-f", rc, "-d0", "--nosyslog", "-v",
         "--idfile", os.path.join(tmp, "ids"),
         "--pidfile", os.path.join(tmp, "pid")],
        capture_output=True, text=True, env=env, timeout=120)
    got = []
    for name in sorted(os.listdir(out)):
        with open(os.path.join(out, name), "rb") as f:
            got.append(f.read())
    return proc, got


@pytest.mark.skipif(shutil.which("fetchmail") is None,
                    reason="fetchmail not installed (scripts/deps.sh test)")
@pytest.mark.parametrize("how", LISTENERS)
def test_fetchmail_downloads_and_deletes(pserver, pki, how):
    addr, pw = acct(22 if how == "stls" else 23)
    bodies = [b"Subject: fm %d\r\n\r\nhello %d\r\n.\r\n..dots\r\n" % (i, i)
              for i in range(3)]
    for b in bodies:
        stored = deliver(pserver, addr, b)
    tmp = tempfile.mkdtemp(prefix="mf-fetchmail-")
    try:
        proc, got = run_fetchmail(pserver, pki, addr, pw, how, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "3 messages" in log, log
    if how == "stls":
        assert "STLS" in log, log
    assert len(got) == 3, log
    # fetchmail adds its Received: header and may turn CRLF into LF
    for want in stored:
        norm = want.replace(b"\r\n", b"\n")
        assert any(g.replace(b"\r\n", b"\n").endswith(norm) for g in got), \
            (want, got)
    # the mailbox is empty afterwards, in the store as over POP3
    assert pserver.messages(addr) == []
    p = login(pserver, pki, how, addr, pw)
    assert p.stat() == (0, 0)
    p.quit()
