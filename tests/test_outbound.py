"""Outbound delivery (issue #6) end to end, with real peers on loopback:
NSD as the authoritative DNS (signed zones, validated by Mailfort's
libunbound), Postfix as the remote MX with STARTTLS, a second Mailfort as
an authenticated relay, aiosmtpd sinks for what Postfix cannot do (a
delayed final reply, broken STARTTLS, no SMTPUTF8), dkimpy to verify our
DKIM signatures.

Every MX host answers on one port (outbound.mx_port): the hosts differ by
loopback address (127.0.0.2 Postfix, 127.0.0.3 the sink, 127.0.0.9
nothing).
"""
import email
import email.policy
import imaplib
import os
import re
import signal
import smtplib
import socket
import sqlite3
import ssl
import time

import pytest

from conftest import client_ctx, free_port, send, check_log_clean
from dnsserver import DNSServer
from remote_mta import RemoteMTA, SmtpSink

USER = ("user@example.test", "secret-user")


def port_free_on(addr, port):
    with socket.socket() as s:
        try:
            s.bind((addr, port))
            return True
        except OSError:
            return False


def common_port():
    """A port free on every loopback address the MX hosts use."""
    while True:
        p = free_port()
        if all(port_free_on(a, p) for a in ("127.0.0.2", "127.0.0.3",
                                             "127.0.0.9")):
            return p


ZONES = {
    "remote.test": """
        @       MX 10 mx1
        mx1     A 127.0.0.2
        mx6     AAAA ::1
    """,
    "failover.test": """
        @       MX 10 dead
        @       MX 20 mx1.remote.test.
        dead    A 127.0.0.9
    """,
    "nullmx.test": """
        @       MX 0 .
    """,
    "v6only.test": """
        @       MX 10 mx6.remote.test.
    """,
    "implicit.test": """
        @       A 127.0.0.2
    """,
    "sink.test": """
        @       MX 10 sink
        sink    A 127.0.0.3
    """,
}
DOMAINS = ["remote.test", "failover.test", "v6only.test", "implicit.test"]


def dkim_zone(server):
    """The DKIM TXT records `mailfort dkim keygen` printed, as zone lines
    for example.test."""
    r = server.cli("dkim", "keygen", "example.test")
    assert r.returncode == 0, r.stderr
    lines = []
    for line in r.stdout.splitlines():
        m = re.match(r'^(\S+)\._domainkey\.example\.test\.\s+IN\s+TXT\s+(.*)$',
                     line.strip())
        if m:
            lines.append("%s._domainkey TXT %s" % (m.group(1), m.group(2)))
    assert len(lines) == 2, r.stdout
    return "\n".join(lines)


class World:
    """DNS + Postfix + one Mailfort sending through them."""

    def __init__(self, make_server, pki, extra=None, postfix_kw=None,
                 imap=False):
        self.port = common_port()
        self.server = make_server(start=False, imap=imap, extra=dict({
            "outbound.mx_port": str(self.port),
            "queue.retry_min": "1",
            "queue.retry_max": "2",
        }, **(extra or {})))
        zones = dict(ZONES)
        zones["example.test"] = dkim_zone(self.server)
        self.dns = DNSServer(zones, signed=["remote.test", "example.test",
                                            "nullmx.test"])
        self.server.write_config(self.config(extra), {}, 2)
        self.mta = RemoteMTA(listen=[("127.0.0.2", self.port),
                                     ("::1", self.port)],
                             domains=DOMAINS, cert=pki["cert"],
                             key=pki["key"], **(postfix_kw or {}))
        self.mta.start()
        self.server.start()

    def config(self, extra=None):
        """Our test DNS and MX port, quick retries, then extra."""
        return dict({"dns.resolver": self.dns.resolver,
                     "dns.trust_anchor": self.dns.trust_anchor,
                     "outbound.mx_port": str(self.port),
                     "queue.retry_min": "1",
                     "queue.retry_max": "2"}, **(extra or {}))

    def restart(self, extra=None, flush=False):
        """The server again with config(extra); flush: `queue flush`
        while it is down (everything due at once)."""
        self.server.stop()
        self.server.write_config(self.config(extra), {}, 2)
        if flush:
            r = self.server.cli("queue", "flush")
            assert r.returncode == 0, r.stderr
        self.server.start()

    def stop(self):
        self.mta.stop()
        self.dns.stop()

    def dkim_dns(self, name, timeout=5):
        import dns.resolver
        res = dns.resolver.Resolver(configure=False)
        host, port = self.dns.resolver.rsplit(":", 1)
        res.nameservers = [host]
        res.port = int(port)
        ans = res.resolve(name.decode().rstrip("."), "TXT")
        return b"".join(b"".join(r.strings) for r in ans)


