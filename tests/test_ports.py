"""DESIGN.md §1 for the three SMTP listeners, checked row by row from
outside with smtplib, ssl, raw sockets and openssl s_client."""
import base64
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import PASSWORDS, client_ctx, send

USER = "user@example.test"
PW = PASSWORDS[USER]
MSG = b"Subject: t\r\n\r\nhello\r\n"


def raw(port, data=b"", wait_banner=True, timeout=5):
    """Plain socket: returns everything received until the peer stops."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    if wait_banner:
        out = s.recv(4096)
    if data:
        s.sendall(data)
    s.settimeout(1.5)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out.decode("latin-1")


def ehlo_lines(c):
    code, msg = c.ehlo("client.example")
    assert code == 250
    return msg.decode().upper().splitlines()


# ---- port 25: smtp ----

def test_smtp_banner_has_no_software_name(server):
    banner = raw(server.smtp_port)
    assert banner == "220 mail.example.test ESMTP\r\n"


def test_smtp_plaintext_accepts_local_mail(server):
    c = smtplib.SMTP("127.0.0.1", server.smtp_port)
    lines = ehlo_lines(c)
    assert "STARTTLS" in lines
    assert not any(l.startswith("AUTH") for l in lines)
    c.sendmail("a@remote.example", [USER], MSG)
    c.quit()


def test_smtp_never_offers_or_accepts_auth(server, pki):
    c = smtplib.SMTP("127.0.0.1", server.smtp_port)
    c.starttls(context=client_ctx(pki))
    lines = ehlo_lines(c)
    assert not any(l.startswith("AUTH") for l in lines)
    creds = base64.b64encode(b"\0" + USER.encode() + b"\0" + PW.encode())
    code, msg = c.docmd("AUTH", "PLAIN " + creds.decode())
    assert code == 503 and b"5.5.1" in msg
    c.quit()


def test_smtp_relay_refused_from_outside(server):
    c = smtplib.SMTP("127.0.0.1", server.smtp_port)
    c.ehlo("x")
    c.mail("a@remote.example")
    code, msg = c.rcpt("victim@elsewhere.example")
    assert code == 554 and b"5.7.1" in msg
    c.quit()


def test_smtp_loopback_is_not_trusted_by_default(server):
    # trusted_networks is empty: 127.0.0.1 gets no relay either
    c = smtplib.SMTP("127.0.0.1", server.smtp_port)
    c.ehlo("localhost")
    c.mail("root@localhost.example")
    code, _ = c.rcpt("someone@gmail.example")
    assert code == 554
    c.quit()


def test_smtp_trusted_network_may_relay(make_server):
    s = make_server(extra={"smtp.trusted_networks": "127.0.0.0/8"})
    c = smtplib.SMTP("127.0.0.1", s.smtp_port)
    c.ehlo("x")
    c.mail("app@example.test")
    code, _ = c.rcpt("someone@remote.example")
    assert code == 250
    c.quit()


def test_smtp_starttls_upgrade(server, pki):
    c = smtplib.SMTP("127.0.0.1", server.smtp_port)
    c.starttls(context=client_ctx(pki))
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    lines = ehlo_lines(c)
    assert "STARTTLS" not in lines
    c.sendmail("a@remote.example", [USER], MSG)
    c.quit()


# ---- port 465: submissions ----

def test_submissions_plaintext_gets_no_greeting(server):
    s = socket.create_connection(("127.0.0.1", server.submissions_port),
                                 timeout=5)
    s.settimeout(1.0)
    with pytest.raises(socket.timeout):
        s.recv(100)
    s.sendall(b"EHLO x\r\n")
    s.settimeout(5)
    try:
        data = s.recv(100)
    except (ConnectionResetError, socket.timeout):
        data = b""
    assert b"220" not in data and b"250" not in data
    s.close()


def test_submissions_requires_auth_before_mail(server, pki):
    c = smtplib.SMTP_SSL("127.0.0.1", server.submissions_port,
                         context=client_ctx(pki))
    lines = ehlo_lines(c)
    assert "AUTH PLAIN LOGIN" in lines
    assert "STARTTLS" not in lines
    code, msg = c.mail(USER)
    assert code == 530 and b"5.7.0" in msg
    c.login(USER, PW)
    assert c.mail(USER)[0] == 250
    assert c.rcpt("friend@remote.example")[0] == 250
    c.quit()


def test_submissions_relay_when_authenticated(server, pki):
    refused = send(server, server.submissions_port, USER,
                   ["friend@remote.example"], MSG, tls="implicit",
                   auth=(USER, PW), pki=pki)
    assert refused == {}


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1,
                                     ssl.TLSVersion.TLSv1_1])
def test_old_tls_refused(server, pki, version):
    # OpenSSL 3 at SECLEVEL 0 can still speak 1.0/1.1 as a client
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, context=ctx,
                         timeout=5)


def test_tls12_and_13_accepted(server, pki):
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki)
        ctx.minimum_version = v
        ctx.maximum_version = v
        c = smtplib.SMTP_SSL("127.0.0.1", server.submissions_port,
                             context=ctx)
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[v]
        c.quit()


def test_openssl_s_client_implicit_tls(server, pki):
    p = subprocess.run(
        ["openssl", "s_client", "-connect",
         "127.0.0.1:%d" % server.submissions_port, "-CAfile", pki["ca"],
         "-verify_return_error", "-servername", "mail.example.test",
         "-quiet"], input=b"QUIT\r\n", capture_output=True, timeout=20)
    assert b"220 mail.example.test ESMTP" in p.stdout
    assert b"221" in p.stdout


# ---- port 587: submission ----

def test_submission_refuses_everything_but_tls_before_starttls(server):
    c = smtplib.SMTP("127.0.0.1", server.submission_port)
    lines = ehlo_lines(c)
    assert "STARTTLS" in lines
    assert not any(l.startswith("AUTH") for l in lines)
    assert c.noop()[0] == 250
    for cmd, arg in (("MAIL", "FROM:<%s>" % USER), ("RCPT", "TO:<x@y.z>"),
                     ("DATA", ""), ("RSET", ""), ("VRFY", "user"),
                     ("AUTH", "PLAIN AHVzZXIAcHc="), ("BDAT", "1 LAST")):
        code, msg = c.docmd(cmd, arg)
        assert code == 530 and b"5.7.0" in msg, (cmd, code, msg)
        if cmd == "AUTH":
            break  # errors pile up towards the error limit
    c.quit()


def test_submission_auth_after_starttls(server, pki):
    refused = send(server, server.submission_port, USER,
                   [USER], MSG, tls="starttls", auth=(USER, PW), pki=pki)
    assert refused == {}


def test_submission_mail_requires_auth_after_tls(server, pki):
    c = smtplib.SMTP("127.0.0.1", server.submission_port)
    c.starttls(context=client_ctx(pki))
    lines = ehlo_lines(c)
    assert "AUTH PLAIN LOGIN" in lines
    code, msg = c.mail(USER)
    assert code == 530 and b"5.7.0" in msg
    c.quit()


def test_starttls_discards_pipelined_commands(server, pki):
    """CVE-2011-0411: commands sent with STARTTLS in one packet must not
    run inside the TLS session."""
    s = socket.create_connection(("127.0.0.1", server.smtp_port), timeout=5)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    s.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    s.sendall(b"STARTTLS\r\nMAIL FROM:<evil@remote.example>\r\n"
              b"RCPT TO:<user@example.test>\r\n")
    assert f.readline().startswith(b"220 2.0.0")
    ctx = client_ctx(pki)
    try:
        t = ctx.wrap_socket(s, server_hostname="mail.example.test")
    except (ssl.SSLError, OSError):
        return  # the injected bytes broke the handshake: also safe
    t.settimeout(3)
    t.sendall(b"RCPT TO:<user@example.test>\r\n")
    reply = t.recv(4096)
    # had MAIL run after the upgrade, this RCPT would get 250
    assert reply.startswith(b"503"), reply
    t.close()


def test_sni_picks_certificate(make_server, pki):
    s = make_server(sections={"tls": {"cert.mail.example.org":
                                      pki["other_cert"],
                                      "key.mail.example.org":
                                      pki["other_key"]}})
    for name in ("mail.example.test", "mail.example.org"):
        ctx = client_ctx(pki)
        with socket.create_connection(("127.0.0.1", s.submissions_port)) as r:
            with ctx.wrap_socket(r, server_hostname=name) as t:
                cert = t.getpeercert()
                cn = dict(x[0] for x in cert["subject"])["commonName"]
                assert cn == name


def test_modern_profile_is_tls13_only(make_server, pki):
    s = make_server(extra={"tls.profile": "modern"})
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        smtplib.SMTP_SSL("127.0.0.1", s.submissions_port, context=ctx,
                         timeout=5)
    c = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port,
                         context=client_ctx(pki))
    assert c.sock.version() == "TLSv1.3"
    c.quit()


def test_intermediate_profile_offers_only_aead_ecdhe_in_tls12(server, pki):
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c = smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, context=ctx)
    name, version, bits = c.sock.cipher()
    assert version == "TLSv1.2"
    assert ("GCM" in name or "CHACHA20" in name) and "DHE" in name, name
    c.quit()
    # a CBC-only client is refused
    ctx = client_ctx(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-SHA")
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        smtplib.SMTP_SSL("127.0.0.1", server.submissions_port, context=ctx,
                         timeout=5)
