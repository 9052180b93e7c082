"""Local delivery end to end: what a message looks like once it is in a
user's store, alias and catch-all resolution, the Received trace header,
submission privacy, sender restrictions and the queue, all checked from
outside with smtplib and raw sockets."""
import os
import re
import smtplib
import socket
import time
import uuid

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"
OTHER = "other@example.test"
ADMIN = "admin@example.org"
PW = PASSWORDS[USER]


def marker():
    return "m-" + uuid.uuid4().hex


def body(mark, extra_headers=b""):
    return (b"From: <sender@remote.example>\r\n"
            b"Subject: " + mark.encode() + b"\r\n" + extra_headers +
            b"\r\n"
            b"line one " + mark.encode() + b"\r\n"
            b"..dot-stuffed line\r\n"
            b"last line\r\n")


def with_marker(server, addr, mark, n=1, timeout=15):
    """Messages of addr that contain mark, once n are there (or timeout)."""
    deadline = time.time() + timeout
    while True:
        found = [m for m in server.messages(addr) if mark.encode() in m]
        if len(found) >= n or time.time() > deadline:
            return found
        time.sleep(0.05)


def msg_files(server, addr, mark):
    """Paths of the files in addr's msg/ directory that contain mark."""
    d = os.path.join(server.store_dir(addr), "msg")
    out = []
    if not os.path.isdir(d):
        return out
    for name in os.listdir(d):
        p = os.path.join(d, name)
        with open(p, "rb") as f:
            if mark.encode() in f.read():
                out.append(p)
    return out


def our_received(msg):
    """Our Received header (the first header), unfolded to one line."""
    assert msg.startswith(b"Received: "), msg[:200]
    lines = msg.split(b"\r\n")
    out = [lines[0]]
    for l in lines[1:]:
        if l[:1] in (b" ", b"\t"):
            out.append(l)
        else:
            break
    return b" ".join(x.strip() for x in out).decode()


def headers_of(msg):
    return msg.split(b"\r\n\r\n", 1)[0]


def smtp25(server, helo="client.example"):
    c = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30,
                     local_hostname=helo)
    return c


def submit(server, pki, frm, to, data, helo="laptop.secret-helo.example"):
    """Authenticated submission on 587 (STARTTLS); returns DATA reply."""
    c = smtplib.SMTP("127.0.0.1", server.submission_port, timeout=30,
                     local_hostname=helo)
    c.starttls(context=client_ctx(pki))
    c.ehlo(helo)
    c.login(USER, PW)
    assert c.mail(frm)[0] == 250
    for r in to:
        code, msg = c.rcpt(r)
        assert code == 250, (r, code, msg)
    code, msg = c.data(data)
    c.quit()
    return code, msg


# ---- where mail goes ----

def test_local_user_stored_intact_with_received_on_top(server):
    mark = marker()
    data = body(mark)
    c = smtp25(server)
    assert c.sendmail("sender@remote.example", [USER], data) == {}
    c.quit()
    msgs = with_marker(server, USER, mark)
    assert len(msgs) == 1
    m = msgs[0]
    assert m.startswith(b"Received: from client.example ")
    # everything the client sent follows our header byte for byte
    # (smtplib dot-stuffs "..dot" on the wire, the server undoes it)
    assert m.endswith(data), m
    hdr_end = m.index(b"From: <sender@remote.example>")
    assert m[:hdr_end].count(b"Received:") == 1
    assert m[:hdr_end].endswith(b"\r\n")


def test_raw_data_dot_transparency(server):
    # RFC 5321 §4.5.2: the leading dot of a stuffed line is removed
    mark = marker()
    sock = socket.create_connection(("127.0.0.1", server.smtp_port),
                                    timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220 ")
    sock.sendall(b"EHLO raw.example\r\nMAIL FROM:<a@remote.example>\r\n"
                 b"RCPT TO:<user@example.test>\r\nDATA\r\n")
    replies = []
    while len(replies) < 4:
        line = f.readline()
        assert line, replies
        if line[3:4] == b" ":
            replies.append(line)
    assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"354"]
    sock.sendall(b"Subject: " + mark.encode() + b"\r\n\r\n"
                 b"..one dot\r\n...two dots\r\n. space\r\n.\r\n")
    assert f.readline().startswith(b"250 2.0.0 OK queued as ")
    sock.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221")
    sock.close()
    m = with_marker(server, USER, mark)[0]
    assert m.endswith(b"\r\n\r\n.one dot\r\n..two dots\r\n space\r\n")


