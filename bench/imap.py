#!/usr/bin/python3
"""IMAP benchmark: Mailfort side by side with Debian's Dovecot.

Two measurements, both over implicit TLS (imaps) on loopback:

  workload   a mixed IMAP workload at 1, 10 and 50 concurrent clients.  Each
             client holds one TLS connection, logs in once, then loops:
               SELECT INBOX
               FETCH 1:20 (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])
               FETCH <random> BODY.PEEK[]
               STORE <random> +FLAGS (\\Seen)
               APPEND INBOX {4096}            (APPENDUID from UIDPLUS)
               UID STORE <that uid> +FLAGS (\\Deleted)
               UID EXPUNGE <that uid>
               NOOP
             so the mailbox stays at the seeded size.  Every command is one
             operation; it counts if its tagged OK arrives inside the
             measured window.  Reports operations/s and p50/p99 latency per
             cell and per command.
  memory     1,000 TLS connections, each logged in with INBOX selected, then
             idle; the server's memory (sum of PSS over all its processes,
             from /proc/PID/smaps_rollup) minus the same before the
             connections were opened, divided by the connection count.

Both servers run privately under --workdir (default /tmp/mf-bench) on high
loopback ports, with the same user, the same SHA512-CRYPT password, the same
self-signed certificate and the same seeded INBOX (--seed messages of --size
bytes, appended over IMAP by the same code).  The load generator is the same
code for both: --per-proc clients per process, one thread and one blocking
TLS socket per client, its own response parser (literals included).

Stdlib only; run as root.  See bench/README.md.
"""

import argparse
import concurrent.futures
import datetime
import grp
import json
import os
import pwd
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py: shared helpers)

HOST = common.HOST
DOMAIN = common.DOMAIN
USER = common.USER
PASSWORD = common.PASSWORD

PORTS = {"mailfort": 51993, "dovecot": 41993}
SERVER_NAMES = {"mailfort": "Mailfort", "dovecot": "Dovecot"}
OPS = ("select", "fetch_headers", "fetch_body", "store_seen", "append",
       "store_deleted", "uid_expunge", "noop")

log = common.log
tail = common.tail
fmt = common.fmt
percentile = common.percentile
cpu_times = common.cpu_times

LIT_RE = re.compile(rb"\{(\d+)\+?\}$")
APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.I)
EXISTS_RE = re.compile(rb"^\* (\d+) EXISTS", re.I)

# --------------------------------------------------------------------------
# IMAP client (identical for both servers)
# --------------------------------------------------------------------------


class ImapError(Exception):
    pass


client_tls_ctx = common.insecure_tls_ctx


def imap_quote(s):
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + \
        b'"'


class Imap:
    """Minimal blocking IMAP client.  A response is (text, literals): the
    line(s) with the literal markers, and the literal payloads in order."""

    def __init__(self, host, port, tls_ctx, timeout, quickack=False):
        self.quickack = quickack
        self.sock = common.connect(host, port, tls_ctx, timeout)
        self.buf = bytearray()
        self.n = 0
        self.caps = set()

    def _fill(self):
        if self.quickack:
            # diagnostic (--client-quickack): ACK at once instead of the
            # delayed ACK a real client's kernel sends
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ImapError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > 1 << 20:
                raise ImapError("response line over 1 MB")
            self._fill()

    def response(self):
        parts, lits = [], []
        while True:
            line = self._line()
            parts.append(line)
            m = LIT_RE.search(line)
            if not m:
                return b"".join(parts), lits
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            lits.append(bytes(self.buf[:n]))
            del self.buf[:n]

    def greeting(self):
        text, _ = self.response()
        if not text.startswith(b"* OK"):
            raise ImapError("greeting: %r" % text[:100])

    def command(self, cmd, literal=None, literal_plus=False):
        """Sends one command, returns (status, tagged_line, untagged).
        status is b"OK", b"NO", b"BAD" or b"BYE"."""
        self.n += 1
        tag = b"a%d" % self.n
        untagged = []
        if literal is None:
            self.sock.sendall(tag + b" " + cmd + b"\r\n")
        elif literal_plus:
            self.sock.sendall(b"%s %s {%d+}\r\n%s\r\n" % (
                tag, cmd, len(literal), literal))
        else:
            self.sock.sendall(b"%s %s {%d}\r\n" % (tag, cmd, len(literal)))
            while True:
                text, lits = self.response()
                if text.startswith(b"+"):
                    break
                if text.startswith(tag + b" "):
                    return self._status(text, tag), text, untagged
                untagged.append((text, lits))
            self.sock.sendall(literal + b"\r\n")
        while True:
            text, lits = self.response()
            if text.startswith(tag + b" "):
                return self._status(text, tag), text, untagged
            untagged.append((text, lits))

    @staticmethod
    def _status(text, tag):
        return text[len(tag) + 1:].split(b" ", 1)[0].upper()

    def login(self, user, password):
        st, line, _ = self.command(b"LOGIN " + imap_quote(user) + b" " +
                                   imap_quote(password))
        if st != b"OK":
            raise ImapError("LOGIN: %s" % line[:100].decode("latin-1"))
        st, line, unt = self.command(b"CAPABILITY")
        if st != b"OK":
            raise ImapError("CAPABILITY: %s" % line[:100].decode("latin-1"))
        for text, _ in unt:
            if text.upper().startswith(b"* CAPABILITY "):
                self.caps = set(text.upper().split()[2:])

    def select(self, mbox=b"INBOX"):
        st, line, unt = self.command(b"SELECT " + mbox)
        if st != b"OK":
            raise ImapError("SELECT: %s" % line[:100].decode("latin-1"))
        return exists_of(unt)

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except Exception:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def exists_of(untagged):
    n = None
    for text, _ in untagged:
        m = EXISTS_RE.match(text)
        if m:
            n = int(m.group(1))
    return n


class MessageFactory:
    """Messages of exactly `size` bytes, CRLF line ends."""

    def __init__(self, size, tag):
        self.size = size
        self.head_fmt = (
            "From: Bench Sender <sender@client.test>\r\n"
            "To: <%s>\r\n"
            "Subject: mailfort imap bench %%s %%010d\r\n"
            "Date: %s\r\n"
            "Message-ID: <%s.%%010d@client.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n") % (USER, time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                          time.gmtime()), tag)
        self.line = (b"The quick brown fox jumps over the lazy dog; "
                     b"0123456789 abcdefghijklmnopqrstuv\r\n")

    def message(self, kind, n):
        head = (self.head_fmt % (kind, n, n)).encode()
        remaining = self.size - len(head)
        nl = max(0, remaining - 2) // len(self.line)
        body = self.line * nl
        rest = remaining - len(body)
        if rest >= 2:
            body += b"x" * (rest - 2) + b"\r\n"
        return head + body


