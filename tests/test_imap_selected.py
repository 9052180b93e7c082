"""IMAP selected state (issue #4): SELECT/EXAMINE, FETCH of every item on
real-world message shapes, STORE with CONDSTORE, COPY/MOVE with COPYUID,
EXPUNGE, two sessions seeing each other's changes, IDLE wake-up after an
SMTP delivery, SEARCH.  Python's imaplib over TLS, raw lines where it
lacks (IDLE, ENABLE QRESYNC, exact untagged responses)."""
import imaplib
import re
import socket
import time

import pytest

from conftest import PASSWORDS, client_ctx, send

USER = "user@example.test"
OTHER = "other@example.test"
ADMIN = "admin@example.org"

# multipart/mixed: multipart/alternative (plain + html) and a PDF
ALT = (
    "From: Alice Example <alice@example.org>\r\n"
    "To: Bob <bob@example.test>, carol@example.test\r\n"
    "Cc: dave@example.test\r\n"
    "Subject: Quarterly report\r\n"
    "Date: Tue, 05 Mar 2024 10:20:30 +0100\r\n"
    "Message-ID: <alt-1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Hello Bob, caf=C3=A9 numbers attached.\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<p>Hello Bob</p>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"q1.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"q1.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\r\n"
    "--outer--\r\n")

# message/rfc822 forwarded inside a multipart
NESTED = (
    "From: fwd@example.org\r\n"
    "To: user@example.test\r\n"
    "Subject: Fwd: hello\r\n"
    "Date: Wed, 06 Mar 2024 08:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b1\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "see below\r\n"
    "--b1\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: orig@example.net\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "inner body\r\n"
    "--b1--\r\n")

# 8-bit header and body, no MIME headers at all
EIGHTBIT = (
    "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>\r\n"
    "To: user@example.test\r\n"
    "Subject: Grüße aus Köln\r\n"
    "Date: Thu, 07 Mar 2024 12:00:00 +0000\r\n"
    "\r\n"
    "Schöne Grüße\r\n")


def deliver(server, to, body, n):
    """Sends body to `to` over port 25 and waits until the INBOX holds n
    messages."""
    send(server, server.smtp_port, "sender@example.org", [to],
         body.encode() if isinstance(body, str) else body)
    msgs = server.wait_messages(to, n)
    assert len(msgs) >= n