def test_alias_with_two_targets_stores_one_file(server):
    mark = marker()
    c = smtp25(server)
    assert c.sendmail("sender@remote.example", ["team@example.test"],
                      body(mark)) == {}
    c.quit()
    assert len(with_marker(server, USER, mark)) == 1
    assert len(with_marker(server, OTHER, mark)) == 1
    fu = msg_files(server, USER, mark)
    fo = msg_files(server, OTHER, mark)
    assert len(fu) == 1 and len(fo) == 1, (fu, fo)
    su, so = os.stat(fu[0]), os.stat(fo[0])
    assert (su.st_dev, su.st_ino) == (so.st_dev, so.st_ino)
    assert su.st_nlink >= 2


def test_catch_all_delivers_to_admin(server):
    mark = marker()
    c = smtp25(server)
    assert c.sendmail("sender@remote.example", ["nobody-here@example.org"],
                      body(mark)) == {}
    c.quit()
    msgs = with_marker(server, ADMIN, mark)
    assert len(msgs) == 1
    assert b"for <admin@example.org>" in msgs[0]


def test_real_account_wins_over_catch_all(make_server):
    accounts = dict(PASSWORDS)
    accounts["real@example.org"] = "secret-real"
    s = make_server(accounts=accounts)
    mark_real, mark_admin, mark_other = marker(), marker(), marker()
    c = smtp25(s)
    assert c.sendmail("a@remote.example", ["real@example.org"],
                      body(mark_real)) == {}
    assert c.sendmail("a@remote.example", [ADMIN], body(mark_admin)) == {}
    assert c.sendmail("a@remote.example", ["whoever@example.org"],
                      body(mark_other)) == {}
    c.quit()
    assert len(with_marker(s, "real@example.org", mark_real)) == 1
    assert len(with_marker(s, ADMIN, mark_admin)) == 1
    assert len(with_marker(s, ADMIN, mark_other)) == 1
    time.sleep(0.5)
    assert with_marker(s, ADMIN, mark_real, timeout=0) == []
    assert with_marker(s, "real@example.org", mark_other, timeout=0) == []
    assert len(with_marker(s, ADMIN, mark_admin, timeout=0)) == 1


def test_subaddress_goes_to_user(server):
    mark = marker()
    c = smtp25(server)
    assert c.sendmail("sender@remote.example", ["user+newsletters@example.test"],
                      body(mark)) == {}
    c.quit()
    msgs = with_marker(server, USER, mark)
    assert len(msgs) == 1
    assert b"for <user@example.test>" in msgs[0]


def test_unknown_user_refused(server):
    c = smtp25(server)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    code, msg = c.rcpt("no-such-user@example.test")
    assert code == 550 and msg.startswith(b"5.1.1"), (code, msg)
    code, msg = c.rcpt("No-Such-User+tag@EXAMPLE.test")
    assert code == 550 and msg.startswith(b"5.1.1"), (code, msg)
    c.quit()


def test_postmaster_without_domain_uses_first_domain(make_server):
    # RFC 5321 §4.5.1: <postmaster> without a domain is accepted; the
    # server reads it as postmaster@<first local domain>, which the alias
    # file routes like any other address.
    s = make_server(aliases="postmaster@example.test user@example.test\n")
    mark = marker()
    c = smtp25(s)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    code, msg = c.docmd("RCPT", "TO:<Postmaster>")
    assert code == 250, (code, msg)
    code, msg = c.data(body(mark))
    assert code == 250, (code, msg)
    c.quit()
    msgs = with_marker(s, USER, mark)
    assert len(msgs) == 1
    assert b"for <user@example.test>" in msgs[0]


def test_postmaster_without_alias_is_unknown(server):
    # the default alias file has no postmaster@example.test
    c = smtp25(server)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    code, msg = c.docmd("RCPT", "TO:<postmaster>")
    assert code == 550 and b"5.1.1" in msg, (code, msg)
    assert b"postmaster@example.test" in msg
    c.quit()


# ---- the Received header ----

def test_received_port25_plaintext(server):
    mark = marker()
    c = smtp25(server, helo="mx.sender.example")
    assert c.sendmail("sender@remote.example", [USER], body(mark)) == {}
    c.quit()
    m = with_marker(server, USER, mark)[0]
    rcv = our_received(m)
    assert rcv.startswith("Received: from mx.sender.example ")
    assert "[127.0.0.1]" in rcv
    assert "by mail.example.test" in rcv
    assert re.search(r" with ESMTP id \S+", rcv), rcv
    assert "ESMTPS" not in rcv and "using TLS" not in rcv
    assert "for <user@example.test>" in rcv


def test_received_port25_helo_says_smtp(server):
    mark = marker()
    c = smtp25(server, helo="old.sender.example")
    code, _ = c.helo("old.sender.example")
    assert code == 250
    assert c.mail("sender@remote.example")[0] == 250
    assert c.rcpt(USER)[0] == 250
    assert c.data(body(mark))[0] == 250
    c.quit()
    rcv = our_received(with_marker(server, USER, mark)[0])
    assert " with SMTP id " in rcv, rcv


