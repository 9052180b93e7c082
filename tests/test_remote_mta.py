"""Self-test of tests/remote_mta.py, the remote peers the outbound delivery
tests deliver to.  Python's smtplib is the client here, not Mailfort."""
import re
import smtplib
import socket
import ssl
import time

import pytest

from conftest import client_ctx, free_port
from remote_mta import RemoteMTA, SmtpSink, header_values

MSG = (b"From: <a@client.test>\r\nTo: <bob@remote.test>\r\n"
       b"Subject: remote mta self-test\r\n\r\nhello remote\r\n")


@pytest.fixture(scope="module")
def mta(pki):
    port = free_port()
    m = RemoteMTA(listen=[("127.0.0.2", port), ("127.0.0.3", port),
                          ("::1", port)],
                  domains=["remote.test", "other.test"],
                  cert=pki["cert"], key=pki["key"],
                  reject=["nobody@remote.test"], size_limit=100000)
    m.port = port
    m.start()
    yield m
    m.stop()


def _client(addr, port, pki, tls=True):
    c = smtplib.SMTP(addr, port, local_hostname="client.test", timeout=20)
    c.ehlo()
    if tls:
        assert c.has_extn("starttls")
        ctx = client_ctx(pki)
        ctx.check_hostname = False  # the test certificate names other hosts
        c.starttls(context=ctx)
        c.ehlo()
    return c


def test_postfix_accepts_over_starttls_and_stores(mta, pki):
    c = _client("127.0.0.2", mta.port, pki)
    assert c.has_extn("smtputf8")
    assert c.has_extn("size") and c.esmtp_features["size"] == "100000"
    refused = c.sendmail("a@client.test", ["bob@remote.test",
                                           "carol@other.test"], MSG)
    assert refused == {}
    c.quit()
    got = mta.wait_for("bob@remote.test", 1, timeout=15)
    assert len(got) == 1, mta.log()[-3000:]
    assert b"hello remote" in got[0]
    assert header_values(got[0], "Return-Path") == ["<a@client.test>"]
    rcvd = header_values(got[0], "Received")[0]
    assert "by mx.remote.test" in rcvd
    assert re.search(r"using TLSv1\.[23] with cipher \S+", rcvd), rcvd
    assert len(mta.wait_for("carol@other.test", 1, timeout=15)) == 1
    # the second address on the same port is the same MX
    c = _client("127.0.0.3", mta.port, pki, tls=False)
    c.sendmail("a@client.test", ["bob@remote.test"], MSG)
    c.quit()
    got = mta.wait_for("bob@remote.test", 2, timeout=15)
    assert len(got) == 2
    assert "using TLS" not in header_values(got[1], "Received")[0]
    # and over IPv6 loopback
    c = _client("::1", mta.port, pki)
    c.sendmail("a@client.test", ["bob@remote.test"], MSG)
    c.quit()
    got = mta.wait_for("bob@remote.test", 3, timeout=15)
    assert len(got) == 3
    assert "[IPv6:::1]" in header_values(got[2], "Received")[0]


def test_postfix_rejects_and_limits(mta, pki):
    c = _client("127.0.0.2", mta.port, pki)
    c.mail("a@client.test")
    code, text = c.rcpt("nobody@remote.test")
    assert code == 550 and text.startswith(b"5.1.1 ") and \
        b"no such user" in text, (code, text)
    code, text = c.rcpt("x@elsewhere.test")   # not its domain: no relay
    assert code == 554 or code == 454 or code // 100 == 5, (code, text)
    c.rset()
    code, text = c.mail("a@client.test", ["SIZE=200000"])
    assert code == 552, (code, text)
    c.quit()


def test_postfix_temp_fail_switch(mta, pki):
    mta.set_temp_fail(["Later@Remote.test", "other.test"])
    c = _client("127.0.0.2", mta.port, pki)
    c.mail("a@client.test")
    for rcpt in ("later@remote.test", "anyone@other.test"):
        code, text = c.rcpt(rcpt)
        assert code == 450 and text.startswith(b"4.2.0 ") and \
            b"try later" in text, (code, text)
    assert c.rcpt("bob@remote.test")[0] == 250
    c.quit()
    mta.set_temp_fail([])
    c = _client("127.0.0.2", mta.port, pki)
    assert c.sendmail("a@client.test", ["later@remote.test"], MSG) == {}
    c.quit()
    assert len(mta.wait_for("later@remote.test", 1, timeout=15)) == 1


