#!/usr/bin/python3
"""Inbound SMTP benchmark: Mailfort side by side with Debian's Postfix.

Measures messages/s and per-transaction latency (MAIL .. the 250 after the
end of DATA) for 4 KB messages at 1, 10 and 50 concurrent sessions, in two
modes:

  smtp          plaintext on the inbound (port-25 role) listener, recipient a
                local mailbox, no AUTH
  submissions   implicit TLS (port-465 role) + AUTH PLAIN, then the same
                transactions

Each session is one connection that sends messages back to back (MAIL, RCPT,
DATA repeated, no RSET) for --warmup + --seconds; only transactions that end
inside the measurement window count.  The load generator is the same code for
both servers: several processes (--per-proc sessions each, one thread per
session, blocking sockets).

Both servers run privately under --workdir (default /tmp/mf-bench) on high
loopback ports; Postfix gets its own config_directory and queue_directory and
a private auth-only Dovecot for SASL.  After each cell the harness waits for
local delivery to catch up and compares delivered files with the 250s.

Stdlib only; run as root (Postfix needs it).  See bench/README.md.
"""

import argparse
import datetime
import grp
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py: shared with the other suites)
from common import (  # noqa: E402,F401  (also used as run.X by others)
    HOST, DOMAIN, USER, PASSWORD, log, tail, port_free, count_files,
    sha512_crypt, run, pid_alive, read_pid, make_cert, cpu_times,
    percentile, machine_facts, fmt, Client, SmtpError, wait_banner)

REMOTE_SENDER = "sender@client.test"

PORTS = {
    "mailfort": {"smtp": 52525, "submissions": 54465},
    "postfix": {"smtp": 42525, "submissions": 44465},
}

# --------------------------------------------------------------------------
# Load generator (runs in worker processes; identical for both servers)
# --------------------------------------------------------------------------


class MessageFactory:
    def __init__(self, size, sender, rcpt, tag):
        self.head_fmt = (
            "From: <%s>\r\n"
            "To: <%s>\r\n"
            "Subject: mailfort bench %%010d\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s.%%010d@client.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
        ) % (sender, rcpt,
             time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
             tag)
        head_len = len(self.head_fmt % (0, 0))
        remaining = size - head_len
        line = ("The quick brown fox jumps over the lazy dog; "
                "0123456789 abcdefghijklmnopqrstuv\r\n")
        body = []
        while remaining > len(line):
            body.append(line)
            remaining -= len(line)
        if remaining >= 2:
            body.append("x" * (remaining - 2) + "\r\n")
        self.body = "".join(body).encode() + b".\r\n"
        self.size = size

    def message(self, n):
        return (self.head_fmt % (n, n)).encode() + self.body


