"""IMAP listeners under DESIGN.md §1 (issue #4, first step): 143 with
STARTTLS required before LOGIN (LOGINDISABLED), 993 implicit TLS, LOGIN
and AUTHENTICATE PLAIN (SASL-IR) with the shared lockout, and hostile
input.  Python's imaplib as the client, raw sockets where it lacks."""
import base64
import imaplib
import socket
import ssl

import pytest

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"
PW = PASSWORDS[USER]


@pytest.fixture(scope="module")
def imap_server(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    yield s
    check_log_clean(s.cleanup())


def caps(c):
    typ, data = c.capability()
    assert typ == "OK"
    return data[0].decode().upper().split()


def test_143_before_starttls_offers_only_the_way_to_tls(imap_server):
    c = imaplib.IMAP4("127.0.0.1", imap_server.imap_port)
    greeting = c.welcome.decode()
    assert greeting.startswith("* OK ")
    assert "Mailfort" not in greeting and "mailfort" not in greeting
    cs = caps(c)
    assert "STARTTLS" in cs and "LOGINDISABLED" in cs
    assert not any(x.startswith("AUTH=") for x in cs)
    with pytest.raises(imaplib.IMAP4.error) as e:
        c.login(USER, PW)
    assert "PRIVACYREQUIRED" in str(e.value)
    typ, _ = c.noop()
    assert typ == "OK"
    # AUTHENTICATE, ID and ENABLE are refused as well
    for cmd in ("AUTHENTICATE PLAIN", "ID NIL"):
        tag = c._new_tag().decode()
        c.send(("%s %s\r\n" % (tag, cmd)).encode())
        line = c.readline().decode()
        assert line.startswith(tag + " NO [PRIVACYREQUIRED]"), line
    c.logout()


def test_143_starttls_then_login(imap_server, pki):
    c = imaplib.IMAP4("127.0.0.1", imap_server.imap_port)
    c.starttls(ssl_context=client_ctx(pki))
    cs = caps(c)
    assert "LOGINDISABLED" not in cs and "STARTTLS" not in cs
    assert "AUTH=PLAIN" in cs and "SASL-IR" in cs
    typ, data = c.login(USER, PW)
    assert typ == "OK" and b"CAPABILITY" in data[0]
    c.logout()


def test_993_implicit_tls_login_and_wrong_password(imap_server, pki):
    c = imaplib.IMAP4_SSL("127.0.0.1", imap_server.imaps_port,
                          ssl_context=client_ctx(pki))
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(imaplib.IMAP4.error) as e:
        c.login(USER, "wrong")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    typ, _ = c.login(USER, PW)
    assert typ == "OK"
    c.logout()


def test_authenticate_plain_sasl_ir_and_continuation(imap_server, pki):
    c = imaplib.IMAP4_SSL("127.0.0.1", imap_server.imaps_port,
                          ssl_context=client_ctx(pki))
    # imaplib sends the response after a "+" continuation
    typ, _ = c.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PW))
                            .encode())
    assert typ == "OK"
    c.logout()
    # SASL-IR: the initial response on the command line
    raw = socket.create_connection(("127.0.0.1", imap_server.imaps_port))
    t = client_ctx(pki).wrap_socket(raw, server_hostname="mail.example.test")
    f = t.makefile("rb")
    assert f.readline().startswith(b"* OK")
    ir = base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode()
    t.sendall(("a1 AUTHENTICATE PLAIN %s\r\n" % ir).encode())
    assert f.readline().startswith(b"a1 OK")
    t.sendall(b"a2 LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    t.close()


def test_starttls_discards_pipelined_commands(imap_server, pki):
    s = socket.create_connection(("127.0.0.1", imap_server.imap_port),
                                 timeout=5)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a STARTTLS\r\nb LOGIN user@example.test " +
              PW.encode() + b"\r\n")
    assert f.readline().startswith(b"a OK")
    try:
        t = client_ctx(pki).wrap_socket(s, server_hostname="localhost")
    except (ssl.SSLError, OSError):
        return      # the injected bytes broke the handshake: also safe
    t.settimeout(3)
    t.sendall(b"c NOOP\r\n")
    reply = t.recv(4096)
    assert reply.startswith(b"c OK"), reply    # no "b OK" first
    t.close()


def test_lockout_shared_with_smtp(make_server, pki):
    s = make_server(imap=True, extra={"accounts.lockout_failures": "3"})
    for _ in range(3):
        c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                              ssl_context=client_ctx(pki))
        with pytest.raises(imaplib.IMAP4.error):
            c.login(USER, "wrong")
        c.logout()
    c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    with pytest.raises(imaplib.IMAP4.error) as e:
        c.login(USER, PW)
    assert "UNAVAILABLE" in str(e.value)
    c.logout()
    # the same address is locked out of SMTP AUTH too
    import smtplib
    m = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port,
                         context=client_ctx(pki))
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        m.login(USER, PW)
    assert e.value.smtp_code == 454
    m.quit()


def test_garbage_and_unknown_commands(imap_server, pki):
    raw = socket.create_connection(("127.0.0.1", imap_server.imaps_port))
    t = client_ctx(pki).wrap_socket(raw, server_hostname="localhost")
    f = t.makefile("rb")
    f.readline()
    t.sendall(b"a1 FROBNICATE\r\n")
    assert f.readline().startswith(b"a1 BAD")
    t.sendall(b"\x00\x01\x02 garbage\r\n")
    assert b"BAD" in f.readline()
    t.sendall(b"a2 LOGIN " + b"x" * 70000 + b"\r\n")
    line = f.readline()
    assert b"BAD" in line or b"BYE" in line
    t.sendall(b"a3 NOOP\r\n")
    assert f.readline().startswith(b"a3 OK")
    # a literal far over the limit is refused before the client sends it
    t.sendall(b"a4 LOGIN {99999999}\r\n")
    line = f.readline()
    assert line.startswith(b"a4 BAD") or line.startswith(b"a4 NO"), line
    t.sendall(b"a5 NOOP\r\n")
    assert f.readline().startswith(b"a5 OK")
    t.close()
    assert imap_server.proc.poll() is None