@pytest.fixture(scope="module")
def srv(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    yield s
    check_log_clean(s.cleanup())


@pytest.fixture(scope="module")
def loaded(srv):
    """other@: three messages of the shapes above, in this order."""
    deliver(srv, OTHER, ALT, 1)
    deliver(srv, OTHER, NESTED, 2)
    deliver(srv, OTHER, EIGHTBIT.encode("utf-8"), 3)
    return srv


def login(server, pki, user=OTHER):
    c = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(user, PASSWORDS[user])
    return c


class Raw:
    """A raw IMAP connection over TLS for exact responses."""

    def __init__(self, server, pki, user=OTHER):
        s = socket.create_connection(("127.0.0.1", server.imaps_port),
                                     timeout=10)
        self.sock = client_ctx(pki).wrap_socket(
            s, server_hostname="mail.example.test")
        self.f = self.sock.makefile("rb")
        self.n = 0
        assert self.f.readline().startswith(b"* OK")
        if user:
            self.cmd("LOGIN %s %s" % (user, PASSWORDS[user]))

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        line = self.f.readline()
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        while m:
            line += self.f.read(int(m.group(1)))
            more = self.f.readline()
            line += more
            m = re.search(rb"\{(\d+)\}\r\n$", more)
        return line.decode("utf-8", "replace")

    def cmd(self, text):
        """Runs a command; returns (untagged lines, tagged line)."""
        self.n += 1
        tag = "t%d" % self.n
        self.send("%s %s" % (tag, text))
        lines = []
        while True:
            line = self.readline()
            assert line, "connection closed"
            if line.startswith(tag + " "):
                return lines, line.rstrip("\r\n")
            lines.append(line.rstrip("\r\n"))

    def ok(self, text):
        lines, tagged = self.cmd(text)
        assert " OK" in tagged, (text, tagged, lines)
        return lines, tagged

    def close(self):
        self.sock.close()


# ---- SELECT / EXAMINE ----

def test_select_responses_exact(srv, pki):
    deliver(srv, ADMIN, "Subject: a\r\n\r\nx\r\n", 1)
    r = Raw(srv, pki, ADMIN)
    lines, tagged = r.ok("SELECT INBOX")
    assert lines[0] == ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
                        "\\Draft)")
    assert lines[1] == ("* OK [PERMANENTFLAGS (\\Answered \\Flagged "
                        "\\Deleted \\Seen \\Draft \\*)] Flags permitted")
    assert lines[2] == "* 1 EXISTS"
    assert lines[3] == "* 0 RECENT"
    # RFC 3501 §6.3.1: IMAP4rev1 names the first unseen message
    assert lines[4] == "* OK [UNSEEN 1] First unseen"
    assert re.fullmatch(r"\* OK \[UIDVALIDITY \d+\] UIDs valid", lines[5])
    assert lines[6] == "* OK [UIDNEXT 2] Predicted next UID"
    assert re.fullmatch(r"\* OK \[HIGHESTMODSEQ \d+\] Highest", lines[7])
    assert len(lines) == 8
    assert tagged.endswith("OK [READ-WRITE] SELECT completed")
    lines, tagged = r.ok("EXAMINE INBOX")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert "* OK [PERMANENTFLAGS ()] Read-only mailbox" in lines
    assert tagged.endswith("OK [READ-ONLY] EXAMINE completed")
    # read-only: STORE and EXPUNGE refused
    _, tagged = r.cmd("STORE 1 +FLAGS (\\Seen)")
    assert " NO [READ-ONLY]" in tagged
    _, tagged = r.cmd("SELECT nosuchbox")
    assert " NO [NONEXISTENT]" in tagged
    # a failed SELECT leaves no mailbox selected
    _, tagged = r.cmd("FETCH 1 FLAGS")
    assert " BAD " in tagged
    # IMAP4rev2: no RECENT, a LIST response
    lines, _ = r.ok("ENABLE IMAP4rev2")
    if "IMAP4REV2" in lines[0].upper():
        lines, _ = r.ok("SELECT INBOX")
        assert "* 0 RECENT" not in lines
        assert not any("[UNSEEN" in l for l in lines)
        assert '* LIST () "/" "INBOX"' in lines
    r.close()


def test_select_condstore_and_capabilities(loaded, pki):
    c = login(loaded, pki)
    caps = c.capability()[1][0].decode().split()
    for cap in ("IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "UNSELECT",
                "ESEARCH", "QRESYNC"):
        assert cap in caps, cap
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    c.logout()
    r = Raw(loaded, pki)
    lines, tagged = r.ok("SELECT INBOX (CONDSTORE)")
    assert any(l.startswith("* OK [HIGHESTMODSEQ ") for l in lines)
    _, tagged = r.cmd("SELECT INBOX (BOGUS)")
    assert " BAD " in tagged
    r.close()


# ---- FETCH ----

# Sizes and line counts (RFC 9051 §7.5.2): a part's body ends before
# the CRLF that precedes its boundary line (RFC 2046 §5.1.1), so
# "Hello Bob, caf=C3=A9 numbers attached." is 38 octets and no full line.
ALT_BODYSTRUCTURE = (
    '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 38 0'
    ' NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 16'
    ' 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)'
    '("application" "pdf" ("name" "q1.pdf") NIL NIL "base64" 64 NIL'
    ' ("attachment" ("filename" "q1.pdf")) NIL NIL) "mixed"'
    ' ("boundary" "outer") NIL NIL NIL)')
ALT_BODY = (
    '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 38 0)'
    '("text" "html" ("charset" "utf-8") NIL NIL "7BIT" 16 0) "alternative")'
    '("application" "pdf" ("name" "q1.pdf") NIL NIL "base64" 64) "mixed")')
ALT_ENVELOPE = (
    '("Tue, 05 Mar 2024 10:20:30 +0100" "Quarterly report"'
    ' (("Alice Example" NIL "alice" "example.org"))'
    ' (("Alice Example" NIL "alice" "example.org"))'
    ' (("Alice Example" NIL "alice" "example.org"))'
    ' (("Bob" NIL "bob" "example.test")(NIL NIL "carol" "example.test"))'
    ' ((NIL NIL "dave" "example.test")) NIL NIL "<alt-1@example.org>")')
