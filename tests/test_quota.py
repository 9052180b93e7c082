"""Storage quotas (issue #4): dovecot-quotas.cf and accounts.default_quota,
the IMAP QUOTA extension (RFC 9208) with GETQUOTAROOT/GETQUOTA in KiB,
NO [OVERQUOTA] for APPEND and COPY, SMTP 452 4.2.2 at RCPT time for a full
mailbox, deferral at delivery time, `mailfort quota set|del` on a running
server and `mailfort user list`.  Real clients: imaplib and smtplib."""
import imaplib
import math
import os
import re
import smtplib
import time

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"
OTHER = "other@example.test"
PW = PASSWORDS[USER]


def quota_server(make_server, quotas, default=None, start=True):
    s = make_server(imap=True, start=False)
    path = os.path.join(s.dir, "dovecot-quotas.cf")
    with open(path, "w") as f:
        f.write(quotas)
    os.chmod(path, 0o644)
    s.quotas_file = path
    extra = {"accounts.quotas": path}
    if default is not None:
        extra["accounts.default_quota"] = str(default)
    s.write_config(extra, {}, 2)
    if start:
        s.start()
    return s


def set_quotas(s, text):
    tmp = s.quotas_file + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, s.quotas_file)


def body(size, mark="x"):
    head = ("From: a@example.org\r\nSubject: %s\r\n\r\n" % mark).encode()
    line = b"y" * 70 + b"\r\n"
    n = max(0, size - len(head)) // len(line) + 1
    return head + line * n


def deliver(s, to, size=500):
    """Sends without SIZE=, so RCPT cannot refuse it for its size."""
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    try:
        c.ehlo("client.example")
        assert c.mail("sender@remote.example")[0] == 250
        assert c.rcpt(to)[0] == 250
        assert c.data(body(size))[0] == 250
    finally:
        c.quit()


def usage(s, addr):
    return sum(len(m) for m in s.messages(addr))


def login(s, pki, user=USER, pw=PW):
    c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(user, pw)
    return c


def rcpt(s, to, size=None):
    """The RCPT reply for to (MAIL with SIZE= when size is given)."""
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    try:
        c.ehlo("client.example")
        opts = ["SIZE=%d" % size] if size is not None else []
        assert c.mail("sender@remote.example", opts)[0] == 250
        return c.rcpt(to)
    finally:
        c.quit()


def rcpt_until(s, to, want, timeout=10):
    deadline = time.time() + timeout
    while True:
        code, msg = rcpt(s, to)
        if code == want or time.time() > deadline:
            return code, msg
        time.sleep(0.2)


def kib(n):
    return math.ceil(n / 1024)


# ---- IMAP: QUOTA extension ----

def test_getquotaroot_and_getquota_in_kib(make_server, pki):
    s = quota_server(make_server, "# quotas\n%s:1M\n" % USER)
    deliver(s, USER, 3000)
    deliver(s, USER, 5000)
    assert len(s.wait_messages(USER, 2)) == 2
    used = usage(s, USER)
    c = login(s, pki)
    caps = c.capability()[1][0].decode().split()
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps
    assert "QUOTASET" not in caps
    typ, dat = c.getquotaroot("INBOX")
    assert typ == "OK", dat
    assert dat[0] == [b'"INBOX" ""'], dat
    assert dat[1] == [b'"" (STORAGE %d 1024)' % kib(used)], dat
    typ, dat = c.getquota('""')
    assert typ == "OK" and dat == [b'"" (STORAGE %d 1024)' % kib(used)]
    # one root only; limits are the admin's
    typ, dat = c.getquota('"other"')
    assert typ == "NO" and b"[NONEXISTENT]" in dat[0]
    typ, dat = c._simple_command("SETQUOTA", '""', "(STORAGE 99999)")
    assert typ == "NO" and b"[NOPERM]" in dat[0]
    typ, dat = c._simple_command("GETQUOTAROOT", "NoSuchBox")
    assert typ == "NO" and b"[NONEXISTENT]" in dat[0], dat
    # selected state too, other mailboxes share the root
    c.select("INBOX")
    typ, dat = c.getquotaroot("Archive")
    assert typ == "OK" and dat[0] == [b'"Archive" ""']
    c.logout()