# --------------------------------------------------------------------------
# Load generator
# --------------------------------------------------------------------------


def client_run(spec, cid, go_evt, start_val, out, lock, ready_cb):
    """One client: connect, LOGIN, wait for go, loop the workload until the
    window ends (always finishing an iteration, so every APPEND is expunged
    again), LOGOUT."""
    res = {"lat": {op: [] for op in OPS}, "ok_win": 0, "ok_total": 0,
           "errors": 0, "error_samples": [], "connect_failed": 0,
           "reconnects": 0, "iterations": 0, "login_s": None,
           "literal_plus": None, "tls": None, "leftover_uids": [],
           "append_no_exists": 0}

    def err(msg):
        res["errors"] += 1
        if len(res["error_samples"]) < 5:
            res["error_samples"].append("c%d: %s" % (cid, msg))

    ctx = client_tls_ctx()
    rnd = random.Random(cid * 7919 + os.getpid())

    def open_session():
        c = Imap(spec["host"], spec["port"], ctx, spec["timeout"],
                 spec["quickack"])
        try:
            c.greeting()
            t0 = time.perf_counter()
            c.login(spec["user"], spec["password"])
            res["login_s"] = time.perf_counter() - t0
            res["tls"] = "%s %s" % (c.sock.version(), c.sock.cipher()[0])
            return c
        except Exception:
            c.close()
            raise

    conn = None
    try:
        conn = open_session()
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

    fac = MessageFactory(spec["size"], "c%d.%d" % (os.getpid(), cid))
    nseed = spec["seed"]
    size = spec["size"]
    fetch_hdr = (b"FETCH 1:20 (FLAGS BODY.PEEK[HEADER.FIELDS "
                 b"(FROM SUBJECT DATE)])")
    pc = time.perf_counter
    lat = res["lat"]
    n = 0

    def op(name, cmd, literal=None):
        t0 = pc()
        st, line, unt = conn.command(cmd, literal,
                                     literal_plus=spec["literal_plus"] and
                                     b"LITERAL+" in conn.caps)
        t1 = pc()
        res["ok_total"] += st == b"OK"
        if st == b"OK" and w_begin <= t1 <= w_end:
            res["ok_win"] += 1
            lat[name].append(t1 - t0)
        if st != b"OK":
            err("%s: %s" % (name, line[:100].decode("latin-1")))
        return st, line, unt

    while True:
        now = pc()
        if now < t_start:
            time.sleep(t_start - now)
            continue
        if now >= w_end:
            break
        n += 1
        try:
            st, _, unt = op("select", b"SELECT INBOX")
            if st == b"OK":
                ex = exists_of(unt)
                if ex is None or ex < nseed:
                    err("select: EXISTS %s < seeded %d" % (ex, nseed))
            st, _, unt = op("fetch_headers", fetch_hdr)
            if st == b"OK":
                got = sum(1 for t, l in unt if b"HEADER.FIELDS" in t.upper()
                          and l)
                if got < 20:
                    err("fetch_headers: %d header literals, want 20" % got)
            seq = rnd.randint(1, nseed)
            st, _, unt = op("fetch_body", b"FETCH %d BODY.PEEK[]" % seq)
            if st == b"OK":
                sizes = [len(l[-1]) for t, l in unt
                         if b"BODY[]" in t.upper() and l]
                if size not in sizes:
                    err("fetch_body %d: literal sizes %s, want %d" % (
                        seq, sizes, size))
            seq = rnd.randint(1, nseed)
            op("store_seen", b"STORE %d +FLAGS (\\Seen)" % seq)
            st, line, unt = op("append", b"APPEND INBOX",
                               fac.message("append", n))
            uid = None
            if st == b"OK":
                m = APPENDUID_RE.search(line)
                if m:
                    uid = int(m.group(2))
                else:
                    err("append: no APPENDUID in %r" % line[:100])
                if exists_of(unt) is None:
                    # RFC 9051 6.3.12: the server SHOULD announce the new
                    # message with EXISTS; "if the server does not do so,
                    # the client MAY issue a NOOP".  Not counted as an
                    # operation, but its time is spent inside the window.
                    res["append_no_exists"] += 1
                    st, line, _ = conn.command(b"NOOP")
                    if st != b"OK":
                        err("noop after append: %s" % line[:100].decode(
                            "latin-1"))
            if uid is not None:
                st, _, unt = op("store_deleted",
                                b"UID STORE %d +FLAGS (\\Deleted)" % uid)
                touched = any(b" FETCH " in t and
                              re.search(rb"UID %d\b" % uid, t) for t, _ in unt)
                if st == b"OK" and not touched:
                    err("store_deleted: no FETCH for UID %d (message not "
                        "visible to the session?)" % uid)
                st2, _, unt = op("uid_expunge", b"UID EXPUNGE %d" % uid)
                gone = any(re.match(rb"\* (\d+ EXPUNGE|VANISHED)", t)
                           for t, _ in unt)
                if st2 == b"OK" and not gone:
                    err("uid_expunge: no EXPUNGE response for UID %d" % uid)
                if st != b"OK" or st2 != b"OK" or not gone:
                    res["leftover_uids"].append(uid)
            op("noop", b"NOOP")
            res["iterations"] += 1
        except Exception as e:
            err("io: %s" % (str(e) or e.__class__.__name__))
            conn.close()
            conn = None
            while conn is None and pc() < w_end:
                try:
                    conn = open_session()
                    res["reconnects"] += 1
                except Exception as e2:
                    err("reconnect: %s" % e2)
                    time.sleep(0.2)
            if conn is None:
                break
    if conn is not None:
        res["literal_plus"] = spec["literal_plus"] and \
            b"LITERAL+" in conn.caps
        try:
            st, line, _ = conn.command(b"LOGOUT")
            if st != b"OK":
                err("logout: %s" % line[:100].decode("latin-1"))
        except Exception as e:
            err("logout: %s" % e)
        conn.close()
    with lock:
        out.append(res)


