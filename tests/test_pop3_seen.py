"""POP3 RETR marks a message \\Seen in the store at QUIT (as Dovecot does;
RFC 1939 §6 leaves the UPDATE state to the server): TOP only peeks, DELE
wins over RETR, RSET forgets the RETRs, and a session that ends without
QUIT changes nothing."""
import imaplib
import poplib
import re
import smtplib
import time

import pytest

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"
PW = PASSWORDS[USER]
LOCK_WAIT = 10  # seconds for a dropped session to release the maildrop


@pytest.fixture
def both(make_server):
    return make_server(imap=True, pop3=True)


def deliver(s, n):
    c = smtplib.SMTP("127.0.0.1", s.smtp_port)
    for i in range(n):
        c.sendmail("a@remote.example", [USER],
                   ("Subject: m%d\r\n\r\nbody %d\r\n" % (i, i)).encode())
    c.quit()
    assert len(s.wait_messages(USER, n)) == n


def pop3(s, pki):
    """Logs in, waiting while a dropped session still holds the lock."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        p = poplib.POP3_SSL("127.0.0.1", s.pop3s_port,
                            context=client_ctx(pki))
        p.user(USER)
        try:
            p.pass_(PW)
            return p
        except poplib.error_proto as e:
            p.close()
            if b"IN-USE" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def seen_uids(s, pki):
    """The UIDs of INBOX with \\Seen, read without changing anything."""
    c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(USER, PW)
    typ, _ = c.select("INBOX", readonly=True)
    assert typ == "OK"
    typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    c.logout()
    seen = set()
    for line in data:
        text = line.decode() if isinstance(line, bytes) else line[0].decode()
        m = re.search(r"UID (\d+)", text)
        if m and "\\Seen" in text:
            seen.add(int(m.group(1)))
    return seen


def pop3_uids(p):
    """Message number -> IMAP UID (UIDL is "<uidvalidity>.<uid>")."""
    out = {}
    for line in p.uidl()[1]:
        n, uidl = line.split()
        out[int(n)] = int(uidl.split(b".")[1])
    return out


def test_retr_then_quit_sets_seen(both, pki):
    deliver(both, 3)
    p = pop3(both, pki)
    uids = pop3_uids(p)
    p.retr(2)
    p.quit()
    assert seen_uids(both, pki) == {uids[2]}


def test_top_only_not_seen(both, pki):
    deliver(both, 2)
    p = pop3(both, pki)
    p.top(1, 0)
    p.top(2, 5)
    p.quit()
    assert seen_uids(both, pki) == set()


def test_no_quit_not_seen(both, pki):
    deliver(both, 2)
    p = pop3(both, pki)
    p.retr(1)
    p.close()  # the connection drops: no UPDATE state (RFC 1939 §6)
    p = pop3(both, pki)  # the old session is gone once this logs in
    p.quit()
    assert seen_uids(both, pki) == set()


def test_dele_wins_rset_forgets(both, pki):
    deliver(both, 3)
    p = pop3(both, pki)
    uids = pop3_uids(p)
    p.retr(1)
    p.rset()  # forgets the RETR of 1
    p.retr(2)
    p.dele(2)  # deleted: nothing to flag
    p.retr(3)
    p.quit()
    assert seen_uids(both, pki) == {uids[3]}
    p = pop3(both, pki)
    assert p.stat()[0] == 2
    p.quit()
