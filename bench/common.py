"""Shared parts of the benchmark suites (bench/run.py, bench/imap.py,
bench/outbound.py): the benchmark account, small process and file helpers,
machine facts, and the load-generator process pool.

The pool: run_generators() forks ceil(sessions / per_proc) processes; each
runs one thread per session (session_fn), and every session signals ready
once connected.  When all are ready the harness sets one shared start time
and a go event; it samples the machine's CPU at the start and end of the
measured window (warmup .. warmup + seconds) and collects one merged result
per process.  What a session does and how results merge is the suite's.

Stdlib only.
"""

import math
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
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


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
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


def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v
