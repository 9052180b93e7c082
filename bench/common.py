"""Shared parts of the benchmark suites (bench/run.py, bench/imap.py,
bench/outbound.py): the benchmark account, small process and file helpers,
machine facts, the load-generator process pool, a minimal SMTP client, and
the private Mailfort and Postfix instances (config files, start, stop) the
suites specialise.

The pool: run_generators() forks ceil(sessions / per_proc) processes; each
runs one thread per session (session_fn), and every session signals ready
once connected.  When all are ready the harness sets one shared start time
and a go event; it samples the machine's CPU at the start and end of the
measured window (warmup .. warmup + seconds) and collects one merged result
per process.  What a session does and how results merge is the suite's.

Stdlib only.
"""

import base64
import grp
import math
import multiprocessing as mp
import os
import platform
import pwd
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

HOST = "127.0.0.1"
DOMAIN = "example.test"
USER = "bench@" + DOMAIN
PASSWORD = "bench-password-1"


# --------------------------------------------------------------------------
# Load-generator process pool
# --------------------------------------------------------------------------


def generator_main(session_fn, merge_fn, spec, sids, ready_q, go_evt,
                   start_val, result_q):
    """One generator process: a thread per session id, then merge_fn(out)
    with the process's CPU seconds added as "cpu"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = []
    lock = threading.Lock()
    remaining = [len(sids)]

    def ready_cb():
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                ready_q.put(os.getpid())

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=session_fn, daemon=True,
                                args=(spec, sid, go_evt, start_val, out,
                                      lock, ready_cb)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    agg = merge_fn(out)
    agg["cpu"] = (ru1.ru_utime - ru0.ru_utime) + \
        (ru1.ru_stime - ru0.ru_stime)
    result_q.put(agg)


def run_generators(session_fn, merge_fn, spec, sessions, per_proc,
                   ready_timeout=60, noun="sessions", probe=None):
    """Runs one cell.  session_fn(spec, sid, go_evt, start_val, out, lock,
    ready_cb) is one session; merge_fn(list of session results) -> dict
    merges them per process.  probe(), if given, is called at the start and
    end of the measured window.  Returns a dict: results (one per process
    that answered), nproc, cpu0/cpu1 (cpu_times() at the window's start and
    end) and probe0/probe1."""
    ctx = mp.get_context("fork")
    ready_q = ctx.Queue()
    result_q = ctx.Queue()
    go_evt = ctx.Event()
    start_val = ctx.Value("d", 0.0)
    nproc = max(1, int(math.ceil(sessions / float(per_proc))))
    groups = [list(range(i, sessions, nproc)) for i in range(nproc)]
    procs = []
    for g in groups:
        p = ctx.Process(target=generator_main,
                        args=(session_fn, merge_fn, spec, g, ready_q, go_evt,
                              start_val, result_q))
        p.daemon = True
        p.start()
        procs.append(p)
    out = {"results": [], "nproc": nproc, "cpu0": None, "cpu1": None,
           "probe0": None, "probe1": None}
    results = out["results"]
    finished = False
    try:
        deadline = time.monotonic() + ready_timeout
        got = 0
        while got < nproc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("%s did not get ready in %d s" % (
                    noun, ready_timeout))
            try:
                ready_q.get(timeout=min(left, 1.0))
                got += 1
            except Exception:
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("load generator processes died")
        t_start = time.perf_counter() + 0.05
        start_val.value = t_start
        go_evt.set()
        # system CPU usage over the measurement window
        w_begin = t_start + spec["warmup"]
        w_end = w_begin + spec["seconds"]
        time.sleep(max(0.0, w_begin - time.perf_counter()))
        out["cpu0"] = cpu_times()
        if probe is not None:
            out["probe0"] = probe()
        time.sleep(max(0.0, w_end - time.perf_counter()))
        out["cpu1"] = cpu_times()
        if probe is not None:
            out["probe1"] = probe()
        deadline = time.monotonic() + spec["timeout"] + 30
        while len(results) < nproc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("load generator did not finish")
            try:
                results.append(result_q.get(timeout=min(left, 1.0)))
            except Exception:
                if not any(p.is_alive() for p in procs) and \
                        result_q.empty():
                    break
        finished = True
    finally:
        for p in procs:
            p.join(timeout=5 if finished else 0.1)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2)
    return out


def busy_pct(c0, c1):
    """System CPU busy % between two cpu_times() samples, or None."""
    if not c0 or not c1:
        return None
    tot, idle = c1[0] - c0[0], c1[1] - c0[1]
    return (100.0 * (tot - idle) / tot) if tot else None


def cpu_times():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals), idle


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1,
                   int(math.ceil(q * len(sorted_vals))) - 1))
    return sorted_vals[k]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def log(msg):
    sys.stderr.write("[bench] %s\n" % msg)
    sys.stderr.flush()


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join("    " + l for l in lines[-n:])
    except OSError as e:
        return "    (%s)" % e


def port_free(port, addr=HOST):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def count_files(top):
    n = 0
    try:
        stack = [top]
        while stack:
            d = stack.pop()
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        n += 1
    except FileNotFoundError:
        pass
    return n


def sha512_crypt(pw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(pw, crypt.mksalt(crypt.METHOD_SHA512))


def run(cmd, check=True, **kw):
    # output through a file, not a pipe: a daemon that keeps the pipe open
    # must not make us wait for EOF
    with tempfile.TemporaryFile() as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, **kw)
        out.seek(0)
        r.stdout = out.read().decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (
            " ".join(cmd), r.returncode, r.stdout.strip()[-2000:]))
    return r


def pid_alive(pid):
    """True while pid exists and is not a zombie (a daemon reparented to an
    init that does not reap would otherwise look alive forever)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def make_cert(work):
    cert = os.path.join(work, "cert.pem")
    key = os.path.join(work, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "30",
         "-subj", "/CN=mail.example.test",
         "-addext", "subjectAltName=DNS:mail.example.test"])
    os.chmod(key, 0o644)  # private throwaway key; readable by dropped users
    os.chmod(cert, 0o644)
    return cert, key


