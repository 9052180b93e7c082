"""`mailfort queue list | show | flush | delete | bounce` against a real
server's queue: a message submitted with AUTH to a remote address stays
queued (the DNS resolver is a loopback port nobody answers on, so it can
never leave this host), and the commands are checked against the queue
database and the spool.

The server is stopped before the commands that change the queue, so that
the queue runner cannot act on the rows in between (turning status 3
into a DSN is the runner's test, not this one's).
"""
import os
import re
import smtplib
import sqlite3

from conftest import client_ctx, free_port

USER = "user@example.test"
PW = "secret-user"
REMOTE = "someone@remote.example"
QUEUE_ID = re.compile(r"^[0-9A-F]{20}$")


def queue_server(make_server):
    # retry_min keeps a failed first attempt from being retried meanwhile
    return make_server(extra={"dns.resolver": "127.0.0.1:%d" % free_port(),
                              "queue.retry_min": "3600"})


def submit(s, pki, to, subject):
    c = smtplib.SMTP("127.0.0.1", s.submission_port, timeout=30)
    try:
        c.starttls(context=client_ctx(pki))
        c.login(USER, PW)
        c.sendmail(USER, to, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
                   "\r\nBODY-LINE-NOT-SHOWN\r\n" % (USER, to[0], subject))
    finally:
        c.quit()


def db_path(s):
    return os.path.join(s.data_dir, "queue", "queue.db")


def queued_id(s, addr=REMOTE):
    con = sqlite3.connect(db_path(s), timeout=10)
    try:
        rows = con.execute("SELECT msg_id FROM recipient WHERE addr = ?",
                           (addr,)).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, rows
    return rows[0][0]


def rcpt_row(s, msg_id):
    con = sqlite3.connect(db_path(s), timeout=10)
    try:
        return con.execute("SELECT status, attempts, next_try, last_error "
                           "FROM recipient WHERE msg_id = ?",
                           (msg_id,)).fetchall()
    finally:
        con.close()


def db_exec(s, sql, args=()):
    con = sqlite3.connect(db_path(s), timeout=10)
    try:
        con.execute(sql, args)
        con.commit()
    finally:
        con.close()


def test_list_and_show_a_remote_message(make_server, pki):
    s = queue_server(make_server)
    submit(s, pki, [REMOTE], "queue cli show")
    msg_id = queued_id(s)
    assert QUEUE_ID.match(msg_id)

    r = s.cli("queue", "list")
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith(msg_id)]
    assert len(line) == 1, r.stdout
    assert "from=<%s>" % USER in line[0]
    assert "to=<%s> remote pending" % REMOTE in line[0]
    assert "1 recipient queued" in r.stdout

    r = s.cli("queue", "show", msg_id)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    size = os.path.getsize(os.path.join(s.data_dir, "spool", "msg", msg_id))
    assert "id: %s\n" % msg_id in out
    assert "sender: <%s>\n" % USER in out
    assert "size: %d\n" % size in out
    assert re.search(r"^created: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d "
                     r"[+-]\d{4}$", out, re.M), out
    assert "body: 7bit\n" in out
    assert "smtputf8: no\n" in out
    assert "auth: %s\n" % USER in out
    assert re.search(r"^recipient: <%s> remote pending attempts=\d+ "
                     r"next_try=" % re.escape(REMOTE), out, re.M), out
    # then the header section, without the body
    head = out.split("\n\n", 1)
    assert len(head) == 2, out
    assert "Subject: queue cli show\n" in head[1]
    assert "\nTo: <%s>\n" % REMOTE in head[1]
    assert head[1].startswith("Received: ")
    assert "\r" not in out
    assert "BODY-LINE-NOT-SHOWN" not in out


def test_flush_bounce_delete(make_server, pki):
    s = queue_server(make_server)
    submit(s, pki, [REMOTE], "queue cli first")
    first = queued_id(s)
    submit(s, pki, ["other@remote.example"], "queue cli second")
    second = queued_id(s, "other@remote.example")
    s.stop()

    # flush: everything pending is due now
    db_exec(s, "UPDATE recipient SET next_try = 4102444800")
    r = s.cli("queue", "flush")
    assert r.returncode == 0, r.stderr
    assert "2 pending recipients due now" in r.stdout
    assert [row[2] for row in rcpt_row(s, first)] == [0]
    assert [row[2] for row in rcpt_row(s, second)] == [0]

    # bounce: pending recipients become "to bounce", due now
    db_exec(s, "UPDATE recipient SET next_try = 4102444800")
    r = s.cli("queue", "bounce", first)
    assert r.returncode == 0, r.stderr
    assert "%s: 1 recipient to bounce" % first in r.stdout
    assert [(row[0], row[2]) for row in rcpt_row(s, first)] == [(3, 0)]
    assert [row[0] for row in rcpt_row(s, second)] == [0]
    r = s.cli("queue", "list")
    assert "to=<%s> remote to-bounce" % REMOTE in r.stdout
    r = s.cli("queue", "show", first)
    assert "remote to-bounce" in r.stdout
    # nothing pending any more: nothing to do
    r = s.cli("queue", "bounce", first)
    assert r.returncode == 1
    assert "no pending recipients" in r.stderr

    # last_error is remote text: control characters are escaped
    db_exec(s, "UPDATE recipient SET last_error = ? WHERE msg_id = ?",
            ("451 \x1b[2Jgray\r\nlisted", second))
    r = s.cli("queue", "show", second)
    assert "error=451 \\x1B[2Jgray\\x0D\\x0Alisted\n" in r.stdout
    assert "\x1b" not in r.stdout
    r = s.cli("queue", "list")
    assert "error=451 \\x1B[2Jgray" in r.stdout

    # delete: the rows and the spool file go
    spool = os.path.join(s.data_dir, "spool", "msg", second)
    assert os.path.exists(spool)
    r = s.cli("queue", "delete", second)
    assert r.returncode == 0, r.stderr
    assert "deleted %s" % second in r.stdout
    assert not os.path.exists(spool)
    assert rcpt_row(s, second) == []
    for cmd in ("show", "delete", "bounce"):
        r = s.cli("queue", cmd, second)
        assert r.returncode == 1, (cmd, r)
        assert "no such message: %s" % second in r.stderr
    r = s.cli("queue", "list")
    assert second not in r.stdout
    assert "1 recipient queued" in r.stdout


def test_bad_ids_and_usage(make_server):
    s = queue_server(make_server)
    for bad in ("nothing", "../../queue/queue.db", "0" * 19,
                "0123456789abcdef0123", "0" * 21, "0" * 19 + "\x1b"):
        for cmd in ("show", "delete", "bounce"):
            r = s.cli("queue", cmd, bad)
            assert r.returncode == 2, (cmd, bad, r)
            assert "not a queue id" in r.stderr
            assert "\x1b" not in r.stderr
    unknown = "0" * 20
    for cmd in ("show", "delete", "bounce"):
        r = s.cli("queue", cmd, unknown)
        assert r.returncode == 1, (cmd, r)
        assert "no such message: %s" % unknown in r.stderr
    for args in (("queue",), ("queue", "show"), ("queue", "bounce"),
                 ("queue", "list", "extra"), ("queue", "frobnicate")):
        r = s.cli(*args)
        assert r.returncode == 2, (args, r)
        assert "usage: mailfort queue list | show ID | flush | delete ID "\
               "| bounce ID" in r.stderr
    r = s.cli("queue", "flush")
    assert r.returncode == 0, r.stderr
    assert "0 pending recipients due now" in r.stdout