def test_received_starttls(server, pki):
    mark = marker()
    c = smtp25(server)
    c.starttls(context=client_ctx(pki))
    assert c.sendmail("sender@remote.example", [USER], body(mark)) == {}
    version = c.sock.version()
    c.quit()
    rcv = our_received(with_marker(server, USER, mark)[0])
    assert " with ESMTPS id " in rcv, rcv
    assert "(using %s with cipher " % version in rcv
    assert version == "TLSv1.3"
    assert "(using TLSv1.3 with cipher" in rcv
    assert "[127.0.0.1]" in rcv


def test_received_submission_private(server, pki):
    mark = marker()
    extra = (b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
             b" Thunderbird/115.0 folded-ua-continuation\r\n"
             b"X-Mailer: SecretMailer 1.0\r\n"
             b"\tfolded-xmailer-continuation\r\n"
             b"X-Originating-IP: [192.0.2.55]\r\n"
             b"X-Keep-Me: yes\r\n"
             b"  folded-keep-continuation\r\n"
             b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
             b"Message-ID: <given-" + mark.encode() + b"@client.example>\r\n")
    code, msg = submit(server, pki, USER, [USER], body(mark, extra),
                       helo="laptop.secret-helo.example")
    assert code == 250, (code, msg)
    m = with_marker(server, USER, mark)[0]
    rcv = our_received(m)
    assert rcv.startswith("Received: by mail.example.test")
    assert " with ESMTPSA id " in rcv, rcv
    assert "127.0.0.1" not in rcv
    assert "secret-helo" not in rcv
    # nothing of the client anywhere in what we added
    assert b"127.0.0.1" not in m
    assert b"secret-helo" not in m
    h = headers_of(m)
    for gone in (b"User-Agent", b"Thunderbird", b"folded-ua-continuation",
                 b"X-Mailer", b"SecretMailer", b"folded-xmailer-continuation",
                 b"X-Originating-IP", b"192.0.2.55"):
        assert gone not in m, gone
    assert b"\r\nX-Keep-Me: yes\r\n  folded-keep-continuation\r\n" in h
    assert b"\r\nSubject: " + mark.encode() + b"\r\n" in h
    # present Date / Message-ID are left alone and not doubled
    assert h.count(b"\r\nDate:") == 1
    assert b"\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n" in h
    assert h.count(b"\r\nMessage-ID:") == 1
    assert b"Message-ID: <given-" + mark.encode() + b"@client.example>" in h


def test_submission_adds_missing_date_and_message_id(server, pki):
    mark = marker()
    code, msg = submit(server, pki, USER, [USER], body(mark))
    assert code == 250
    m = with_marker(server, USER, mark)[0]
    h = headers_of(m).decode()
    dates = re.findall(r"(?im)^Date: (.+)$", h)
    ids = re.findall(r"(?im)^Message-ID: (.+)$", h)
    assert len(dates) == 1, h
    assert len(ids) == 1, h
    assert re.match(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}",
                    dates[0].strip()), dates
    assert re.match(r"<[^@<>\s]+@mail\.example\.test>$", ids[0].strip()), ids
    assert b"line one " + mark.encode() in m


def test_submission_headers_only_message_gets_date_and_id(server, pki):
    # no body and no blank line: the additions still land in the header
    mark = marker()
    code, _ = submit(server, pki, USER, [USER],
                     b"Subject: " + mark.encode() + b"\r\n")
    assert code == 250
    m = with_marker(server, USER, mark)[0]
    assert re.search(rb"(?im)^Date: ", m)
    assert re.search(rb"(?im)^Message-ID: <", m)


def test_port25_adds_no_date_or_message_id(server):
    mark = marker()
    c = smtp25(server)
    assert c.sendmail("sender@remote.example", [USER], body(mark)) == {}
    c.quit()
    m = with_marker(server, USER, mark)[0]
    h = headers_of(m)
    assert not re.search(rb"(?im)^Date:", h), h
    assert not re.search(rb"(?im)^Message-ID:", h), h


def test_port25_keeps_user_agent(server):
    # privacy applies to submission only
    mark = marker()
    c = smtp25(server)
    assert c.sendmail("sender@remote.example", [USER],
                      body(mark, b"User-Agent: SomeClient/1.0\r\n"
                                 b"X-Mailer: Mailer 2\r\n")) == {}
    c.quit()
    m = with_marker(server, USER, mark)[0]
    assert b"\r\nUser-Agent: SomeClient/1.0\r\n" in m
    assert b"\r\nX-Mailer: Mailer 2\r\n" in m


# ---- sender restrictions ----