def test_unlimited_account_has_no_quota_root(make_server, pki):
    s = quota_server(make_server, "%s:1M\n" % USER)
    c = login(s, pki, OTHER, PASSWORDS[OTHER])
    typ, dat = c.getquotaroot("INBOX")
    assert typ == "OK" and dat[0] == [b'"INBOX"'], dat
    typ, dat = c.getquota('""')
    assert typ == "NO" and b"[NONEXISTENT]" in dat[0]
    c.logout()


def test_append_over_quota(make_server, pki):
    s = quota_server(make_server, "%s:8K\n" % USER)
    c = login(s, pki)
    # refused before the data (synchronizing literal: no "+")
    typ, dat = c.append("INBOX", None, None, body(9000))
    assert typ == "NO" and dat[0].startswith(b"[OVERQUOTA]"), dat
    typ, dat = c.append("INBOX", None, None, body(5000))
    assert typ == "OK", dat
    # 5000 used: another 5000 would pass 8 KiB
    typ, dat = c.append("INBOX", None, None, body(5000))
    assert typ == "NO" and dat[0].startswith(b"[OVERQUOTA]"), dat
    typ, dat = c.append("INBOX", None, None, body(1000))
    assert typ == "OK", dat
    # the session goes on; the refused messages left nothing behind
    typ, dat = c.select("INBOX")
    assert typ == "OK" and dat == [b"2"]
    msgdir = os.path.join(s.store_dir(USER), "msg")
    assert not [n for n in os.listdir(msgdir) if n.startswith("tmp")]
    c.logout()


def test_copy_over_quota_move_allowed(make_server, pki):
    s = quota_server(make_server, "%s:10K\n" % USER)
    c = login(s, pki)
    assert c.append("INBOX", None, None, body(6000))[0] == "OK"
    c.select("INBOX")
    typ, dat = c.copy("1", "Archive")
    assert typ == "NO" and dat[0].startswith(b"[OVERQUOTA]"), dat
    # MOVE adds nothing to the account: a full one may still file mail
    typ, dat = c._simple_command("MOVE", "1", "Archive")
    assert typ == "OK", dat
    c.select("Archive")
    typ, dat = c.search(None, "ALL")
    assert dat == [b"1"]
    c.logout()


# ---- SMTP: 452 4.2.2 at RCPT time ----

def test_rcpt_to_full_mailbox_gets_452_other_gets_250(make_server):
    s = quota_server(make_server, "%s:4K\n" % USER)
    deliver(s, USER, 3000)
    assert len(s.wait_messages(USER, 1)) == 1
    set_quotas(s, "%s:2K\n" % USER)    # now over its quota: full
    assert rcpt_until(s, USER, 452)[0] == 452
    time.sleep(1.5)                 # the other worker's refresh too
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    code, msg = c.rcpt(USER)
    assert code == 452 and msg.startswith(b"4.2.2"), (code, msg)
    assert b"Mailbox full" in msg
    code, msg = c.rcpt(OTHER)
    assert code == 250, (code, msg)
    code, msg = c.data(body(300, "for-other"))
    assert code == 250, (code, msg)
    c.quit()
    msgs = s.wait_messages(OTHER, 1)
    assert len(msgs) == 1 and b"for-other" in msgs[0]
    assert len(s.messages(USER)) == 1
    assert "reason=over-quota" in s.log()


def test_size_parameter_and_default_quota(make_server):
    # default 4 KiB for accounts without a line; 0 on a line: unlimited
    s = quota_server(make_server, "%s:0\n" % OTHER, default=4096)
    code, msg = rcpt(s, USER, size=5000)
    assert code == 452 and msg.startswith(b"4.2.2"), (code, msg)
    assert rcpt(s, USER, size=3000)[0] == 250
    assert rcpt(s, OTHER, size=10 ** 7)[0] == 250
    # smtplib announces SIZE: refused at RCPT, nothing bounced
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    try:
        c.sendmail("sender@remote.example", [USER], body(6000))
        assert False, "accepted"
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients[USER][0] == 452
    finally:
        c.close()


