"""Running the server: the user/alias CLI on a live server, login lockout,
check-config and start-up errors, environment overrides, the PROXY
protocol, SIGHUP reload, worker crashes and SIGTERM.  Black box: real
processes, real sockets, smtplib/ssl/struct clients."""
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import time
import uuid

from conftest import BIN, PASSWORDS, client_ctx

USER = "user@example.test"
OTHER = "other@example.test"
PW = PASSWORDS[USER]


def marker():
    return "m-" + uuid.uuid4().hex


def body(mark):
    return ("Subject: %s\r\n\r\nhello %s\r\n" % (mark, mark)).encode()


def with_marker(server, addr, mark, n=1, timeout=15):
    deadline = time.time() + timeout
    while True:
        found = [m for m in server.messages(addr) if mark.encode() in m]
        if len(found) >= n or time.time() > deadline:
            return found
        time.sleep(0.05)


def wait_log(server, pattern, timeout=10, count=1):
    """Waits until the log matches pattern (regex) count times."""
    deadline = time.time() + timeout
    while True:
        found = re.findall(pattern, server.log())
        if len(found) >= count:
            return found
        if time.time() > deadline:
            raise AssertionError("log never matched %r:\n%s" %
                                 (pattern, server.log()[-4000:]))
        time.sleep(0.05)


def plain_creds(user, pw):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            pw.encode()).decode()


def sub_conn(server, pki):
    """An unauthenticated submission session after STARTTLS and EHLO."""
    c = smtplib.SMTP("127.0.0.1", server.submission_port, timeout=30)
    c.starttls(context=client_ctx(pki))
    c.ehlo("client.example")
    return c


def auth_plain(server, pki, user, pw):
    """One AUTH PLAIN attempt on a fresh connection: (code, msg)."""
    c = sub_conn(server, pki)
    try:
        return c.docmd("AUTH", "PLAIN " + plain_creds(user, pw))
    finally:
        try:
            c.quit()
        except (smtplib.SMTPException, OSError):
            pass


def auth_until(server, pki, user, pw, code, timeout=5):
    deadline = time.time() + timeout
    while True:
        got = auth_plain(server, pki, user, pw)
        if got[0] == code or time.time() > deadline:
            return got
        time.sleep(0.25)


def rcpt_code(server, addr):
    c = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30)
    try:
        c.ehlo("client.example")
        c.mail("sender@remote.example")
        return c.rcpt(addr)
    finally:
        c.quit()


def settle():
    """Each worker re-reads a changed account file on its own, at most
    once per second (time() granularity): past the next second boundary
    every worker sees the edit."""
    time.sleep(1.1)


def rcpt_until(server, addr, code, timeout=5):
    """RCPT on fresh connections until the reply code is `code`; the
    server re-reads changed account files at most once per second."""
    deadline = time.time() + timeout
    while True:
        got = rcpt_code(server, addr)
        if got[0] == code or time.time() > deadline:
            return got
        time.sleep(0.25)


def ehlo_size(port):
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        code, msg = c.ehlo("client.example")
        assert code == 250
        m = re.search(rb"(?m)^SIZE (\d+)", msg)
        return int(m.group(1)) if m else None
    finally:
        try:
            c.quit()
        except (smtplib.SMTPException, OSError):
            pass