def machine_facts():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ver = {}
    for pkg in ("postfix", "dovecot-core", "openssl"):
        r = run(["dpkg-query", "-W", "-f=${Version}", pkg], check=False)
        ver[pkg] = r.stdout.strip() if r.returncode == 0 else None
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "mem_mb": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "host": platform.node(), "packages": ver}


def add_run_options(ap, workdir, keep_help):
    """--workdir, --mailfort-user, --keep, --results: the options every
    suite has (bench/run.py --suite all passes them on, with --mailfort)."""
    ap.add_argument("--workdir", default=workdir,
                    help="scratch directory, wiped at start")
    ap.add_argument("--mailfort-user", default="nobody",
                    help="[server] user for Mailfort when run as root")
    ap.add_argument("--keep", action="store_true", help=keep_help)
    ap.add_argument("--results", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results"),
        help="directory for the JSON results")


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


# --------------------------------------------------------------------------
# SMTP client (load generators, injection, readiness checks)
# --------------------------------------------------------------------------


def insecure_tls_ctx():
    """A TLS client context that accepts the throwaway certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(host, port, tls_ctx, timeout):
    """A blocking TCP_NODELAY socket to host:port, through TLS if tls_ctx
    is given (the IMAP client uses it too)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls_ctx is not None:
        try:
            sock = tls_ctx.wrap_socket(sock)
        except Exception:
            sock.close()
            raise
    return sock


class SmtpError(Exception):
    pass


class Client:
    """Minimal blocking SMTP client with its own reply parser."""

    def __init__(self, host, port, tls_ctx, timeout):
        self.sock = connect(host, port, tls_ctx, timeout)
        self.buf = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """Returns (code, text) of one complete (possibly multiline) reply."""
        lines = []
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise SmtpError("connection closed by server")
                self.buf += chunk
                continue
            line = bytes(self.buf[:i])
            del self.buf[: i + 2]
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    raise SmtpError("bad reply line %r" % line[:80])
                return code, b"\n".join(lines)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def quit(self):
        """QUIT (its reply or any error ignored), then close."""
        try:
            self.send(b"QUIT\r\n")
            self.reply()
        except Exception:
            pass
        self.close()