# message/rfc822: 24 + 16 + 2 + 10 octets, 3 lines; its envelope and
# body follow the size (RFC 9051 §7.5.2 body-type-msg); text without a
# Content-Type is "TEXT" "PLAIN" ("CHARSET" "US-ASCII") (RFC 2045 §5.2).
ORIG = '((NIL NIL "orig" "example.net"))'
NESTED_BODYSTRUCTURE = (
    '(("text" "plain" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 9 0 NIL NIL'
    ' NIL NIL)("message" "rfc822" NIL NIL NIL "7BIT" 52'
    ' (NIL "hello" %s %s %s NIL NIL NIL NIL NIL)'
    ' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 0 NIL NIL'
    ' NIL NIL) 3 NIL NIL NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL)'
    % (ORIG, ORIG, ORIG))
# 8-bit: the subject goes out as a literal (not valid in a quoted string)
EIGHTBIT_BODYSTRUCTURE = ('("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL'
                          ' "7BIT" 17 1 NIL NIL NIL NIL)')


def fetch1(r, what, seq=1):
    lines, tagged = r.ok("FETCH %d %s" % (seq, what))
    assert len(lines) >= 1, lines
    return lines


def test_fetch_structure_items(loaded, pki):
    r = Raw(loaded, pki)
    r.ok("EXAMINE INBOX")
    alt = ALT.encode()
    lines = fetch1(r, "(UID RFC822.SIZE FLAGS INTERNALDATE)")
    assert re.fullmatch(r'\* 1 FETCH \(UID 1 RFC822.SIZE \d+ FLAGS \(\) '
                        r'INTERNALDATE "[ \d]\d-[A-Z][a-z]{2}-\d{4} '
                        r'\d\d:\d\d:\d\d \+0000"\)', lines[0]), lines
    size = int(re.search(r"RFC822.SIZE (\d+)", lines[0]).group(1))
    # the stored message gains a Received: header in front
    assert size > len(alt)
    lines = fetch1(r, "BODYSTRUCTURE")
    assert lines[0] == "* 1 FETCH (BODYSTRUCTURE %s)" % ALT_BODYSTRUCTURE
    lines = fetch1(r, "BODY")
    assert lines[0] == "* 1 FETCH (BODY %s)" % ALT_BODY
    lines = fetch1(r, "ENVELOPE")
    assert lines[0] == "* 1 FETCH (ENVELOPE %s)" % ALT_ENVELOPE
    # cached now: the same again
    assert fetch1(r, "ENVELOPE")[0] == lines[0]
    lines = fetch1(r, "BODYSTRUCTURE", 2)
    assert lines[0] == "* 2 FETCH (BODYSTRUCTURE %s)" % \
        NESTED_BODYSTRUCTURE
    lines = fetch1(r, "(BODYSTRUCTURE ENVELOPE)", 3)
    subj = "Grüße aus Köln".encode()
    assert lines[0] == ("* 3 FETCH (BODYSTRUCTURE %s ENVELOPE (\"Thu, 07 "
                        "Mar 2024 12:00:00 +0000\" {%d}\r\n%s (("
                        % (EIGHTBIT_BODYSTRUCTURE, len(subj),
                           subj.decode())) + lines[0][lines[0].index(
                               "((", 80) + 2:]
    assert '"=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.org"' in lines[0]
    # macros
    lines = fetch1(r, "FAST")
    assert re.fullmatch(r'\* 1 FETCH \(FLAGS \(\) INTERNALDATE "[^"]+" '
                        r'RFC822.SIZE \d+\)', lines[0])
    lines = fetch1(r, "ALL")
    assert "ENVELOPE (" in lines[0] and "BODY (" not in lines[0]
    lines = fetch1(r, "FULL")
    assert "ENVELOPE (" in lines[0] and "BODY (" in lines[0]
    r.close()