@pytest.fixture
def world(make_server, pki):
    worlds = []

    def make(**kw):
        w = World(make_server, pki, **kw)
        worlds.append(w)
        return w
    yield make
    for w in worlds:
        w.stop()


def submit(server, pki, to, body, frm=USER[0], **kw):
    return send(server, server.submissions_port, frm, to, body,
                tls="implicit", auth=USER, pki=pki, **kw)


def message(to, subject, frm=USER[0], body="Hello.\r\n"):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.test>\r\n\r\n%s" %
            (frm, to, subject, subject.replace(" ", "."), body))


def wait_log(server, pattern, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, server.log())
        if m:
            return m
        time.sleep(0.2)
    raise AssertionError("no %r in log:\n%s" % (pattern, server.log()[-4000:]))


def queue_rows(server):
    db = sqlite3.connect(os.path.join(server.data_dir, "queue", "queue.db"))
    try:
        return db.execute("SELECT msg_id, addr, local, status, attempts, "
                          "coalesce(last_error, '') FROM recipient").fetchall()
    finally:
        db.close()


def wait_queue_empty(server, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not queue_rows(server):
            return
        time.sleep(0.2)
    raise AssertionError("queue not empty: %r" % (queue_rows(server),))


def imap_messages(server, pki, user=USER):
    c = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port,
                          ssl_context=client_ctx(pki))
    try:
        c.login(*user)
        c.select("INBOX")
        typ, data = c.search(None, "ALL")
        out = []
        for n in data[0].split():
            typ, d = c.fetch(n, "(RFC822)")
            out.append(d[0][1])
        return out
    finally:
        c.logout()


def wait_dsns(server, pki, count, timeout=30):
    deadline = time.time() + timeout
    while True:
        msgs = [email.message_from_bytes(m, policy=email.policy.default)
                for m in imap_messages(server, pki)]
        dsns = [m for m in msgs if m.get_content_type() == "multipart/report"]
        if len(dsns) >= count or time.time() > deadline:
            return dsns
        time.sleep(0.3)


