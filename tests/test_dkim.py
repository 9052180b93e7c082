"""DKIM signing (issue 6, RFC 6376 relaxed/relaxed, rsa-sha256 and
ed25519-sha256 per RFC 8463): `mailfort dkim keygen` writes the keys and
prints the TXT records; `mailfort dkim sign` signs stored messages; dkimpy
(Debian's python3-dkim, with python3-nacl for Ed25519) verifies both
signatures against exactly the records keygen printed.  Nothing here
signs or verifies by itself."""
import base64
import os
import pwd
import re
import shutil
import subprocess
import tempfile

import dkim
import pytest

from conftest import BIN

DOMAIN = "example.org"


def run(cfg, *args, check=True):
    p = subprocess.run([BIN, "-c", cfg, "dkim"] + list(args),
                       capture_output=True)
    if check and p.returncode != 0:
        raise AssertionError("mailfort dkim %s: rc %d\n%s" % (
            " ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p


def parse_records(text):
    """Zone file lines -> {dns name: TXT data (strings concatenated)}."""
    recs = {}
    for line in text.splitlines():
        m = re.match(r'^(\S+) IN TXT ((?:"[^"]*" ?)+)$', line)
        assert m, "not a TXT line: %r" % line
        strings = re.findall(r'"([^"]*)"', m.group(2))
        assert all(len(s) <= 255 for s in strings)
        assert m.group(1) not in recs, "two records under one name"
        recs[m.group(1)] = "".join(strings)
    return recs


class Env:
    def __init__(self, selector=None, key_dir=None):
        self.dir = tempfile.mkdtemp(prefix="mf-dkim-")
        os.chmod(self.dir, 0o755)
        self.data_dir = os.path.join(self.dir, "var")
        self.config = os.path.join(self.dir, "mailfort.ini")
        self.user = "nobody" if os.getuid() == 0 else None
        with open(self.config, "w") as f:
            f.write("[server]\ndomains = example.test, %s\n" % DOMAIN)
            f.write("data_dir = %s\n" % self.data_dir)
            if self.user:
                f.write("user = %s\n" % self.user)
            f.write("[listen]\nsubmissions = off\nsubmission = off\n"
                    "imap = off\nimaps = off\n")
            if selector or key_dir:
                f.write("[dkim]\n")
            if selector:
                f.write("selector = %s\n" % selector)
            if key_dir:
                f.write("key_dir = %s\n" % key_dir)
        self.records = {}

    def keygen(self, *extra):
        p = run(self.config, "keygen", DOMAIN, *extra)
        self.records.update(parse_records(p.stdout.decode()))
        return p

    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        rec = self.records.get(name)
        return rec.encode() if rec is not None else None

    def sign(self, msg, domain=DOMAIN):
        path = os.path.join(self.dir, "msg.eml")
        with open(path, "wb") as f:
            f.write(msg)
        p = run(self.config, "sign", domain, path)
        assert p.stdout.endswith(msg), "the message is not passed intact"
        return p.stdout

    def verify_all(self, signed):
        """Verifies every signature with dkimpy; returns their a= tags."""
        algs = []
        n = len(re.findall(rb"(?im)^DKIM-Signature:", signed))
        for i in range(n):
            d = dkim.DKIM(signed)
            ok = d.verify(idx=i, dnsfunc=self.dnsfunc)
            assert ok, "signature %d failed: %r" % (i, signed[:1200])
            algs.append(d.signature_fields[b"a"].decode())
        return algs

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def env():
    e = Env()
    e.keygen()
    yield e
    e.cleanup()


def msg(headers, body):
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


BASE = ["Received: from client.example.org (client.example.org "
        "[192.0.2.1])\r\n\tby mail.example.test with ESMTPSA id 1; "
        "Mon, 30 Nov 2026 10:00:00 +0000",
        "From: Sender <user@example.org>",
        "To: Friend <friend@example.net>",
        "Subject: hello",
        "Date: Mon, 30 Nov 2026 10:00:00 +0000",
        "Message-ID: <1@example.org>"]

MULTIPART = (
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"plain part\r\n\r\n--b1\r\nContent-Type: text/html\r\n\r\n"
    b"<p>html  part</p>  \r\n--b1--\r\n")

CASES = {
    "plain": msg(BASE, b"Hello.\r\n"),
    "multipart": msg(BASE + [
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative;\r\n\tboundary=\"b1\""],
        MULTIPART),
    "long_folded_headers": msg(BASE[:3] + [
        "Subject: " + "\r\n\t".join(["word%d  and\tmore" % i
                                     for i in range(40)]),
        "Cc: " + ",\r\n ".join("person%d <p%d@example.net>" % (i, i)
                               for i in range(60)),
        "References: " + "\r\n ".join("<%d@example.org>" % i
                                      for i in range(30)),
        "X-Unsigned: " + "x" * 900], b"body\r\n"),
    "trailing_empty_lines": msg(BASE, b"text\r\n\r\n\r\n \r\n\t\r\n\r\n"),
    "trailing_whitespace": msg(BASE, b"spaces at end   \r\n\tindented\t "
                               b"\r\n  middle   and\t\ttabs  \r\n"),
    "eight_bit": msg(BASE[:3] + ["Subject: caf\u00e9 \u2603"
                                 .encode().decode("latin-1")],
                     "gr\u00fc\u00dfe \u00e0 tous\r\n".encode() +
                     b"latin-1 \xe9\xe8 \xff\r\n"),
    "empty_body": msg(BASE, b""),
    "no_final_crlf": msg(BASE, b"last line without CRLF  "),
    "dot_lines": msg(BASE, b".\r\n..\r\n.x\r\n"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dkimpy_verifies_both_algorithms(env, name):
    signed = env.sign(CASES[name])
    assert sorted(env.verify_all(signed)) == ["ed25519-sha256",
                                              "rsa-sha256"]


def test_ten_megabyte_message_is_streamed_and_verifies(env):
    line = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" \
           b"ABCDEFGHIJ  \r\n"
    body = line * (10 * 1024 * 1024 // len(line) + 1)
    m = msg(BASE + ["MIME-Version: 1.0",
                    "Content-Type: application/octet-stream"], body)
    assert len(m) > 10 * 1024 * 1024
    signed = env.sign(m)
    assert sorted(env.verify_all(signed)) == ["ed25519-sha256",
                                              "rsa-sha256"]


def test_signature_fields_shape(env):
    signed = env.sign(CASES["plain"])
    head = signed[:signed.index(b"Received:")]
    fields = re.split(rb"\r\n(?=DKIM-Signature:)", head.rstrip(b"\r\n"))
    assert len(fields) == 2
    for f in fields:
        lines = f.split(b"\r\n")
        assert all(len(ln) <= 78 for ln in lines), lines
        assert all(ln.startswith(b"\t") for ln in lines[1:])
        assert b"\n" not in f.replace(b"\r\n", b"")
        unfolded = re.sub(rb"\s+", b"", f)
        assert b"c=relaxed/relaxed;" in unfolded
        assert b"d=example.org;" in unfolded
        # From oversigned; Received never signed
        assert b"h=from:from:to:subject:date:message-id;" in unfolded
    assert b"s=mail;" in re.sub(rb"\s+", b"", fields[0])
    assert b"s=mail-ed25519;" in re.sub(rb"\s+", b"", fields[1])


@pytest.mark.parametrize("change", [
    ("body", lambda m: m.replace(b"Hello.", b"Hallo.")),
    ("subject", lambda m: m.replace(b"Subject: hello", b"Subject: HELLO")),
    ("second_from", lambda m: m.replace(
        b"To: Friend", b"From: Evil <evil@example.net>\r\nTo: Friend")),
    ("from_on_top", lambda m: b"From: Evil <evil@example.net>\r\n" + m),
], ids=lambda c: c[0] if isinstance(c, tuple) else "")
def test_tampering_breaks_both_signatures(env, change):
    signed = env.sign(CASES["plain"])
    assert sorted(env.verify_all(signed)) == ["ed25519-sha256",
                                              "rsa-sha256"]
    bad = change[1](signed)
    assert bad != signed
    for i in range(2):
        try:
            ok = dkim.DKIM(bad).verify(idx=i, dnsfunc=env.dnsfunc)
        except dkim.DKIMException:
            ok = False
        assert not ok, change[0]


def test_unfolding_and_whitespace_changes_still_verify(env):
    """Relaxed canonicalization: what mail relays typically do to
    whitespace does not break the signatures."""
    signed = env.sign(CASES["plain"])
    relaxed = signed.replace(b"Subject: hello", b"Subject:   hello  ") \
        .replace(b"Hello.\r\n", b"Hello.  \r\n\r\n\r\n")
    assert sorted(env.verify_all(relaxed)) == ["ed25519-sha256",
                                               "rsa-sha256"]


@pytest.mark.parametrize("headers,err", [
    (["To: x@example.net", "Subject: no from"], b"no From header field"),
    (["From: a@example.org", "From: b@example.org"],
     b"more than one From header field"),
])
def test_refuses_without_exactly_one_from(env, headers, err):
    path = os.path.join(env.dir, "bad.eml")
    with open(path, "wb") as f:
        f.write(msg(headers, b"body\r\n"))
    p = run(env.config, "sign", DOMAIN, path, check=False)
    assert p.returncode == 1 and err in p.stderr and p.stdout == b""


def test_keygen_files_modes_owner_and_records(env):
    d = os.path.join(env.data_dir, "dkim", DOMAIN)
    owner = pwd.getpwnam(env.user).pw_uid if env.user else os.getuid()
    for name in ("mail.rsa.key", "mail.ed25519.key"):
        st = os.stat(os.path.join(d, name))
        assert st.st_mode & 0o777 == 0o600
        assert st.st_uid == owner
    assert os.stat(d).st_mode & 0o777 == 0o700
    with open(os.path.join(d, "mail.rsa.key")) as f:
        assert f.read().startswith("-----BEGIN PRIVATE KEY-----")
    rsa = env.records["mail._domainkey.%s." % DOMAIN]
    ed = env.records["mail-ed25519._domainkey.%s." % DOMAIN]
    assert rsa.startswith("v=DKIM1; k=rsa; p=")
    assert ed.startswith("v=DKIM1; k=ed25519; p=")
    # RFC 8463 §4.2: the raw 32-byte key, not an SPKI
    assert len(base64.b64decode(ed.split("p=")[1], validate=True)) == 32
    der = base64.b64decode(rsa.split("p=")[1], validate=True)
    out = subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER",
                          "-noout", "-text_pub"], input=der,
                         capture_output=True, check=True).stdout
    assert b"2048 bit" in out


def test_show_prints_the_same_records(env):
    p = run(env.config, "show", DOMAIN)
    assert parse_records(p.stdout.decode()) == env.records


def test_keygen_refuses_to_overwrite_unless_forced():
    e = Env(selector="s2026")
    try:
        first = e.keygen()
        before = dict(e.records)
        assert "s2026._domainkey.example.org." in before
        assert "s2026-ed25519._domainkey.example.org." in before
        p = run(e.config, "keygen", DOMAIN, check=False)
        assert p.returncode == 1 and b"exists" in p.stderr
        assert p.stdout == b""
        assert parse_records(run(e.config, "show", DOMAIN).stdout
                             .decode()) == before
        e.keygen("--force")
        assert e.records != before and len(e.records) == 2
        assert first.stdout != b""
        # the new keys sign, the new records verify
        signed = e.sign(CASES["plain"])
        assert sorted(e.verify_all(signed)) == ["ed25519-sha256",
                                                "rsa-sha256"]
    finally:
        e.cleanup()


def test_key_dir_and_selector_option():
    kd = tempfile.mkdtemp(prefix="mf-dkim-keys-")
    e = Env(key_dir=os.path.join(kd, "keys"))
    try:
        e.keygen("--selector", "other")
        assert os.path.exists(os.path.join(kd, "keys", DOMAIN,
                                           "other.ed25519.key"))
        assert set(e.records) == {"other._domainkey.example.org.",
                                  "other-ed25519._domainkey.example.org."}
        # the configured selector (default "mail") has no key
        path = os.path.join(e.dir, "m.eml")
        with open(path, "wb") as f:
            f.write(CASES["plain"])
        p = run(e.config, "sign", DOMAIN, path, check=False)
        assert p.returncode == 1 and b"no DKIM key" in p.stderr
        p = run(e.config, "sign", DOMAIN, path, "--selector", "other")
        assert sorted(e.verify_all(p.stdout)) == ["ed25519-sha256",
                                                  "rsa-sha256"]
    finally:
        e.cleanup()
        shutil.rmtree(kd, ignore_errors=True)


def test_world_readable_key_is_refused(env):
    e = Env()
    try:
        e.keygen()
        key = os.path.join(e.data_dir, "dkim", DOMAIN, "mail.rsa.key")
        os.chmod(key, 0o644)
        p = run(e.config, "show", DOMAIN, check=False)
        assert p.returncode == 1 and b"chmod 600" in p.stderr
    finally:
        e.cleanup()


@pytest.mark.parametrize("args", [
    ["keygen", "bad..domain"], ["keygen", "a/b"],
    ["keygen", DOMAIN, "--selector", "x;y"],
    ["keygen", DOMAIN, "--selector", "a" * 60],  # too long with -ed25519
    ["keygen"], ["frobnicate", DOMAIN], ["sign", DOMAIN],
])
def test_bad_arguments(env, args):
    p = run(env.config, *args, check=False)
    assert p.returncode in (1, 2) and p.stdout == b""


def test_bad_selector_in_config_is_reported():
    e = Env(selector="bad_selector")
    try:
        p = subprocess.run([BIN, "-c", e.config, "check-config"],
                           capture_output=True)
        assert p.returncode == 1 and b"dkim.selector" in p.stderr
    finally:
        e.cleanup()