def merge_clients(out):
    """One generator process's client results, merged."""
    agg = {"lat": {op: [] for op in OPS}, "ok_win": 0, "ok_total": 0,
           "errors": 0, "error_samples": [], "connect_failed": 0,
           "reconnects": 0, "iterations": 0, "login_s": [],
           "literal_plus": [], "tls": [], "leftover_uids": [],
           "append_no_exists": 0}
    for r in out:
        for o in OPS:
            agg["lat"][o].extend(r["lat"][o])
        for k in ("ok_win", "ok_total", "errors", "connect_failed",
                  "reconnects", "iterations", "append_no_exists"):
            agg[k] += r[k]
        agg["error_samples"].extend(r["error_samples"])
        agg["leftover_uids"].extend(r["leftover_uids"])
        if r["login_s"] is not None:
            agg["login_s"].append(r["login_s"])
        agg["literal_plus"].append(r["literal_plus"])
        if r["tls"]:
            agg["tls"].append(r["tls"])
    return agg


def lat_stats(vals):
    vals = sorted(vals)
    if not vals:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None,
                "max_ms": None, "mean_ms": None}
    return {"n": len(vals),
            "p50_ms": percentile(vals, 0.50) * 1000,
            "p90_ms": percentile(vals, 0.90) * 1000,
            "p99_ms": percentile(vals, 0.99) * 1000,
            "max_ms": vals[-1] * 1000,
            "mean_ms": sum(vals) / len(vals) * 1000}


def tree_cpu_s(root):
    """CPU seconds (user+system) used so far by root and its descendants
    that are alive now."""
    if root is None:
        return None
    tck = os.sysconf("SC_CLK_TCK")
    tot = 0
    for pid in process_tree(root):
        try:
            with open("/proc/%d/stat" % pid) as f:
                parts = f.read().rsplit(")", 1)[1].split()
            tot += int(parts[11]) + int(parts[12])
        except (OSError, ValueError, IndexError):
            continue
    return tot / float(tck)


def run_cell(spec, clients, per_proc, server_root=None):
    g = common.run_generators(client_run, merge_clients, spec, clients,
                              per_proc, ready_timeout=90, noun="clients",
                              probe=lambda: tree_cpu_s(server_root))
    results, nproc = g["results"], g["nproc"]
    s0, s1 = g["probe0"], g["probe1"]
    lat = {o: [] for o in OPS}
    m = {"clients": clients, "procs": nproc, "ok_win": 0, "ok_total": 0,
         "errors": 0, "error_samples": [], "connect_failed": 0,
         "reconnects": 0, "iterations": 0, "client_cpu_s": 0.0,
         "append_no_exists": 0,
         "login_s": [], "literal_plus": [], "tls": [], "leftover_uids": []}
    for r in results:
        for o in OPS:
            lat[o].extend(r["lat"][o])
        for k in ("ok_win", "ok_total", "errors", "connect_failed",
                  "reconnects", "iterations", "append_no_exists"):
            m[k] += r[k]
        m["client_cpu_s"] += r["cpu"]
        for k in ("error_samples", "login_s", "literal_plus", "tls",
                  "leftover_uids"):
            m[k].extend(r[k])
    if len(results) < nproc:
        m["errors"] += 1
        m["error_samples"].append("%d of %d generator processes returned "
                                  "no result" % (nproc - len(results), nproc))
    m["error_samples"] = m["error_samples"][:10]
    lp = [x for x in m["literal_plus"] if x is not None]
    m["literal_plus"] = all(lp) if lp else None
    m["tls"] = sorted(set(m["tls"]))
    ls = lat_stats(m["login_s"])
    m["login_p50_ms"], m["login_max_ms"] = ls["p50_ms"], ls["max_ms"]
    del m["login_s"]
    m["ops_per_s"] = m["ok_win"] / spec["seconds"]
    alll = [x for o in OPS for x in lat[o]]
    m.update(lat_stats(alll))
    m["per_op"] = {o: lat_stats(lat[o]) for o in OPS}
    for o in OPS:
        m["per_op"][o]["per_s"] = m["per_op"][o]["n"] / spec["seconds"]
    m["server_cpu_s"] = (s1 - s0) if s0 is not None and s1 is not None \
        else None
    m["server_cpu_ms_per_op"] = (1000.0 * m["server_cpu_s"] / m["ok_win"]) \
        if m["server_cpu_s"] is not None and m["ok_win"] else None
    m["client_cpu_pct_of_machine"] = 100.0 * m["client_cpu_s"] / (
        (spec["seconds"] + spec["warmup"]) * (os.cpu_count() or 1))
    m["system_cpu_busy_pct"] = common.busy_pct(g["cpu0"], g["cpu1"])
    return m


# --------------------------------------------------------------------------
# Process memory
# --------------------------------------------------------------------------


def proc_children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(root):
    kids = proc_children_map()
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def memory_of(root):
    """Sum of PSS and RSS (KB) over root and its descendants."""
    pss = rss = 0
    nproc = 0
    by_comm = {}
    for pid in process_tree(root):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                vals = {}
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                        vals[parts[0]] = int(parts[1])
        except OSError:
            continue
        if "Pss:" not in vals:
            continue  # zombie or kernel thread
        nproc += 1
        pss += vals["Pss:"]
        rss += vals.get("Rss:", 0)
        c = by_comm.setdefault(proc_comm(pid), [0, 0])
        c[0] += 1
        c[1] += vals["Pss:"]
    return {"pss_kb": pss, "rss_kb": rss, "procs": nproc,
            "by_comm": {k: {"procs": v[0], "pss_kb": v[1]}
                        for k, v in sorted(by_comm.items())}}