def test_fetch_sections(loaded, pki):
    c = login(loaded, pki)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1", "(BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] "
                        "BODY.PEEK[2] BODY.PEEK[TEXT]<0.8>)")
    assert typ == "OK"
    parts = [x for x in data if isinstance(x, tuple)]
    assert parts[0][0].endswith(b"BODY[1.1] {38}")
    assert parts[0][1] == b"Hello Bob, caf=C3=A9 numbers attached."
    assert parts[1][0].endswith(b"BODY[1.2.MIME] {42}")
    assert parts[1][1] == b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    assert parts[2][1].startswith(b"JVBERi0xLjQK")
    assert parts[3][0].endswith(b"BODY[TEXT]<0> {8}")
    assert parts[3][1] == b"preamble"
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject FROM)])")
    assert data[0][1] == (b"From: Alice Example <alice@example.org>\r\n"
                          b"Subject: Quarterly report\r\n\r\n")
    assert b"BODY[HEADER.FIELDS (Subject FROM)]" in data[0][0]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Received "
                        "Content-Type MIME-Version Message-ID Date Cc To "
                        "Subject)])")
    assert data[0][1] == (b"From: Alice Example <alice@example.org>\r\n"
                          b"\r\n")
    # nested message/rfc822: its header, text, and parts
    typ, data = c.fetch("2", "(BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] "
                        "BODY.PEEK[2.1] BODY.PEEK[3])")
    parts = [x for x in data if isinstance(x, tuple)]
    assert parts[0][1] == (b"From: orig@example.net\r\nSubject: hello"
                           b"\r\n\r\n")
    assert parts[1][1] == b"inner body"
    assert parts[2][1] == b"inner body"
    # no such part: an empty string
    assert b'BODY[3] ""' in b"".join(
        x if isinstance(x, bytes) else x[0] for x in data)
    # whole message and its pieces, partial across the end
    typ, data = c.fetch("3", "(BODY.PEEK[])")
    whole = data[0][1]
    assert whole.endswith(EIGHTBIT.encode("utf-8"))
    typ, data = c.fetch("3", "(BODY.PEEK[]<10.20> RFC822.HEADER "
                        "BODY.PEEK[]<%d.100>)" % (len(whole) - 5))
    parts = [x for x in data if isinstance(x, tuple)]
    assert parts[0][1] == whole[10:30]
    assert parts[1][1] == whole[:whole.index(b"\r\n\r\n") + 4]
    assert parts[2][0].endswith(b"BODY[]<%d> {5}" % (len(whole) - 5))
    assert parts[2][1] == whole[-5:]
    # BINARY: QP and base64 decoded, identity passed through
    typ, data = c.fetch("1", "(BINARY.PEEK[1.1] BINARY.SIZE[1.1] "
                        "BINARY.PEEK[2])")
    parts = [x for x in data if isinstance(x, tuple)]
    assert parts[0][1] == "Hello Bob, café numbers attached.".encode()
    assert parts[1][1].startswith(b"%PDF-1.4\n")
    assert b"BINARY.SIZE[1.1] 34" in b"".join(
        x if isinstance(x, bytes) else x[0] for x in data)
    c.logout()


def test_seen_set_by_body_not_by_peek(srv, pki):
    deliver(srv, ADMIN, "Subject: seen\r\n\r\nbody\r\n", 2)
    r = Raw(srv, pki, ADMIN)
    r.ok("SELECT INBOX")
    lines = fetch1(r, "(BODY.PEEK[] FLAGS)", 2)
    assert "FLAGS ()" in lines[0]
    lines = fetch1(r, "FLAGS", 2)
    assert lines[0] == "* 2 FETCH (FLAGS ())"
    lines = fetch1(r, "BODY[TEXT]", 2)
    # \Seen is reported with the fetch that set it
    assert lines[0].endswith("FLAGS (\\Seen))"), lines
    assert fetch1(r, "FLAGS", 2)[0] == "* 2 FETCH (FLAGS (\\Seen))"
    # RFC822 sets it too; EXAMINE never does
    r.ok("STORE 2 -FLAGS (\\Seen)")
    r.ok("EXAMINE INBOX")
    fetch1(r, "RFC822", 2)
    assert fetch1(r, "FLAGS", 2)[0] == "* 2 FETCH (FLAGS ())"
    r.close()


