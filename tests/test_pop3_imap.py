"""POP3 and IMAP on one account agree on what exists (issue #5): the
same INBOX, UIDL and UID in step, a POP3 DELE+QUIT seen by an IMAP
session at once, an IMAP expunge seen by the next POP3 login."""
import imaplib
import poplib
import smtplib

import pytest

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"
PW = PASSWORDS[USER]


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
    p = poplib.POP3_SSL("127.0.0.1", s.pop3s_port, context=client_ctx(pki))
    p.user(USER)
    p.pass_(PW)
    return p


def imap(s, pki):
    c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(USER, PW)
    return c


def imap_uids(c):
    typ, data = c.uid("SEARCH", None, "ALL")
    assert typ == "OK"
    return [int(x) for x in data[0].split()]


def test_same_messages_same_identities(both, pki):
    deliver(both, 3)
    c = imap(both, pki)
    typ, data = c.select("INBOX")
    assert int(data[0]) == 3
    typ, data = c.status("INBOX", "(UIDVALIDITY)")
    uidvalidity = int(data[0].decode().split("UIDVALIDITY ")[1].rstrip(")"))
    uids = imap_uids(c)
    p = pop3(both, pki)
    count, size = p.stat()
    assert count == 3
    uidl = [line.split()[1].decode() for line in p.uidl()[1]]
    # UIDL is "<uidvalidity>.<uid>": the same messages, in the same order
    assert uidl == ["%d.%d" % (uidvalidity, u) for u in uids]
    # and the same bytes
    for i, u in enumerate(uids, 1):
        body = b"\r\n".join(p.retr(i)[1]) + b"\r\n"
        typ, data = c.uid("FETCH", str(u), "(BODY.PEEK[])")
        assert data[0][1] == body
    p.quit()
    c.logout()


def test_pop3_delete_seen_by_imap_at_once(both, pki):
    deliver(both, 3)
    c = imap(both, pki)
    c.select("INBOX")
    before = imap_uids(c)
    p = pop3(both, pki)
    p.dele(2)
    p.quit()
    # the open IMAP session learns of the expunge at its next NOOP
    typ, data = c.noop()
    assert typ == "OK"
    expunges = c.untagged_responses.get("EXPUNGE", [])
    assert expunges == [b"2"], c.untagged_responses
    assert imap_uids(c) == [before[0], before[2]]
    c.logout()


def test_imap_expunge_seen_by_next_pop3_login(both, pki):
    deliver(both, 2)
    c = imap(both, pki)
    c.select("INBOX")
    c.store("1", "+FLAGS", "(\\Deleted)")
    c.expunge()
    left = imap_uids(c)
    c.logout()
    p = pop3(both, pki)
    assert p.stat()[0] == 1
    uid = int(p.uidl()[1][0].split()[1].decode().split(".")[1])
    assert [uid] == left
    p.quit()