def memory_test(srv, conns, parallel, settle):
    """Opens `conns` TLS connections and measures the server's memory in
    three stages: after the TLS handshake and greeting (not logged in), after
    LOGIN, and after SELECT INBOX (the reported figure: idle, logged in,
    mailbox selected).  Each stage is compared with the memory before any
    connection was opened."""
    ctx = client_tls_ctx()
    time.sleep(settle)
    before = memory_of(srv.root_pid())
    live = []
    errors = []
    lock = threading.Lock()
    m = {"target": conns, "before": before, "stages": {}}

    def connect(i):
        try:
            c = Imap(HOST, srv.port, ctx, 60)
        except Exception as e:
            with lock:
                errors.append("connect: %s" % (str(e) or
                                              e.__class__.__name__))
            return
        try:
            c.greeting()
            with lock:
                live.append(c)
        except Exception as e:
            c.close()
            with lock:
                errors.append("greeting: %s" % (str(e) or
                                               e.__class__.__name__))

    def login(c):
        st, line, _ = c.command(b"LOGIN " + imap_quote(USER) + b" " +
                                imap_quote(PASSWORD))
        if st != b"OK":
            raise ImapError("LOGIN: %s" % line[:100].decode("latin-1"))

    def select(c):
        c.select()

    def stage(name, fn):
        t0 = time.monotonic()
        if fn is None:
            with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
                list(ex.map(connect, range(conns)))
        else:
            def step(c):
                try:
                    fn(c)
                    return True
                except Exception as e:
                    c.close()
                    with lock:
                        errors.append("%s: %s" % (
                            name, str(e) or e.__class__.__name__))
                    return False
            with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
                ok = list(ex.map(step, list(live)))
            keep = [c for c, good in zip(list(live), ok) if good]
            live[:] = keep
        dt = time.monotonic() - t0
        time.sleep(settle)
        mem = memory_of(srv.root_pid())
        n = max(1, len(live))
        m["stages"][name] = {
            "conns": len(live), "seconds": dt, "mem": mem,
            "pss_kb_per_conn": (mem["pss_kb"] - before["pss_kb"]) / n,
            "rss_kb_per_conn": (mem["rss_kb"] - before["rss_kb"]) / n,
            "procs_per_conn": (mem["procs"] - before["procs"]) / n}
        log("  %-6s %4d connections: %.1f KB PSS/conn, %d processes" % (
            name, len(live), m["stages"][name]["pss_kb_per_conn"],
            mem["procs"]))

    t_all = time.monotonic()
    try:
        stage("tls", None)
        stage("login", login)
        stage("select", select)
        m["open_s"] = time.monotonic() - t_all
        fin = m["stages"]["select"]
        m["opened"] = fin["conns"]
        m["after"] = fin["mem"]
        for k in ("pss_kb_per_conn", "rss_kb_per_conn", "procs_per_conn"):
            m[k] = fin[k]

        def noop(c):
            try:
                st, _, _ = c.command(b"NOOP")
                return st == b"OK"
            except Exception:
                return False
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            m["noop_failed_after"] = sum(1 for ok in ex.map(noop, live)
                                         if not ok)
    finally:
        m.setdefault("opened", len(live))
        m.setdefault("open_s", time.monotonic() - t_all)
        m["open_errors"] = len(errors)
        m["error_samples"] = sorted(set(errors))[:5]

        def bye(c):
            c.logout()
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            list(ex.map(bye, live))
    return m


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


def wait_imap(port, timeout, alive=None):
    deadline = time.monotonic() + timeout
    last = "no attempt"
    ctx = client_tls_ctx()
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return "server process exited"
        try:
            c = Imap(HOST, port, ctx, 5)
            try:
                c.greeting()
                c.command(b"LOGOUT")
            finally:
                c.close()
            return None
        except Exception as e:
            last = str(e) or e.__class__.__name__
        time.sleep(0.2)
    return last


class MailfortImap(common.MailfortServer):
    """Mailfort with only the imaps listener."""
    stop_timeout = 40

    def __init__(self, binary, work, cert, key, user):
        super().__init__(binary, work, cert, key, user)
        self.pidfile = os.path.join(self.dir, "harness.pid")
        self.port = PORTS["mailfort"]
        self.changes = []

    def setup(self):
        self.write_config([
            ("smtp", "off"), ("submissions", "off"), ("submission", "off"),
            ("imap", "off"), ("imaps", "%s:%d" % (HOST, self.port)),
            ("pop3", "off"), ("pop3s", "off")])

    def start(self):
        self.spawn([self.port])
        with open(self.pidfile, "w") as f:
            f.write("%d\n" % self.proc.pid)
        e = wait_imap(self.port, 20, self.alive)
        if e:
            raise self.listener_error("imaps", self.port, e)

    def root_pid(self):
        return self.proc.pid

    @staticmethod
    def stop_leftover(work):
        pid = common.read_pid(os.path.join(work, "mailfort", "harness.pid"))
        if pid and common.pid_alive(pid) and proc_comm(pid) == "mailfort":
            log("stopping leftover mailfort %d" % pid)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass



