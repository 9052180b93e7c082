#!/usr/bin/python3
"""Outbound delivery benchmark: Mailfort side by side with Debian's Postfix.

Both servers get the same --messages (10,000) 4 KB messages, each for one
recipient user@dNNN.bench.test over --domains (100) destination domains,
round robin, queued while nothing can be delivered.  Then the queue is
released and the harness times until the sink has seen every message:
messages/s of draining a full queue, and the ratio Mailfort/Postfix.

The sink is Postfix's smtp-sink (throws mail away, counts it).  By default
every destination domain has its own MX address, 127.0.2.N, with its own
smtp-sink process on --sink-port, so both servers see 100 destinations
(Postfix's per-destination queues and concurrency go by next hop, so one
shared sink address would make them one destination for Postfix);
--sinks one uses one smtp-sink on 127.0.0.1 for every domain.

Mailfort: authenticated submission (implicit TLS + AUTH PLAIN) queues the
mail while [dns] resolver names a port where nothing answers (every
delivery defers); then Mailfort is stopped, restarted with a private NSD
(tests/dnsserver.py) as its resolver (dNNN MX -> mxNNN A 127.0.2.N), and
`mailfort queue flush` starts the clock.

Postfix: a private instance; SMTP from 127.0.0.1 (mynetworks) queues the
mail on hold (check_client_access static:HOLD); transport_maps sends each
dNNN.bench.test to smtp:[127.0.2.N]:PORT (no DNS); `postsuper -H ALL` and
`postqueue -f` start the clock.

Stdlib only (+ tests/dnsserver.py); run as root.  See bench/README.md.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(ROOT, "tests"))

import common  # noqa: E402  (bench/common.py: shared helpers)
import run  # noqa: E402  (bench/run.py: messages, the Mailfort harness)

HOST = common.HOST
USER = common.USER
PASSWORD = common.PASSWORD
log = common.log
tail = common.tail
fmt = common.fmt
cpu_times = common.cpu_times

PORTS = {
    "mailfort": {"smtp": 52526, "submissions": 54466},
    "postfix": {"smtp": 42526},
}
SINK_PORT = 40025
ZONE = "bench.test"

INTERRUPTED = False


def domain(i):
    return "d%03d.%s" % (i, ZONE)


def sink_addr(i, mode):
    """The MX address of domain i: 127.0.2.1 .. (one per domain), or
    127.0.0.1 for --sinks one."""
    if mode == "one":
        return HOST
    return "127.0.%d.%d" % (2 + i // 250, 1 + i % 250)


# --------------------------------------------------------------------------
# Sink: smtp-sink processes, counted through their -c output
# --------------------------------------------------------------------------

MESG_RE = re.compile(rb"mesg=(\d+)")


class Sinks:
    def __init__(self, work, ndomains, port, mode):
        self.dir = os.path.join(work, "sink")
        self.port = port
        self.addrs = sorted({sink_addr(i, mode) for i in range(ndomains)})
        self.procs = []
        self.outs = []

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        for a in self.addrs:
            if not common.port_free(self.port, a):
                raise RuntimeError("sink port %s:%d is in use" % (a,
                                                                  self.port))
        for n, a in enumerate(self.addrs):
            out = os.path.join(self.dir, "sink-%s.out" % a)
            f = open(out, "wb")
            cmd = ["smtp-sink", "-c", "-h", "mx%03d.%s" % (n, ZONE)]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
            cmd += ["%s:%d" % (a, self.port), "1024"]
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True)
            f.close()
            self.procs.append(p)
            self.outs.append(out)
        deadline = time.monotonic() + 10
        for a, p in zip(self.addrs, self.procs):
            while True:
                if p.poll() is not None:
                    raise RuntimeError("smtp-sink on %s exited:\n%s" % (
                        a, tail(self.outs[self.procs.index(p)])))
                try:
                    socket.create_connection((a, self.port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("smtp-sink on %s:%d not up" % (
                            a, self.port))
                    time.sleep(0.02)
        return self

    def count(self):
        """Messages received by all sinks (each update of -c ends with
        mesg=N; the highest N in a file's tail is its count)."""
        total = 0
        for out in self.outs:
            try:
                with open(out, "rb") as f:
                    f.seek(0, 2)
                    size = f.tell()
                    f.seek(max(0, size - 256))
                    found = MESG_RE.findall(f.read())
            except OSError:
                found = []
            if found:
                total += max(int(x) for x in found)
        return total

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


def dead_udp_port():
    """A loopback UDP port nothing listens on (queries get ICMP port
    unreachable, so lookups fail fast)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Injection: N messages over SMTP, several sessions, pipelined
# --------------------------------------------------------------------------


def inject(spec, n, ndomains, sessions, size):
    """Sends messages 0..n-1 (message i to user@domain(i % ndomains)) over
    `sessions` parallel connections.  Returns a dict with ok, errors,
    error_samples, seconds."""
    lock = threading.Lock()
    res = {"ok": 0, "errors": 0, "error_samples": [], "reconnects": 0}
    tls_ctx = common.insecure_tls_ctx() if spec["tls"] else None

    def err(msg):
        with lock:
            res["errors"] += 1
            if len(res["error_samples"]) < 10:
                res["error_samples"].append(msg)

    def open_session():
        return common.smtp_open(HOST, spec["port"], tls_ctx, 30,
                                USER if spec["auth"] else None, PASSWORD)

    def worker(sid):
        facs = {}
        conn = None
        tag = "%d.%d.%d" % (os.getpid(), sid, int(time.time()))
        i = sid
        tries = 0
        while i < n:
            try:
                if conn is None:
                    conn, pipe = open_session()
                d = domain(i % ndomains)
                rcpt = "user@" + d
                fac = facs.get(d)
                if fac is None:
                    fac = facs[d] = run.MessageFactory(
                        size, spec["sender"], rcpt, tag)
                env = [("MAIL FROM:<%s>\r\n" % spec["sender"]).encode(),
                       ("RCPT TO:<%s>\r\n" % rcpt).encode(), b"DATA\r\n"]
                if pipe:
                    conn.send(b"".join(env))
                    codes = [conn.reply() for _ in env]
                else:
                    codes = []
                    for cmd in env:
                        conn.send(cmd)
                        codes.append(conn.reply())
                        if codes[-1][0] not in (250, 354):
                            break
                if len(codes) == 3 and codes[2][0] == 354:
                    conn.send(fac.message(i))
                    codes.append(conn.reply())
                if [c[0] for c in codes] == [250, 250, 354, 250]:
                    with lock:
                        res["ok"] += 1
                    i += sessions
                    tries = 0
                    continue
                bad = [c for c in codes if c[0] not in (250, 354)]
                err("message %d: %s" % (i, "; ".join(
                    "%d %s" % (c[0], c[1][:80].decode("latin-1"))
                    for c in bad[:2])))
                if len(codes) == 4 and codes[3][0] == 250:
                    i += sessions
                    continue
                conn.send(b"RSET\r\n")
                conn.reply()
            except Exception as e:
                err("message %d: io: %s" % (i, e))
                if conn is not None:
                    conn.close()
                conn = None
                with lock:
                    res["reconnects"] += 1
            tries += 1
            if tries >= 5:
                err("message %d: given up after 5 tries" % i)
                i += sessions
                tries = 0
            else:
                time.sleep(0.1 * tries)
        if conn is not None:
            conn.quit()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(s,), daemon=True)
               for s in range(min(sessions, n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res["seconds"] = time.monotonic() - t0
    return res


def drain(sinks, n, timeout, poll=0.02):
    """Waits until the sinks counted n messages.  Returns (seconds until
    the last one or None, seconds until the first one or None, count,
    system CPU busy % over the drain)."""
    t0 = time.monotonic()
    c0 = cpu_times()
    first = None
    got = 0
    while True:
        got = sinks.count()
        now = time.monotonic()
        if got > 0 and first is None:
            first = now - t0
        if got >= n:
            done = now - t0
            break
        if now - t0 > timeout:
            done = None
            break
        time.sleep(poll)
    return done, first, got, common.busy_pct(c0, cpu_times())


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class OutMailfort(run.Mailfort):
    """Mailfort queueing and then delivering to the sinks."""

    def __init__(self, binary, work, cert, key, user, sink_port):
        super().__init__(binary, work, cert, key, user)
        self.ports = PORTS["mailfort"]
        self.sink_port = sink_port

    def configure(self, resolver, trust_anchor):
        self.write_config(self.listen(), (
            "[outbound]\n"
            "mx_port = %d\n"
            "[dns]\n"
            "resolver = %s\n"
            "trust_anchor = %s\n"
            "[queue]\n"
            "retry_min = 3600\n" % (self.sink_port, resolver,
                                     trust_anchor)))

    def pending(self, due_only=False):
        """Recipients still queued (status 0; with due_only, only those
        whose next try is due now), or None if unreadable."""
        db = os.path.join(self.var, "queue", "queue.db")
        if not os.path.exists(db):
            return None
        sql = "SELECT count(*) FROM recipient WHERE status = 0"
        if due_only:
            sql += " AND next_try <= %d" % int(time.time())
        try:
            con = sqlite3.connect(db, timeout=10)
            try:
                return con.execute(sql).fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error as e:
            log("queue.db: %s" % e)
            return None

    def cli(self, *args):
        return common.run([self.binary, "-c", self.conf] + list(args),
                          check=False, cwd=self.dir)


class OutPostfix(common.PostfixServer):
    """A private Postfix relaying to the sinks through transport_maps."""
    ports = PORTS["postfix"]

    def __init__(self, work, ndomains, sink_port, sinks_mode):
        super().__init__(work)
        self.ndomains = ndomains
        self.sink_port = sink_port
        self.sinks_mode = sinks_mode

    def setup(self):
        self.make_dirs()
        os.chmod(self.dir, 0o755)
        transport = os.path.join(self.etc, "transport")
        with open(transport, "w") as f:
            for i in range(self.ndomains):
                f.write("%s smtp:[%s]:%d\n" % (
                    domain(i), sink_addr(i, self.sinks_mode),
                    self.sink_port))
        os.chmod(transport, 0o644)
        main = self.base_main()
        main.update({
            "relay_domains": "",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            # everything received waits in the hold queue until released
            "smtpd_recipient_restrictions":
                "check_client_access static:HOLD, permit_mynetworks, reject",
            "transport_maps": "texthash:%s" % transport,
            # anything the map does not name must not leave the machine
            "default_transport": "error:5.3.0 not a benchmark domain",
            "notify_classes": "",
        })
        self.write_config("outbound benchmark", main,
                          "%s:%d inet n - n - - smtpd\n" % (
                              HOST, self.ports["smtp"]))

    def queue_counts(self):
        return {q: common.count_files(os.path.join(self.spool, q))
                for q in ("incoming", "active", "deferred", "hold",
                          "maildrop")}

    def release(self):
        common.run(["postsuper", "-c", self.etc, "-H", "ALL"])
        common.run(["postqueue", "-c", self.etc, "-f"])

    def cleanup_data(self):
        shutil.rmtree(self.spool, ignore_errors=True)


# --------------------------------------------------------------------------
# One run per server
# --------------------------------------------------------------------------


def run_server(args, srv, steps):
    """One run of srv: steps(r, sinks) fills the result r and appends the
    Sinks it starts to the list sinks; afterwards srv and the sinks are
    stopped, srv's data removed (unless --keep) and r finished."""
    r = {"server": srv.name, "messages": args.messages, "errors": 0,
         "error_samples": [], "notes": []}
    sinks = []
    try:
        steps(r, sinks)
    except Exception as e:
        r["notes"].append("%s failed: %s" % (srv.name, e))
        log("%s failed: %s" % (srv.name, e))
    finally:
        srv.stop()
        for s in sinks:
            s.stop()
        if not args.keep:
            srv.cleanup_data()
    finish(r, args.messages)
    return r


def inject_all(r, args, port, tls):
    """Queues the run's messages through port (implicit TLS + AUTH with
    tls); records inject_ok, inject_s, inject_errors and error samples."""
    spec = {"port": port, "tls": tls, "auth": tls, "sender": USER}
    inj = inject(spec, args.messages, args.domains, args.inject_sessions,
                 args.size)
    r.update(inject_ok=inj["ok"], inject_s=round(inj["seconds"], 2),
             inject_errors=inj["errors"])
    r["error_samples"] += inj["error_samples"]
    log("  injected %d in %.1f s (%d errors)" % (
        inj["ok"], inj["seconds"], inj["errors"]))
    return inj


def release_and_drain(r, sinks, args, cmd_key, release):
    """Starts the clock, runs release() (what lets the queue go) and waits
    for inject_ok messages at the sinks.  drain_s counts from the start of
    release(), first_s from its end; cmd_key records how long release()
    took.  Returns what release() returned."""
    t0 = time.monotonic()
    out = release()
    cmd_s = time.monotonic() - t0
    done, first, got, busy = drain(sinks, r["inject_ok"], args.timeout)
    done = None if done is None else done + cmd_s
    r.update(first_s=first, drain_s=done, delivered=got,
             system_cpu_busy_pct=busy)
    r[cmd_key] = round(cmd_s, 3)
    return out


def bench_mailfort(args, work, cert, key, sinks_factory, dns):
    mf = OutMailfort(os.path.abspath(args.mailfort), work, cert, key,
                     args.mailfort_user, args.sink_port)

    def steps(r, sinks):
        # (a) queue everything while no delivery can succeed
        dead = "%s:%d" % (HOST, dead_udp_port())
        mf.configure(dead, dns.trust_anchor)
        mf.start()
        log("mailfort up (log %s); injecting %d messages, resolver %s "
            "(nothing answers)" % (mf.logfile, args.messages, dead))
        inj = inject_all(r, args, mf.ports["submissions"], True)
        # every message must have had its failed try and be deferred
        # (next try in an hour), or the restart would deliver it before
        # the flush starts the clock
        deadline = time.monotonic() + args.defer_timeout
        due = mf.pending(due_only=True)
        while due and time.monotonic() < deadline and \
                mf.proc.poll() is None:
            time.sleep(0.5)
            due = mf.pending(due_only=True)
        pend = mf.pending()
        r["queued_before_restart"] = pend
        r["due_before_restart"] = due
        log("  %s recipients pending in the queue, %s of them not yet "
            "deferred" % (pend, due))
        if due:
            r["notes"].append("%s recipients were not deferred after %.0f s "
                              "(--defer-timeout)" % (due,
                                                     args.defer_timeout))
        mf.stop()
        if mf.proc.returncode not in (0, -signal.SIGTERM):
            r["notes"].append("mailfort exited %s after queueing" %
                              mf.proc.returncode)
        # (b) restart with the real resolver, flush, time the drain
        mf.configure(dns.resolver, dns.trust_anchor)
        sinks.append(sinks_factory())
        sinks[0].start()
        mf.start()
        time.sleep(0.5)
        before = sinks[0].count()
        r["delivered_before_flush"] = before
        if before:
            r["notes"].append("%d messages delivered before the flush "
                              "(retry timer)" % before)
        log("mailfort: queue flush, waiting for %d at the sink" %
            inj["ok"])
        fl = release_and_drain(r, sinks[0], args, "flush_cmd_s",
                               lambda: mf.cli("queue", "flush"))
        r["flush_output"] = fl.stdout.strip()[-500:]
        if fl.returncode != 0:
            r["notes"].append("queue flush exited %d: %s" % (
                fl.returncode, fl.stdout.strip()[-300:]))
        if mf.proc.poll() is not None:
            r["notes"].append("mailfort exited (%s) during the drain:\n%s"
                              % (mf.proc.returncode, tail(mf.logfile)))
        time.sleep(0.5)
        r["delivered_after"] = sinks[0].count()
        r["queue_left"] = mf.pending()

    return run_server(args, mf, steps)


def bench_postfix(args, work, sinks_factory):
    pf = OutPostfix(work, args.domains, args.sink_port, args.sinks)

    def steps(r, sinks):
        pf.setup()
        pf.start()
        log("postfix up (log %s); injecting %d messages on hold" % (
            pf.logfile, args.messages))
        inj = inject_all(r, args, pf.ports["smtp"], False)
        deadline = time.monotonic() + 60
        while pf.queue_counts()["hold"] < inj["ok"] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        qc = pf.queue_counts()
        r["queue_before_release"] = qc
        log("  queue: %s" % qc)
        if qc["hold"] != inj["ok"]:
            r["notes"].append("hold queue holds %d, not %d" % (
                qc["hold"], inj["ok"]))
        sinks.append(sinks_factory())
        sinks[0].start()
        log("postfix: postsuper -H ALL + postqueue -f, waiting for %d at "
            "the sink" % inj["ok"])
        release_and_drain(r, sinks[0], args, "release_cmd_s", pf.release)
        time.sleep(0.5)
        r["delivered_after"] = sinks[0].count()
        r["queue_left"] = sum(pf.queue_counts().values())

    return run_server(args, pf, steps)


def finish(r, n):
    """msg/s and error flags of one server's run."""
    d = r.get("drain_s")
    got = r.get("inject_ok") or 0
    r["msgs_per_s"] = (got / d) if d else None
    r["complete"] = bool(d) and got == n and \
        r.get("delivered_after") == got and \
        not r.get("delivered_before_flush")
    if got != n:
        r["errors"] += n - got
    if r.get("delivered_after") is not None and r["delivered_after"] > got:
        r["notes"].append("sink saw %d messages for %d queued (duplicates)"
                          % (r["delivered_after"], got))


def print_table(results, notes):
    print()
    hdr = "%-9s %8s %9s %9s %10s %9s %10s %8s" % (
        "server", "messages", "inject s", "queued", "delivered", "drain s",
        "msg/s", "busy %")
    print(hdr)
    print("-" * len(hdr))
    for name in ("mailfort", "postfix"):
        r = results.get(name)
        if r is None:
            continue
        queued = r.get("queued_before_restart")
        if queued is None and r.get("queue_before_release"):
            queued = r["queue_before_release"].get("hold")
        rate = fmt(r.get("msgs_per_s"))
        if not r.get("complete_all_runs", r.get("complete")):
            rate += "!"
        print("%-9s %8d %9s %9s %10s %9s %10s %8s" % (
            name, r["messages"], fmt(r.get("inject_s"), "%.1f"),
            fmt(queued, "%d"), fmt(r.get("delivered_after"), "%d"),
            fmt(r.get("drain_s"), "%.2f"), rate,
            fmt(r.get("system_cpu_busy_pct"), "%.0f")))
    mf, pf = results.get("mailfort"), results.get("postfix")
    if mf and pf and mf.get("msgs_per_s") and pf.get("msgs_per_s"):
        print()
        print("ratio Mailfort/Postfix msg/s: %.2f" % (
            mf["msgs_per_s"] / pf["msgs_per_s"]))
    for name in ("mailfort", "postfix"):
        r = results.get(name)
        if r is not None and len(r.get("runs_msgs_per_s", [])) > 1:
            print("%s runs msg/s: %s" % (name, "/".join(
                fmt(x) for x in r["runs_msgs_per_s"])))
    print()
    for name, r in sorted(results.items()):
        for n in r["notes"]:
            print("note (%s): %s" % (name, n))
        for e in r["error_samples"][:3]:
            print("error (%s): %s" % (name, e))
    for n in notes:
        print("note: %s" % n)


def main(argv=None):
    global INTERRUPTED
    ap = argparse.ArgumentParser(
        description="Outbound delivery: drain a queue of --messages to "
        "--domains destinations into smtp-sink, Mailfort vs Postfix.")
    ap.add_argument("--mailfort", default=os.path.join(ROOT, "build",
                                                       "mailfort"),
                    help="mailfort binary (default build/mailfort)")
    ap.add_argument("--messages", type=int, default=10000,
                    help="messages queued and drained (default 10000)")
    ap.add_argument("--domains", type=int, default=100,
                    help="destination domains (default 100)")
    ap.add_argument("--size", type=int, default=4096,
                    help="message size in bytes (default 4096)")
    ap.add_argument("--sinks", choices=["per-domain", "one"],
                    default="per-domain",
                    help="one smtp-sink per domain on 127.0.2.N (default) "
                    "or one on 127.0.0.1 for all")
    ap.add_argument("--sink-port", type=int, default=SINK_PORT,
                    help="port of the sinks and [outbound] mx_port "
                    "(default %d)" % SINK_PORT)
    ap.add_argument("--inject-sessions", type=int, default=10,
                    help="parallel SMTP sessions while queueing (not timed)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds to wait for the drain")
    ap.add_argument("--defer-timeout", type=float, default=120.0,
                    help="seconds to wait for Mailfort to defer every "
                    "queued message before the restart")
    ap.add_argument("--only", choices=["postfix", "mailfort"],
                    help="benchmark only one server")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per server; the table shows the median run")
    common.add_run_options(ap, "/tmp/mf-bench-outbound",
                           "keep queues and data in --workdir")
    args = ap.parse_args(argv)
    if args.messages < 1 or args.domains < 1 or args.domains > 2500 or \
            args.repeat < 1:
        ap.error("--messages, --repeat >= 1 and 1 <= --domains <= 2500")
    if os.geteuid() != 0:
        ap.error("run as root (Postfix and the sinks need it)")
    for tool in ("smtp-sink", "postfix", "nsd"):
        if shutil.which(tool) is None and \
                not os.path.exists("/usr/sbin/" + tool):
            ap.error("%s is missing (scripts/deps.sh bench)" % tool)

    command = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)
    servers = ["mailfort", "postfix"] if not args.only else [args.only]
    facts = common.machine_facts()
    print("command: %s" % command)
    print("machine: nproc=%s, cpu=%s, mem=%s MB, kernel=%s, python=%s" % (
        facts["nproc"], facts["cpu"], facts["mem_mb"], facts["kernel"],
        facts["python"]))
    print("outbound: %d messages of %d bytes to %d domains, sinks %s on "
          "port %d" % (args.messages, args.size, args.domains, args.sinks,
                       args.sink_port))
    sys.stdout.flush()

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    work = os.path.abspath(args.workdir)
    common.PostfixServer.stop_leftover(work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)

    notes = []
    runs = {}
    dns = None
    try:
        cert, key = common.make_cert(work)

        def sinks_factory():
            return Sinks(work, args.domains, args.sink_port, args.sinks)

        if "mailfort" in servers:
            from dnsserver import DNSServer
            body = []
            for i in range(args.domains):
                body.append("d%03d MX 10 mx%03d" % (i, i))
                body.append("mx%03d A %s" % (i, sink_addr(i, args.sinks)))
            dns = DNSServer({ZONE: "\n".join(body)})
            log("nsd up on %s" % dns.resolver)
        # with --repeat, the servers take turns, alternating which goes
        # first, so drift in machine load hits both alike
        for rep in range(args.repeat):
            order = list(servers) if rep % 2 == 0 else servers[::-1]
            for name in order:
                if args.repeat > 1:
                    log("run %d of %d: %s" % (rep + 1, args.repeat, name))
                if name == "mailfort":
                    r = bench_mailfort(args, work, cert, key, sinks_factory,
                                       dns)
                else:
                    r = bench_postfix(args, work, sinks_factory)
                r["run"] = rep + 1
                runs.setdefault(name, []).append(r)
    except KeyboardInterrupt:
        INTERRUPTED = True
        log("interrupted")
        notes.append("run interrupted")
    finally:
        if dns is not None:
            dns.cleanup()

    # per server the run with the median msg/s (every run goes to JSON)
    results = {}
    for name, lst in runs.items():
        srt = sorted(lst, key=lambda r: r.get("msgs_per_s") or 0.0)
        results[name] = dict(srt[(len(srt) - 1) // 2])
        results[name]["runs_msgs_per_s"] = [r.get("msgs_per_s")
                                            for r in lst]
        results[name]["complete_all_runs"] = all(r.get("complete")
                                                 for r in lst)
    notes.append("Both servers at their defaults for concurrency (Mailfort "
                 "[outbound] concurrency 100, 20 per destination; Postfix "
                 "default_process_limit 100, 20 per destination); "
                 "smtp-sink offers no STARTTLS, so both deliver in "
                 "plaintext")
    notes.append("'!' = not every queued message reached the sink, or "
                 "errors; logs and configs under %s" % work)
    print_table(results, notes)

    os.makedirs(args.results, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.results, "outbound-%s.json" % stamp)
    mf, pf = results.get("mailfort"), results.get("postfix")
    doc = {
        "benchmark": "outbound-smtp",
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "machine": facts,
        "params": {"messages": args.messages, "domains": args.domains,
                   "size": args.size, "sinks": args.sinks,
                   "sink_port": args.sink_port,
                   "inject_sessions": args.inject_sessions,
                   "repeat": args.repeat,
                   "servers": servers, "ports": PORTS},
        "notes": notes,
        "results": results,
        "runs": runs,
        "ratio": (mf["msgs_per_s"] / pf["msgs_per_s"]
                  if mf and pf and mf.get("msgs_per_s") and
                  pf.get("msgs_per_s") else None),
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print("results: %s" % out)
    if INTERRUPTED:
        return 130
    return 0 if results and all(r["complete_all_runs"]
                                for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