def session_run(spec, sid, go_evt, start_val, out, lock, ready_cb):
    """One SMTP session: connect, (AUTH), wait for go, loop transactions."""
    res = {"lat": [], "ok_win": 0, "ok_total": 0, "errors": 0,
           "error_samples": [], "pipelining": None, "connect_failed": 0,
           "reconnects": 0}

    def err(msg):
        res["errors"] += 1
        if len(res["error_samples"]) < 5:
            res["error_samples"].append("s%d: %s" % (sid, msg))

    tls_ctx = common.insecure_tls_ctx() if spec["tls"] else None

    def open_session():
        c, pipe = common.smtp_open(
            spec["host"], spec["port"], tls_ctx, spec["timeout"],
            spec["user"] if spec["auth"] else None, spec["password"])
        return c, (spec["pipelining"] and pipe)

    conn = None
    try:
        conn, pipe = open_session()
        res["pipelining"] = pipe
    except Exception as e:
        err("connect: %s" % e)
        res["connect_failed"] = 1
    ready_cb()
    go_evt.wait()
    t_start = start_val.value
    w_begin = t_start + spec["warmup"]
    w_end = w_begin + spec["seconds"]
    if conn is None:
        with lock:
            out.append(res)
        return

    fac = MessageFactory(spec["size"], spec["sender"], spec["rcpt"],
                         "%d.%d.%d" % (os.getpid(), sid, int(time.time())))
    mail = ("MAIL FROM:<%s>\r\n" % spec["sender"]).encode()
    rcpt = ("RCPT TO:<%s>\r\n" % spec["rcpt"]).encode()
    data = b"DATA\r\n"
    envelope = mail + rcpt + data
    pc = time.perf_counter
    n = 0
    lat = res["lat"]
    while True:
        now = pc()
        if now < t_start:
            time.sleep(t_start - now)
            continue
        if now >= w_end:
            break
        n += 1
        msg = fac.message(n)
        try:
            t0 = pc()
            if pipe:
                conn.send(envelope)
                c1 = conn.reply()
                c2 = conn.reply()
                c3 = conn.reply()
            else:
                conn.send(mail)
                c1 = conn.reply()
                c2 = c3 = (0, b"")
                if c1[0] == 250:
                    conn.send(rcpt)
                    c2 = conn.reply()
                    if c2[0] == 250:
                        conn.send(data)
                        c3 = conn.reply()
            if c3[0] == 354:
                conn.send(msg)
                c4 = conn.reply()
            else:
                c4 = (0, b"")
            t1 = pc()
            if c1[0] == 250 and c2[0] == 250 and c3[0] == 354 and \
                    c4[0] == 250:
                res["ok_total"] += 1
                if w_begin <= t1 <= w_end:
                    res["ok_win"] += 1
                    lat.append(t1 - t0)
            else:
                bad = [c for c in (c1, c2, c3, c4) if c[0] not in
                       (0, 250, 354)]
                err("transaction: %s" % "; ".join(
                    "%d %s" % (c[0], c[1][:60].decode("latin-1"))
                    for c in bad[:2]))
                if c4[0] == 250:
                    # the server accepted the message despite an odd reply
                    res["ok_total"] += 1
                if bad and bad[0][0] == 421:
                    raise SmtpError("421")
                conn.send(b"RSET\r\n")
                conn.reply()
                time.sleep(0.01)
        except Exception as e:
            err("io: %s" % e)
            conn.close()
            conn = None
            # reconnect (not timed) and go on
            while conn is None and pc() < w_end:
                try:
                    conn, pipe = open_session()
                    res["reconnects"] += 1
                except Exception as e2:
                    err("reconnect: %s" % e2)
                    time.sleep(0.2)
            if conn is None:
                break
    if conn is not None:
        conn.quit()
    with lock:
        out.append(res)


def merge_sessions(out):
    """One generator process's session results, merged."""
    agg = {"lat": [], "ok_win": 0, "ok_total": 0, "errors": 0,
           "error_samples": [], "pipelining": [], "connect_failed": 0,
           "reconnects": 0}
    for r in out:
        agg["lat"].extend(r["lat"])
        for k in ("ok_win", "ok_total", "errors", "connect_failed",
                  "reconnects"):
            agg[k] += r[k]
        agg["error_samples"].extend(r["error_samples"])
        agg["pipelining"].append(r["pipelining"])
    return agg