def smtp_open(host, port, tls_ctx, timeout, user=None, password=None):
    """Connects, reads the banner, EHLO, and AUTH PLAIN when user is given.
    Returns (client, True if the server offers PIPELINING)."""
    c = Client(host, port, tls_ctx, timeout)
    try:
        code, text = c.reply()
        if code != 220:
            raise SmtpError("banner: %d %s" % (code, text[:80]))
        c.send(b"EHLO loadgen.client.test\r\n")
        code, text = c.reply()
        if code != 250:
            raise SmtpError("EHLO: %d %s" % (code, text[:80]))
        pipe = b"PIPELINING" in text.upper()
        if user is not None:
            tok = base64.b64encode(b"\0" + user.encode() + b"\0" +
                                   password.encode())
            c.send(b"AUTH PLAIN " + tok + b"\r\n")
            code, text = c.reply()
            if code != 235:
                raise SmtpError("AUTH: %d %s" % (code, text[:80]))
        return c, pipe
    except Exception:
        c.close()
        raise


def wait_banner(port, tls, timeout, alive=None):
    """Waits until HOST:port answers with a 220 banner (through TLS if
    asked).  Returns None or the last error text."""
    deadline = time.monotonic() + timeout
    last = "no attempt"
    ctx = insecure_tls_ctx() if tls else None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return "server process exited"
        try:
            c = Client(HOST, port, ctx, 5)
            try:
                code, text = c.reply()
            finally:
                c.quit()
            if code == 220:
                return None
            last = "banner %d %s" % (code, text[:80])
        except Exception as e:
            last = str(e) or e.__class__.__name__
        time.sleep(0.2)
    return last


# --------------------------------------------------------------------------
# Private Mailfort instance
# --------------------------------------------------------------------------


class MailfortServer:
    """Mailfort under WORK/mailfort: its accounts file and mailfort.ini
    (write_config), the `serve` process in its own process group (spawn),
    stop.  The suites say which listeners it has and wait for them."""
    name = "mailfort"
    stop_timeout = 15

    def __init__(self, binary, work, cert, key, user):
        self.binary = binary
        self.dir = os.path.join(work, "mailfort")
        self.var = os.path.join(self.dir, "var")
        self.conf = os.path.join(self.dir, "mailfort.ini")
        self.accounts = os.path.join(self.dir, "postfix-accounts.cf")
        self.logfile = os.path.join(self.dir, "mailfort.log")
        self.cert, self.key, self.user = cert, key, user
        self.proc = None

    def write_config(self, listen, extra=""):
        """listen: [(name, "host:port" or "off")] for [listen]; extra:
        further sections, appended as they are."""
        os.makedirs(self.var, exist_ok=True)
        with open(self.accounts, "w") as f:
            f.write("%s|{SHA512-CRYPT}%s\n" % (USER, sha512_crypt(PASSWORD)))
        os.chmod(self.accounts, 0o644)
        with open(self.conf, "w") as f:
            f.write(
                "[server]\n"
                "hostname = mail.example.test\n"
                "domains = %s\n"
                "data_dir = %s\n"
                "user = %s\n"
                "[listen]\n" % (DOMAIN, self.var, self.user))
            for k, v in listen:
                f.write("%s = %s\n" % (k, v))
            f.write(
                "[tls]\n"
                "cert = %s\n"
                "key = %s\n"
                "[accounts]\n"
                "users = %s\n" % (self.cert, self.key, self.accounts))
            f.write(extra)
        os.chmod(self.conf, 0o644)
        if os.geteuid() == 0 and self.user != "root":
            pw = pwd.getpwnam(self.user)
            for root, dirs, files in os.walk(self.var):
                os.chown(root, pw.pw_uid, pw.pw_gid)

    def spawn(self, ports):
        """Starts `mailfort serve` once every port is free (the caller waits
        for the listeners)."""
        if not (os.path.isfile(self.binary) and
                os.access(self.binary, os.X_OK)):
            raise RuntimeError("no executable at %s (build it: ninja -C "
                               "build)" % self.binary)
        for p in ports:
            if not port_free(p):
                raise RuntimeError("port %d is already in use" % p)
        lf = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "-c", self.conf], stdin=subprocess.DEVNULL,
            stdout=lf, stderr=lf, start_new_session=True, cwd=self.dir)
        lf.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def listener_error(self, what, port, e):
        return RuntimeError("%s listener 127.0.0.1:%d: %s\n"
                            "  server log %s:\n%s" % (
                                what, port, e, self.logfile,
                                tail(self.logfile)))

    def stop(self):
        """SIGTERM to the process group, SIGKILL after stop_timeout s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            log("mailfort did not stop in %d s; SIGKILL" % self.stop_timeout)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        # children left in the group (should be none)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cleanup_data(self):
        shutil.rmtree(self.var, ignore_errors=True)


# --------------------------------------------------------------------------
# Private Postfix instance
# --------------------------------------------------------------------------

# master.cf after the suite's own smtpd lines: Debian's services, no chroot
POSTFIX_MASTER_SERVICES = """\
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