def dsn_fields(dsn):
    """[(per-message fields, [per-recipient fields...])] of a DSN."""
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    parts = list(dsn.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    ds = [p for p in parts if p.get_content_type() in (
        "message/delivery-status", "message/global-delivery-status")]
    assert len(ds) == 1
    # the part as sent: its own header, a blank line, then the blocks
    text = ds[0].as_bytes().decode("utf-8", "replace").replace("\r\n", "\n")
    body = text.split("\n\n", 1)[1]
    blocks = []
    for chunk in re.split(r"\n\s*\n", body.strip()):
        d = {}
        for line in chunk.splitlines():
            if ":" in line and not line[0].isspace():
                k, v = line.split(":", 1)
                d[k.strip().lower()] = v.strip()
        if d:
            blocks.append(d)
    return blocks[0], blocks[1:]


# ---- tests ----

def test_mx_delivery_starttls_dkim(world, pki):
    import dkim
    w = world()
    body = "Line one.\r\n.leading dot\r\n" + "x" * 900 + "\r\n"
    submit(w.server, pki, ["bob@remote.test"],
           message("bob@remote.test", "hello mx", body=body))
    msgs = w.mta.wait_for("bob@remote.test", 1, timeout=30)
    raw = msgs[0]
    assert b".leading dot\r\n" in raw.replace(b"\n", b"\r\n").replace(
        b"\r\r\n", b"\r\n")
    assert b"x" * 900 in raw
    # Postfix's Received says TLS; ours is there below it
    assert re.search(rb"Received: from mail\.example\.test[^\n]*\n(\s[^\n]*\n)*"
                     rb"\s[^\n]*TLSv1\.[23]", raw), raw[:1500]
    assert b"by mail.example.test" in raw
    # both signatures verify with dkimpy against the DNS we serve
    d = dkim.DKIM(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    sigs = [v for k, v in email.message_from_bytes(raw).items()
            if k.lower() == "dkim-signature"]
    algs = sorted(re.search(r"a=([\w-]+)", s).group(1) for s in sigs)
    assert algs == ["ed25519-sha256", "rsa-sha256"]
    for i in range(len(sigs)):
        assert d.verify(idx=i, dnsfunc=w.dkim_dns), "signature %d" % i
    line = wait_log(w.server, r"to=<bob@remote\.test> relay=mx1\.remote\.test"
                    r"\[127\.0\.0\.2\]:\d+ tls=TLSv1\.[23]/\S+[^\n]*status=sent")
    assert line
    wait_queue_empty(w.server)


def test_implicit_mx_and_ipv6_only_mx(world, pki):
    w = world()
    submit(w.server, pki, ["a@implicit.test", "b@v6only.test"],
           message("a@implicit.test", "implicit and v6"))
    w.mta.wait_for("a@implicit.test", 1, timeout=30)
    w.mta.wait_for("b@v6only.test", 1, timeout=30)
    wait_log(w.server, r"to=<b@v6only\.test> relay=mx6\.remote\.test\[::1\]")
    wait_queue_empty(w.server)


def test_5xx_recipient_gets_one_dsn(world, pki):
    w = world(imap=True, postfix_kw={"reject": ["nobody@remote.test"]})
    submit(w.server, pki, ["nobody@remote.test", "bob@remote.test"],
           message("bob@remote.test", "partly refused"))
    w.mta.wait_for("bob@remote.test", 1, timeout=30)
    dsns = wait_dsns(w.server, pki, 1)
    assert len(dsns) == 1
    d = dsns[0]
    assert d["From"].addresses[0].username.upper() == "MAILER-DAEMON"
    assert d["Auto-Submitted"] == "auto-replied"
    msg_fields, rcpts = dsn_fields(d)
    assert msg_fields["reporting-mta"] == "dns; mail.example.test"
    assert len(rcpts) == 1
    r = rcpts[0]
    assert r["final-recipient"].lower() == "rfc822; nobody@remote.test"
    assert r["action"] == "failed"
    assert r["status"] == "5.1.1"
    assert r["remote-mta"] == "dns; mx1.remote.test"
    assert "550" in r["diagnostic-code"]
    # the original's header comes back
    parts = list(d.iter_parts())
    assert b"Subject: partly refused" in parts[2].as_bytes()
    # the DSN itself came with a null sender
    assert wait_log(w.server, r"sender notified: bounced")
    time.sleep(1)
    assert len(wait_dsns(w.server, pki, 2, timeout=1)) == 1
    wait_queue_empty(w.server)


def test_4xx_is_retried_then_delivered(world, pki):
    w = world(postfix_kw={"temp_fail": ["carol@remote.test"]})
    submit(w.server, pki, ["carol@remote.test"],
           message("carol@remote.test", "try again"))
    wait_log(w.server, r"to=<carol@remote\.test>[^\n]*status=deferred "
             r"\(450 4\.2\.0")
    rows = queue_rows(w.server)
    assert len(rows) == 1 and rows[0][3] == 0 and rows[0][4] >= 1
    w.mta.set_temp_fail([])
    w.mta.wait_for("carol@remote.test", 1, timeout=30)
    wait_queue_empty(w.server)
    assert len(w.mta.messages("carol@remote.test")) == 1


def test_unreachable_mx_falls_over_to_the_next(world, pki):
    w = world()
    submit(w.server, pki, ["dora@failover.test"],
           message("dora@failover.test", "failover"))
    w.mta.wait_for("dora@failover.test", 1, timeout=30)
    log = w.server.log()
    assert re.search(r"dead\.failover\.test\[127\.0\.0\.9\][^\n]*ended", log)
    assert re.search(r"to=<dora@failover\.test> relay=mx1\.remote\.test", log)


def test_null_mx_bounces_at_once(world, pki):
    w = world(imap=True)
    submit(w.server, pki, ["x@nullmx.test"], message("x@nullmx.test", "null"))
    dsns = wait_dsns(w.server, pki, 1, timeout=20)
    assert len(dsns) == 1
    _, rcpts = dsn_fields(dsns[0])
    assert rcpts[0]["status"] == "5.1.10"
    assert rcpts[0]["action"] == "failed"
    assert "null MX" in w.server.log()
    assert "nullmx.test[" not in w.server.log()   # never connected
    wait_queue_empty(w.server)


def test_no_bounce_of_a_bounce(world, pki):
    w = world(imap=True, postfix_kw={"reject": ["nobody@remote.test"]},
              extra={"smtp.trusted_networks": "127.0.0.0/8"})
    c = smtplib.SMTP("127.0.0.1", w.server.smtp_port, timeout=30)
    c.sendmail("", ["nobody@remote.test"],
               message("nobody@remote.test", "a bounce", frm="MAILER-DAEMON@example.test"))
    c.quit()
    wait_log(w.server, r"no bounce notice: the sender is <>")
    wait_queue_empty(w.server)
    time.sleep(1)
    assert wait_dsns(w.server, pki, 1, timeout=1) == []


def test_operator_bounce(world, pki):
    w = world(imap=True, postfix_kw={"temp_fail": ["eve@remote.test"]})
    submit(w.server, pki, ["eve@remote.test"], message("eve@remote.test",
                                                       "stuck"))
    wait_log(w.server, r"to=<eve@remote\.test>[^\n]*status=deferred")
    qid = queue_rows(w.server)[0][0]
    r = w.server.cli("queue", "bounce", qid)
    assert r.returncode == 0, r.stdout + r.stderr
    dsns = wait_dsns(w.server, pki, 1, timeout=20)
    assert len(dsns) == 1
    _, rcpts = dsn_fields(dsns[0])
    assert rcpts[0]["status"] == "5.0.0"
    wait_queue_empty(w.server)


def test_smtputf8_to_a_peer_without_it_bounces(world, pki, make_server):
    port = common_port()
    w = world(imap=True)
    sink = SmtpSink(port=w.port, host="127.0.0.3", smtputf8=False)
    sink.start()
    try:
        c = smtplib.SMTP_SSL("127.0.0.1", w.server.submissions_port,
                             context=client_ctx(pki), timeout=30)
        c.login(*USER)
        c.sendmail(USER[0], ["jörg@sink.test"],
                   ("From: <%s>\r\nTo: <jörg@sink.test>\r\nSubject: ütf\r\n"
                    "\r\nHi\r\n" % USER[0]).encode(),
                   mail_options=["SMTPUTF8"])
        c.quit()
        dsns = wait_dsns(w.server, pki, 1, timeout=30)
        assert len(dsns) == 1
        _, rcpts = dsn_fields(dsns[0])
        assert rcpts[0]["status"] == "5.6.7"
        assert sink.transactions == []
    finally:
        sink.stop()


def runner_pid(server):
    pids = re.findall(r"queue\[(\d+)\] queue runner started", server.log())
    assert pids
    return int(pids[-1])


def test_killed_runner_delivers_exactly_once(world, pki):
    """The sink holds its final reply to every message; the runner is
    SIGKILLed while all of them wait, restarted by the master, and sends
    again: every message ends up completed exactly once at the peer.
    (Holding every reply keeps the test deterministic: a kill within the
    instant between a peer's 250 and our commit would repeat that one
    message, RFC 1047, which no test can tell from a bug.)"""
    w = world()
    sink = SmtpSink(port=w.port, host="127.0.0.3", delay=60.0)
    sink.start()
    try:
        n = 5
        for i in range(n):
            submit(w.server, pki, ["k%d@sink.test" % i],
                   message("k%d@sink.test" % i, "crash %d" % i))
        assert len(sink.wait_for(n, status="pending", timeout=30)) == n
        old = runner_pid(w.server)
        sink.delay = 0.0
        os.kill(old, signal.SIGKILL)
        sink.wait_for(n, timeout=60)
        time.sleep(1.5)
        assert len(sink.aborted()) == n   # the kill cut every transaction
        done = sorted(t["rcpt_tos"][0] for t in sink.completed())
        assert done == sorted("k%d@sink.test" % i for i in range(n)), \
            sink.transactions
        assert runner_pid(w.server) != old
        wait_queue_empty(w.server)
    finally:
        sink.stop()


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
def test_relay_with_tls_and_auth(world, pki, make_server, mode):
    """A second Mailfort is the relay, AUTH, its certificate verified
    against the test CA; it then delivers to Postfix by MX.  implicit: its
    submissions port (not 465, so relay.tls says implicit); starttls: its
    submission port with relay.tls = auto (not 465: STARTTLS, required)."""
    w = world()
    relay = make_server(start=False, accounts={USER[0]: "relay-pw"},
                        extra={"dns.resolver": w.dns.resolver,
                               "dns.trust_anchor": w.dns.trust_anchor,
                               "outbound.mx_port": str(w.port)})
    relay.start()
    pwfile = os.path.join(w.server.dir, "relay-password")
    with open(pwfile, "w") as f:
        f.write("relay-pw\n")
    os.chmod(pwfile, 0o600)
    if os.getuid() == 0:
        import pwd
        os.chown(pwfile, pwd.getpwnam("nobody").pw_uid, -1)
    port = relay.submissions_port if mode == "implicit" else \
        relay.submission_port
    w.restart({"relay.host": "localhost:%d" % port,
               "relay.tls": "implicit" if mode == "implicit" else "auto",
               "relay.user": USER[0], "relay.password_file": pwfile,
               "relay.ca_file": pki["ca"]})
    submit(w.server, pki, ["fred@remote.test"],
           message("fred@remote.test", "via relay"))
    raw = w.mta.wait_for("fred@remote.test", 1, timeout=40)[0]
    assert b"with ESMTPSA" in raw     # the relay saw an authenticated client
    wait_log(w.server, r"to=<fred@remote\.test> relay=localhost\[127\.0\.0\.1\]"
             r":%d tls=TLSv1\.[23]/\S+ verified[^\n]*status=sent" % port)


def test_relay_with_broken_starttls_never_sends_plaintext(world, pki):
    w = world()
    port = free_port()
    sink = SmtpSink(port=port, host="127.0.0.1", broken_starttls="garbage")
    sink.start()
    try:
        w.restart({"relay.host": "127.0.0.1:%d" % port,
                   "relay.tls": "starttls"})
        submit(w.server, pki, ["gina@remote.test"],
               message("gina@remote.test", "no plaintext"))
        wait_log(w.server, r"to=<gina@remote\.test>[^\n]*status=deferred")
        time.sleep(3)   # a few more tries
        assert any(ev[0] == "starttls" for ev in sink.events)
        assert sink.plaintext_mail == []
        rows = queue_rows(w.server)
        assert len(rows) == 1 and rows[0][3] == 0
    finally:
        sink.stop()


def age_message(server, qid, seconds):
    db = sqlite3.connect(os.path.join(server.data_dir, "queue", "queue.db"),
                         timeout=30)
    try:
        with db:
            db.execute("UPDATE message SET created = created - ? WHERE id = ?",
                       (seconds, qid))
    finally:
        db.close()


def test_delay_warning_then_expiry(world, pki):
    """A message the MX keeps refusing with 4xx: after queue.delay_warning
    the sender hears once that it is delayed; after queue.max_lifetime it
    bounces with 4.4.7 and the last reply.  Time is moved by ageing the
    queued message in the database."""
    w = world(imap=True, postfix_kw={"temp_fail": ["hal@remote.test"]})
    submit(w.server, pki, ["hal@remote.test"], message("hal@remote.test",
                                                       "slow"))
    wait_log(w.server, r"to=<hal@remote\.test>[^\n]*status=deferred")
    qid = queue_rows(w.server)[0][0]
    age_message(w.server, qid, 5 * 3600)          # past the 4 h warning
    wait_log(w.server, r"sender notified: delayed")
    dsns = wait_dsns(w.server, pki, 1)
    assert len(dsns) == 1
    assert "Delayed" in dsns[0]["Subject"]
    _, rcpts = dsn_fields(dsns[0])
    assert rcpts[0]["action"] == "delayed"
    assert rcpts[0]["status"].startswith("4.")
    assert "will-retry-until" in rcpts[0]
    time.sleep(3)                                 # more tries, no 2nd warning
    assert len(re.findall(r"sender notified: delayed", w.server.log())) == 1
    age_message(w.server, qid, 5 * 86400)         # past the 5 days
    dsns = wait_dsns(w.server, pki, 2)
    assert len(dsns) == 2
    failed = [d for d in dsns if "Delayed" not in d["Subject"]][0]
    _, rcpts = dsn_fields(failed)
    assert rcpts[0]["action"] == "failed"
    assert rcpts[0]["status"] == "4.4.7"
    assert "450" in failed.get_payload()[0].get_content()
    wait_queue_empty(w.server)


def test_size_limit_and_8bitmime(world, pki):
    """The peer's SIZE is honoured before sending (bounce 5.3.4, nothing
    sent); an 8-bit body goes with BODY=8BITMIME and arrives intact."""
    w = world(imap=True, postfix_kw={"size_limit": 20000})
    big = message("ivy@remote.test", "too big",
                  body=("y" * 76 + "\r\n") * 400)
    submit(w.server, pki, ["ivy@remote.test"], big)
    dsns = wait_dsns(w.server, pki, 1)
    assert len(dsns) == 1
    _, rcpts = dsn_fields(dsns[0])
    assert rcpts[0]["status"] == "5.3.4"
    assert w.mta.messages("ivy@remote.test") == []
    body = "Grüße aus Köln\r\n"
    c = smtplib.SMTP_SSL("127.0.0.1", w.server.submissions_port,
                         context=client_ctx(pki), timeout=30)
    c.login(*USER)
    c.sendmail(USER[0], ["jo@remote.test"],
               ("From: <%s>\r\nTo: <jo@remote.test>\r\nSubject: 8bit\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
                "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s" %
                (USER[0], body)).encode(), mail_options=["BODY=8BITMIME"])
    c.quit()
    raw = w.mta.wait_for("jo@remote.test", 1)[0]
    assert body.encode() in raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_mx_with_broken_starttls_gets_plaintext_retry(world, pki):
    """Port 25 is opportunistic: when the MX offers STARTTLS but the
    handshake fails, the same host is tried again without TLS (Postfix's
    "may" level), and the log says so."""
    w = world()
    sink = SmtpSink(port=w.port, host="127.0.0.3", broken_starttls="garbage")
    sink.start()
    try:
        submit(w.server, pki, ["kim@sink.test"], message("kim@sink.test",
                                                         "fallback"))
        got = sink.wait_for(1, timeout=30)
        assert len(got) == 1 and got[0]["tls"] is False
        assert any(ev[0] == "starttls" for ev in sink.events)
        log = w.server.log()
        assert re.search(r"TLS handshake with sink\.sink\.test\[127\.0\.0\.3\]"
                         r" failed[^\n]*trying again without TLS", log), log
        wait_log(w.server, r"to=<kim@sink\.test> relay=sink\.sink\.test"
                 r"\[127\.0\.0\.3\]:\d+ tls=none[^\n]*status=sent")
    finally:
        sink.stop()


def test_relay_per_sender_domain(world, pki, make_server):
    """relay.sender_map (postfix-relaymap.cf) sends mail from example.org
    through the relay with the credentials of relay.password_map
    (postfix-sasl-password.cf); mail from example.test goes direct."""
    w = world()
    relay = make_server(start=False,
                        accounts={"admin@example.org": "org-relay-pw"},
                        extra={"dns.resolver": w.dns.resolver,
                               "dns.trust_anchor": w.dns.trust_anchor,
                               "outbound.mx_port": str(w.port)})
    relay.start()
    relaymap = os.path.join(w.server.dir, "postfix-relaymap.cf")
    with open(relaymap, "w") as f:
        f.write("# docker-mailserver format\n"
                "@example.org [127.0.0.1]:%d\n"
                "@example.test\n" % relay.submissions_port)
    os.chmod(relaymap, 0o644)
    pwmap = os.path.join(w.server.dir, "postfix-sasl-password.cf")
    with open(pwmap, "w") as f:
        f.write("@example.org admin@example.org:org-relay-pw\n")
    os.chmod(pwmap, 0o600)
    if os.getuid() == 0:
        import pwd
        os.chown(pwmap, pwd.getpwnam("nobody").pw_uid, -1)
    w.restart({"relay.tls": "implicit", "relay.sender_map": relaymap,
               "relay.password_map": pwmap, "relay.ca_file": pki["ca"]})
    send(w.server, w.server.submissions_port, "admin@example.org",
         ["org@remote.test"], message("org@remote.test", "org via relay",
                                      frm="admin@example.org"),
         tls="implicit", auth=("admin@example.org", "secret-admin"), pki=pki)
    submit(w.server, pki, ["direct@remote.test"],
           message("direct@remote.test", "test direct"))
    raw = w.mta.wait_for("org@remote.test", 1, timeout=40)[0]
    assert b"with ESMTPSA" in raw
    w.mta.wait_for("direct@remote.test", 1, timeout=40)
    wait_log(w.server, r"to=<org@remote\.test> relay=127\.0\.0\.1\[127\.0\.0\.1"
             r"\]:%d tls=TLSv1\.[23]/\S+ verified[^\n]*status=sent" %
             relay.submissions_port)
    wait_log(w.server, r"to=<direct@remote\.test> relay=mx1\.remote\.test"
             r"[^\n]*status=sent")


def test_relay_password_map_readable_by_others_is_refused(world, pki):
    w = world()
    pwmap = os.path.join(w.server.dir, "sasl.cf")
    with open(pwmap, "w") as f:
        f.write("[127.0.0.1]:2 u:p\n")
    os.chmod(pwmap, 0o644)
    w.restart({"relay.host": "[127.0.0.1]:2", "relay.password_map": pwmap})
    submit(w.server, pki, ["held@remote.test"], message("held@remote.test",
                                                        "held"))
    wait_log(w.server, r"relay\.password_map \S+: readable by others")
    r = w.server.cli("check-config")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "readable by others" in r.stderr
    time.sleep(2)
    rows = queue_rows(w.server)
    assert len(rows) == 1 and rows[0][3] == 0     # kept, not sent, not lost
    assert w.mta.messages("held@remote.test") == []


def test_connection_reuse_and_destination_limit(world, pki):
    """Twelve messages for one domain with destination_concurrency = 2:
    the peer sees at most two connections, each carrying several
    transactions (connection reuse)."""
    w = world(extra={"outbound.destination_concurrency": "2"})
    sink = SmtpSink(port=w.port, host="127.0.0.3", delay=0.2)
    sink.start()
    try:
        # queue them all first (a resolver nobody runs), then deliver
        w.restart({"dns.resolver": "127.0.0.1:%d" % free_port(),
                   "outbound.destination_concurrency": "2",
                   "queue.retry_min": "3600", "queue.retry_max": "3600"})
        for i in range(12):
            submit(w.server, pki, ["r%d@sink.test" % i],
                   message("r%d@sink.test" % i, "reuse %d" % i))
        w.restart({"outbound.destination_concurrency": "2"}, flush=True)
        got = sink.wait_for(12, timeout=40)
        assert len(got) == 12
        conns = {tuple(t["peer"]) for t in got}
        assert 1 <= len(conns) <= 2, conns
        wait_queue_empty(w.server)
    finally:
        sink.stop()


def test_local_delivery_given_up_bounces(make_server, pki):
    """A local recipient over quota stays queued; past queue.max_lifetime
    it is given up and the sender gets a DSN (4.2.2, mailbox full)."""
    s = make_server(imap=True, start=False)
    path = os.path.join(s.dir, "dovecot-quotas.cf")
    with open(path, "w") as f:
        f.write("other@example.test:2K\n")
    os.chmod(path, 0o644)
    s.write_config({"accounts.quotas": path, "queue.retry_min": "1",
                    "queue.retry_max": "1",
                    "dns.resolver": "127.0.0.1:%d" % free_port()}, {}, 2)
    s.start()
    # without SIZE= RCPT cannot know; the runner defers instead of storing
    c = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port,
                         context=client_ctx(pki), timeout=30)
    c.login(*USER)
    assert c.mail(USER[0])[0] == 250
    assert c.rcpt("other@example.test")[0] == 250
    assert c.data(message("other@example.test", "too much",
                          body="z" * 5000).encode())[0] == 250
    c.quit()
    wait_log(s, r"local delivery to=<other@example\.test> result=deferred "
             r"reason=over-quota")
    qid = queue_rows(s)[0][0]
    age_message(s, qid, 6 * 86400)
    wait_log(s, r"local delivery to=<other@example\.test> result=expired")
    dsns = wait_dsns(s, pki, 1)
    assert len(dsns) == 1
    _, rcpts = dsn_fields(dsns[0])
    assert rcpts[0]["final-recipient"].lower() == "rfc822; other@example.test"
    assert rcpts[0]["action"] == "failed"
    assert rcpts[0]["status"] == "4.2.2"
    assert "mailbox full" in rcpts[0].get("diagnostic-code", "")
    wait_queue_empty(s)


def test_reload_during_delivery_sends_once(world, pki):
    """SIGHUP while a transaction waits for the peer's final reply: the
    old queue runner finishes it and exits, only then does the new one
    start - one runner at a time, so the message goes once."""
    w = world()
    sink = SmtpSink(port=w.port, host="127.0.0.3", delay=3.0)
    sink.start()
    try:
        submit(w.server, pki, ["hup@sink.test"], message("hup@sink.test",
                                                         "reload"))
        assert sink.wait_for(1, status="pending", timeout=20)
        old = runner_pid(w.server)
        w.server.reload()
        assert sink.wait_for(1, timeout=20)
        wait_log(w.server, r"queue runner 0 \(pid %d\) exited" % old)
        deadline = time.time() + 20
        while runner_pid(w.server) == old and time.time() < deadline:
            time.sleep(0.2)
        assert runner_pid(w.server) != old
        wait_queue_empty(w.server)
        time.sleep(2)
        assert len(sink.transactions) == 1, sink.transactions
        assert sink.transactions[0]["status"] == "completed"
        log = w.server.log()
        assert log.index("queue runner 0 (pid %d) exited" % old) < \
            log.index("queue[%d] queue runner started" % runner_pid(w.server))
    finally:
        sink.stop()


def test_timeouts_of_rfc5321_4_5_3_2(world, pki):
    """outbound.command_timeout and outbound.data_timeout (300 s and 600 s
    by default) shortened: a peer that never greets, and one that never
    answers the final ".", are given up with 4.4.2 and tried again; the
    message then goes once."""
    w = world(extra={"outbound.command_timeout": "2",
                     "outbound.data_timeout": "2"})
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.3", w.port))
    silent.listen(16)
    held = []
    try:
        submit(w.server, pki, ["t1@sink.test"], message("t1@sink.test",
                                                        "no greeting"))
        wait_log(w.server, r"to=<t1@sink\.test>[^\n]*status=deferred "
                 r"\([^\n]*timed out while receiving the initial server "
                 r"greeting", timeout=20)
        while True:             # keep the accepted sockets open
            silent.settimeout(0.1)
            try:
                held.append(silent.accept()[0])
            except OSError:
                break
    finally:
        for s in held:
            s.close()
        silent.close()
    sink = SmtpSink(port=w.port, host="127.0.0.3", delay=6.0)
    sink.start()
    try:
        submit(w.server, pki, ["t2@sink.test"], message("t2@sink.test",
                                                        "slow dot"))
        wait_log(w.server, r"to=<t2@sink\.test>[^\n]*status=deferred "
                 r"\([^\n]*timed out while sending end of data", timeout=20)
        sink.delay = 0.0
        wait_log(w.server, r"to=<t2@sink\.test>[^\n]*status=sent", timeout=30)
        wait_log(w.server, r"to=<t1@sink\.test>[^\n]*status=sent", timeout=30)
        done = [t["rcpt_tos"][0] for t in sink.completed()]
        assert done.count("t2@sink.test") == 1, sink.transactions
    finally:
        sink.stop()


def test_queue_flush_reaches_a_running_server(world, pki):
    """A message deferred for an hour goes at once after `mailfort queue
    flush`: the running outbound thread notices the queue database
    changed."""
    w = world(postfix_kw={"temp_fail": ["fl@remote.test"]},
              extra={"queue.retry_min": "3600", "queue.retry_max": "3600"})
    w.restart({"queue.retry_min": "3600", "queue.retry_max": "3600"})
    submit(w.server, pki, ["fl@remote.test"], message("fl@remote.test",
                                                      "flush me"))
    wait_log(w.server, r"to=<fl@remote\.test>[^\n]*status=deferred")
    w.mta.set_temp_fail([])
    time.sleep(1)
    assert w.mta.messages("fl@remote.test") == []    # waits its hour
    t0 = time.time()
    r = w.server.cli("queue", "flush")
    assert r.returncode == 0, r.stdout + r.stderr
    w.mta.wait_for("fl@remote.test", 1, timeout=20)
    assert time.time() - t0 < 10
    wait_queue_empty(w.server)


def test_relay_map_overlong_line_is_refused(make_server):
    """A relay.sender_map line longer than the reader takes is an error
    (check-config fails), never cut into two entries."""
    s = make_server(start=False)
    path = os.path.join(s.dir, "relaymap.cf")
    with open(path, "w") as f:
        f.write("@ok.example [127.0.0.1]:2\n")
        f.write("#" + "x" * 2100 + " @evil.example [127.0.0.1]:3\n")
    os.chmod(path, 0o644)
    s.write_config({"relay.sender_map": path}, {}, 2)
    r = s.cli("check-config")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "line longer than" in r.stderr
    check_log_clean(r.stderr)


def test_one_signature_for_all_destinations(world, pki):
    """A message for two domains is signed once; both copies carry the
    same DKIM-Signature fields."""
    w = world()
    submit(w.server, pki, ["a@remote.test", "b@implicit.test"],
           message("a@remote.test", "two destinations"))
    one = w.mta.wait_for("a@remote.test", 1, timeout=30)[0]
    two = w.mta.wait_for("b@implicit.test", 1, timeout=30)[0]
    sig = lambda raw: sorted(v for k, v in
                             email.message_from_bytes(raw).items()
                             if k.lower() == "dkim-signature")
    assert len(sig(one)) == 2 and sig(one) == sig(two)
    assert len(re.findall(r"dkim: signed", w.server.log())) == 1