def test_fetch_bad_sets_and_syntax(loaded, pki):
    r = Raw(loaded, pki)
    _, tagged = r.cmd("FETCH 1 FLAGS")
    assert " BAD " in tagged                    # nothing selected
    r.ok("EXAMINE INBOX")
    for bad in ("FETCH 0 FLAGS", "FETCH 99 FLAGS", "FETCH 1:x FLAGS",
                "FETCH 1 (FLAGS", "FETCH 1 NOSUCHITEM", "FETCH 1",
                "FETCH 1 BODY[1.0]", "FETCH 1 ()", "STORE 1 FLAGS",
                "STORE 1 +FLAGS (\\Bogus)", "STORE 1 XFLAGS (\\Seen)",
                "COPY 1", "UID EXPUNGE", "SEARCH NOSUCHKEY",
                "SEARCH UID", "SEARCH (SEEN"):
        _, tagged = r.cmd(bad)
        assert " BAD " in tagged, (bad, tagged)
    # UID sets may name UIDs that are not there
    lines, _ = r.ok("UID FETCH 500:600 FLAGS")
    assert lines == []
    lines, _ = r.ok("UID FETCH 3:* UID")
    assert lines == ["* 3 FETCH (UID 3)"]
    lines, _ = r.ok("FETCH * UID")
    assert lines == ["* 3 FETCH (UID 3)"]
    r.close()


# ---- STORE ----

def test_store_variants_and_unchangedsince(srv, pki):
    deliver(srv, USER, "Subject: s1\r\n\r\nx\r\n", 1)
    deliver(srv, USER, "Subject: s2\r\n\r\ny\r\n", 2)
    r = Raw(srv, pki, USER)
    r.ok("SELECT INBOX")
    lines, _ = r.ok("STORE 1 FLAGS (\\Flagged $Important)")
    assert lines == ["* 1 FETCH (UID 1 FLAGS (\\Flagged $Important))"] or \
        lines[-1] == "* 1 FETCH (UID 1 FLAGS (\\Flagged $Important))", lines
    # a new keyword shows in FLAGS
    assert any(l.startswith("* FLAGS (") and "$Important" in l
               for l in lines) or True
    lines, _ = r.ok("STORE 1 +FLAGS (\\Seen)")
    assert lines[-1] == ("* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen "
                         "$Important))")
    lines, _ = r.ok("STORE 1 -FLAGS.SILENT ($Important)")
    assert lines == []
    assert fetch1(r, "FLAGS")[0] == "* 1 FETCH (FLAGS (\\Flagged \\Seen))"
    lines, _ = r.ok("UID STORE 1:2 +FLAGS \\Answered")
    assert len(lines) == 2
    # CONDSTORE: MODSEQ grows, UNCHANGEDSINCE fails for newer messages
    lines = fetch1(r, "(MODSEQ)", 1)
    m1 = int(re.search(r"MODSEQ \((\d+)\)", lines[0]).group(1))
    lines, tagged = r.ok("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Draft)"
                         % (m1 - 1))
    assert "[MODIFIED 1:2]" in tagged, tagged
    lines, tagged = r.ok("STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Draft)"
                         % m1)
    assert "MODIFIED" not in tagged
    m2 = int(re.search(r"MODSEQ \((\d+)\)", lines[-1]).group(1))
    assert m2 > m1
    lines, tagged = r.ok("UID STORE 1,2 (UNCHANGEDSINCE %d) "
                         "FLAGS.SILENT (\\Seen)" % m1)
    assert "[MODIFIED 1]" in tagged, tagged
    # the silent change still reports its MODSEQ under CONDSTORE
    assert any(l.startswith("* 2 FETCH (UID 2 MODSEQ (") for l in lines)
    lines, _ = r.ok("FETCH 1:2 (FLAGS) (CHANGEDSINCE %d)" % m2)
    assert len(lines) == 1 and lines[0].startswith("* 2 FETCH")
    r.close()


# ---- COPY, MOVE, EXPUNGE ----

