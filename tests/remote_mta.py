"""Remote peers for outbound delivery tests (issue #6).

Two kinds of "the other side" for Mailfort's outbound SMTP client, both on
loopback only:

RemoteMTA -- a private Postfix (Debian's 3.7) acting as a remote MX: its own
    config_directory, queue_directory, data_directory and log under a
    scratch directory; never /etc/postfix's instance, never port 25.

        mta = RemoteMTA(listen=[("127.0.0.2", port)],
                        domains=["remote.test"],
                        cert=pki["cert"], key=pki["key"],
                        reject=["nobody@remote.test"])
        mta.start()
        ...                          # Mailfort delivers to 127.0.0.2:port
        msgs = mta.wait_for("bob@remote.test", 1, timeout=20)
        mta.set_temp_fail(["bob@remote.test"])   # 450 4.2.0 from now on
        mta.set_temp_fail([])                    # accepted again
        mta.stop()                   # also removes the scratch directory

    Every address in `domains` is accepted (a catch-all) and delivered by
    virtual(8) into one Maildir; messages(rcpt) picks the ones whose
    Delivered-To: header names rcpt, so a message for two recipients shows
    up once for each.  STARTTLS is offered when cert/key are given
    (smtpd_tls_security_level = may) and smtpd_tls_received_header = yes
    makes the Received: header name the TLS version and cipher.  Optional:
    reject (550 5.1.1 no such user), temp_fail (450 4.2.0 try later;
    switchable at run time with set_temp_fail/set_reject, which rewrite a
    texthash access map and `postfix reload`), size_limit
    (message_size_limit), smtputf8 (smtputf8_enable), several listen
    addresses on the same or different ports.

    As root (CI), Postfix daemons drop to the postfix user and virtual(8)
    writes as nobody: the scratch directory and everything on the way to it
    must be traversable, so the default scratch directory is a fresh
    mkdtemp() made 0755.  Not as root, start() raises (Postfix needs root).

SmtpSink -- a tiny aiosmtpd server for cases Postfix cannot do:

        sink = SmtpSink(port=port, delay=3.0)      # delay the final reply
        sink.start()
        ...
        sink.wait_for(1, "pending")   # data in, reply being delayed
        ...                           # kill the client now
        sink.completed()   # transactions whose final 250 was written while
                           # the client was still connected
        sink.aborted()     # the client went away before the reply
        sink.stop()

    With broken_starttls="garbage" (or "close") it advertises STARTTLS,
    answers 220 to it, then sends bytes that are not TLS (or just closes)
    instead of a handshake.  sink.plaintext_mail lists every MAIL FROM it
    ever got outside TLS, so a test can prove a message never went out in
    plaintext.  With cert/key it does real STARTTLS.

Nothing here imports the benchmark code.
"""

import asyncio
import atexit
import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time

POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"

_MASTER_CF_TAIL = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# instances whose Postfix runs: stopped at interpreter exit if a test run
# is interrupted before their stop()
_RUNNING = set()


@atexit.register
def _stop_all():
    for mta in list(_RUNNING):
        mta.stop()


REJECT_REPLY = "550 5.1.1 no such user"
TEMP_FAIL_REPLY = "450 4.2.0 try later"


def _run(cmd, check=True):
    # output through a file, not a pipe: postfix start leaves daemons that
    # must not hold a pipe of ours open
    with tempfile.TemporaryFile() as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd),
                                                   r.returncode, text[-2000:]))
    return r.returncode, text


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _hostport(addr, port):
    return "[%s]:%d" % (addr, port) if ":" in addr else "%s:%d" % (addr, port)