class PostfixServer:
    """A private Postfix under WORK/postfix: its own config_directory (etc),
    queue_directory (spool), data_directory and maillog.  Subclasses set
    ports ({mode: port}; "submissions" is implicit TLS) and write main.cf
    from base_main() plus their own keys."""
    name = "postfix"
    ports = {}

    def __init__(self, work):
        self.dir = os.path.join(work, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "maillog")
        self.started = False

    def make_dirs(self, *more):
        for d in (self.etc, self.spool, self.data) + more:
            os.makedirs(d, exist_ok=True)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid,
                 grp.getgrnam("postfix").gr_gid)
        os.chmod(self.data, 0o700)

    def base_main(self):
        """main.cf keys every suite's instance has: private directories,
        loopback only, no DNS, no aliases or local delivery, empty smtpd
        restrictions (the suite sets relay and recipient restrictions)."""
        return {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.data,
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "shlib_directory": "/usr/lib/postfix",
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.logfile,
            "maillog_file_prefixes": self.dir,
            "myhostname": "pf.example.test",
            "mydomain": DOMAIN,
            "myorigin": DOMAIN,
            "mydestination": "",
            "relayhost": "",
            "inet_interfaces": HOST,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtpd_peername_lookup": "no",
            "smtp_host_lookup": "native",
            "smtp_dns_support_level": "disabled",
            "smtpd_client_event_limit_exceptions": "127.0.0.0/8",
            "smtpd_client_restrictions": "",
            "smtpd_helo_restrictions": "",
            "smtpd_sender_restrictions": "",
        }

    def write_config(self, what, main, smtpd_lines):
        """main.cf from the dict main; master.cf: smtpd_lines (the inet
        services) and POSTFIX_MASTER_SERVICES."""
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("# private main.cf for the %s\n" % what)
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("# private master.cf for the %s (no chroot, loopback "
                    "only)\n" % what)
            f.write(smtpd_lines)
            f.write(POSTFIX_MASTER_SERVICES)
        open(self.logfile, "a").close()

    def postfix(self, *args, check=True):
        return run(["postfix", "-c", self.etc] + list(args), check=check)

    def master_pid(self):
        return read_pid(os.path.join(self.spool, "pid", "master.pid"))

    def start(self):
        for p in self.ports.values():
            if not port_free(p):
                raise RuntimeError("port %d is already in use" % p)
        r = self.postfix("check", check=False)
        if r.stdout.strip():
            log("postfix check: %s" % r.stdout.strip()[-1000:])
        self.postfix("start")
        self.started = True
        for mode, port in sorted(self.ports.items()):
            e = wait_banner(port, mode == "submissions", 20)
            if e:
                raise RuntimeError("postfix %s 127.0.0.1:%d: %s\n%s" % (
                    mode, port, e, tail(self.logfile)))

    def stop(self):
        pid = self.master_pid()
        if pid is None or not pid_alive(pid):
            return
        self.postfix("stop", check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            self.postfix("abort", check=False)
            time.sleep(1)

    @staticmethod
    def stop_leftover(work):
        """Stops the instance an interrupted earlier run left in work."""
        etc = os.path.join(work, "postfix", "etc")
        if os.path.isfile(os.path.join(etc, "main.cf")):
            run(["postfix", "-c", etc, "stop"], check=False)