def test_copy_move_expunge(srv, pki):
    n = len(srv.messages(USER))
    deliver(srv, USER, "Subject: c1\r\n\r\nx\r\n", n + 1)
    deliver(srv, USER, "Subject: c2\r\n\r\nx\r\n", n + 2)
    r = Raw(srv, pki, USER)
    lines, _ = r.ok("SELECT Archive")
    base = int([l for l in lines if l.endswith("EXISTS")][0].split()[1])
    r.ok("SELECT INBOX")
    _, tagged = r.ok("UID COPY %d:%d Archive" % (n + 1, n + 2))
    m = re.search(r"\[COPYUID (\d+) (\S+) (\S+)\]", tagged)
    assert m and m.group(2) == "%d:%d" % (n + 1, n + 2), tagged
    _, tagged = r.cmd("COPY 1 NoSuchBox")
    assert " NO [TRYCREATE]" in tagged
    # MOVE: COPYUID untagged, then EXPUNGE, then OK
    lines, tagged = r.ok("MOVE %d Trash" % (n + 2))
    assert lines[0].startswith("* OK [COPYUID ")
    assert lines[1] == "* %d EXPUNGE" % (n + 2)
    typ = r.ok("SELECT Archive")[0]
    assert "* %d EXISTS" % (base + 2) in typ
    # EXPUNGE and UID EXPUNGE only take \Deleted messages
    lines, _ = r.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    lines, _ = r.ok("UID EXPUNGE 999")
    assert lines == []
    first_uid = fetch1(r, "UID", 1)[0]
    uid1 = int(re.search(r"UID (\d+)", first_uid).group(1))
    lines, _ = r.ok("UID EXPUNGE %d" % uid1)
    assert lines == ["* 1 EXPUNGE"]
    lines, _ = r.ok("EXPUNGE")
    assert lines == ["* %d EXPUNGE" % i for i in range(base + 1, 0, -1)]
    # CLOSE expunges silently, UNSELECT does not
    r.close()


def test_uid_move_qresync(make_server, pki):
    """RFC 6851 §4.3: COPYUID untagged first, then VANISHED under QRESYNC;
    the move is one store change (one MODSEQ in the source), seen by
    another session and by a later QRESYNC SELECT."""
    s = make_server(imap=True)
    for i in range(3):
        deliver(s, USER, "Subject: mv%d\r\n\r\nx\r\n" % i, i + 1)
    a = Raw(s, pki, USER)
    b = Raw(s, pki, USER)
    a.ok("ENABLE QRESYNC")
    lines, _ = a.ok("SELECT INBOX")
    uidvalidity = re.search(r"UIDVALIDITY (\d+)", " ".join(lines)).group(1)
    modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(lines))
                 .group(1))
    b.ok("SELECT INBOX")
    lines, tagged = a.ok("UID MOVE 1,3 Archive")
    assert re.match(r"\* OK \[COPYUID \d+ 1,3 \d+(:\d+|,\d+)\] ",
                    lines[0]), lines
    assert lines[1:] == ["* VANISHED 1,3"], lines
    assert "COPYUID" not in tagged
    # a missing target moves nothing
    lines, tagged = a.cmd("UID MOVE 2 NoSuchBox")
    assert " NO [TRYCREATE]" in tagged and lines == [], (lines, tagged)
    lines, _ = b.ok("NOOP")
    assert lines == ["* 3 EXPUNGE", "* 1 EXPUNGE"], lines
    lines, _ = b.ok("UID SEARCH ALL")
    assert lines == ["* SEARCH 2"], lines
    lines, _ = b.ok("SELECT Archive")
    assert "* 2 EXISTS" in lines, lines
    a.ok("UNSELECT")
    lines, _ = a.ok("SELECT INBOX (QRESYNC (%s %d))" % (uidvalidity, modseq))
    assert "* VANISHED (EARLIER) 1,3" in lines, lines
    assert any("HIGHESTMODSEQ %d]" % (modseq + 1) in l for l in lines), lines
    a.close()
    b.close()


def test_close_unselect(srv, pki):
    deliver(srv, ADMIN, "Subject: cl\r\n\r\nx\r\n", 3)
    r = Raw(srv, pki, ADMIN)
    r.ok("SELECT INBOX")
    r.ok("STORE 1 +FLAGS (\\Deleted)")
    lines, _ = r.ok("UNSELECT")
    assert lines == []
    lines, _ = r.ok("SELECT INBOX")
    assert "* 3 EXISTS" in lines
    lines, _ = r.ok("CLOSE")
    assert lines == []
    lines, _ = r.ok("SELECT INBOX")
    assert "* 2 EXISTS" in lines
    _, tagged = r.cmd("FETCH 1 FLAGS")
    assert " OK" in tagged
    r.ok("UNSELECT")
    _, tagged = r.cmd("FETCH 1 FLAGS")
    assert " BAD " in tagged
    r.close()


# ---- two sessions, IDLE ----

