"""Hostile and odd SMTP input, checked from outside over real sockets:
over-long lines, NUL and binary garbage, the error limit, command order,
huge header lines, SIZE, too many recipients, idle clients, SMTP
smuggling, dot-stuffing, PIPELINING, CHUNKING/BDAT, 8BITMIME/SMTPUTF8
and many open connections.  After every test the server must still be
up and its log free of sanitizer reports."""
import random
import smtplib
import socket
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from conftest import check_log_clean, send

USER = "user@example.test"
OTHER = "other@example.test"     # only ever the smuggling target here
SENDER = "sender@remote.example"


# ---------------------------------------------------------------- helpers

class Client:
    """A raw SMTP client: bytes out, parsed replies in."""

    def __init__(self, port, timeout=10, banner=True):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.banner = self.reply() if banner else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def line(self, timeout=None):
        """One reply line without CRLF, or None at EOF."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.time() + timeout
        while b"\r\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.time()
            if left <= 0:
                raise socket.timeout("no reply line; have %r" % self.buf)
            self._fill(left)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """(code, text) of one complete, possibly multiline, reply;
        (None, None) at EOF."""
        lines = []
        while True:
            line = self.line(timeout)
            if line is None:
                assert not lines, "EOF inside a multiline reply: %r" % lines
                return None, None
            assert len(line) >= 3 and line[:3].isdigit(), \
                "malformed reply line %r" % line
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                break
            assert line[3] == "-", "malformed reply line %r" % line
        codes = {l[:3] for l in lines}
        assert len(codes) == 1, "mixed codes in one reply: %r" % lines
        return int(lines[0][:3]), "\n".join(lines)

    def cmd(self, line, timeout=None):
        self.send(line + "\r\n")
        return self.reply(timeout)

    def expect(self, line, code, enh=None):
        c, text = self.cmd(line)
        assert c == code, (line, c, text)
        if enh:
            assert text[4:].startswith(enh), (line, text)
        return text

    def ehlo(self, name="client.example"):
        return self.expect("EHLO " + name, 250)

    def wait_eof(self, timeout=5):
        """True when the server closes (after any remaining replies are
        consumed by the caller) within timeout."""
        deadline = time.time() + timeout
        while not self.eof and time.time() < deadline:
            try:
                self._fill(max(0.01, deadline - time.time()))
            except socket.timeout:
                break
            except OSError:
                self.eof = True
        return self.eof

    def silent(self, wait=1.0):
        """Asserts that nothing more arrives within wait seconds."""
        try:
            self._fill(wait)
        except socket.timeout:
            pass
        assert self.buf == b"", "unexpected extra output %r" % self.buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def marker():
    return "mark-" + uuid.uuid4().hex


def stored(srv, addr):
    """srv.messages(addr), retried while the store is being created (the
    index may exist before its tables do)."""
    for _ in range(100):
        try:
            return srv.messages(addr)
        except sqlite3.OperationalError:
            time.sleep(0.05)
    return srv.messages(addr)


def with_marker(srv, addr, mark, timeout=15):
    """Stored messages of addr holding mark, waiting up to timeout for at
    least one."""
    deadline = time.time() + timeout
    while True:
        found = [m for m in stored(srv, addr) if mark.encode() in m]
        if found or time.time() > deadline:
            return found
        time.sleep(0.05)


def barrier(srv, addr):
    """Sends a fresh message to addr and waits until it is stored, so
    that anything accepted before it had its chance to arrive too."""
    mark = marker()
    refused = send(srv, srv.smtp_port, SENDER, [addr],
                   ("Subject: barrier\r\n\r\n%s\r\n" % mark).encode())
    assert refused == {}
    assert with_marker(srv, addr, mark), "barrier message never stored"


def assert_absent(srv, addr, mark):
    barrier(srv, addr)
    hits = [m for m in stored(srv, addr) if mark.encode() in m]
    assert hits == [], "message that had to be refused was stored: %r" % (
        hits[0][:500],)


def start_txn(c, rcpt=USER, mail_args=""):
    c.ehlo()
    c.expect("MAIL FROM:<%s>%s" % (SENDER, mail_args), 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % rcpt, 250, "2.1.5")


def split_received(raw_msg):
    """Splits a stored message into our leading Received header field and
    the rest."""
    assert raw_msg.startswith(b"Received: "), raw_msg[:200]
    pos = raw_msg.index(b"\r\n") + 2
    while raw_msg[pos:pos + 1] in (b" ", b"\t"):
        pos = raw_msg.index(b"\r\n", pos) + 2
    return raw_msg[:pos], raw_msg[pos:]


def alive(srv):
    assert srv.proc.poll() is None, "server died:\n" + srv.log()[-5000:]
    check_log_clean(srv.log())


@pytest.fixture(autouse=True)
def _server_survives(server):
    yield
    alive(server)


# ------------------------------------------------------- over-long lines

def test_overlong_command_line_refused_and_session_continues(server):
    c = Client(server.smtp_port)
    c.ehlo()
    c.send(b"NOOP " + b"x" * 3000 + b"\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("500 5.5.2"), text
    c.expect("NOOP", 250)
    # a complete transaction still works on the same connection
    mark = marker()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("DATA", 354)
    c.send("Subject: after long line\r\n\r\n%s\r\n.\r\n" % mark)
    code, text = c.reply()
    assert code == 250, text
    c.close()
    assert len(with_marker(server, USER, mark)) == 1


def test_rfc_minimum_512_octet_command_line_accepted(server):
    c = Client(server.smtp_port)
    line = "NOOP " + "y" * (512 - 2 - 5)
    assert len(line) + 2 == 512
    c.expect(line, 250)
    c.close()


def test_overlong_line_in_pieces_without_lf(server):
    """200 KB without any LF, dribbled in pieces: one 500 5.5.2, and the
    rest of that line (up to its LF) is discarded, not run as commands."""
    c = Client(server.smtp_port)
    c.ehlo()
    piece = b"z" * 10000
    for _ in range(20):
        c.send(piece)
        time.sleep(0.03)
    # the tail of the over-long line looks like a command; it must not
    # be executed on its own
    c.send(b" QUIT\r\nNOOP\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("500 5.5.2"), text
    code, text = c.reply()
    assert code == 250, "after the long line: %r" % text
    c.silent(0.5)
    c.expect("NOOP", 250)
    c.close()


def test_overlong_line_pieces_reply_and_keep_session(server):
    """3000 bytes in three pieces with pauses, then the CRLF."""
    c = Client(server.smtp_port)
    c.ehlo()
    for _ in range(3):
        c.send(b"A" * 1000)
        time.sleep(0.3)
    c.send(b"\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("500 5.5.2"), text
    c.expect("NOOP", 250)
    c.silent(0.3)
    c.close()


# ------------------------------------------------------- NUL and garbage

def test_nul_byte_in_command(server):
    c = Client(server.smtp_port)
    c.ehlo()
    c.send(b"NO\x00OP\r\n")
    code, text = c.reply()
    assert code == 500 and text.startswith("500 5.5.2"), text
    # a MAIL with a NUL in it must not start a transaction
    c.send(b"MAIL FROM:<a@remote.example>\x00 SIZE=10\r\n")
    code, text = c.reply()
    assert 500 <= code < 600, text
    code, text = c.cmd("RCPT TO:<%s>" % USER)
    assert code == 503 and text.startswith("503 5.5.1"), text
    c.expect("NOOP", 250)
    c.close()


def _garbage_lines(n, seed, length=60):
    rnd = random.Random(seed)
    alphabet = [b for b in range(256) if b not in (10, 13)]
    return [bytes(rnd.choice(alphabet) for _ in range(length))
            for _ in range(n)]


def test_binary_garbage_hits_error_limit_while_others_are_served(server):
    lines = _garbage_lines(10, seed=5321)
    bad = Client(server.smtp_port)
    bad.ehlo()
    bad.send(b"\r\n".join(lines[:5]) + b"\r\n")
    for i in range(5):
        code, text = bad.reply()
        assert code == 500 and text.startswith("500 5.5.2"), (i, text)
    # in the middle of it, another client sends real mail
    mark = marker()
    assert send(server, server.smtp_port, SENDER, [USER],
                ("Subject: during garbage\r\n\r\n%s\r\n" % mark)
                .encode()) == {}
    bad.expect("NOOP", 250)             # still in sync
    bad.send(b"\r\n".join(lines[5:]) + b"\r\n")
    for i in range(4):
        code, text = bad.reply()
        assert code == 500, (i, text)
    # the 10th error: its reply, then 421 and close
    code, text = bad.reply()
    assert code == 500, text
    code, text = bad.reply()
    assert code == 421 and text.startswith("421 4.7.0"), text
    assert bad.reply() == (None, None)
    assert bad.wait_eof()
    bad.close()
    assert len(with_marker(server, USER, mark)) == 1
    # and after it
    barrier(server, USER)


def test_binary_garbage_flood(server):
    """A megabyte of random bytes with random line ends: only 5xx
    replies, then 421 (or a reset), never a crash; others still served."""
    rnd = random.Random(2023)
    blob = bytearray(rnd.getrandbits(8) for _ in range(1 << 20))
    for _ in range(300):
        p = rnd.randrange(len(blob) - 2)
        blob[p:p + 2] = b"\r\n"
    c = Client(server.smtp_port)
    c.ehlo()
    try:
        c.send(bytes(blob))
    except (BrokenPipeError, ConnectionResetError):
        pass
    codes = []
    while True:
        try:
            code, text = c.reply(timeout=10)
        except (socket.timeout, ConnectionResetError):
            break
        if code is None:
            break
        codes.append((code, text))
    c.close()
    assert codes, "no reply at all to the garbage"
    assert all(500 <= k < 600 or k == 421 for k, _ in codes), codes
    if codes[-1][0] == 421:
        assert codes[-1][1].startswith("421 4.7.0"), codes[-1]
        assert len(codes) == 11, codes
    mark = marker()
    assert send(server, server.smtp_port, SENDER, [USER],
                ("Subject: after flood\r\n\r\n%s\r\n" % mark)
                .encode()) == {}
    assert len(with_marker(server, USER, mark)) == 1


def test_error_limit_ten_unknown_commands(server):
    c = Client(server.smtp_port)
    for i in range(9):
        c.expect("XYZZY%d" % i, 500, "5.5.2")
    c.expect("NOOP", 250)
    code, text = c.cmd("XYZZY9")
    assert code == 500 and text.startswith("500 5.5.2"), text
    code, text = c.reply()
    assert code == 421 and text.startswith("421 4.7.0"), text
    assert c.reply() == (None, None)
    assert c.wait_eof()
    c.close()


# ------------------------------------------------------- command order

def test_mail_before_helo(server):
    c = Client(server.smtp_port)
    c.expect("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
    c.expect("RCPT TO:<%s>" % USER, 503, "5.5.1")
    c.expect("DATA", 503, "5.5.1")
    c.close()


def test_rcpt_before_mail(server):
    c = Client(server.smtp_port)
    c.ehlo()
    c.expect("RCPT TO:<%s>" % USER, 503, "5.5.1")
    c.expect("NOOP", 250)
    c.close()


def test_data_before_mail_and_before_rcpt(server):
    c = Client(server.smtp_port)
    c.ehlo()
    c.expect("DATA", 503, "5.5.1")
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    code, text = c.cmd("DATA")
    assert code in (503, 554) and text[4:].startswith("5.5.1"), text
    # all RCPTs refused: DATA still refused (RFC 2920 §3.1)
    code, text = c.cmd("RCPT TO:<nobody-here@example.test>")
    assert code == 550 and text.startswith("550 5.1.1"), text
    code, text = c.cmd("DATA")
    assert code in (503, 554), text
    c.expect("RSET", 250)
    c.close()


def test_nested_mail(server):
    c = Client(server.smtp_port)
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
    c.expect("RSET", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.close()


def test_vrfy_help_unknown_ehlo_without_argument(server):
    c = Client(server.smtp_port)
    c.expect("EHLO", 501)
    c.expect("HELO", 501)
    c.ehlo()
    c.expect("VRFY user", 252)
    c.expect("VRFY <%s>" % USER, 252)
    c.expect("HELP", 214)
    c.expect("FOOBAR baz", 500, "5.5.2")
    c.expect("QUIT", 221)
    assert c.wait_eof()
    c.close()


# ------------------------------------------------------- huge header line

def test_one_megabyte_header_line_refused_session_continues(server):
    c = Client(server.smtp_port, timeout=30)
    start_txn(c)
    c.expect("DATA", 354)
    mark1, mark2 = marker(), marker()
    head = b"X-Huge: "
    line = head + b"h" * (1048576 - len(head))
    assert len(line) == 1048576
    c.send(b"Subject: huge " + mark1.encode() + b"\r\n" + line +
           b"\r\n\r\nbody\r\n.\r\n")
    code, text = c.reply()
    assert code == 550 and text.startswith("550 5.6.0"), text
    # the same session goes on with a normal message
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("DATA", 354)
    c.send("Subject: normal\r\n\r\n%s\r\n.\r\n" % mark2)
    code, text = c.reply()
    assert code == 250, text
    c.close()
    assert len(with_marker(server, USER, mark2)) == 1
    assert_absent(server, USER, mark1)


# ------------------------------------------------------- SIZE

def test_mail_size_parameter_over_default_limit(server):
    c = Client(server.smtp_port)
    text = c.ehlo()
    assert "SIZE 26214400" in text.upper(), text
    c.expect("MAIL FROM:<%s> SIZE=26214401" % SENDER, 552, "5.3.4")
    # 20 digits (RFC 1870 size-value), above 2^64: still just too big
    c.expect("MAIL FROM:<%s> SIZE=99999999999999999999" % SENDER,
             552, "5.3.4")
    c.expect("MAIL FROM:<%s> SIZE=1000" % SENDER, 250)
    c.close()


def test_message_size_limit(make_server):
    srv = make_server(extra={"smtp.max_message_size": "100000"})
    c = Client(srv.smtp_port, timeout=30)
    text = c.ehlo()
    assert "250-SIZE 100000" in text.upper().splitlines() or \
        "250 SIZE 100000" in text.upper().splitlines(), text
    c.expect("MAIL FROM:<%s> SIZE=100001" % SENDER, 552, "5.3.4")
    # the body itself is over the limit, without SIZE=
    mark = marker()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("DATA", 354)
    body = ("Subject: big %s\r\n\r\n" % mark).encode() + \
        (b"x" * 998 + b"\r\n") * 200
    c.send(body + b".\r\n")
    code, text = c.reply()
    assert code == 552 and text.startswith("552 5.3.4"), text
    # same with BDAT
    mark_b = marker()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    body_b = ("Subject: big bdat %s\r\n\r\n" % mark_b).encode() + \
        (b"x" * 998 + b"\r\n") * 200
    c.send(b"BDAT %d LAST\r\n" % len(body_b) + body_b)
    code, text = c.reply()
    assert code == 552 and text.startswith("552 5.3.4"), text
    # smtplib declares SIZE= itself and is refused at MAIL
    with pytest.raises(smtplib.SMTPSenderRefused) as ei:
        send(srv, srv.smtp_port, SENDER, [USER], body)
    assert ei.value.smtp_code == 552
    # the session continues with a small message
    mark2 = marker()
    c.expect("MAIL FROM:<%s> SIZE=500" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("DATA", 354)
    c.send("Subject: small\r\n\r\n%s\r\n.\r\n" % mark2)
    code, text = c.reply()
    assert code == 250, text
    c.close()
    assert len(with_marker(srv, USER, mark2)) == 1
    msgs = stored(srv, USER)
    assert not any(mark.encode() in m or mark_b.encode() in m
                   for m in msgs), "an over-size message was stored"
    assert len(msgs) == 1
    alive(srv)


# ------------------------------------------------------- recipients

def test_thousand_recipients(server):
    c = Client(server.smtp_port, timeout=30)
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.send("".join("RCPT TO:<user+%d@example.test>\r\n" % i
                   for i in range(1000)))
    codes = []
    for i in range(1000):
        code, text = c.reply()
        assert code is not None, "connection closed after %d RCPTs" % i
        codes.append((code, text))
    ok = [t for k, t in codes[:100] if k == 250]
    assert len(ok) == 100, codes[:100]
    over = codes[100:]
    assert all(k == 452 and t.startswith("452 4.5.3") for k, t in over), \
        [x for x in over if x[0] != 452][:3]
    mark = marker()
    c.expect("DATA", 354)
    c.send("Subject: many rcpts\r\n\r\n%s\r\n.\r\n" % mark)
    code, text = c.reply()
    assert code == 250, text
    c.expect("NOOP", 250)
    c.close()
    assert len(with_marker(server, USER, mark)) >= 1
    barrier(server, USER)
    found = [m for m in stored(server, USER) if mark.encode() in m]
    assert len(found) == 1, "stored %d times" % len(found)


# ------------------------------------------------------- idle clients

def test_idle_clients_time_out(make_server):
    srv = make_server(extra={"smtp.timeout": "2", "smtp.data_timeout": "3"})
    t0 = time.time()
    idle = Client(srv.smtp_port)
    half = Client(srv.smtp_port)
    half.send(b"NOO")                       # half a command, then nothing
    indata = Client(srv.smtp_port)
    mark = marker()
    start_txn(indata)
    indata.expect("DATA", 354)
    indata.send("Subject: stalled %s\r\n\r\npartial line" % mark)
    t_data = time.time()

    # meanwhile another client sends normally
    mark_ok = marker()
    assert send(srv, srv.smtp_port, SENDER, [USER],
                ("Subject: fine\r\n\r\n%s\r\n" % mark_ok).encode()) == {}

    code, text = idle.reply(timeout=10)
    t_idle = time.time() - t0
    assert code == 421 and text.startswith("421 4.4.2"), text
    assert idle.wait_eof(3)
    assert 1.0 <= t_idle <= 7, t_idle

    code, text = half.reply(timeout=10)
    assert code == 421 and text.startswith("421 4.4.2"), text
    assert half.wait_eof(3)

    code, text = indata.reply(timeout=12)
    t_in = time.time() - t_data
    assert code == 421 and text.startswith("421 4.4.2"), text
    assert indata.wait_eof(3)
    assert 1.0 <= t_in <= 8, t_in
    for c in (idle, half, indata):
        c.close()

    assert len(with_marker(srv, USER, mark_ok)) == 1
    time.sleep(0.5)
    assert not any(mark.encode() in m for m in stored(srv, USER))
    assert len(stored(srv, USER)) == 1
    alive(srv)


# ------------------------------------------------------- SMTP smuggling

SMUGGLE_SEPS = {
    "lf-dot-lf": b"\n.\n",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-cr": b"\r\n.\r",
    "cr-dot-crlf": b"\r.\r\n",
}


@pytest.mark.parametrize("sep", list(SMUGGLE_SEPS), ids=list(SMUGGLE_SEPS))
def test_smtp_smuggling_refused(server, sep):
    outer, inner = marker(), marker()
    c = Client(server.smtp_port)
    start_txn(c)
    c.expect("DATA", 354)
    c.send(b"Subject: outer " + outer.encode() + b"\r\n\r\nhello" +
           SMUGGLE_SEPS[sep] +
           b"MAIL FROM:<admin@example.test>\r\n"
           b"RCPT TO:<" + OTHER.encode() + b">\r\n"
           b"DATA\r\n"
           b"From: admin@example.test\r\n"
           b"Subject: smuggled " + inner.encode() + b"\r\n\r\n"
           b"evil\r\n"
           b".\r\n")
    code, text = c.reply()
    assert code == 550 and text.startswith("550 5.6.0"), \
        "%s: first reply after the real end: %r" % (sep, text)
    c.expect("NOOP", 250)
    c.silent(0.5)
    c.close()
    assert_absent(server, OTHER, inner)
    assert_absent(server, USER, outer)
    assert_absent(server, USER, inner)


def test_bare_cr_and_bare_lf_in_body_refused(server):
    for bad in (b"one\rtwo\r\n", b"one\ntwo\r\n"):
        mark = marker()
        c = Client(server.smtp_port)
        start_txn(c)
        c.expect("DATA", 354)
        c.send(b"Subject: " + mark.encode() + b"\r\n\r\n" + bad + b".\r\n")
        code, text = c.reply()
        assert code == 550 and text.startswith("550 5.6.0"), (bad, text)
        c.expect("NOOP", 250)
        c.close()
        assert_absent(server, USER, mark)


# ------------------------------------------------------- dot-stuffing

def test_dot_stuffing_removed_on_receipt(server):
    mark = marker()
    c = Client(server.smtp_port)
    start_txn(c)
    c.expect("DATA", 354)
    c.send("Subject: dots %s\r\n\r\n..leading\r\n...two\r\n..\r\n"
           "middle\r\n.\r\n" % mark)
    code, text = c.reply()
    assert code == 250, text
    c.close()
    found = with_marker(server, USER, mark)
    assert len(found) == 1
    _, rest = split_received(found[0])
    body = rest.split(b"\r\n\r\n", 1)[1]
    assert body == b".leading\r\n..two\r\n.\r\nmiddle\r\n", body


def test_smtplib_dot_line_arrives_intact(server):
    mark = marker()
    msg = ("Subject: dot %s\r\n\r\nbefore\r\n.\r\n..\r\n.x\r\nafter\r\n"
           % mark).encode()
    assert send(server, server.smtp_port, SENDER, [USER], msg) == {}
    found = with_marker(server, USER, mark)
    assert len(found) == 1
    _, rest = split_received(found[0])
    assert rest == msg, rest


# ------------------------------------------------------- PIPELINING

def test_pipelining_replies_in_order(server):
    mark = marker()
    c = Client(server.smtp_port)
    c.send("EHLO pipe.example\r\n"
           "MAIL FROM:<%s>\r\n"
           "RCPT TO:<%s>\r\n"
           "RCPT TO:<nobody-pipe@example.test>\r\n"
           "RCPT TO:<info@example.test>\r\n"
           "DATA\r\n" % (SENDER, USER))
    code, text = c.reply()
    assert code == 250 and "PIPELINING" in text.upper(), text
    code, text = c.reply()
    assert code == 250 and text.startswith("250 2.1.0"), text
    code, text = c.reply()
    assert code == 250 and text.startswith("250 2.1.5"), text
    code, text = c.reply()
    assert code == 550 and text.startswith("550 5.1.1"), text
    code, text = c.reply()
    assert code == 250 and text.startswith("250 2.1.5"), text
    code, text = c.reply()
    assert code == 354, text
    c.send("Subject: pipelined %s\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n"
           % mark)
    code, text = c.reply()
    assert code == 250, text
    code, text = c.reply()
    assert code == 250 and text.startswith("250 2.0.0"), text
    code, text = c.reply()
    assert code == 221, text
    assert c.wait_eof()
    c.close()
    # user and info (alias to user) are one target: stored once
    assert len(with_marker(server, USER, mark)) == 1
    barrier(server, USER)
    assert len([m for m in stored(server, USER) if mark.encode() in m]) == 1


def test_swaks_pipelining(server):
    mark = marker()
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(server.smtp_port),
         "--from", SENDER, "--to", USER, "--pipeline",
         "--header", "Subject: swaks " + mark, "--body", "via swaks " + mark,
         "--timeout", "20"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.0.0 OK queued" in p.stdout, p.stdout
    assert len(with_marker(server, USER, mark)) == 1


# ------------------------------------------------------- CHUNKING / BDAT

def test_bdat_chunks_stored_verbatim(server):
    mark = marker()
    content = ("Subject: bdat %s\r\nX-Test: chunks\r\n\r\n"
               "line one\r\n.\r\n..two dots stay\r\n"
               "last line\r\n" % mark).encode()
    # split inside a CRLF on purpose
    cut1 = content.index(b"\r\n", 20) + 1
    cut2 = len(content) - 7
    chunks = [content[:cut1], content[cut1:cut2], content[cut2:]]
    c = Client(server.smtp_port)
    text = c.ehlo()
    assert "CHUNKING" in text.upper(), text
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    for ch in chunks:
        c.send(b"BDAT %d\r\n" % len(ch) + ch)
        code, text = c.reply()
        assert code == 250, text
    code, text = c.cmd("BDAT 0 LAST")
    assert code == 250 and "queued" in text, text
    c.expect("NOOP", 250)
    c.close()
    found = with_marker(server, USER, mark)
    assert len(found) == 1
    _, rest = split_received(found[0])
    assert rest == content, rest


def test_bdat_last_with_data_pipelined(server):
    mark = marker()
    content = ("Subject: bdat last %s\r\n\r\nsingle chunk\r\n"
               % mark).encode()
    c = Client(server.smtp_port)
    c.ehlo()
    part = content[:10]
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (SENDER, USER) +
           "BDAT %d\r\n" % len(part))
    c.send(part + b"BDAT %d LAST\r\n" % (len(content) - 10) + content[10:])
    for want in (250, 250, 250, 250):
        code, text = c.reply()
        assert code == want, text
    assert "queued" in text, text
    c.close()
    found = with_marker(server, USER, mark)
    assert len(found) == 1
    _, rest = split_received(found[0])
    assert rest == content, rest


@pytest.mark.parametrize("arg", ["abc", "", "-1", "12 FIRST", "1x",
                                 "99999999999999999999999"])
def test_bdat_bad_size_closes(server, arg):
    c = Client(server.smtp_port)
    start_txn(c)
    code, text = c.cmd(("BDAT " + arg).rstrip())
    assert code == 501, (arg, text)
    assert c.reply() == (None, None)
    assert c.wait_eof()
    c.close()


def test_bdat_without_rcpt_skips_chunk(server):
    c = Client(server.smtp_port)
    c.ehlo()
    # the chunk looks like commands: they must not be run
    chunk = b"QUIT\r\nQUIT\r\n"
    c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    code, text = c.reply()
    assert 500 <= code < 600, text
    c.expect("NOOP", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    code, text = c.reply()
    assert 500 <= code < 600, text
    c.expect("NOOP", 250)
    c.silent(0.3)
    c.expect("QUIT", 221)
    c.close()


def test_bdat_before_helo_skips_chunk(server):
    """RFC 3030 §2: the octets after a BDAT line are chunk data, never
    commands - also when BDAT is refused for coming before EHLO."""
    c = Client(server.smtp_port)
    chunk = b"QUIT\r\nQUIT\r\n"
    c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    code, text = c.reply()
    assert code == 503 and text.startswith("503 5.5.1"), text
    code, text = c.cmd("NOOP")
    assert code == 250, "chunk data was run as commands: got %r" % text
    c.close()


def test_bdat_then_data_is_bad_sequence(server):
    c = Client(server.smtp_port)
    start_txn(c)
    c.send(b"BDAT 5\r\nhello")
    code, text = c.reply()
    assert code == 250, text
    c.expect("DATA", 503)               # RFC 3030 §2
    c.expect("RSET", 250)
    c.expect("NOOP", 250)
    c.close()


# ------------------------------------------------------- 8BITMIME, SMTPUTF8

def test_8bitmime_body_stored_intact(server):
    mark = marker()
    c = Client(server.smtp_port)
    text = c.ehlo()
    assert "8BITMIME" in text.upper() and "SMTPUTF8" in text.upper(), text
    c.expect("MAIL FROM:<%s> BODY=8BITMIME" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("DATA", 354)
    body = ("Subject: 8bit %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            "Grüße, naïve café — ✓\r\n" % mark).encode("utf-8") + \
        b"latin1 \xe9\xe8\r\n"
    c.send(body + b".\r\n")
    code, text = c.reply()
    assert code == 250, text
    c.close()
    found = with_marker(server, USER, mark)
    assert len(found) == 1
    _, rest = split_received(found[0])
    assert rest == body


def test_non_ascii_address_needs_smtputf8(server):
    c = Client(server.smtp_port)
    c.ehlo()
    code, text = c.cmd("MAIL FROM:<jörg@remote.example>")
    assert code == 553 and text.startswith("553 5.6.7"), text
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    code, text = c.cmd("RCPT TO:<üser@example.test>")
    assert code == 553 and text.startswith("553 5.6.7"), text
    c.expect("RSET", 250)
    # with SMTPUTF8 the syntax is fine; the user just does not exist
    c.expect("MAIL FROM:<jörg@remote.example> SMTPUTF8", 250)
    code, text = c.cmd("RCPT TO:<üser@example.test>")
    assert code == 550 and text.startswith("550 5.1.1"), text
    # invalid UTF-8 is a syntax error even with SMTPUTF8
    c.send(b"RCPT TO:<\xffuser@example.test>\r\n")
    code, text = c.reply()
    assert code == 501, text
    mark = marker()
    c.expect("RCPT TO:<%s>" % USER, 250)
    c.expect("DATA", 354)
    c.send(("Subject: utf8 %s\r\nFrom: Jörg <jörg@remote.example>\r\n\r\n"
            "héllo\r\n.\r\n" % mark).encode("utf-8"))
    code, text = c.reply()
    assert code == 250, text
    c.close()
    found = with_marker(server, USER, mark)
    assert len(found) == 1
    hdr, _ = split_received(found[0])
    assert b"UTF8SMTP" in hdr, hdr


def test_binarymime_not_offered_is_refused(server):
    c = Client(server.smtp_port)
    c.ehlo()
    code, text = c.cmd("MAIL FROM:<%s> BODY=BINARYMIME" % SENDER)
    assert 500 <= code < 600, text
    code, text = c.cmd("MAIL FROM:<%s> BODY=9BIT" % SENDER)
    assert code == 501, text
    c.expect("MAIL FROM:<%s> BODY=7BIT" % SENDER, 250)
    c.close()


# ------------------------------------------------------- many connections

def test_many_idle_connections_then_normal_send(server):
    socks = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection(
                ("127.0.0.1", server.smtp_port), timeout=15))
        for s in socks:
            assert s.recv(100).startswith(b"220 "), "no banner"
        mark = marker()
        result = {}

        def sender():
            try:
                result["r"] = send(server, server.smtp_port, SENDER, [USER],
                                   ("Subject: crowd\r\n\r\n%s\r\n" % mark)
                                   .encode())
            except Exception as e:      # reported below
                result["e"] = e
        t = threading.Thread(target=sender)
        t.start()
        t.join(30)
        assert not t.is_alive(), "send hung with 200 idle connections open"
        assert result.get("r") == {}, result
        assert len(with_marker(server, USER, mark)) == 1
        # the idle ones are still served
        for s in socks[:: 40]:
            s.sendall(b"NOOP\r\n")
            assert s.recv(100).startswith(b"250"), "idle session lost"
    finally:
        for s in socks:
            s.close()


def test_server_still_alive_at_the_end(server):
    alive(server)
    c = Client(server.smtp_port)
    c.ehlo()
    c.expect("QUIT", 221)
    c.close()
