"""A private authoritative DNS server for tests: NSD on 127.0.0.1.

    zones = {"remote.test": '''
        @     MX 10 mx1
        @     MX 20 mx2.remote.test.
        mx1   A 127.0.0.2
        mx2   AAAA ::1
    '''}
    with DNSServer(zones, signed=["remote.test"]) as dns:
        server = make_server(extra={"dns.resolver": dns.resolver,
                                    "dns.trust_anchor": dns.trust_anchor})

Zone bodies are ordinary zone file lines relative to the zone (an
$ORIGIN and $TTL are put in front, and an SOA and NS when the body has
none).  Zones named in signed= are signed with a fresh ECDSA P-256 key
(ldns-keygen, ldns-signzone); their DS records go to .trust_anchor, so a
validating resolver that forwards to .resolver sees them as secure.
Zones in bogus= are signed too, with signatures that expired long ago:
their answers fail validation.  Unsigned zones lie outside every trust
anchor and are simply insecure.  .trust_anchor always names a file that
holds at least one anchor, so the resolver never falls back to the root
key (under which these made-up zones could not be proven insecure).

NSD answers queries with RD set for its own zones and REFUSED for the
rest, which is what a forwarder such as Mailfort's libunbound expects
of [dns] resolver = ADDR:PORT.
"""
import atexit
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from conftest import free_port

NSD = "/usr/sbin/nsd"
KEYGEN = "/usr/bin/ldns-keygen"
SIGNZONE = "/usr/bin/ldns-signzone"

# A zone nothing is served for, whose made-up DS keeps .trust_anchor
# non-empty when no zone is signed.
_DUMMY_TA = ("anchor.invalid. IN DS 12345 13 2 "
             "0000000000000000000000000000000000000000000000000000000000000000")


def _free_port():
    """A port free on 127.0.0.1 for TCP (conftest's free_port(), never
    handed out twice) and for UDP too: NSD binds both."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _query(port, name, qtype=6, timeout=0.5):
    """One UDP query (default SOA); returns the rcode or None."""
    qid = os.getpid() & 0xFFFF
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(pkt, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


class DNSServer:
    """NSD serving zones on 127.0.0.1:<port> until stop()."""

    def __init__(self, zones, signed=(), bogus=(), start=True):
        self.zones = {z.rstrip(".").lower(): body for z, body in zones.items()}
        self.signed = {z.rstrip(".").lower() for z in signed}
        self.bogus = {z.rstrip(".").lower() for z in bogus}
        for z in self.signed | self.bogus:
            if z not in self.zones:
                raise ValueError("signed zone %s has no body" % z)
        self.dir = tempfile.mkdtemp(prefix="mf-dns-")
        os.chmod(self.dir, 0o755)
        self.port = _free_port()
        self.resolver = "127.0.0.1:%d" % self.port
        self.trust_anchor = os.path.join(self.dir, "trust-anchor.ds")
        self.proc = None
        self.logf = None
        self._prepare()
        if start:
            self.start()

    # ---- zone files ----
    def _zone_text(self, zone, body):
        lines = ["$ORIGIN %s." % zone, "$TTL 300"]
        if " SOA " not in " %s " % " ".join(body.split()):
            lines.append("@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 "
                         "300" % (zone, zone))
            lines.append("@ IN NS ns.nsd.invalid.")
        for line in body.splitlines():
            line = line.strip()
            if line:
                lines.append(line)
        return "\n".join(lines) + "\n"

    def _sign(self, zone, path, expired):
        out = subprocess.run([KEYGEN, "-a", "ECDSAP256SHA256", "-k", zone],
                             cwd=self.dir, check=True, capture_output=True,
                             text=True).stdout.strip()
        base = os.path.join(self.dir, out)
        cmd = [SIGNZONE]  # NSEC
        if expired:
            cmd += ["-i", "20000101000000", "-e", "20000201000000"]
        subprocess.run(cmd + ["-f", path + ".signed", path, base],
                       cwd=self.dir, check=True, capture_output=True)
        with open(base + ".ds") as f:
            return f.read().strip()

    def _prepare(self):
        anchors = []
        conf = [
            "server:",
            "  ip-address: 127.0.0.1@%d" % self.port,
            "  port: %d" % self.port,
            "  do-ip6: no",
            "  username: \"\"",
            "  chroot: \"\"",
            "  zonesdir: \"%s\"" % self.dir,
            "  database: \"\"",
            "  zonelistfile: \"%s/zone.list\"" % self.dir,
            "  xfrdfile: \"%s/xfrd.state\"" % self.dir,
            "  xfrdir: \"%s\"" % self.dir,
            "  pidfile: \"%s/nsd.pid\"" % self.dir,
            "  logfile: \"%s/nsd.log\"" % self.dir,
            "  server-count: 1",
            "  verbosity: 1",
            "  hide-version: yes",
            "  refuse-any: yes",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone, body in sorted(self.zones.items()):
            path = os.path.join(self.dir, zone + ".zone")
            with open(path, "w") as f:
                f.write(self._zone_text(zone, body))
            if zone in self.signed or zone in self.bogus:
                anchors.append(self._sign(zone, path, zone in self.bogus))
                path += ".signed"
            conf += ["zone:", "  name: \"%s\"" % zone,
                     "  zonefile: \"%s\"" % path]
        with open(self.trust_anchor, "w") as f:
            f.write("\n".join(anchors or [_DUMMY_TA]) + "\n")
        os.chmod(self.trust_anchor, 0o644)
        self.conf = os.path.join(self.dir, "nsd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")

    # ---- process control ----
    def start(self, timeout=10):
        self.logf = open(os.path.join(self.dir, "nsd.out"), "ab")
        self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf],
                                     stdout=self.logf, stderr=self.logf)
        atexit.register(self.stop)  # no stray NSD if a test run dies
        probe = next(iter(sorted(self.zones)), "invalid")
        deadline = time.time() + timeout
        while _query(self.port, probe) is None:
            if self.proc.poll() is not None or time.time() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError("nsd did not start:\n" + log)
            time.sleep(0.05)
        return self

    def log(self):
        out = ""
        for name in ("nsd.out", "nsd.log"):
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    out += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False