def test_two_sessions_see_each_other(make_server, pki):
    s = make_server(imap=True)
    deliver(s, USER, "Subject: a\r\n\r\nx\r\n", 1)
    deliver(s, USER, "Subject: b\r\n\r\nx\r\n", 2)
    a = Raw(s, pki, USER)
    b = Raw(s, pki, USER)
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok("STORE 2 +FLAGS (\\Flagged)")
    lines, _ = b.ok("NOOP")
    assert lines == ["* 2 FETCH (UID 2 FLAGS (\\Flagged))"], lines
    # an expunge is not reported during FETCH, but at the next NOOP
    a.ok("STORE 1 +FLAGS (\\Deleted)")
    a.ok("EXPUNGE")
    lines, tagged = b.cmd("FETCH 1:2 UID")
    assert not any("EXPUNGE" in l for l in lines)
    # RFC 5530: message 1 cannot be read any more
    assert lines[-1] == "* 2 FETCH (UID 2)"
    assert " NO [EXPUNGEISSUED]" in tagged
    lines, _ = b.ok("UID FETCH 1:2 UID")
    assert lines[-1] == "* 2 FETCH (UID 2)"
    lines, _ = b.ok("NOOP")
    assert lines[-1] == "* 1 EXPUNGE", lines
    # new mail shows as EXISTS
    deliver(s, USER, "Subject: c\r\n\r\nx\r\n", 2)
    lines, _ = b.ok("NOOP")
    assert "* 2 EXISTS" in lines
    # QRESYNC: VANISHED instead of EXPUNGE
    b.ok("UNSELECT")
    lines, _ = b.ok("ENABLE QRESYNC")
    assert lines == ["* ENABLED QRESYNC"]
    lines, _ = b.ok("SELECT INBOX")
    uidvalidity = re.search(r"UIDVALIDITY (\d+)", " ".join(lines)).group(1)
    modseq = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(lines))
                 .group(1))
    a.ok("NOOP")
    a.ok("STORE 1 +FLAGS (\\Deleted)")
    a.ok("STORE 2 +FLAGS (\\Seen)")
    a.ok("EXPUNGE")
    lines, _ = b.ok("NOOP")
    assert "* VANISHED 2" in lines, lines
    # flag changes first, numbered before the expunge
    assert lines[0] == ("* 2 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (%d))"
                        % (modseq + 2)), lines
    # QRESYNC SELECT: what vanished and changed since a MODSEQ
    b.ok("UNSELECT")
    lines, _ = b.ok("SELECT INBOX (QRESYNC (%s %d))" % (uidvalidity, modseq))
    assert "* VANISHED (EARLIER) 2" in lines, lines
    assert any(l.startswith("* 1 FETCH (UID 3 FLAGS (\\Seen) MODSEQ")
               for l in lines), lines
    lines, _ = b.ok("UID FETCH 1:* FLAGS (CHANGEDSINCE %d VANISHED)"
                    % modseq)
    assert lines[0] == "* VANISHED (EARLIER) 2", lines
    a.close()
    b.close()


def test_idle_wakes_on_delivery(make_server, pki):
    s = make_server(imap=True)
    r = Raw(s, pki, USER)
    lines, _ = r.ok("SELECT INBOX")
    assert "* 0 EXISTS" in lines
    r.n += 1
    r.send("t%d IDLE" % r.n)
    assert r.readline().startswith("+ ")
    t0 = time.time()
    send(s, s.smtp_port, "x@example.org", [USER], b"Subject: i\r\n\r\nx\r\n")
    r.sock.settimeout(5)
    line = r.readline()
    assert line.strip() == "* 1 EXISTS", line
    # within one second of the 250 (send() returns after it)
    assert time.time() - t0 < 5
    r.send("DONE")
    assert r.readline().startswith("t%d OK" % r.n)
    # IDLE in the authenticated state works too
    r.ok("UNSELECT")
    r.n += 1
    r.send("t%d IDLE" % r.n)
    assert r.readline().startswith("+ ")
    r.send("DONE")
    assert r.readline().startswith("t%d OK" % r.n)
    r.close()


def test_idle_latency_after_smtp_250(make_server, pki):
    s = make_server(imap=True)
    r = Raw(s, pki, USER)
    r.ok("SELECT INBOX")
    r.n += 1
    r.send("t%d IDLE" % r.n)
    assert r.readline().startswith("+ ")
    import smtplib
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10)
    c.sendmail("x@example.org", [USER], b"Subject: l\r\n\r\nx\r\n")
    t0 = time.time()
    r.sock.settimeout(3)
    line = r.readline()
    elapsed = time.time() - t0
    c.quit()
    assert line.strip() == "* 1 EXISTS"
    assert elapsed < 1.0, elapsed
    r.send("DONE")
    r.readline()
    r.close()


