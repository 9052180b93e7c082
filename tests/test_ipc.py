"""Master fan-out (DESIGN.md §2): a change to an account's mailboxes in
one child (local delivery by the queue runner, a POP3 expunge) reaches
every worker at once, the base for IMAP IDLE wake-ups."""
import poplib
import re
import smtplib
import time

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"


def workers_told(server, account, after):
    pids = set()
    for line in server.log().splitlines()[after:]:
        m = re.search(r"worker\[(\d+)\] mailbox change account=(\S+)",
                      line)
        if m and m.group(2) == account:
            pids.add(m.group(1))
    return pids


def wait_told(server, account, after, n, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = workers_told(server, account, after)
        if len(pids) >= n:
            return pids
        time.sleep(0.05)
    return workers_told(server, account, after)


def test_delivery_is_announced_to_every_worker(make_server):
    s = make_server(workers=2)
    mark = len(s.log().splitlines())
    t0 = time.time()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port)
    c.sendmail("a@remote.example", [USER], b"Subject: x\r\n\r\nhi\r\n")
    c.quit()
    pids = wait_told(s, USER, mark, 2)
    assert len(pids) == 2, s.log()[-3000:]
    assert time.time() - t0 < 2.0
    # accounts that did not change are not announced
    assert not workers_told(s, "other@example.test", mark)


def test_pop3_expunge_is_announced(make_server, pki):
    s = make_server(workers=2, pop3=True)
    c = smtplib.SMTP("127.0.0.1", s.smtp_port)
    c.sendmail("a@remote.example", [USER], b"Subject: x\r\n\r\nhi\r\n")
    c.quit()
    assert len(s.wait_messages(USER, 1)) == 1
    time.sleep(0.3)
    mark = len(s.log().splitlines())
    p = poplib.POP3_SSL("127.0.0.1", s.pop3s_port, context=client_ctx(pki))
    p.user(USER)
    p.pass_(PASSWORDS[USER])
    p.dele(1)
    p.quit()
    assert len(wait_told(s, USER, mark, 2)) == 2
