"""Shared fixtures: a private CA, and real Mailfort servers on free
loopback ports with their own data directory and accounts.

Tests talk to the server with clients nobody here wrote (smtplib, ssl,
swaks, openssl s_client) over real sockets.
"""
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MAILFORT_BIN", os.path.join(ROOT, "build-test", "mailfort"))

PASSWORDS = {
    "user@example.test": "secret-user",
    "other@example.test": "secret-other",
    "admin@example.org": "secret-admin",
}


_handed_out = set()


def free_port():
    """A free loopback port never handed out before in this run: the
    kernel may return the same ephemeral port to two quick binds, and one
    server's listeners must not collide."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def _make_cert(d, name, cn, sans, ca_key, ca_pem):
    key = os.path.join(d, name + ".key")
    csr = os.path.join(d, name + ".csr")
    pem = os.path.join(d, name + ".pem")
    ext = os.path.join(d, name + ".ext")
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
          "/CN=" + cn, "-keyout", key, "-out", csr])
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(sans) + "\n")
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey",
          ca_key, "-CAcreateserial", "-days", "30", "-sha256", "-extfile",
          ext, "-out", pem])
    os.chmod(key, 0o644)  # read by the master only; tests may run as root
    return pem, key


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="mf-pki-")
    os.chmod(d, 0o755)
    ca_key = os.path.join(d, "ca.key")
    ca_pem = os.path.join(d, "ca.pem")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
          "-days", "30", "-subj", "/CN=Mailfort test CA", "-keyout", ca_key,
          "-out", ca_pem])
    main = _make_cert(d, "main", "mail.example.test",
                      ["DNS:mail.example.test", "DNS:localhost",
                       "IP:127.0.0.1"], ca_key, ca_pem)
    other = _make_cert(d, "other", "mail.example.org",
                       ["DNS:mail.example.org"], ca_key, ca_pem)
    yield {"dir": d, "ca": ca_pem, "cert": main[0], "key": main[1],
           "other_cert": other[0], "other_key": other[1]}
    shutil.rmtree(d, ignore_errors=True)


def client_ctx(pki, **kw):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


class Server:
    """One mailfort serve process with its own ports and data."""

    def __init__(self, pki, extra=None, sections=None, accounts=None,
                 aliases=None, workers=2, env=None, pop3=False, imap=False):
        self.pki = pki
        self.dir = tempfile.mkdtemp(prefix="mf-test-")
        os.chmod(self.dir, 0o755)
        self.data_dir = os.path.join(self.dir, "var")
        self.config = os.path.join(self.dir, "mailfort.ini")
        self.users_file = os.path.join(self.dir, "postfix-accounts.cf")
        self.aliases_file = os.path.join(self.dir, "postfix-virtual.cf")
        self.log_path = os.path.join(self.dir, "server.log")
        self.smtp_port = free_port()
        self.submissions_port = free_port()
        self.submission_port = free_port()
        # POP3 is off by default (DESIGN.md §1); pop3=True turns both on.
        self.pop3 = pop3
        self.pop3_port = free_port() if pop3 else None
        self.pop3s_port = free_port() if pop3 else None
        self.imap = imap
        self.imap_port = free_port() if imap else None
        self.imaps_port = free_port() if imap else None
        self.env = dict(os.environ)
        self.env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
        self.env["UBSAN_OPTIONS"] = "print_stacktrace=1"
        if env:
            self.env.update(env)
        self.proc = None
        self.accounts = dict(PASSWORDS if accounts is None else accounts)
        self.write_accounts()
        with open(self.aliases_file, "w") as f:
            f.write(aliases if aliases is not None else
                    "# aliases\n"
                    "team@example.test user@example.test,other@example.test\n"
                    "info@example.test user@example.test\n"
                    "@example.org admin@example.org\n"
                    "ext@example.test someone@remote.example\n")
        os.chmod(self.aliases_file, 0o644)
        self.user = "nobody" if os.getuid() == 0 else ""
        self.write_config(extra or {}, sections or {}, workers)

    def write_accounts(self):
        with open(self.users_file, "w") as f:
            for addr, pw in self.accounts.items():
                h = crypt.crypt(pw, crypt.mksalt(crypt.METHOD_SHA512))
                f.write("%s|{SHA512-CRYPT}%s\n" % (addr, h))
        os.chmod(self.users_file, 0o644)

    def write_config(self, extra, sections, workers):
        cfg = {
            "server": {
                "hostname": "mail.example.test",
                "domains": "example.test, example.org",
                "data_dir": self.data_dir,
                "workers": str(workers),
                "log_level": "debug",
            },
            "listen": {
                "smtp": "127.0.0.1:%d" % self.smtp_port,
                "submissions": "127.0.0.1:%d" % self.submissions_port,
                "submission": "127.0.0.1:%d" % self.submission_port,
                "imap": "off", "imaps": "off", "pop3": "off", "pop3s": "off",
            },
            "tls": {"cert": self.pki["cert"], "key": self.pki["key"]},
            "accounts": {"users": self.users_file,
                         "aliases": self.aliases_file},
            "smtp": {},
        }
        if self.imap:
            cfg["listen"]["imap"] = "127.0.0.1:%d" % self.imap_port
            cfg["listen"]["imaps"] = "127.0.0.1:%d" % self.imaps_port
        if self.pop3:
            cfg["listen"]["pop3"] = "127.0.0.1:%d" % self.pop3_port
            cfg["listen"]["pop3s"] = "127.0.0.1:%d" % self.pop3s_port
        if self.user:
            cfg["server"]["user"] = self.user
        for k, v in extra.items():
            sec, key = k.split(".", 1)
            cfg.setdefault(sec, {})[key] = v
        for sec, kv in sections.items():
            cfg.setdefault(sec, {}).update(kv)
        with open(self.config, "w") as f:
            for sec, kv in cfg.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
        os.chmod(self.config, 0o644)

    # ---- process control ----
    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.config],
                                     stdout=self.logf, stderr=self.logf,
                                     env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        for port in (self.smtp_port, self.submission_port):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited:\n" + self.log())
                try:
                    with socket.create_connection(("127.0.0.1", port),
                                                  timeout=2) as s:
                        s.settimeout(5)
                        if s.recv(100).startswith(b"220 "):
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError("server not ready:\n" + self.log())
                time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def children(self):
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid",
                              str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        return [int(l.split()[0]) for l in out.splitlines() if l.strip()]

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        return log

    # ---- what got stored ----
    def store_dir(self, addr):
        local, domain = addr.split("@")
        return os.path.join(self.data_dir, "mail", domain, local)

    def messages(self, addr):
        """Raw messages in addr's INBOX, in UID order."""
        db = os.path.join(self.store_dir(addr), "index.db")
        for attempt in range(50):
            if not os.path.exists(db):
                return []
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True,
                                  timeout=10)
            try:
                rows = con.execute(
                    "SELECT m.file FROM messages m JOIN mailboxes b ON "
                    "b.id = m.mailbox_id WHERE b.name = 'INBOX' "
                    "ORDER BY m.uid").fetchall()
                break
            except sqlite3.OperationalError:
                # the store is being created right now
                time.sleep(0.1)
            finally:
                con.close()
        else:
            raise RuntimeError("cannot read store of " + addr)
        out = []
        for (name,) in rows:
            with open(os.path.join(self.store_dir(addr), "msg", name),
                      "rb") as f:
                out.append(f.read())
        return out

    def wait_messages(self, addr, n, timeout=15):
        deadline = time.time() + timeout
        while True:
            msgs = self.messages(addr)
            if len(msgs) >= n or time.time() > deadline:
                return msgs
            time.sleep(0.05)

    def queue_rows(self):
        db = os.path.join(self.data_dir, "queue", "queue.db")
        con = sqlite3.connect(db, timeout=10)
        try:
            return con.execute(
                "SELECT msg_id, addr, local, status FROM recipient"
            ).fetchall()
        finally:
            con.close()

    def cli(self, *args, input=None):
        return subprocess.run([BIN, "-c", self.config] + list(args),
                              capture_output=True, text=True, input=input,
                              env=self.env)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "panic at", "ERROR: LeakSanitizer")


def check_log_clean(log):
    for mark in SANITIZER_MARKS:
        assert mark not in log, "server log shows %r:\n%s" % (mark, log[-5000:])


@pytest.fixture
def make_server(pki):
    servers = []

    def make(**kw):
        start = kw.pop("start", True)
        s = Server(pki, **kw)
        servers.append(s)
        if start:
            s.start()
        return s
    yield make
    for s in servers:
        check_log_clean(s.cleanup())


@pytest.fixture(scope="module")
def server(pki):
    s = Server(pki).start()
    yield s
    check_log_clean(s.cleanup())


def send(server, port, frm, to, body, tls=None, auth=None, pki=None):
    """Sends one message with smtplib; returns the smtplib result."""
    import smtplib
    if tls == "implicit":
        c = smtplib.SMTP_SSL("127.0.0.1", port,
                             context=client_ctx(pki), timeout=30)
    else:
        c = smtplib.SMTP("127.0.0.1", port, timeout=30)
        if tls == "starttls":
            c.starttls(context=client_ctx(pki))
    try:
        if auth:
            c.login(*auth)
        return c.sendmail(frm, to, body)
    finally:
        c.quit()