def _banner(addr, port, timeout):
    """Reads a 220 banner from addr:port; True when one arrived."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((addr, port))
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            ok = data.startswith(b"220 ")
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            return ok
    except OSError:
        return False


def _traversable_by_others(path):
    """True when every directory from / to path has o+x."""
    path = os.path.abspath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def header_values(msg, name):
    """Values of every `name:` header in the header block of raw message
    bytes (unfolded, as str)."""
    head = msg.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    head = head.replace(b"\r\n", b"\n")
    out = []
    cur = None
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b" " + line.strip()
            continue
        if cur is not None:
            out.append(cur)
            cur = None
        k, sep, v = line.partition(b":")
        if sep and k.strip().lower() == name.lower().encode():
            cur = v.strip()
    if cur is not None:
        out.append(cur)
    return [v.decode("utf-8", "replace") for v in out]


class RemoteMTA:
    """A private Postfix on loopback playing a remote MX.  See the module
    docstring."""

    def __init__(self, workdir=None, listen=None, domains=("remote.test",),
                 cert=None, key=None, hostname="mx.remote.test",
                 reject=(), temp_fail=(), size_limit=None, smtputf8=True,
                 extra_main=None):
        if listen is None:
            raise ValueError("listen=[(addr, port), ...] is required")
        self.listen = [(a, int(p)) for a, p in listen]
        for a, _ in self.listen:
            if not (a.startswith("127.") or a == "::1"):
                raise ValueError("loopback addresses only: %r" % a)
        self.domains = [d.lower() for d in domains]
        self.cert, self.key = cert, key
        self.hostname = hostname
        self._reject = list(reject)
        self._temp_fail = list(temp_fail)
        self.size_limit = size_limit
        self.smtputf8 = smtputf8
        self.extra_main = dict(extra_main or {})
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="mf-remote-mta-")
        self.dir = os.path.abspath(self.dir)
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.mail = os.path.join(self.dir, "mail")
        self.maildir = os.path.join(self.mail, "inbox")
        self.logfile = os.path.join(self.dir, "maillog")
        self.access = os.path.join(self.etc, "recipient_access")
        self.started = False

    # ---- configuration ----
    def _write_access(self):
        tmp = self.access + ".tmp"
        with open(tmp, "w") as f:
            f.write("# written by tests/remote_mta.py\n")
            # Postfix folds lookup keys to lower case
            rejects = [a.lower() for a in self._reject]
            for a in rejects:
                f.write("%s %s\n" % (a, REJECT_REPLY))
            for a in self._temp_fail:
                if a.lower() not in rejects:
                    f.write("%s %s\n" % (a.lower(), TEMP_FAIL_REPLY))
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.access)

    def _setup(self):
        if os.geteuid() != 0:
            raise RuntimeError("RemoteMTA needs root (Postfix is started "
                               "by root and drops privileges)")
        os.chmod(self.dir, 0o755)
        if not _traversable_by_others(self.dir):
            raise RuntimeError("%s is not traversable by the postfix and "
                               "nobody users; leave workdir=None" % self.dir)
        for d in (self.etc, self.spool, self.data, self.mail):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.chmod(self.data, 0o700)
        nobody = pwd.getpwnam("nobody").pw_uid
        nogroup = grp.getgrnam("nogroup").gr_gid
        for sub in ("", "new", "cur", "tmp"):
            p = os.path.join(self.maildir, sub)
            os.makedirs(p, exist_ok=True)
            os.chown(p, nobody, nogroup)
        os.chown(self.mail, nobody, nogroup)
        self._write_access()
        v6 = any(":" in a for a, _ in self.listen)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.data,
            "command_directory": "/usr/sbin",
            "daemon_directory": POSTFIX_DAEMONS,
            "shlib_directory": "/usr/lib/postfix",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.logfile,
            "maillog_file_prefixes": self.dir,
            "syslog_name": "remote-mta",
            "myhostname": self.hostname,
            "mydomain": self.hostname.split(".", 1)[-1],
            "myorigin": "$myhostname",
            "mydestination": "",
            "relayhost": "",
            # master.cf binds the listen addresses; inet_interfaces must
            # name configured interface addresses (127.0.0.2 is not one)
            "inet_interfaces": "loopback-only",
            "inet_protocols": "all" if v6 else "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            # it receives only; anything it would send goes nowhere
            "default_transport": "error:5.3.0 remote MTA fixture does not "
                                 "relay",
            "notify_classes": "",
            "smtpd_client_restrictions": "",
            "smtpd_helo_restrictions": "",
            "smtpd_sender_restrictions": "",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_recipient_restrictions":
                "check_recipient_access texthash:%s, "
                "reject_unauth_destination" % self.access,
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "1000",
            "smtpd_client_event_limit_exceptions": "127.0.0.0/8",
            "smtputf8_enable": "yes" if self.smtputf8 else "no",
            "mailbox_size_limit": "0",
            "virtual_mailbox_limit": "0",
            "virtual_mailbox_domains": ", ".join(self.domains),
            "virtual_mailbox_base": self.mail,
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": "static:%d" % nobody,
            "virtual_gid_maps": "static:%d" % nogroup,
            "virtual_minimum_uid": "1",
            "virtual_alias_maps": "",
        }
        if self.size_limit is not None:
            main["message_size_limit"] = str(int(self.size_limit))
        if self.cert and self.key:
            main.update({
                "smtpd_tls_cert_file": self.cert,
                "smtpd_tls_key_file": self.key,
                "smtpd_tls_security_level": "may",
                "smtpd_tls_received_header": "yes",
                "smtpd_tls_loglevel": "1",
            })
        else:
            main["smtpd_tls_security_level"] = "none"
        main.update(self.extra_main)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("# private remote MX for Mailfort tests\n")
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("# private remote MX for Mailfort tests: loopback, no "
                    "chroot\n")
            for a, p in self.listen:
                f.write("%s inet n - n - - smtpd\n" % _hostport(a, p))
            f.write(_MASTER_CF_TAIL)
        open(self.logfile, "a").close()

    def postfix(self, *args, check=True):
        return _run(["postfix", "-c", self.etc] + list(args), check=check)

    # ---- process control ----
    def start(self, timeout=20):
        self._setup()
        try:
            # errors before the master runs go to syslog, not maillog
            self.postfix("start")
            self.started = True
            _RUNNING.add(self)
            deadline = time.monotonic() + timeout
            for a, p in self.listen:
                while not _banner(a, p, 2):
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            "remote MTA %s did not answer:\n%s" % (
                                _hostport(a, p), self.log()[-3000:]))
                    time.sleep(0.1)
        except Exception:
            self.started = True
            self.stop(cleanup=False)   # keep config and log to look at
            raise
        return self

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def reload(self, timeout=10):
        """postfix reload, then wait until the master logged it: new smtpd
        processes read the new configuration and access map."""
        before = self.log().count("reload -- version")
        self.postfix("reload")
        deadline = time.monotonic() + timeout
        while self.log().count("reload -- version") <= before:
            if time.monotonic() > deadline:
                raise RuntimeError("postfix reload not logged:\n" +
                                   self.log()[-2000:])
            time.sleep(0.05)
        # idle smtpd processes of the old generation exit when the master
        # closes their status pipe; give them a moment
        time.sleep(0.3)

    def set_temp_fail(self, rcpts):
        """From now on answer RCPT TO for these recipients with 450 4.2.0;
        [] accepts them again.  Entries are addresses or whole domains
        (access(5) lookup: user@domain, then domain, then user@)."""
        self._temp_fail = list(rcpts)
        if self.started:
            self._write_access()
            self.reload()

    def set_reject(self, rcpts):
        """From now on answer RCPT TO for these recipients with 550 5.1.1
        (addresses or domains, as for set_temp_fail)."""
        self._reject = list(rcpts)
        if self.started:
            self._write_access()
            self.reload()

    def stop(self, cleanup=True):
        if self.started:
            pid = self.master_pid()
            self.postfix("stop", check=False)
            deadline = time.monotonic() + 15
            while pid and _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid and _pid_alive(pid):
                self.postfix("abort", check=False)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.started = False
        _RUNNING.discard(self)
        if cleanup and self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- what arrived ----
    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def all_messages(self):
        """Every delivered message (raw bytes, LF line ends as Postfix
        writes Maildir files), oldest first."""
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                p = os.path.join(d, n)
                try:
                    files.append((os.stat(p).st_mtime_ns, n, p))
                except FileNotFoundError:
                    pass
        out = []
        for _, _, p in sorted(files):
            try:
                with open(p, "rb") as f:
                    out.append(f.read())
            except FileNotFoundError:
                pass
        return out

    def messages(self, rcpt):
        """Messages delivered for envelope recipient rcpt (by the
        Delivered-To: header virtual(8) prepends), oldest first."""
        want = rcpt.lower()
        return [m for m in self.all_messages()
                if any(v.lower() == want
                       for v in header_values(m, "Delivered-To")[:1])]

    def wait_for(self, rcpt, count, timeout=30):
        """Waits until rcpt has at least count messages; returns them
        (fewer if the time ran out)."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(rcpt)
            if len(msgs) >= count or time.monotonic() > deadline:
                return msgs
            time.sleep(0.05)