def test_delivery_over_quota_stays_queued(make_server):
    s = quota_server(make_server, "%s:2K\n" % USER)
    # no SIZE=: RCPT cannot know, the runner defers instead of storing
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    assert c.rcpt(USER)[0] == 250
    assert c.data(body(5000))[0] == 250
    c.quit()
    deadline = time.time() + 10
    while "reason=over-quota" not in s.log() and time.time() < deadline:
        time.sleep(0.1)
    assert re.search(r"local delivery to=<%s> result=deferred "
                     r"reason=over-quota quota=2048 used=0 size=\d+" %
                     re.escape(USER), s.log()), s.log()[-3000:]
    assert s.messages(USER) == []
    rows = s.queue_rows()
    assert [(a, st) for _, a, _, st in rows] == [(USER, 0)]
    out = s.cli("queue", "list").stdout
    assert "mailbox full" in out, out


# ---- the admin side ----

def test_quota_set_live_and_user_list(make_server):
    s = quota_server(make_server, "")
    deliver(s, USER, 3000)
    assert len(s.wait_messages(USER, 1)) == 1
    used = usage(s, USER)
    assert rcpt(s, USER)[0] == 250

    r = s.cli("quota", "set", USER, "2K")
    assert r.returncode == 0, r.stderr
    assert "set quota of %s to 2K" % USER in r.stdout
    with open(s.quotas_file) as f:
        assert f.read() == "%s:2K\n" % USER
    # every worker re-reads the file on its own within about a second
    code, msg = rcpt_until(s, USER, 452)
    assert code == 452 and msg.startswith(b"4.2.2"), (code, msg)
    time.sleep(1.5)                 # the other worker's refresh too
    for _ in range(6):
        assert rcpt(s, USER)[0] == 452

    r = s.cli("user", "list")
    assert r.returncode == 0, r.stderr
    lines = {l.split()[0]: l for l in r.stdout.splitlines()}
    assert lines[USER] == "%s quota=2048 used=%d messages=1" % (USER, used)
    assert lines[OTHER] == "%s quota=unlimited used=0 messages=0" % OTHER
    # listing does not create stores
    assert not os.path.exists(s.store_dir(OTHER))

    r = s.cli("quota", "set", "ghost@example.test", "1M")
    assert r.returncode == 1 and "no user" in r.stderr
    r = s.cli("quota", "set", USER, "lots")
    assert r.returncode == 2 and "invalid size" in r.stderr
    r = s.cli("quota", "del", USER)
    assert r.returncode == 0 and "deleted quota" in r.stdout
    code, msg = rcpt_until(s, USER, 250)
    assert code == 250, (code, msg)
    r = s.cli("quota", "del", USER)
    assert r.returncode == 1


def test_bad_quota_lines_logged_and_ignored(make_server, pki):
    s = quota_server(make_server, "# quotas\n"
                     "garbage without a colon\n"
                     "%s:lots\n"
                     "%s:1K\n"
                     "@example.test:5M\n" % (OTHER, USER))
    path = s.quotas_file
    c = login(s, pki)
    typ, dat = c.getquota('""')
    assert typ == "OK" and dat == [b'"" (STORAGE 0 1)'], dat
    c.logout()
    c = login(s, pki, OTHER, PASSWORDS[OTHER])
    assert c.getquota('""')[0] == "NO"          # its bad line: no quota
    c.logout()
    # read (and complained about) when a process first needs it
    log = s.log()
    assert "%s:2: no ':' between address and size" % path in log
    assert "%s:3: bad quota size for %s" % (path, OTHER) in log
    assert "%s:5: bad quota address" % path in log
    # a later good version replaces it without a restart
    set_quotas(s, "%s:3K\n" % OTHER)
    deadline = time.time() + 10
    while True:
        c = login(s, pki, OTHER, PASSWORDS[OTHER])
        typ, dat = c.getquota('""')
        c.logout()
        if typ == "OK" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert typ == "OK" and dat == [b'"" (STORAGE 0 3)'], dat