def run_cell(spec, sessions, per_proc):
    """Runs one (server, mode, sessions) cell; returns a metrics dict."""
    g = common.run_generators(session_run, merge_sessions, spec, sessions,
                              per_proc, ready_timeout=60, noun="sessions")
    results, nproc = g["results"], g["nproc"]
    lat = []
    m = {"sessions": sessions, "procs": nproc, "ok_win": 0, "ok_total": 0,
         "errors": 0, "error_samples": [], "connect_failed": 0,
         "reconnects": 0, "client_cpu_s": 0.0, "pipelining": []}
    for r in results:
        lat.extend(r["lat"])
        for k in ("ok_win", "ok_total", "errors", "connect_failed",
                  "reconnects"):
            m[k] += r[k]
        m["client_cpu_s"] += r["cpu"]
        m["error_samples"].extend(r["error_samples"])
        m["pipelining"].extend(r["pipelining"])
    if len(results) < nproc:
        m["errors"] += 1
        m["error_samples"].append("%d of %d generator processes returned "
                                  "no result" % (nproc - len(results), nproc))
    lat.sort()
    m["error_samples"] = m["error_samples"][:10]
    pl = [x for x in m["pipelining"] if x is not None]
    m["pipelining"] = (all(pl) if pl else None)
    m["msgs_per_s"] = m["ok_win"] / spec["seconds"]
    m["p50_ms"] = None if not lat else percentile(lat, 0.50) * 1000
    m["p90_ms"] = None if not lat else percentile(lat, 0.90) * 1000
    m["p99_ms"] = None if not lat else percentile(lat, 0.99) * 1000
    m["max_ms"] = None if not lat else lat[-1] * 1000
    m["mean_ms"] = None if not lat else sum(lat) / len(lat) * 1000
    m["system_cpu_busy_pct"] = common.busy_pct(g["cpu0"], g["cpu1"])
    return m


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class Mailfort(common.MailfortServer):
    """Mailfort with the smtp and submissions (implicit TLS) listeners."""

    def __init__(self, binary, work, cert, key, user):
        super().__init__(binary, work, cert, key, user)
        self.ports = PORTS["mailfort"]
        self.notes = []
        self.auth = True

    def mailbox_dir(self):
        return os.path.join(self.var, "mail", DOMAIN, "bench", "msg")

    def listen(self):
        return [("smtp", "%s:%d" % (HOST, self.ports["smtp"])),
                ("submissions", "%s:%d" % (HOST, self.ports["submissions"])),
                ("submission", "off"), ("imap", "off"), ("imaps", "off")]

    def setup(self):
        self.write_config(self.listen())

    def start(self):
        self.spawn(self.ports.values())
        for mode, port in sorted(self.ports.items()):
            e = wait_banner(port, mode == "submissions", 20, self.alive)
            if e:
                raise self.listener_error(mode, port, e)

    def delivered(self):
        return count_files(self.mailbox_dir())