class DovecotImap:
    """Private Dovecot instance: imaps only, passwd-file auth, Maildir."""
    name = "dovecot"

    IMAP_BIN = "/usr/lib/dovecot/imap"

    def __init__(self, work, cert, key, login_mode):
        self.dir = os.path.join(work, "dovecot")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.users = os.path.join(self.dir, "users")
        self.run_dir = os.path.join(self.dir, "run")
        self.home = os.path.join(self.dir, "home")
        self.logfile = os.path.join(self.dir, "dovecot.log")
        self.cert, self.key = cert, key
        self.port = PORTS["dovecot"]
        self.login_mode = login_mode
        self.started = False
        self.changes = []

    @staticmethod
    def available():
        return shutil.which("dovecot") is not None and \
            os.path.exists(DovecotImap.IMAP_BIN)

    @staticmethod
    def install():
        log("installing dovecot-imapd from Debian")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends",
               "dovecot-core", "dovecot-imapd"]
        r = common.run(cmd, check=False, env=env)
        if r.returncode != 0:
            common.run(["apt-get", "update", "-q"], check=False, env=env)
            r = common.run(cmd, check=False, env=env)
        if r.returncode != 0:
            log("apt-get failed: %s" % r.stdout.strip()[-500:])
        return DovecotImap.available()

    def setup(self, max_conns):
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        uid = pwd.getpwnam("nobody").pw_uid
        gid = grp.getgrnam("nogroup").gr_gid
        home = os.path.join(self.home, USER)
        os.makedirs(home, exist_ok=True)
        os.chown(self.home, uid, gid)
        os.chown(home, uid, gid)
        with open(self.users, "w") as f:
            f.write("%s:{SHA512-CRYPT}%s::::::\n" % (
                USER, common.sha512_crypt(PASSWORD)))
        os.chmod(self.users, 0o640)
        os.chown(self.users, 0, grp.getgrnam("dovecot").gr_gid)
        # only what 1,000 connections of one user from one address need;
        # never below Dovecot's own defaults
        limit = max_conns + 100
        imap_limit = max(1024, limit)
        climit = max(1000, 4 * limit)
        self.limits = {"limit": limit, "imap_limit": imap_limit,
                       "climit": climit}
        self.changes = [
            "protocol imap { mail_max_userip_connections = %d } "
            "(default 10: all clients are one user from one IP)" % limit]
        if limit > 100:
            self.changes.append(
                "service imap-login { process_limit = %d } (default 100 = "
                "default_process_limit; in the default high-security mode "
                "each TLS connection keeps its own login process)" % limit)
        if imap_limit != 1024:
            self.changes.append("service imap { process_limit = %d } "
                                "(default 1024)" % imap_limit)
        if climit != 1000:
            self.changes.append(
                "default_client_limit = %d (default 1000; auth, anvil, "
                "log, stats, config take one client per login/imap "
                "process)" % climit)
        login_extra = ""
        if self.login_mode == "performance":
            ncpu = os.cpu_count() or 1
            login_extra = (
                "  service_count = 0\n"
                "  process_min_avail = %d\n"
                "  client_limit = %d\n" % (ncpu, limit))
            self.changes.append(
                "service imap-login { service_count = 0, process_min_avail "
                "= %d, client_limit = %d } (--dovecot-login performance: "
                "high-performance login mode)" % (ncpu, limit))
        dh = "/usr/share/dovecot/dh.pem"
        with open(self.conf, "w") as f:
            f.write(
                "# private IMAP instance for the Mailfort benchmark\n"
                "instance_name = mf-bench-imap\n"
                "base_dir = %(run)s\n"
                "state_dir = %(dir)s/state\n"
                "log_path = %(log)s\n"
                "info_log_path = %(log)s\n"
                "protocols = imap\n"
                "listen = %(host)s\n"
                "ssl = required\n"
                "ssl_cert = <%(cert)s\n"
                "ssl_key = <%(key)s\n"
                "%(dh)s"
                "passdb {\n"
                "  driver = passwd-file\n"
                "  args = scheme=SHA512-CRYPT %(users)s\n"
                "}\n"
                "userdb {\n"
                "  driver = static\n"
                "  args = uid=%(uid)d gid=%(gid)d home=%(home)s/%%u\n"
                "}\n"
                "mail_location = maildir:~/Maildir\n"
                "default_client_limit = %(climit)d\n"
                "service imap-login {\n"
                "  inet_listener imap {\n"
                "    port = 0\n"
                "  }\n"
                "  inet_listener imaps {\n"
                "    address = %(host)s\n"
                "    port = %(port)d\n"
                "    ssl = yes\n"
                "  }\n"
                "  process_limit = %(limit)d\n"
                "%(login_extra)s"
                "}\n"
                "service imap {\n"
                "  process_limit = %(imap_limit)d\n"
                "}\n"
                "protocol imap {\n"
                "  mail_max_userip_connections = %(limit)d\n"
                "}\n" % {
                    "run": self.run_dir, "dir": self.dir, "log": self.logfile,
                    "host": HOST, "cert": self.cert, "key": self.key,
                    "dh": ("ssl_dh = <%s\n" % dh) if os.path.exists(dh)
                    else "",
                    "users": self.users, "uid": uid, "gid": gid,
                    "home": self.home, "climit": climit,
                    "imap_limit": imap_limit,
                    "port": self.port, "limit": limit,
                    "login_extra": login_extra})

    def master_pid(self):
        return common.read_pid(os.path.join(self.run_dir, "master.pid"))

    def root_pid(self):
        return self.master_pid()

    def alive(self):
        pid = self.master_pid()
        return pid is not None and common.pid_alive(pid)

    def start(self):
        if not common.port_free(self.port):
            raise RuntimeError("port %d is already in use" % self.port)
        r = common.run(["doveconf", "-c", self.conf, "-n"], check=False)
        if r.returncode != 0:
            raise RuntimeError("doveconf: %s" % r.stdout.strip()[-1500:])
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
        e = wait_imap(self.port, 20)
        if e:
            raise RuntimeError("dovecot imaps 127.0.0.1:%d: %s\n%s" % (
                self.port, e, tail(self.logfile)))

    def stop(self):
        pid = self.master_pid()
        if pid is None or not common.pid_alive(pid):
            return
        common.run(["doveadm", "-c", self.conf, "stop"], check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and common.pid_alive(pid):
            time.sleep(0.1)
        if common.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    def stop_leftover(work):
        pid = common.read_pid(os.path.join(work, "dovecot", "run",
                                           "master.pid"))
        if pid and common.pid_alive(pid) and proc_comm(pid) == "dovecot":
            log("stopping leftover dovecot %d" % pid)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and common.pid_alive(pid):
                time.sleep(0.1)

    def cleanup_data(self):
        shutil.rmtree(self.home, ignore_errors=True)


# --------------------------------------------------------------------------
# Seeding and checks
# --------------------------------------------------------------------------


def seed_mailbox(srv, nseed, size):
    """APPENDs nseed messages to INBOX (same client code for both)."""
    c = Imap(HOST, srv.port, client_tls_ctx(), 30)
    try:
        c.greeting()
        c.login(USER, PASSWORD)
        ex = c.select()
        if ex:
            raise RuntimeError("INBOX not empty before seeding (%d)" % ex)
        fac = MessageFactory(size, "seed")
        t0 = time.monotonic()
        for i in range(1, nseed + 1):
            st, line, _ = c.command(b"APPEND INBOX", fac.message("seed", i))
            if st != b"OK":
                raise RuntimeError("seed APPEND %d: %s" % (
                    i, line[:200].decode("latin-1")))
        dt = time.monotonic() - t0
        ex = c.select()
        if ex != nseed:
            raise RuntimeError("after seeding INBOX has %s messages, "
                               "want %d" % (ex, nseed))
        caps = sorted(x.decode() for x in c.caps)
        tls = "%s %s" % (c.sock.version(), c.sock.cipher()[0])
        c.logout()
        return {"seconds": dt, "caps": caps, "tls": tls}
    finally:
        c.close()


def mailbox_check(srv, nseed):
    """INBOX size after a cell.  Anything beyond the seeded messages (an
    APPEND the workload failed to expunge) is removed again, untimed, so the
    next cell starts from the same mailbox.  Returns (count, removed)."""
    c = Imap(HOST, srv.port, client_tls_ctx(), 30)
    try:
        c.greeting()
        c.login(USER, PASSWORD)
        n = c.select()
        removed = 0
        if n is not None and n > nseed:
            st, line, _ = c.command(b"STORE %d:* +FLAGS.SILENT (\\Deleted)"
                                    % (nseed + 1))
            st2, line2, unt = c.command(b"EXPUNGE")
            removed = sum(1 for t, _ in unt if t.endswith(b" EXPUNGE"))
            if st != b"OK" or st2 != b"OK":
                raise ImapError("reset: %s / %s" % (
                    line[:80].decode("latin-1"), line2[:80].decode("latin-1")))
        c.logout()
        return n, removed
    finally:
        c.close()


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def machine_facts():
    facts = common.machine_facts()
    r = common.run(["dpkg-query", "-W", "-f=${Version}", "dovecot-imapd"],
                   check=False)
    facts["packages"]["dovecot-imapd"] = r.stdout.strip() \
        if r.returncode == 0 else None
    facts["packages"].pop("postfix", None)
    return facts


def lat_str(c):
    if c is None or c.get("p50_ms") is None:
        return "-"
    return "%.2f/%.2f" % (c["p50_ms"], c["p99_ms"])


def cell_flag(c):
    return bool(c.get("errors") or c.get("mailbox_mismatch") or
                c.get("connect_failed"))


def print_report(cells, mem, clients_list, servers, notes, seconds):
    print()
    hdr = "%-8s %12s %12s %7s %15s %15s" % (
        "clients", "Mailfort op/s", "Dovecot op/s", "ratio",
        "MF p50/p99 ms", "DC p50/p99 ms")
    print(hdr)
    print("-" * len(hdr))
    for n in clients_list:
        mf, dc = cells.get(("mailfort", n)), cells.get(("dovecot", n))

        def tput(c):
            if c is None:
                return "-"
            return "%.0f%s" % (c["ops_per_s"], "!" if cell_flag(c) else "")
        ratio = "-"
        if mf and dc and dc["ops_per_s"] > 0:
            ratio = "%.2f" % (mf["ops_per_s"] / dc["ops_per_s"])
        print("%-8d %13s %12s %7s %15s %15s" % (
            n, tput(mf), tput(dc), ratio, lat_str(mf), lat_str(dc)))
    if mem:
        print()
        hdr = "%-42s %10s %10s %7s" % ("memory per idle TLS connection",
                                       "Mailfort", "Dovecot", "ratio")
        print(hdr)
        print("-" * len(hdr))
        mf, dc = mem.get("mailfort"), mem.get("dovecot")

        def g(m, k, spec="%.1f"):
            if m is None or m.get(k) is None:
                return "-"
            return (spec % m[k]) + ("!" if m.get("open_errors") or
                                    m.get("noop_failed_after") else "")

        def r(k):
            if mf and dc and mf.get(k) is not None and dc.get(k):
                return "%.2f" % (mf[k] / dc[k])
            return "-"
        tgt = (mf or dc or {}).get("target", 0)
        print("%-42s %10s %10s %7s" % (
            "KB PSS per connection (%d open)" % tgt,
            g(mf, "pss_kb_per_conn"), g(dc, "pss_kb_per_conn"),
            r("pss_kb_per_conn")))
        print("%-42s %10s %10s %7s" % (
            "KB RSS per connection (shared pages 1x/proc)",
            g(mf, "rss_kb_per_conn"), g(dc, "rss_kb_per_conn"),
            r("rss_kb_per_conn")))
        print("%-42s %10s %10s %7s" % (
            "server processes per connection",
            g(mf, "procs_per_conn", "%.2f"), g(dc, "procs_per_conn", "%.2f"),
            "-"))
    print()
    print("checks (per cell: iterations, errors, INBOX size after the cell; "
          "generator CPU; system CPU busy in the window, and in 0.5 s "
          "before it):")
    for srv in servers:
        for n in clients_list:
            c = cells.get((srv, n))
            if c is None:
                continue
            print("  %-8s %3d: %d iterations, %d ops OK (%d in window), "
                  "errors %d, reconnects %d, INBOX after %s%s, APPENDs "
                  "without EXISTS (client sent NOOP) %d, literal+ %s, "
                  "gen cpu %.1fs (%.0f%% of machine), server cpu %s ms/op, "
                  "busy %s%% "
                  "(before: %s%%)" % (
                      srv, n, c["iterations"], c["ok_total"], c["ok_win"],
                      c["errors"], c["reconnects"],
                      fmt(c.get("mailbox_after"), "%d"),
                      " (MISMATCH)" if c.get("mailbox_mismatch") else "",
                      c["append_no_exists"],
                      {True: "yes", False: "no", None: "-"}[
                          c["literal_plus"]],
                      c["client_cpu_s"], c["client_cpu_pct_of_machine"],
                      fmt(c.get("server_cpu_ms_per_op"), "%.3f"),
                      fmt(c["system_cpu_busy_pct"], "%.0f"),
                      fmt(c.get("background_busy_pct"), "%.0f")))
            print("            p50/p99 ms by command: " + ", ".join(
                "%s %s/%s" % (o, fmt(c["per_op"][o]["p50_ms"], "%.1f"),
                              fmt(c["per_op"][o]["p99_ms"], "%.1f"))
                for o in OPS))
            for e in c["error_samples"][:3]:
                print("      error: %s" % e)
    for srv in servers:
        m = mem.get(srv) if mem else None
        if m is None:
            continue
        print("  %-8s memory: %d/%d connections opened in %.1fs, "
              "NOOP failed on %s afterwards; PSS %d -> %s KB, "
              "processes %d -> %s" % (
                  srv, m["opened"], m["target"], m["open_s"],
                  fmt(m.get("noop_failed_after"), "%d"),
                  m["before"]["pss_kb"],
                  fmt((m.get("after") or {}).get("pss_kb"), "%d"),
                  m["before"]["procs"],
                  fmt((m.get("after") or {}).get("procs"), "%d")))
        if m.get("stages"):
            print("            KB PSS per connection by stage: " + ", ".join(
                "%s %.1f" % (k, v["pss_kb_per_conn"])
                for k, v in m["stages"].items()))
        if m.get("after"):
            print("            after, by process name: " + ", ".join(
                "%s %dx %d KB" % (k, v["procs"], v["pss_kb"])
                for k, v in m["after"]["by_comm"].items()))
        for e in m["error_samples"][:3]:
            print("      error: %s" % e)
    for n in notes:
        print("note: %s" % n)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:  # root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


INTERRUPTED = False


def main(argv=None):
    global INTERRUPTED
    ap = argparse.ArgumentParser(
        description="IMAP benchmark: Mailfort vs Dovecot")
    ap.add_argument("--mailfort", default="build/mailfort",
                    help="path of the mailfort binary")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="measured seconds per cell (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="warmup seconds per cell, not counted (default 2)")
    ap.add_argument("--clients", default="1,10,50",
                    help="comma-separated concurrent client counts")
    ap.add_argument("--only", choices=["dovecot", "mailfort"],
                    help="benchmark only one server")
    ap.add_argument("--seed", type=int, default=200,
                    help="messages seeded into INBOX (default 200)")
    ap.add_argument("--size", type=int, default=4096,
                    help="message size in bytes (default 4096)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per cell; the table shows the median run")
    ap.add_argument("--per-proc", type=int, default=10,
                    help="clients per load-generator process (default 10)")
    ap.add_argument("--no-literal-plus", action="store_true",
                    help="always use synchronising literals for APPEND "
                    "(default: LITERAL+ when the server offers it)")
    ap.add_argument("--client-quickack", action="store_true",
                    help="diagnostic: the generator sets TCP_QUICKACK "
                    "before every read, which hides Nagle/delayed-ACK "
                    "stalls of a server that sends a response in several "
                    "writes without TCP_NODELAY; not what real clients do")
    ap.add_argument("--mem-conns", type=int, default=1000,
                    help="idle TLS connections for the memory test "
                    "(default 1000; 0 skips the test)")
    ap.add_argument("--mem-parallel", type=int, default=16,
                    help="connections opened in parallel in the memory test")
    ap.add_argument("--dovecot-login", choices=["secure", "performance"],
                    default="secure",
                    help="Dovecot imap-login mode: secure (Debian default, "
                    "one login process per connection) or performance "
                    "(service_count=0)")
    common.add_run_options(ap, "/tmp/mf-bench",
                           "keep mail stores in --workdir")
    args = ap.parse_args(argv)

    command = " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv)
    clients_list = [int(x) for x in args.clients.split(",") if x.strip()]
    servers = ["mailfort", "dovecot"]
    if args.only:
        servers = [args.only]
    if os.geteuid() != 0:
        ap.error("run as root (Dovecot must be started by root; the memory "
                 "test reads other users' /proc/PID/smaps_rollup)")
    if args.size < 1024:
        ap.error("--size must be at least 1024")
    if args.seed < 20:
        ap.error("--seed must be at least 20 (the workload fetches 1:20)")

    nofile = raise_nofile(max(4 * args.mem_conns + 1024, 8192))

    if "dovecot" in servers and not DovecotImap.available():
        DovecotImap.install()
    facts = machine_facts()
    print("command: %s" % command)
    print("machine: nproc=%s, cpu=%s, mem=%s MB, kernel=%s, python=%s" % (
        facts["nproc"], facts["cpu"], facts["mem_mb"], facts["kernel"],
        facts["python"]))
    print("packages: %s" % ", ".join(
        "%s %s" % (k, v) for k, v in facts["packages"].items()))
    print("imap cells: clients=%s, %.0f s measured + %.0f s warmup, INBOX of "
          "%d x %d-byte messages, %d clients per generator process; memory "
          "test with %d idle TLS connections; RLIMIT_NOFILE %s" % (
              ",".join(map(str, clients_list)), args.seconds, args.warmup,
              args.seed, args.size, args.per_proc, args.mem_conns,
              "/".join(map(str, nofile))))
    sys.stdout.flush()

    work = os.path.abspath(args.workdir)
    notes = []
    active = {}
    cleanup_list = []
    server_info = {}

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    # leftovers of an interrupted earlier run (either suite)
    old_pf = os.path.join(work, "postfix", "etc")
    if os.path.isfile(os.path.join(old_pf, "main.cf")):
        common.run(["postfix", "-c", old_pf, "stop"], check=False)
    DovecotImap.stop_leftover(work)
    MailfortImap.stop_leftover(work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)

    runs = {}
    mem = {}
    try:
        cert, key = common.make_cert(work)
        if "mailfort" in servers:
            mf = MailfortImap(os.path.abspath(args.mailfort), work, cert, key,
                              args.mailfort_user)
            cleanup_list.append(mf)
            try:
                mf.setup()
                mf.start()
                info = seed_mailbox(mf, args.seed, args.size)
                server_info["mailfort"] = info
                active["mailfort"] = mf
                log("mailfort up, %d messages seeded in %.1fs (log %s)" % (
                    args.seed, info["seconds"], mf.logfile))
            except Exception as e:
                msg = "Mailfort not benchmarked: %s" % e
                log(msg)
                if mf.proc is not None:
                    log("mailfort log tail:\n%s" % tail(mf.logfile))
                notes.append(msg.splitlines()[0])
                mf.stop()
        if "dovecot" in servers:
            dc = DovecotImap(work, cert, key, args.dovecot_login)
            cleanup_list.append(dc)
            try:
                if not DovecotImap.available():
                    raise RuntimeError("dovecot-imapd is not installed and "
                                       "apt-get could not install it")
                dc.setup(max(args.mem_conns, max(clients_list)))
                dc.start()
                info = seed_mailbox(dc, args.seed, args.size)
                server_info["dovecot"] = info
                active["dovecot"] = dc
                log("dovecot up, %d messages seeded in %.1fs (log %s)" % (
                    args.seed, info["seconds"], dc.logfile))
            except Exception as e:
                msg = "Dovecot not benchmarked: %s" % e
                log(msg)
                notes.append(msg.splitlines()[0])
        if not active:
            notes.append("no server could be started")

        def server_died(name, srv, what):
            msg = "%s died during %s:\n%s" % (
                name, what, tail(getattr(srv, "logfile", "")))
            log(msg)
            notes.append(msg.splitlines()[0])
            server_info.setdefault(name, {})["died"] = msg
            del active[name]

        def one_run(name, srv, n, rep):
            spec = {"host": HOST, "port": srv.port, "user": USER,
                    "password": PASSWORD, "seed": args.seed,
                    "size": args.size, "warmup": args.warmup,
                    "seconds": args.seconds,
                    "literal_plus": not args.no_literal_plus,
                    "quickack": args.client_quickack,
                    "timeout": 30.0}
            c0 = cpu_times()
            time.sleep(0.5)
            c1 = cpu_times()
            tot, idle = c1[0] - c0[0], c1[1] - c0[1]
            bg = (100.0 * (tot - idle) / tot) if tot else None
            log("%s %d clients%s ..." % (
                name, n, " (run %d)" % (rep + 1) if args.repeat > 1 else ""))
            m = run_cell(spec, n, args.per_proc, srv.root_pid())
            m["server"] = name
            m["background_busy_pct"] = bg
            try:
                m["mailbox_after"], m["mailbox_reset_removed"] = \
                    mailbox_check(srv, args.seed)
            except Exception as e:
                m["mailbox_after"] = None
                m["errors"] += 1
                m["error_samples"].append("post-cell check: %s" % e)
            m["mailbox_mismatch"] = m["mailbox_after"] != args.seed
            log("  %.0f op/s, p50 %s ms, p99 %s ms, errors %d, "
                "INBOX after %s, gen cpu %.1fs, busy before %s%%" % (
                    m["ops_per_s"], fmt(m["p50_ms"], "%.2f"),
                    fmt(m["p99_ms"], "%.2f"), m["errors"],
                    fmt(m["mailbox_after"], "%d"), m["client_cpu_s"],
                    fmt(bg, "%.0f")))
            for e in m["error_samples"][:3]:
                log("    error: %s" % e)
            return m

        turn = 0
        for n in clients_list:
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
                        m = one_run(name, srv, n, rep)
                    except Exception as e:
                        log("%s %d clients: %s" % (name, n, e))
                        notes.append("%s %d clients failed: %s" % (
                            name, n, e))
                        m = None
                    if m is not None:
                        runs.setdefault((name, n), []).append(m)
                    if not srv.alive():
                        server_died(name, srv, "%d clients" % n)

        if args.mem_conns > 0:
            order = list(servers)
            if turn % 2:
                order.reverse()
            for name in order:
                srv = active.get(name)
                if srv is None:
                    continue
                log("%s memory test: %d idle TLS connections ..." % (
                    name, args.mem_conns))
                try:
                    m = memory_test(srv, args.mem_conns, args.mem_parallel,
                                    2.0)
                    mem[name] = m
                    log("  %s KB PSS/conn (%s KB RSS/conn), %d opened, "
                        "%d errors, NOOP failed %s" % (
                            fmt(m.get("pss_kb_per_conn"), "%.1f"),
                            fmt(m.get("rss_kb_per_conn"), "%.1f"),
                            m["opened"], m["open_errors"],
                            fmt(m.get("noop_failed_after"), "%d")))
                    for e in m["error_samples"][:3]:
                        log("    error: %s" % e)
                except Exception as e:
                    log("%s memory test: %s" % (name, e))
                    notes.append("%s memory test failed: %s" % (name, e))
                if not srv.alive():
                    server_died(name, srv, "the memory test")
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
        if not args.keep:
            for srv in cleanup_list:
                srv.cleanup_data()

    # errors in the Mailfort log (warnings and worse) during the run
    mf = next((s for s in cleanup_list if s.name == "mailfort"), None)
    if mf is not None and os.path.exists(mf.logfile):
        bad = []
        with open(mf.logfile, "rb") as f:
            for line in f:
                low = line.lower()
                if any(w in low for w in (b"warn", b"error", b"fatal",
                                          b"crash", b"abort", b"signal")):
                    bad.append(line.decode("utf-8", "replace").rstrip())
        server_info.setdefault("mailfort", {})["log_problems"] = {
            "count": len(bad), "samples": bad[:10] + (bad[-5:] if
                                                       len(bad) > 15 else [])}
        if bad:
            notes.append("mailfort log has %d warning/error lines, e.g.: %s"
                         % (len(bad), bad[0][:200]))
    dcs = next((s for s in cleanup_list if s.name == "dovecot"), None)
    if dcs is not None and os.path.exists(dcs.logfile):
        bad = []
        with open(dcs.logfile, "rb") as f:
            for line in f:
                if re.search(rb"(Warning|Error|Fatal|Panic):", line) and \
                        b"Killed with signal 15" not in line:
                    bad.append(line.decode("utf-8", "replace").rstrip())
        server_info.setdefault("dovecot", {})["log_problems"] = {
            "count": len(bad), "samples": bad[:10]}
        if bad:
            notes.append("dovecot log has %d warning/error lines, e.g.: %s"
                         % (len(bad), bad[0][:200]))
        notes.append("Dovecot settings changed from defaults: " +
                     "; ".join(dcs.changes))

    cells = {}
    for k, lst in runs.items():
        srt = sorted(lst, key=lambda m: m["ops_per_s"])
        c = dict(srt[(len(srt) - 1) // 2])
        c["runs_ops_per_s"] = [m["ops_per_s"] for m in lst]
        c["errors_all_runs"] = sum(m["errors"] for m in lst)
        cells[k] = c
    noisy = sorted(set("%s/%d" % k for k, lst in runs.items()
                       if any((m.get("background_busy_pct") or 0) > 25
                              for m in lst)))
    if noisy:
        notes.append("other load on the machine (>25%% CPU busy just "
                     "before): %s; numbers there are less reliable" %
                     ", ".join(noisy))
    hot = sorted(set("%s/%d" % k for k, c in cells.items()
                     if c["client_cpu_pct_of_machine"] > 60))
    if hot:
        notes.append("load generator used >60%% of the machine's CPU in %s:"
                     " the client may limit those cells" % ", ".join(hot))
    if args.client_quickack:
        notes.append("DIAGNOSTIC RUN: --client-quickack (the generator ACKs "
                     "at once; real clients use delayed ACKs)")
    notes.append("'!' = errors, failed connections or INBOX size != %d "
                 "after the cell; logs and configs under %s" % (
                     args.seed, work))

    print_report(cells, mem, clients_list, servers, notes, args.seconds)

    os.makedirs(args.results, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.results, "imap-%s.json" % stamp)
    doc = {
        "benchmark": "imap",
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "machine": facts,
        "params": {"seconds": args.seconds, "warmup": args.warmup,
                   "clients": clients_list, "seed": args.seed,
                   "size": args.size, "servers": servers,
                   "per_proc": args.per_proc, "repeat": args.repeat,
                   "literal_plus": not args.no_literal_plus,
                   "client_quickack": args.client_quickack,
                   "mem_conns": args.mem_conns,
                   "dovecot_login": args.dovecot_login,
                   "rlimit_nofile": list(nofile), "ports": PORTS,
                   "ops": list(OPS)},
        "servers": server_info,
        "notes": notes,
        "cells": [],
        "memory": mem,
    }
    for n in clients_list:
        row = {"clients": n}
        for name in servers:
            row[name] = cells.get((name, n))
        a, b = row.get("mailfort"), row.get("dovecot")
        row["ratio"] = (a["ops_per_s"] / b["ops_per_s"]
                        if a and b and b["ops_per_s"] else None)
        doc["cells"].append(row)
    a, b = mem.get("mailfort"), mem.get("dovecot")
    doc["memory_ratio_pss"] = (
        a["pss_kb_per_conn"] / b["pss_kb_per_conn"]
        if a and b and a.get("pss_kb_per_conn") is not None and
        b.get("pss_kb_per_conn") else None)
    doc["runs"] = [m for k in sorted(runs) for m in runs[k]]
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print("results: %s" % out)
    sys.stdout.flush()
    return 0 if cells or mem else 1


if __name__ == "__main__":
    sys.exit(main())