def port_closed(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_port_banner(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=2) as s:
                s.settimeout(5)
                if s.recv(100).startswith(b"220 "):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("port %d never greeted" % port)


def start_proxy_server(make_server, extra):
    """A server whose smtp listener expects PROXY headers: conftest's
    readiness check would wait for a banner there, so wait on 587."""
    s = make_server(extra=extra, start=False)
    s.start(wait=False)
    wait_port_banner(s.submission_port)
    return s


def recv_line(f):
    return f.readline().decode("latin-1")


def recv_reply(f):
    """One (multi-line) SMTP reply from a file object."""
    lines = []
    while True:
        l = recv_line(f)
        if not l:
            break
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            break
    return "".join(lines)


def cmd(sock, f, line):
    sock.sendall(line.encode() + b"\r\n")
    return recv_reply(f)


# ---- the CLI on a running server ----

def test_cli_user_add_list_passwd_del_live(make_server, pki):
    # waiting for each worker's refresh costs failed logins: no lockout
    s = make_server(extra={"accounts.lockout_failures": "1000"})
    new = "newbie@example.test"
    assert rcpt_code(s, new)[0] == 550
    r = s.cli("user", "add", new, "first-pass")
    assert r.returncode == 0, r.stderr
    assert "added user newbie@example.test" in r.stdout
    r = s.cli("user", "list")
    assert r.returncode == 0
    listed = r.stdout.split()
    assert new in listed and USER in listed and OTHER in listed
    r = s.cli("user", "add", new, "again")
    assert r.returncode == 1 and "already exists" in r.stderr

    # the running server sees the new account without a restart
    code, msg = rcpt_until(s, new, 250)
    settle()
    assert code == 250, (code, msg)
    mark = marker()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    assert c.sendmail("sender@remote.example", [new], body(mark)) == {}
    c.quit()
    assert len(with_marker(s, new, mark)) == 1
    code, msg = auth_plain(s, pki, new, "first-pass")
    assert code == 235, (code, msg)

    # passwd: the new password works, the old one no longer does
    r = s.cli("user", "passwd", new, input="second-pass\n")
    assert r.returncode == 0, r.stderr
    assert "changed password" in r.stdout
    settle()
    code, msg = auth_until(s, pki, new, "second-pass", 235)
    assert code == 235, (code, msg)
    code, msg = auth_until(s, pki, new, "first-pass", 535)
    assert code == 535 and b"5.7.8" in msg, (code, msg)

    # del: 550 5.1.1 again
    r = s.cli("user", "del", new)
    assert r.returncode == 0, r.stderr
    assert "deleted user" in r.stdout
    assert new not in s.cli("user", "list").stdout.split()
    code, msg = rcpt_until(s, new, 550)
    assert code == 550 and msg.startswith(b"5.1.1"), (code, msg)
    settle()
    # each worker re-reads the file on its own, at most once per second
    code, msg = auth_until(s, pki, new, "second-pass", 535)
    assert code == 535 and b"5.7.8" in msg, (code, msg)
    r = s.cli("user", "del", new)
    assert r.returncode == 1 and "no user" in r.stderr
    # the other accounts are untouched
    assert rcpt_code(s, USER)[0] == 250


def test_cli_rejects_bad_addresses(server):
    r = server.cli("user", "add", "not-an-address", "pw")
    assert r.returncode == 2 and "invalid address" in r.stderr
    r = server.cli("alias", "add", "a@example.test", "bad,target@x.example")
    assert r.returncode == 2
    r = server.cli("user", "frobnicate")
    assert r.returncode == 2 and "usage" in r.stderr


def test_cli_alias_add_list_del_live(make_server):
    s = make_server()
    alias = "sales@example.test"
    assert rcpt_code(s, alias)[0] == 550
    r = s.cli("alias", "add", alias, OTHER)
    assert r.returncode == 0, r.stderr
    assert "added alias" in r.stdout
    r = s.cli("alias", "add", alias, USER)
    assert r.returncode == 0, r.stderr
    r = s.cli("alias", "list")
    assert r.returncode == 0
    assert "sales@example.test other@example.test,user@example.test" in \
        r.stdout.splitlines()
    assert "team@example.test user@example.test,other@example.test" in \
        r.stdout.splitlines()
    with open(s.aliases_file) as f:
        text = f.read()
    assert text.startswith("# aliases\n")  # comments kept
    code, msg = rcpt_until(s, alias, 250)
    assert code == 250, (code, msg)
    settle()
    mark = marker()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    assert c.sendmail("sender@remote.example", [alias], body(mark)) == {}
    c.quit()
    assert len(with_marker(s, OTHER, mark)) == 1
    assert len(with_marker(s, USER, mark)) == 1

    r = s.cli("alias", "del", alias, USER)
    assert r.returncode == 0, r.stderr
    settle()
    mark = marker()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    assert c.sendmail("sender@remote.example", [alias], body(mark)) == {}
    c.quit()
    assert len(with_marker(s, OTHER, mark)) == 1
    time.sleep(0.3)
    assert with_marker(s, USER, mark, timeout=0) == []
    assert "sales@example.test other@example.test" in \
        s.cli("alias", "list").stdout.splitlines()
    r = s.cli("alias", "del", alias)
    assert r.returncode == 0, r.stderr
    assert "sales@" not in s.cli("alias", "list").stdout
    code, msg = rcpt_until(s, alias, 550)
    assert code == 550 and msg.startswith(b"5.1.1"), (code, msg)
    r = s.cli("alias", "del", alias)
    assert r.returncode == 1 and "no alias" in r.stderr


# ---- login failures and lockout ----

def test_wrong_password_535(server, pki):
    code, msg = auth_plain(server, pki, USER, "wrong-password")
    assert code == 535 and msg.startswith(b"5.7.8"), (code, msg)
    code, msg = auth_plain(server, pki, "ghost@example.test", "whatever")
    assert code == 535 and msg.startswith(b"5.7.8"), (code, msg)
    assert auth_plain(server, pki, USER, PW)[0] == 235


def test_lockout_after_failures(make_server, pki):
    s = make_server(extra={"accounts.lockout_failures": "3",
                           "accounts.lockout_time": "60"})
    assert auth_plain(s, pki, USER, PW)[0] == 235
    for i in range(3):
        code, msg = auth_plain(s, pki, USER, "wrong-%d" % i)
        assert code == 535 and b"5.7.8" in msg, (i, code, msg)
    # locked: even the right password is refused, on any listener
    code, msg = auth_plain(s, pki, USER, PW)
    assert code == 454 and msg.startswith(b"4.7.0"), (code, msg)
    code, msg = auth_plain(s, pki, OTHER, PASSWORDS[OTHER])
    assert code == 454 and msg.startswith(b"4.7.0"), (code, msg)
    c = smtplib.SMTP_SSL("127.0.0.1", s.submissions_port,
                         context=client_ctx(pki), timeout=30)
    c.ehlo("client.example")
    code, msg = c.docmd("AUTH", "PLAIN " + plain_creds(USER, PW))
    assert code == 454 and b"4.7.0" in msg, (code, msg)
    c.quit()
    log = s.log()
    assert re.search(r"smtp auth client=127\.0\.0\.1 user=user@example\.test "
                     r"result=failed failures=3", log), log[-3000:]
    assert "result=locked-out" in log


# ---- check-config, start-up errors, environment ----

def line_of(path, needle):
    with open(path) as f:
        for i, l in enumerate(f, 1):
            if needle in l:
                return i
    raise AssertionError("%s not in %s" % (needle, path))


def test_check_config_reports_every_error(make_server):
    s = make_server(start=False, extra={
        "smtp.no_such_key": "1",
        "listen.submission": "127.0.0.1:99999",
        "tls.cert": "/nonexistent/mailfort-test/cert.pem",
    })
    r = s.cli("check-config")
    assert r.returncode == 1, (r.stdout, r.stderr)
    cfg = s.config
    err = r.stderr
    assert "%s:%d: smtp.no_such_key: unknown key" % (
        cfg, line_of(cfg, "no_such_key")) in err, err
    assert "%s:%d: listen.submission: bad port" % (
        cfg, line_of(cfg, "99999")) in err, err
    assert "%s:%d: tls.cert: cannot read /nonexistent/mailfort-test/" \
        "cert.pem" % (cfg, line_of(cfg, "/nonexistent/")) in err, err
    assert "3 errors" in err
    assert "configuration OK" not in r.stdout


def test_check_config_good(server):
    r = server.cli("check-config")
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout
    assert r.stderr == ""


def test_serve_bad_config_exits_without_listening(make_server):
    s = make_server(start=False, extra={"smtp.no_such_key": "1"})
    s.start(wait=False)
    rc = s.proc.wait(15)
    assert rc != 0
    log = s.log()
    assert "smtp.no_such_key: unknown key" in log
    assert "not starting" in log
    assert "listening on" not in log
    for port in (s.smtp_port, s.submission_port, s.submissions_port):
        assert port_closed(port), port


def test_serve_missing_certificate(make_server):
    s = make_server(start=False,
                    extra={"tls.cert": "/nonexistent/mailfort-test/c.pem"})
    s.start(wait=False)
    rc = s.proc.wait(15)
    assert rc != 0
    log = s.log()
    assert "tls.cert: cannot read /nonexistent/mailfort-test/c.pem" in log
    assert "listening on" not in log
    assert port_closed(s.smtp_port)


def test_serve_unloadable_certificate(make_server):
    s = make_server(start=False)
    bad = os.path.join(s.dir, "garbage.pem")
    with open(bad, "w") as f:
        f.write("this is not a certificate\n")
    s.write_config({"tls.cert": bad}, {}, 2)
    s.start(wait=False)
    rc = s.proc.wait(15)
    assert rc != 0
    log = s.log()
    assert "cannot load certificate %s" % bad in log, log
    assert "listening on" not in log
    assert port_closed(s.smtp_port)


def test_env_overrides_max_message_size(make_server):
    s = make_server(env={"MAILFORT_SMTP_MAX_MESSAGE_SIZE": "123456"})
    assert ehlo_size(s.smtp_port) == 123456
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10)
    c.ehlo("client.example")
    code, msg = c.docmd("MAIL", "FROM:<a@remote.example> SIZE=200000")
    assert code == 552 and b"5.3.4" in msg
    c.quit()
    # a bad value from the environment is reported as such
    r = subprocess.run([BIN, "-c", s.config, "check-config"],
                       capture_output=True, text=True,
                       env=dict(s.env, MAILFORT_SMTP_MAX_MESSAGE_SIZE="x"))
    assert r.returncode == 1
    assert "environment" in r.stderr and "smtp.max_message_size" in r.stderr