class Dovecot:
    """Private auth-only Dovecot serving a passwd-file to Postfix."""

    def __init__(self, work, socket_path):
        self.dir = os.path.join(work, "dovecot")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.users = os.path.join(self.dir, "users")
        self.run_dir = os.path.join(self.dir, "run")
        self.logfile = os.path.join(self.dir, "dovecot.log")
        self.socket_path = socket_path
        self.started = False

    @staticmethod
    def available():
        return shutil.which("dovecot") is not None

    @staticmethod
    def install():
        log("installing dovecot-core from Debian (for Postfix SASL)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                 "dovecot-core"], check=False, env=env)
        if r.returncode != 0:
            r = run(["apt-get", "update", "-q"], check=False, env=env)
            r = run(["apt-get", "install", "-y", "-q",
                     "--no-install-recommends", "dovecot-core"],
                    check=False, env=env)
        return r.returncode == 0 and Dovecot.available()

    def setup(self):
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        with open(self.users, "w") as f:
            f.write("%s:{SHA512-CRYPT}%s::::::\n" % (
                USER, sha512_crypt(PASSWORD)))
        os.chmod(self.users, 0o640)
        os.chown(self.users, 0, grp.getgrnam("dovecot").gr_gid)
        with open(self.conf, "w") as f:
            f.write(
                "# private auth-only instance for the Mailfort benchmark\n"
                "instance_name = mf-bench\n"
                "base_dir = %(run)s\n"
                "state_dir = %(dir)s/state\n"
                "log_path = %(log)s\n"
                "info_log_path = %(log)s\n"
                "protocols = none\n"
                "ssl = no\n"
                "disable_plaintext_auth = no\n"
                "auth_mechanisms = plain login\n"
                "passdb {\n"
                "  driver = passwd-file\n"
                "  args = scheme=SHA512-CRYPT %(users)s\n"
                "}\n"
                "userdb {\n"
                "  driver = static\n"
                "  args = uid=65534 gid=65534 home=%(dir)s/home\n"
                "}\n"
                "service auth {\n"
                "  unix_listener %(sock)s {\n"
                "    mode = 0660\n"
                "    user = postfix\n"
                "    group = postfix\n"
                "  }\n"
                "}\n"
                "service anvil {\n"
                "  unix_listener anvil-auth-penalty {\n"
                "    mode = 0\n"
                "  }\n"
                "}\n" % {"run": self.run_dir, "dir": self.dir,
                         "log": self.logfile, "users": self.users,
                         "sock": self.socket_path})

    def start(self):
        # dovecot daemonizes; its children must not inherit a pipe of ours
        lf = open(self.logfile, "ab")
        try:
            rc = subprocess.call(["dovecot", "-c", self.conf],
                                 stdin=subprocess.DEVNULL, stdout=lf,
                                 stderr=lf)
        finally:
            lf.close()
        self.started = True
        if rc != 0:
            raise RuntimeError("dovecot exited %d:\n%s" % (
                rc, tail(self.logfile)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(self.socket_path):
                return
            time.sleep(0.1)
        raise RuntimeError("dovecot auth socket %s did not appear:\n%s" % (
            self.socket_path, tail(self.logfile)))

    def stop(self):
        pid = read_pid(os.path.join(self.run_dir, "master.pid"))
        if pid is None or not pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


POSTFIX_SMTPD = """\
%(host)s:%(smtp)d inet n - n - - smtpd
%(host)s:%(subs)d inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=%(sasl)s
"""


class Postfix(common.PostfixServer):
    """Postfix receiving for one virtual Maildir; SASL through Dovecot."""
    ports = PORTS["postfix"]

    def __init__(self, work, cert, key, sasl):
        super().__init__(work)
        self.mail = os.path.join(self.dir, "mail")
        self.cert, self.key = cert, key
        self.sasl = sasl
        self.auth = sasl
        self.notes = []
        self.uid = pwd.getpwnam("nobody").pw_uid
        self.gid = grp.getgrnam("nogroup").gr_gid

    def maildir(self):
        return os.path.join(self.mail, DOMAIN, "bench")

    def setup(self):
        self.make_dirs(self.mail)
        # Maildir of the one virtual mailbox, owned by the virtual uid
        md = self.maildir()
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for root, dirs, files in os.walk(os.path.join(self.mail, DOMAIN)):
            os.chown(root, self.uid, self.gid)
        # the private/ dir for the dovecot socket is created by postfix
        # (create-missing); make it now so dovecot can bind in it
        priv = os.path.join(self.spool, "private")
        os.makedirs(priv, exist_ok=True)
        os.chown(priv, pwd.getpwnam("postfix").pw_uid, 0)
        os.chmod(priv, 0o700)
        main = self.base_main()
        main.update({
            "lmtp_host_lookup": "native",
            "smtpd_relay_restrictions":
                "permit_mynetworks, permit_sasl_authenticated, "
                "reject_unauth_destination",
            "smtpd_recipient_restrictions":
                "permit_mynetworks, permit_sasl_authenticated, "
                "reject_unauth_destination",
            "smtpd_tls_cert_file": self.cert,
            "smtpd_tls_key_file": self.key,
            "smtpd_tls_security_level": "may",
            "smtpd_tls_auth_only": "yes",
            "smtpd_sasl_auth_enable": "no",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": "private/auth",
            "smtpd_sasl_security_options": "noanonymous",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.mail,
            "virtual_mailbox_maps":
                "inline:{ { %s = %s/bench/ } }" % (USER, DOMAIN),
            "virtual_uid_maps": "static:%d" % self.uid,
            "virtual_gid_maps": "static:%d" % self.gid,
            "virtual_minimum_uid": "100",
            "virtual_alias_maps": "",
        })
        self.write_config("Mailfort benchmark", main, POSTFIX_SMTPD % {
            "host": HOST, "smtp": self.ports["smtp"],
            "subs": self.ports["submissions"],
            "sasl": "yes" if self.sasl else "no"})

    def delivered(self):
        md = self.maildir()
        return count_files(os.path.join(md, "new")) + \
            count_files(os.path.join(md, "cur"))

    def cleanup_data(self):
        shutil.rmtree(self.mail, ignore_errors=True)
        shutil.rmtree(self.spool, ignore_errors=True)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def lat_str(c):
    if c is None or c.get("p50_ms") is None:
        return "-"
    return "%.2f/%.2f" % (c["p50_ms"], c["p99_ms"])


def print_table(cells, modes, sessions_list, servers, notes):
    print()
    hdr = ("%-13s %5s %13s %13s %7s %15s %15s" % (
        "mode", "sess", "Mailfort/s", "Postfix/s", "ratio",
        "MF p50/p99 ms", "PF p50/p99 ms"))
    print(hdr)
    print("-" * len(hdr))
    for mode in modes:
        for s in sessions_list:
            mf = cells.get(("mailfort", mode, s))
            pf = cells.get(("postfix", mode, s))

            def tput(c):
                if c is None:
                    return "-"
                t = "%.0f" % c["msgs_per_s"]
                if c.get("errors_all_runs", c["errors"]) or \
                        c.get("delivery_mismatch_any_run"):
                    t += "!"
                return t
            ratio = "-"
            if mf and pf and pf["msgs_per_s"] > 0:
                ratio = "%.2f" % (mf["msgs_per_s"] / pf["msgs_per_s"])
            label = mode
            if mode == "submissions" and pf is not None and \
                    not pf.get("auth", True):
                label = "submissions*"
            print("%-13s %5d %13s %13s %7s %15s %15s" % (
                label, s, tput(mf), tput(pf), ratio, lat_str(mf),
                lat_str(pf)))
    print()
    print("checks (250s in the cell vs files delivered; errors; generator "
          "CPU; system CPU busy in the window, and in 0.5 s before it):")
    for srv in servers:
        for mode in modes:
            for s in sessions_list:
                c = cells.get((srv, mode, s))
                if c is None:
                    continue
                print("  %-8s %-11s %3d: 250s %6d, delivered %6s%s, "
                      "errors %d, pipelining %s, gen cpu %.1fs, "
                      "busy %s%% (before: %s%%)%s"
                      % (srv, mode, s, c["ok_total"],
                         fmt(c.get("delivered"), "%d"),
                         " (MISMATCH)" if c.get("delivery_mismatch") else "",
                         c["errors"],
                         {True: "yes", False: "no", None: "-"}[
                             c["pipelining"]],
                         c["client_cpu_s"],
                         fmt(c["system_cpu_busy_pct"], "%.0f"),
                         fmt(c.get("background_busy_pct"), "%.0f"),
                         "" if len(c.get("runs_msgs_per_s", [])) < 2 else
                         ", runs " + "/".join(
                             "%.0f" % x for x in c["runs_msgs_per_s"])))
                for e in c["error_samples"][:3]:
                    print("      error: %s" % e)
    for n in notes:
        print("note: %s" % n)


INTERRUPTED = False


def inbound_main(argv=None):
    global INTERRUPTED
    ap = argparse.ArgumentParser(
        description="Inbound SMTP benchmark: Mailfort vs Postfix "
        "(--suite imap|outbound|all: see bench/imap.py --help, "
        "bench/outbound.py --help)")
    ap.add_argument("--suite", choices=["inbound", "imap", "outbound",
                                        "all"],
                    default="all", help="benchmark suite (default all: "
                    "inbound, then imap)")
    ap.add_argument("--imap-args", default="",
                    help="with --suite all: extra options for the imap "
                    "suite, one quoted string")
    ap.add_argument("--mailfort", default="build/mailfort",
                    help="path of the mailfort binary")
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="measured seconds per cell (default 8)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="warmup seconds per cell, not counted (default 2)")
    ap.add_argument("--sessions", default="1,10,50",
                    help="comma-separated concurrent session counts")
    ap.add_argument("--modes", default="smtp,submissions",
                    help="comma-separated: smtp, submissions")
    ap.add_argument("--only", choices=["postfix", "mailfort"],
                    help="benchmark only one server")
    ap.add_argument("--size", type=int, default=4096,
                    help="message size in bytes (default 4096)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per cell; the table shows the median run")
    ap.add_argument("--per-proc", type=int, default=10,
                    help="sessions per load-generator process (default 10)")
    ap.add_argument("--no-pipelining", action="store_true",
                    help="send MAIL, RCPT, DATA in lock step even when the "
                    "server offers PIPELINING")
    ap.add_argument("--drain-timeout", type=float, default=60.0,
                    help="seconds to wait for delivery after each cell")
    common.add_run_options(ap, "/tmp/mf-bench",
                           "keep mail stores and queues in --workdir")
    args = ap.parse_args(argv)

    command = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("smtp", "submissions"):
            ap.error("unknown mode %r" % m)
    sessions_list = [int(x) for x in args.sessions.split(",") if x.strip()]
    servers = ["mailfort", "postfix"]
    if args.only:
        servers = [args.only]
    if os.geteuid() != 0 and "postfix" in servers:
        ap.error("run as root (Postfix must be started by root)")

    facts = machine_facts()
    print("command: %s" % command)
    print("machine: nproc=%s, cpu=%s, mem=%s MB, kernel=%s, python=%s" % (
        facts["nproc"], facts["cpu"], facts["mem_mb"], facts["kernel"],
        facts["python"]))
    print("packages: %s" % ", ".join(
        "%s %s" % (k, v) for k, v in facts["packages"].items()))
    print("cells: modes=%s sessions=%s, %.0f s measured + %.0f s warmup, "
          "%d-byte messages, %d sessions per generator process" % (
              ",".join(modes), ",".join(map(str, sessions_list)),
              args.seconds, args.warmup, args.size, args.per_proc))
    sys.stdout.flush()

    work = os.path.abspath(args.workdir)
    notes = []
    active = {}
    dovecot = None
    cleanup_list = []

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    # stop leftovers of an interrupted earlier run before wiping the dir
    common.PostfixServer.stop_leftover(work)
    old_dc = read_pid(os.path.join(work, "dovecot", "run", "master.pid"))
    if old_dc and pid_alive(old_dc):
        try:
            with open("/proc/%d/comm" % old_dc) as f:
                if f.read().strip() == "dovecot":
                    os.kill(old_dc, signal.SIGTERM)
                    time.sleep(1)
        except OSError:
            pass
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)

    runs = {}
    try:
        cert, key = make_cert(work)

        if "mailfort" in servers:
            mf = Mailfort(os.path.abspath(args.mailfort), work, cert, key,
                          args.mailfort_user)
            cleanup_list.append(mf)
            try:
                mf.setup()
                mf.start()
                active["mailfort"] = mf
                log("mailfort up (log %s)" % mf.logfile)
            except Exception as e:
                msg = "Mailfort not benchmarked: %s" % e
                log(msg)
                notes.append(msg.splitlines()[0])
                mf.stop()

        if "postfix" in servers:
            sasl = True
            if "submissions" in modes:
                if not Dovecot.available() and not Dovecot.install():
                    sasl = False
            pf = Postfix(work, cert, key, sasl)
            if sasl:
                dovecot = Dovecot(work, os.path.join(pf.spool, "private",
                                                     "auth"))
            try:
                pf.setup()
                if dovecot is not None:
                    try:
                        dovecot.setup()
                        dovecot.start()
                    except Exception as e:
                        log("dovecot failed: %s" % e)
                        dovecot.stop()
                        dovecot = None
                        sasl = False
                        pf.sasl = pf.auth = False
                        pf.setup()
                if not sasl and "submissions" in modes:
                    notes.append("submissions* = Postfix ran TLS WITHOUT "
                                 "AUTH (no working SASL backend)")
                cleanup_list.append(pf)
                pf.start()
                active["postfix"] = pf
                log("postfix up (log %s)" % pf.logfile)
            except Exception as e:
                msg = "Postfix not benchmarked: %s" % e
                log(msg)
                notes.append(msg.splitlines()[0])

        if not active:
            log("no server could be started")
            notes.append("no server could be started")

        expected = {name: srv.delivered() for name, srv in active.items()}

        def one_run(name, srv, mode, s, rep):
            auth = (mode == "submissions" and srv.auth)
            sender = USER if mode == "submissions" else REMOTE_SENDER
            spec = {"host": HOST, "port": srv.ports[mode],
                    "tls": mode == "submissions", "auth": auth,
                    "user": USER, "password": PASSWORD,
                    "sender": sender, "rcpt": USER,
                    "size": args.size, "warmup": args.warmup,
                    "seconds": args.seconds,
                    "pipelining": not args.no_pipelining,
                    "timeout": 30.0}
            # how busy the machine is before we start (other load)
            c0 = cpu_times()
            time.sleep(0.5)
            c1 = cpu_times()
            tot, idle = c1[0] - c0[0], c1[1] - c0[1]
            bg = (100.0 * (tot - idle) / tot) if tot else None
            log("%s %s %d sessions%s ..." % (
                name, mode, s, " (run %d)" % (rep + 1)
                if args.repeat > 1 else ""))
            m = run_cell(spec, s, args.per_proc)
            m["server"], m["mode"], m["auth"] = name, mode, auth
            m["background_busy_pct"] = bg
            expected[name] += m["ok_total"]
            t0 = time.monotonic()
            got = srv.delivered()
            while got < expected[name] and \
                    time.monotonic() - t0 < args.drain_timeout:
                time.sleep(0.25)
                got = srv.delivered()
            before = expected[name] - m["ok_total"]
            m["delivered"] = got - before
            m["drain_s"] = round(time.monotonic() - t0, 2)
            m["delivery_mismatch"] = got != expected[name]
            if got != expected[name]:
                # resynchronise so later cells are judged alone
                expected[name] = got
            log("  %.0f msg/s, p50 %s ms, p99 %s ms, errors %d, "
                "delivered %d/%d (drain %.1fs), busy before %s%%" % (
                    m["msgs_per_s"], fmt(m["p50_ms"], "%.2f"),
                    fmt(m["p99_ms"], "%.2f"), m["errors"],
                    m["delivered"], m["ok_total"], m["drain_s"],
                    fmt(bg, "%.0f")))
            return m

        # interleaved: for each mode and session count, each server in turn,
        # alternating which goes first (ABBA) so drift hits both alike
        turn = 0
        for mode in modes:
            for s in sessions_list:
                for rep in range(args.repeat):
                    order = list(servers)
                    if turn % 2:
                        order.reverse()
                    turn += 1
                    for name in order:
                        srv = active.get(name)
                        if srv is None:
                            continue
                        try:
                            m = one_run(name, srv, mode, s, rep)
                        except Exception as e:
                            log("%s %s %d: %s" % (name, mode, s, e))
                            notes.append("%s %s %d sessions failed: %s" % (
                                name, mode, s, e))
                            continue
                        runs.setdefault((name, mode, s), []).append(m)
                        if name == "mailfort" and \
                                srv.proc.poll() is not None:
                            msg = "mailfort exited (%s) during %s/%d:\n%s" % (
                                srv.proc.returncode, mode, s,
                                tail(srv.logfile))
                            log(msg)
                            notes.append(msg.splitlines()[0])
                            del active[name]
    except KeyboardInterrupt:
        INTERRUPTED = True
        log("interrupted; stopping servers")
        notes.append("run interrupted")
    finally:
        for srv in reversed(cleanup_list):
            try:
                srv.stop()
            except Exception as e:
                log("stopping %s: %s" % (srv.name, e))
        if dovecot is not None:
            try:
                dovecot.stop()
            except Exception as e:
                log("stopping dovecot: %s" % e)
        if not args.keep:
            for srv in cleanup_list:
                srv.cleanup_data()

    # per cell, the run with the median throughput (all runs go to JSON)
    cells = {}
    for k, lst in runs.items():
        srt = sorted(lst, key=lambda m: m["msgs_per_s"])
        c = dict(srt[(len(srt) - 1) // 2])
        c["runs_msgs_per_s"] = [m["msgs_per_s"] for m in lst]
        c["errors_all_runs"] = sum(m["errors"] for m in lst)
        c["delivery_mismatch_any_run"] = any(m["delivery_mismatch"]
                                             for m in lst)
        cells[k] = c
    noisy = sorted(set("%s/%s/%d" % k for k, lst in runs.items()
                       if any((m.get("background_busy_pct") or 0) > 25
                              for m in lst)))
    if noisy:
        notes.append("other load on the machine (>25%% CPU busy just "
                     "before): %s; numbers there are less reliable" %
                     ", ".join(noisy))
    pf = active.get("postfix")
    if pf is not None and pf.sasl and "submissions" in modes:
        notes.append("Postfix AUTH PLAIN via a private Dovecot auth "
                     "(passwd-file, SHA512-CRYPT)")
    if pf is not None:
        notes.append("Postfix defaults kept: in_flow_delay=1s (smtpd slows "
                     "down when the queue manager falls behind), fsync of "
                     "queue files before 250")
    notes.append("'!' = errors or delivered != 250s in that cell; "
                 "logs and configs under %s" % work)

    print_table(cells, modes, sessions_list, servers, notes)

    os.makedirs(args.results, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.results, "inbound-%s.json" % stamp)
    doc = {
        "benchmark": "inbound-smtp",
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "machine": facts,
        "params": {"seconds": args.seconds, "warmup": args.warmup,
                   "size": args.size, "sessions": sessions_list,
                   "modes": modes, "servers": servers,
                   "per_proc": args.per_proc,
                   "pipelining": not args.no_pipelining,
                   "ports": PORTS},
        "notes": notes,
        "cells": [],
    }
    for mode in modes:
        for s in sessions_list:
            row = {"mode": mode, "sessions": s}
            for name in servers:
                c = cells.get((name, mode, s))
                row[name] = c
            mf, pfc = row.get("mailfort"), row.get("postfix")
            row["ratio"] = (mf["msgs_per_s"] / pfc["msgs_per_s"]
                            if mf and pfc and pfc["msgs_per_s"] else None)
            doc["cells"].append(row)
    doc["runs"] = [m for k in sorted(runs) for m in runs[k]]
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print("results: %s" % out)
    return 0 if cells else 1


# options that mean the same in both suites; --suite all passes them on
SHARED_OPTS = ("--mailfort", "--workdir", "--mailfort-user", "--results")
SHARED_FLAGS = ("--keep",)


def main(argv=None):
    """--suite inbound|imap|outbound|all (default all).  imap, outbound:
    every other option goes to bench/imap.py or bench/outbound.py.  all:
    the inbound suite with the given options, then the imap suite with
    the shared ones (--mailfort, --workdir, --keep, --mailfort-user,
    --results) plus --imap-args, then the outbound suite with the shared
    ones."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=["inbound", "imap", "outbound",
                                         "all"], default="all")
    pre.add_argument("--imap-args", default="")
    known, rest = pre.parse_known_args(argv)
    if known.suite == "imap":
        import imap
        return imap.main(rest + shlex.split(known.imap_args))
    if known.suite == "outbound":
        import outbound
        return outbound.main(rest)
    if known.suite == "inbound" or "-h" in rest or "--help" in rest:
        return inbound_main(argv)
    rc = inbound_main(argv)
    if INTERRUPTED:
        return rc
    shared = []
    i = 0
    while i < len(rest):
        a = rest[i]
        name = a.split("=", 1)[0]
        if name in SHARED_FLAGS:
            shared.append(a)
        elif name in SHARED_OPTS:
            shared.append(a)
            if "=" not in a and i + 1 < len(rest):
                i += 1
                shared.append(rest[i])
        i += 1
    print()
    sys.stdout.flush()
    import imap
    try:
        rc2 = imap.main(shared + shlex.split(known.imap_args))
    except KeyboardInterrupt:
        return 130
    if INTERRUPTED:
        return max(rc, rc2)
    print()
    sys.stdout.flush()
    import outbound
    try:
        rc3 = outbound.main(shared)
    except KeyboardInterrupt:
        return 130
    return max(rc, rc2, rc3)


if __name__ == "__main__":
    sys.exit(main())