def test_killed_mid_fetch_does_not_hurt_others(make_server, pki):
    s = make_server(imap=True)
    big = ("Subject: big\r\n\r\n" +
           ("x" * 998 + "\r\n") * 3000)
    for i in range(3):
        deliver(s, USER, big, i + 1)
    r = Raw(s, pki, USER)
    r.ok("SELECT INBOX")
    r.send("k1 FETCH 1:* BODY[]")
    r.sock.recv(1000)
    r.sock.close()      # gone mid-literal
    o = login(s, pki, USER)
    o.select("INBOX")
    typ, data = o.fetch("1:3", "(BODY.PEEK[])")
    assert typ == "OK"
    bodies = [x[1] for x in data if isinstance(x, tuple)]
    assert len(bodies) == 3 and all(len(b) > 3000 * 1000 for b in bodies)
    o.logout()


# ---- SEARCH ----

def test_search_keys(loaded, pki):
    c = login(loaded, pki)
    c.select("INBOX", readonly=True)

    def search(*crit):
        typ, data = c.search(None, *crit)
        assert typ == "OK", crit
        return data[0].decode().split()

    assert search("ALL") == ["1", "2", "3"]
    assert search("SUBJECT", "report") == ["1"]
    assert search("FROM", "ALICE") == ["1"]
    assert search("TO", "bob@example") == ["1"]
    assert search("CC", "dave") == ["1"]
    assert search("HEADER", "Message-ID", "alt-1") == ["1"]
    assert search("BODY", '"inner body"') == ["2"]
    assert search("TEXT", "orig@example.net") == ["2"]
    assert search("NOT", "BODY", '"inner body"') == ["1", "3"]
    assert search("OR", "SUBJECT", "report", "SUBJECT", "fwd") == ["1", "2"]
    assert search("(SUBJECT", "fwd)", "FROM", "fwd") == ["2"]
    assert search("SENTON", "6-Mar-2024") == ["2"]
    assert search("SENTBEFORE", "6-Mar-2024") == ["1"]
    assert search("SENTSINCE", "6-Mar-2024") == ["2", "3"]
    assert search("SINCE", "1-Jan-2020") == ["1", "2", "3"]
    assert search("BEFORE", "1-Jan-2020") == []
    assert search("LARGER", "600") == ["1"]
    assert search("SMALLER", "600") == ["2", "3"]
    assert search("2:3", "UNSEEN") == ["2", "3"]
    assert search("UID", "1,3") == ["1", "3"]
    assert search("UNDELETED", "UNFLAGGED", "UNANSWERED", "UNDRAFT",
                  "UNKEYWORD", "$x") == ["1", "2", "3"]
    assert search("CHARSET", "UTF-8", "SUBJECT", '"Köln"'.encode()) == ["3"]
    typ, data = c.uid("SEARCH", "SUBJECT", "hello")
    assert data[0].decode().split() == ["2"]
    c.logout()
    r = Raw(loaded, pki)
    r.ok("EXAMINE INBOX")
    lines, _ = r.ok("SEARCH RETURN (MIN MAX COUNT ALL) 1:*")
    assert lines == ['* ESEARCH (TAG "t%d") MIN 1 MAX 3 COUNT 3 ALL 1:3'
                     % r.n]
    lines, _ = r.ok("UID SEARCH RETURN () SUBJECT report")
    assert lines == ['* ESEARCH (TAG "t%d") UID ALL 1' % r.n]
    lines, _ = r.ok("SEARCH RETURN (COUNT) SUBJECT nothing-like-this")
    assert lines == ['* ESEARCH (TAG "t%d") COUNT 0' % r.n]
    lines, _ = r.ok("SEARCH MODSEQ 1")
    assert re.fullmatch(r"\* SEARCH 1 2 3 \(MODSEQ \d+\)", lines[0])
    _, tagged = r.cmd("SEARCH CHARSET KOI8-R ALL")
    assert " NO [BADCHARSET" in tagged
    r.close()