# ---- PROXY protocol ----

PROXY_EXTRA = {"listen.proxy_protocol": "smtp",
               "listen.proxy_trusted_networks": "127.0.0.1/32"}


def proxy_v2(src, dst, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def proxied_session(port, header):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(header)
    f = s.makefile("rb")
    return s, f


def proxied_delivery(server, header, client_ip):
    mark = marker()
    s, f = proxied_session(server.smtp_port, header)
    assert recv_reply(f) == "220 mail.example.test ESMTP\r\n"
    assert cmd(s, f, "EHLO proxied.example").startswith("250-")
    assert cmd(s, f, "MAIL FROM:<a@remote.example>").startswith("250")
    assert cmd(s, f, "RCPT TO:<%s>" % USER).startswith("250")
    assert cmd(s, f, "DATA").startswith("354")
    s.sendall(body(mark) + b".\r\n")
    assert recv_reply(f).startswith("250 2.0.0")
    cmd(s, f, "QUIT")
    s.close()
    m = with_marker(server, USER, mark)
    assert len(m) == 1
    first = m[0].split(b"\r\n")[0]
    assert first.startswith(b"Received: from proxied.example ")
    assert b"[%s]" % client_ip.encode() in first, m[0][:300]
    assert b"127.0.0.1" not in first
    wait_log(server, r"smtp connect client=%s listener=smtp" %
             re.escape(client_ip))


def test_proxy_v1(make_server):
    s = start_proxy_server(make_server, PROXY_EXTRA)
    proxied_delivery(s, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 25\r\n",
                     "203.0.113.7")


def test_proxy_v2(make_server):
    s = start_proxy_server(make_server, PROXY_EXTRA)
    proxied_delivery(s, proxy_v2("203.0.113.8", "127.0.0.1", 5555, 25),
                     "203.0.113.8")


def test_proxy_header_and_commands_in_one_packet(make_server):
    s = start_proxy_server(make_server, PROXY_EXTRA)
    sock, f = proxied_session(
        s.smtp_port,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 25\r\nEHLO x.example\r\n")
    assert recv_reply(f).startswith("220 ")
    assert recv_reply(f).startswith("250-mail.example.test")
    sock.close()


def test_proxy_relay_decision_uses_proxied_address(make_server):
    extra = dict(PROXY_EXTRA)
    extra["smtp.trusted_networks"] = "203.0.113.0/24"
    s = start_proxy_server(make_server, extra)
    for src, want in (("203.0.113.7", "250"), ("198.51.100.9", "554")):
        sock, f = proxied_session(
            s.smtp_port, b"PROXY TCP4 %s 127.0.0.1 5555 25\r\n" %
            src.encode())
        assert recv_reply(f).startswith("220 ")
        cmd(sock, f, "EHLO client.example")
        assert cmd(sock, f, "MAIL FROM:<app@example.test>").startswith("250")
        r = cmd(sock, f, "RCPT TO:<someone@remote.example>")
        assert r.startswith(want), (src, r)
        if want == "554":
            assert "5.7.1" in r
        cmd(sock, f, "QUIT")
        sock.close()
    wait_log(s, r"smtp connect client=203\.0\.113\.7 listener=smtp "
                r"local=127\.0\.0\.1 trusted=yes")
    assert re.search(r"smtp connect client=198\.51\.100\.9 listener=smtp "
                     r"local=127\.0\.0\.1\n", s.log())


def read_all(sock, timeout=5):
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return out, True
            out += chunk
    except socket.timeout:
        return out, False
    except ConnectionResetError:
        return out, True


def test_proxy_missing_header_closed_without_banner(make_server):
    s = start_proxy_server(make_server, PROXY_EXTRA)
    for junk in (b"EHLO client.example\r\n",
                 b"PROXY TCP4 203.0.113.7 127.0.0.1 05555 25\r\n",
                 b"PROXY TCP4 203.0.113.999 127.0.0.1 5555 25\r\n"):
        sock = socket.create_connection(("127.0.0.1", s.smtp_port),
                                        timeout=5)
        sock.sendall(junk)
        data, closed = read_all(sock)
        sock.close()
        assert data == b"" and closed, (junk, data, closed)


def test_proxy_from_untrusted_peer_refused(make_server):
    s = start_proxy_server(make_server, {
        "listen.proxy_protocol": "smtp",
        "listen.proxy_trusted_networks": "192.0.2.0/24"})
    sock = socket.create_connection(("127.0.0.1", s.smtp_port), timeout=5)
    sock.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 25\r\n")
    data, closed = read_all(sock)
    sock.close()
    assert data == b"" and closed, data
    wait_log(s, r"smtp refused client=127\.0\.0\.1 listener=smtp "
                r"reason=\"not a trusted proxy\"")
    # listeners without PROXY are not affected
    assert ehlo_size(s.submission_port) is None  # pre-TLS EHLO: no SIZE


def test_proxy_on_submissions_then_tls(make_server, pki):
    s = make_server(extra={"listen.proxy_protocol": "submissions",
                           "listen.proxy_trusted_networks": "127.0.0.1"})
    raw = socket.create_connection(("127.0.0.1", s.submissions_port),
                                   timeout=10)
    raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 465\r\n")
    t = client_ctx(pki).wrap_socket(raw, server_hostname="mail.example.test")
    f = t.makefile("rb")
    assert recv_reply(f) == "220 mail.example.test ESMTP\r\n"
    r = cmd(t, f, "EHLO client.example")
    assert "AUTH PLAIN LOGIN" in r
    r = cmd(t, f, "AUTH PLAIN " + plain_creds(USER, PW))
    assert r.startswith("235"), r
    mark = marker()
    assert cmd(t, f, "MAIL FROM:<%s>" % USER).startswith("250")
    assert cmd(t, f, "RCPT TO:<%s>" % OTHER).startswith("250")
    assert cmd(t, f, "DATA").startswith("354")
    t.sendall(body(mark) + b".\r\n")
    assert recv_reply(f).startswith("250 2.0.0")
    cmd(t, f, "QUIT")
    t.close()
    assert len(with_marker(s, OTHER, mark)) == 1
    wait_log(s, r"smtp connect client=203\.0\.113\.7 listener=submissions "
                r"local=127\.0\.0\.1 tls=TLSv1\.3")
    wait_log(s, r"smtp auth client=203\.0\.113\.7 user=user@example\.test "
                r"result=ok")


def test_proxy_header_and_client_hello_in_one_packet(make_server, pki):
    # a proxy forwards the client's first bytes right behind its header
    s = make_server(extra={"listen.proxy_protocol": "submissions",
                           "listen.proxy_trusted_networks": "127.0.0.1"})
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx(pki).wrap_bio(inc, out,
                                   server_hostname="mail.example.test")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello
    raw = socket.create_connection(("127.0.0.1", s.submissions_port),
                                   timeout=10)
    raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 465\r\n" + hello)
    plain = b""
    deadline = time.time() + 8
    while b"\r\n" not in plain and time.time() < deadline:
        data = raw.recv(65536)
        if not data:
            break
        inc.write(data)
        try:
            tls.do_handshake()
            while True:  # tickets and app data may share one segment
                plain += tls.read(4096)
        except ssl.SSLWantReadError:
            pass
        if out.pending:
            raw.sendall(out.read())
    raw.close()
    assert plain.startswith(b"220 mail.example.test ESMTP"), plain


def test_proxy_tls_session_keeps_smtp_timeout(make_server, pki):
    """After PROXY + implicit TLS, the session idles under smtp.timeout
    (300 s by default), not under the 10 s allowed for the PROXY header."""
    s = make_server(extra={"listen.proxy_protocol": "submissions",
                           "listen.proxy_trusted_networks": "127.0.0.1"})
    raw = socket.create_connection(("127.0.0.1", s.submissions_port),
                                   timeout=10)
    raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 465\r\n")
    t = client_ctx(pki).wrap_socket(raw, server_hostname="mail.example.test")
    f = t.makefile("rb")
    assert recv_reply(f).startswith("220 ")
    assert cmd(t, f, "EHLO client.example").startswith("250-")
    time.sleep(11.5)
    try:
        r = cmd(t, f, "NOOP")
    except OSError as e:
        r = repr(e)
    t.close()
    assert r.startswith("250"), (r, [l for l in s.log().splitlines()
                                     if "203.0.113.7" in l])


# ---- SIGHUP ----

def reload_and_wait(s, gen):
    s.reload()
    wait_log(s, r"reload done \(generation %d\)" % gen)


def test_reload_keeps_open_transaction(make_server):
    s = make_server()
    mark = marker()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    c.ehlo("client.example")
    assert c.mail("sender@remote.example")[0] == 250
    reload_and_wait(s, 1)
    time.sleep(0.3)  # the old worker has had its SIGQUIT
    assert c.rcpt(USER)[0] == 250
    code, msg = c.data(body(mark))
    assert code == 250, (code, msg)
    try:
        c.quit()
    except (smtplib.SMTPException, OSError):
        pass
    assert len(with_marker(s, USER, mark)) == 1
    # new connections after the reload work
    mark2 = marker()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    assert c.sendmail("sender@remote.example", [OTHER], body(mark2)) == {}
    c.quit()
    assert len(with_marker(s, OTHER, mark2)) == 1
    assert "died" not in s.log()


def until(fn, want, timeout=8):
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.2)


def test_reload_applies_new_max_message_size(make_server):
    s = make_server()
    assert ehlo_size(s.smtp_port) == 26214400
    s.write_config({"smtp.max_message_size": "777777"}, {}, 2)
    reload_and_wait(s, 1)
    assert until(lambda: ehlo_size(s.smtp_port), 777777) == 777777
    # every new connection, not just one
    for _ in range(4):
        assert ehlo_size(s.smtp_port) == 777777


def peer_cn(port, pki):
    ctx = client_ctx(pki)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as r:
        with ctx.wrap_socket(r) as t:
            cert = t.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def test_reload_picks_up_new_certificate(make_server, pki):
    s = make_server(start=False)
    cert = os.path.join(s.dir, "live-cert.pem")
    key = os.path.join(s.dir, "live-key.pem")
    shutil.copy(pki["cert"], cert)
    shutil.copy(pki["key"], key)
    os.chmod(key, 0o644)
    s.write_config({"tls.cert": cert, "tls.key": key}, {}, 2)
    s.start()
    assert peer_cn(s.submissions_port, pki) == "mail.example.test"
    shutil.copy(pki["other_cert"], cert)
    shutil.copy(pki["other_key"], key)
    reload_and_wait(s, 1)
    assert until(lambda: peer_cn(s.submissions_port, pki),
                 "mail.example.org") == "mail.example.org"
    # STARTTLS on 25 too
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=10)
    ctx = client_ctx(pki)
    ctx.check_hostname = False
    c.starttls(context=ctx)
    cn = dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"]
    assert cn == "mail.example.org"
    c.quit()