def test_postfix_smtputf8_off(pki):
    port = free_port()
    with RemoteMTA(listen=[("127.0.0.2", port)], domains=["remote.test"],
                   smtputf8=False):
        c = smtplib.SMTP("127.0.0.2", port, timeout=20)
        c.ehlo("client.test")
        assert not c.has_extn("smtputf8")
        assert not c.has_extn("starttls")   # no cert given: no STARTTLS
        c.quit()


def _raw_transaction(port, rcpt, wait_reply):
    """MAIL/RCPT/DATA by hand; after the final dot either wait for the
    reply or close at once."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return line
    assert reply().startswith(b"220")
    for cmd, want in ((b"EHLO client.test", b"250"),
                      (b"MAIL FROM:<a@client.test>", b"250"),
                      (b"RCPT TO:<%s>" % rcpt.encode(), b"250"),
                      (b"DATA", b"354")):
        s.sendall(cmd + b"\r\n")
        r = reply()
        assert r.startswith(want), (cmd, r)
    s.sendall(b"Subject: sink\r\n\r\nbody\r\n.\r\n")
    if wait_reply:
        r = reply()
        s.sendall(b"QUIT\r\n")
        reply()
    else:
        r = None
    f.close()
    s.close()
    return r


def test_sink_completed_vs_aborted():
    port = free_port()
    sink = SmtpSink(port=port, delay=1.0).start()
    try:
        t0 = time.monotonic()
        r = _raw_transaction(port, "kept@remote.test", wait_reply=True)
        assert r.startswith(b"250"), r
        assert time.monotonic() - t0 >= 0.9      # the reply was delayed
        assert _raw_transaction(port, "gone@remote.test",
                                wait_reply=False) is None
        assert len(sink.wait_for(1, "aborted", timeout=10)) == 1
        done = sink.completed()
        assert [t["rcpt_tos"] for t in done] == [["kept@remote.test"]]
        assert b"body" in done[0]["data"]
        assert [t["rcpt_tos"] for t in sink.aborted()] == \
            [["gone@remote.test"]]
        # smtplib through the sink, no delay
        sink.delay = 0
        sink.rcpt_replies["bad@remote.test"] = "550 5.1.1 no such user"
        c = smtplib.SMTP("127.0.0.1", port, timeout=10)
        refused = c.sendmail("a@client.test", ["x@remote.test",
                                               "bad@remote.test"], MSG)
        c.quit()
        assert refused == {"bad@remote.test": (550, b"5.1.1 no such user")}
        assert len(sink.wait_for(2, timeout=5)) == 2
        assert sink.plaintext_mail == ["a@client.test"] * 3
    finally:
        sink.stop()


@pytest.mark.parametrize("mode", ["garbage", "close"])
def test_sink_broken_starttls(mode):
    port = free_port()
    sink = SmtpSink(port=port, broken_starttls=mode).start()
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=10)
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        ctx = ssl.create_default_context()
        with pytest.raises((ssl.SSLError, OSError,
                            smtplib.SMTPServerDisconnected)):
            c.starttls(context=ctx)
        c.close()
        assert [e[0] for e in sink.events] == ["starttls"]
        assert sink.plaintext_mail == []
        assert sink.transactions == []
        # a client that falls back to plaintext is seen
        c = smtplib.SMTP("127.0.0.1", port, timeout=10)
        c.sendmail("a@client.test", ["x@remote.test"], MSG)
        c.quit()
        assert sink.plaintext_mail == ["a@client.test"]
    finally:
        sink.stop()


def test_sink_pending_then_aborted_and_real_starttls(pki):
    port = free_port()
    sink = SmtpSink(port=port, delay=2.0, cert=pki["cert"],
                    key=pki["key"]).start()
    try:
        c = smtplib.SMTP("127.0.0.1", port, timeout=10)
        c.ehlo("client.test")
        ctx = client_ctx(pki)
        ctx.check_hostname = False
        c.starttls(context=ctx)
        c.ehlo("client.test")
        c.mail("a@client.test")
        c.rcpt("x@remote.test")
        c.putcmd("data")
        assert c.getreply()[0] == 354
        c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
        got = sink.wait_for(1, "pending", timeout=5)
        assert len(got) == 1 and got[0]["tls"]
        c.close()                       # vanish while the reply is delayed
        assert len(sink.wait_for(1, "aborted", timeout=5)) == 1
        assert sink.pending() == [] and sink.completed() == []
        assert sink.plaintext_mail == []
    finally:
        sink.stop()