# --------------------------------------------------------------------------
# aiosmtpd sink
# --------------------------------------------------------------------------

try:
    from aiosmtpd.controller import Controller as _Controller
    from aiosmtpd.smtp import SMTP as _SMTP, syntax as _syntax
except ImportError:  # pragma: no cover - Debian's python3-aiosmtpd
    _Controller = _SMTP = _syntax = None


if _SMTP is not None:
    class _SinkSMTP(_SMTP):
        """aiosmtpd's server with an optional broken STARTTLS."""

        def __init__(self, handler, broken_starttls=None, **kw):
            super().__init__(handler, **kw)
            self._broken = broken_starttls

        @_syntax("STARTTLS", when="tls_context")
        async def smtp_STARTTLS(self, arg):
            if not self._broken:
                return await super().smtp_STARTTLS(arg)
            self.event_handler.sink._note("starttls", self.session.peer)
            await self.push("220 2.0.0 Ready to start TLS")
            if self._broken == "garbage":
                # not a TLS record: a client handshake must fail here
                self._writer.write(b"this is not a TLS handshake\r\n"
                                   b"250 OK\r\n" * 4)
                try:
                    await self._writer.drain()
                except ConnectionError:
                    pass
            self.transport.close()
            self._handler_coroutine.cancel()

    class _SinkController(_Controller):
        def __init__(self, handler, broken_starttls, **kw):
            self._broken = broken_starttls
            super().__init__(handler, **kw)

        def factory(self):
            return _SinkSMTP(self.handler, broken_starttls=self._broken,
                             **self.SMTP_kwargs)


