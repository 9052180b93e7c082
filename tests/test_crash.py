"""Crash safety: "250 means it is on disk".  While clients send, the
workers and the master are SIGKILLed several times and the server is
restarted; every message that got 250 must end up in its recipients'
stores, and no message may be stored twice."""
import os
import random
import re
import signal
import smtplib
import threading
import time

from conftest import Server, check_log_clean

RECIPIENTS = {"user@example.test": ["user@example.test"],
              "team@example.test": ["user@example.test",
                                    "other@example.test"]}


class Sender(threading.Thread):
    def __init__(self, server, n, stop):
        super().__init__(daemon=True)
        self.server, self.n, self.stop = server, n, stop
        self.acked = []     # (token, rcpt)
        self.sent = 0

    def run(self):
        i = 0
        while not self.stop.is_set():
            rcpt = random.choice(list(RECIPIENTS))
            token = "T%d-%d" % (self.n, i)
            i += 1
            body = ("Subject: crash test\r\nX-Token: %s\r\n\r\n%s\r\n" %
                    (token, "x" * random.randint(10, 5000))).encode()
            try:
                c = smtplib.SMTP("127.0.0.1", self.server.smtp_port,
                                 timeout=10)
                c.ehlo("crash.example")
                c.sendmail("crash@remote.example", [rcpt], body)
                self.acked.append((token, rcpt))
                try:
                    c.quit()
                except (smtplib.SMTPException, OSError):
                    pass
            except (smtplib.SMTPException, OSError):
                time.sleep(0.05)   # server down or killed mid-way
            self.sent += 1


def kill_all(server):
    pids = server.children()
    os.kill(server.proc.pid, signal.SIGKILL)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait()
    server.proc = None
    server.logf.close()
    time.sleep(0.3)


def tokens(server, addr):
    out = []
    for m in server.messages(addr):
        found = re.search(rb"X-Token: (\S+)", m)
        assert found, m[:500]
        out.append(found.group(1).decode())
    return out


def test_kill_workers_and_master_loses_nothing(pki):
    server = Server(pki, workers=2)
    server.start()
    stop = threading.Event()
    senders = [Sender(server, n, stop) for n in range(4)]
    for s in senders:
        s.start()
    try:
        for rnd in range(4):
            time.sleep(1.5)
            # a worker dies: the master restarts it
            kids = server.children()
            os.kill(random.choice(kids), signal.SIGKILL)
            time.sleep(1.0)
            # the whole server dies at once
            kill_all(server)
            server.start()
        time.sleep(1.5)
    finally:
        stop.set()
        for s in senders:
            s.join(30)
    acked = [a for s in senders for a in s.acked]
    assert len(acked) > 50, "too little traffic to prove anything"
    expected = {"user@example.test": set(), "other@example.test": set()}
    for token, rcpt in acked:
        for final in RECIPIENTS[rcpt]:
            expected[final].add(token)
    deadline = time.time() + 60
    while True:
        got = {a: tokens(server, a) for a in expected}
        missing = {a: expected[a] - set(got[a]) for a in expected}
        if not any(missing.values()) or time.time() > deadline:
            break
        time.sleep(0.5)
    log = server.cleanup()
    check_log_clean(log)
    for addr in expected:
        assert not missing[addr], "acknowledged but lost for %s: %s" % (
            addr, sorted(missing[addr])[:20])
        dups = {t for t in got[addr] if got[addr].count(t) > 1}
        assert not dups, "stored twice for %s: %s" % (addr, sorted(dups))
    assert "died" in log and "restarting" in log