def test_reload_with_bad_config_keeps_running(make_server, pki):
    s = make_server()
    good = open(s.config).read()
    with open(s.config, "a") as f:
        f.write("[smtp]\nmax_message_size = 5000\nno_such_key = 1\n")
    s.reload()
    wait_log(s, r"reload: configuration has errors; keeping the running one")
    assert "smtp.no_such_key: unknown key" in s.log()
    assert "reload done" not in s.log()
    assert ehlo_size(s.smtp_port) == 26214400
    mark = marker()
    c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
    assert c.sendmail("sender@remote.example", [USER], body(mark)) == {}
    c.quit()
    assert len(with_marker(s, USER, mark)) == 1
    # a broken certificate is refused the same way
    bad = os.path.join(s.dir, "garbage.pem")
    with open(bad, "w") as f:
        f.write("not a certificate\n")
    s.write_config({"tls.cert": bad}, {}, 2)
    s.reload()
    wait_log(s, r"reload: .*keeping the running configuration")
    assert peer_cn(s.submissions_port, pki) == "mail.example.test"
    # and a fixed file reloads fine afterwards
    with open(s.config, "w") as f:
        f.write(good)
    reload_and_wait(s, 1)
    assert ehlo_size(s.smtp_port) == 26214400


# ---- crashes and shutdown ----