class SmtpSink:
    """A small aiosmtpd server recording transactions.  See the module
    docstring.

    delay         seconds to wait before the final reply to DATA (can be
                  changed while running)
    rcpt_replies  {address: "550 5.1.1 ..."} answers for given recipients
    data_reply    final reply to DATA (default 250)
    """

    def __init__(self, port, host="127.0.0.1", delay=0.0, cert=None,
                 key=None, broken_starttls=None, rcpt_replies=None,
                 data_reply="250 2.0.0 Ok: queued", smtputf8=True,
                 hostname="sink.remote.test"):
        if _Controller is None:
            raise RuntimeError("python3-aiosmtpd is not installed")
        if broken_starttls not in (None, "garbage", "close"):
            raise ValueError("broken_starttls: None, 'garbage' or 'close'")
        self.host, self.port = host, port
        self.delay = delay
        self.rcpt_replies = dict(rcpt_replies or {})
        self.data_reply = data_reply
        # one dict per DATA received: mail_from, rcpt_tos, data, tls, peer,
        # time, status (pending, completed, aborted, refused), reply
        self.transactions = []
        self.plaintext_mail = []   # MAIL FROM addresses received outside TLS
        self.events = []           # (what, peer) e.g. ("starttls", peer)
        self._cond = threading.Condition()
        tls_ctx = None
        if cert and key:
            tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_ctx.load_cert_chain(cert, key)
        elif broken_starttls:
            # only makes aiosmtpd advertise STARTTLS; never used
            tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctl = _SinkController(
            _SinkHandler(self), broken_starttls, hostname=host, port=port,
            server_hostname=hostname, tls_context=tls_ctx,
            enable_SMTPUTF8=smtputf8, data_size_limit=None, timeout=60)

    def start(self):
        self._ctl.start()
        return self

    def stop(self):
        try:
            self._ctl.stop()
        except AssertionError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _note(self, what, peer):
        with self._cond:
            self.events.append((what, peer))
            self._cond.notify_all()

    def _record(self, rec):
        with self._cond:
            self.transactions.append(rec)
            self._cond.notify_all()

    def _finish(self, rec, status, reply):
        with self._cond:
            rec["status"], rec["reply"] = status, reply
            self._cond.notify_all()

    def _mail_plain(self, addr):
        with self._cond:
            self.plaintext_mail.append(addr)
            self._cond.notify_all()

    def completed(self):
        """Transactions whose final 250 was written while the client was
        still connected."""
        with self._cond:
            return [t for t in self.transactions
                    if t["status"] == "completed"]

    def aborted(self):
        """Transactions whose data arrived but whose client went away
        before the final reply."""
        with self._cond:
            return [t for t in self.transactions if t["status"] == "aborted"]

    def pending(self):
        """Transactions whose data arrived and whose final reply is still
        being delayed."""
        with self._cond:
            return [t for t in self.transactions if t["status"] == "pending"]

    def wait_for(self, count, status="completed", timeout=30):
        """Waits until count transactions have that status (completed,
        aborted, pending, refused; None: any, i.e. data received); returns
        them (fewer if the time ran out)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [t for t in self.transactions
                       if status is None or t["status"] == status]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cond.wait(min(left, 0.5))


class _SinkHandler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        if session.ssl is None:
            self.sink._mail_plain(address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        reply = self.sink.rcpt_replies.get(address) or \
            self.sink.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        rec = {"mail_from": envelope.mail_from,
               "rcpt_tos": list(envelope.rcpt_tos),
               "data": bytes(envelope.original_content or b""),
               "tls": session.ssl is not None,
               "peer": session.peer, "time": time.time(),
               "status": "pending", "reply": None}
        self.sink._record(rec)
        reply = self.sink.data_reply
        try:
            if self.sink.delay > 0:
                await asyncio.sleep(self.sink.delay)
        except asyncio.CancelledError:
            # eof_received/connection_lost cancel the session task
            self.sink._finish(rec, "aborted", None)
            raise
        tr = server.transport
        if tr is None or tr.is_closing():
            self.sink._finish(rec, "aborted", None)
            return reply
        self.sink._finish(rec, "completed" if reply.startswith("250")
                          else "refused", reply)
        return reply