def test_authenticated_sender_restrictions(server, pki):
    c = smtplib.SMTP("127.0.0.1", server.submission_port, timeout=30)
    c.starttls(context=client_ctx(pki))
    c.ehlo("client.example")
    c.login(USER, PW)
    for frm in (USER, "team@example.test", "info@example.test",
                "User@Example.Test"):
        code, msg = c.mail(frm)
        assert code == 250, (frm, code, msg)
        assert c.rset()[0] == 250
    for frm in (OTHER, ADMIN, "someone@remote.example",
                "anything@example.org"):
        code, msg = c.mail(frm)
        assert code == 553 and msg.startswith(b"5.7.1"), (frm, code, msg)
    c.quit()


def test_send_as_alias_delivers(server, pki):
    mark = marker()
    code, _ = submit(server, pki, "team@example.test", [OTHER], body(mark))
    assert code == 250
    assert len(with_marker(server, OTHER, mark)) == 1


# ---- queue ----

def test_remote_recipient_stays_queued(server, pki):
    mark = marker()
    code, msg = submit(server, pki, USER,
                       ["friend@remote.example", USER], body(mark))
    assert code == 250, (code, msg)
    m = re.search(rb"queued as (\S+)", msg)
    assert m, msg
    qid = m.group(1).decode()
    assert len(with_marker(server, USER, mark)) == 1
    deadline = time.time() + 10
    while True:
        rows = {(r[1]): (r[2], r[3]) for r in server.queue_rows()
                if r[0] == qid}
        if rows.get(USER) == (1, 1) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert rows.get("friend@remote.example") == (0, 0), rows
    assert rows.get(USER) == (1, 1), rows
    # the spooled file stays while the remote recipient is pending
    assert os.path.exists(os.path.join(server.data_dir, "spool", "msg",
                                       qid))


def test_local_only_message_leaves_queue(server):
    mark = marker()
    c = smtp25(server)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    assert c.rcpt(USER)[0] == 250
    code, msg = c.data(body(mark))
    c.quit()
    assert code == 250
    qid = re.search(rb"queued as (\S+)", msg).group(1).decode()
    assert len(with_marker(server, USER, mark)) == 1
    deadline = time.time() + 10
    while True:
        rows = [r for r in server.queue_rows() if r[0] == qid]
        if all(r[3] == 1 for r in rows) or time.time() > deadline:
            break
        time.sleep(0.1)
    # delivered (status 1) or the message row gone with its recipients
    assert all(r[3] == 1 for r in rows), rows


def test_many_recipients_one_transaction_no_duplicates(server):
    mark = marker()
    c = smtp25(server)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    rcpts = [USER, OTHER, ADMIN, "team@example.test", "info@example.test",
             "user+x@example.test", "OTHER@EXAMPLE.TEST",
             "whatever@example.org"]
    for r in rcpts:
        code, msg = c.rcpt(r)
        assert code == 250, (r, code, msg)
    code, msg = c.data(body(mark))
    assert code == 250, (code, msg)
    c.quit()
    for addr in (USER, OTHER, ADMIN):
        assert len(with_marker(server, addr, mark)) >= 1, addr
    time.sleep(2.5)  # more than two runner ticks
    for addr in (USER, OTHER, ADMIN):
        got = with_marker(server, addr, mark, timeout=0)
        assert len(got) == 1, (addr, len(got))
    # several targets: no "for <...>" clause
    assert b"\tfor <" not in with_marker(server, USER, mark)[0].split(
        b"\r\n\r\n")[0]


# ---- timeouts under TLS ----

def _slow_data(s, pki, tls):
    """DATA with a pause longer than smtp.timeout (2 s) but well within
    smtp.data_timeout (8 s); returns the reply to the final dot."""
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=20)
    if tls:
        c.starttls(context=client_ctx(pki))
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    assert c.rcpt(USER)[0] == 250
    assert c.docmd("DATA")[0] == 354
    c.send(b"Subject: slow\r\n\r\npart one\r\n")
    time.sleep(3.5)
    try:
        c.send(b"part two\r\n.\r\n")
        reply = c.getreply()
    except (smtplib.SMTPException, OSError) as e:
        reply = (0, repr(e).encode())
    c.close()
    return reply


def test_data_timeout_applies_with_and_without_starttls(make_server, pki):
    # RFC 5321 §4.5.3.2: the DATA block timeout is separate from the
    # command timeout; STARTTLS must not change which one applies.
    s = make_server(extra={"smtp.timeout": "2", "smtp.data_timeout": "8"})
    code, msg = _slow_data(s, pki, tls=False)
    assert code == 250, (code, msg)
    code, msg = _slow_data(s, pki, tls=True)
    assert code == 250, (code, msg, [l for l in s.log().splitlines()
                                     if " timeout " in l])