def test_worker_crash_is_restarted(make_server):
    # the kernel, not ASan, must handle the SIGSEGV we send
    s = make_server(env={"ASAN_OPTIONS":
                         "detect_leaks=0:abort_on_error=1:handle_segv=0"})
    started = wait_log(s, r"worker\[(\d+)\] worker (\d+) started", count=2)
    pids = {int(p): int(i) for p, i in started}
    assert len(pids) == 2
    pid, index = sorted(pids.items())[0]
    assert pid in s.children()
    os.kill(pid, signal.SIGSEGV)
    wait_log(s, r"worker %d \(pid %d\) died \(signal %d\); restarting" %
             (index, pid, signal.SIGSEGV))
    wait_log(s, r"worker\[(\d+)\] worker %d started" % index, count=2)
    assert pid not in s.children()
    # mail still works, on every worker
    for _ in range(4):
        mark = marker()
        c = smtplib.SMTP("127.0.0.1", s.smtp_port, timeout=30)
        assert c.sendmail("sender@remote.example", [USER], body(mark)) == {}
        c.quit()
        assert len(with_marker(s, USER, mark)) == 1
    assert s.proc.poll() is None


def test_sigterm_exits_zero_and_closes_ports(make_server):
    s = make_server()
    # an idle client must not hold the shutdown up
    idle = socket.create_connection(("127.0.0.1", s.smtp_port), timeout=5)
    assert idle.recv(100).startswith(b"220 ")
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(10)
    assert rc == 0, s.log()[-3000:]
    assert time.time() - t0 < 5
    data, closed = read_all(idle, timeout=3)
    assert closed
    assert data == b"" or data.startswith(b"421 "), data
    idle.close()
    for port in (s.smtp_port, s.submission_port, s.submissions_port):
        assert port_closed(port), port
    assert "stopped" in s.log()
