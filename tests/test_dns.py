"""Outbound DNS through `mailfort dns mx|host`: libunbound forwarding to
a private NSD (tests/dnsserver.py) that serves plain, DNSSEC-signed and
deliberately bogus zones.  Checks RFC 5321 §5.1 MX order and implicit MX,
RFC 7505 null MX, NXDOMAIN, DNSSEC secure and bogus answers, address
literals, outbound.ipv6 = no, and a dead resolver (bounded time)."""
import socket
import time

import pytest

from conftest import free_port
from dnsserver import DNSServer

REMOTE = """
@       MX 10 mx1
@       MX 20 mx2
@       MX 20 mx3.remote.test.
mx1     A 127.0.0.2
mx2     AAAA ::1
mx2     A 127.0.0.3
mx3     A 127.0.0.4
aonly   A 127.0.0.5
v6only  AAAA ::5
null    MX 0 .
half    MX 10 gone
half    MX 20 mx1
noaddr  MX 10 gone
alias   CNAME mx2
"""

ZONES = {
    "remote.test": REMOTE,
    "signed.test": "@ MX 5 mx\nmx A 127.0.0.6\n",
    "bogus.test": "@ MX 5 mx\nmx A 127.0.0.7\n",
    # bücher.test in its A-label form (RFC 5891)
    "xn--bcher-kva.test": "@ MX 5 mx\nmx A 127.0.0.8\n",
}


@pytest.fixture(scope="module")
def dns():
    with DNSServer(ZONES, signed=["signed.test"], bogus=["bogus.test"]) as d:
        yield d


def run(server, *args):
    """`mailfort dns ...` -> (rc, {status, secure, implicit}, error,
    [(pref or None, name, [addr, ...])])."""
    r = server.cli("dns", *args)
    assert "ERROR: AddressSanitizer" not in r.stderr, r.stderr
    assert "runtime error" not in r.stderr, r.stderr
    lines = r.stdout.splitlines()
    assert lines, r.stderr
    head = dict(kv.split("=", 1) for kv in lines[0].split())
    error, hosts = None, []
    for line in lines[1:]:
        kind, rest = line.split(" ", 1)
        if kind == "error":
            error = rest
        elif kind == "mx":
            pref, name, *addrs = rest.split()
            hosts.append((int(pref), name, addrs))
        else:
            assert kind == "host", line
            name, *addrs = rest.split()
            hosts.append((None, name, addrs))
    return r.returncode, head, error, hosts


@pytest.fixture
def mf(make_server, dns):
    return make_server(extra={"dns.resolver": dns.resolver,
                              "dns.trust_anchor": dns.trust_anchor},
                       start=False)


def test_mx_order_and_ties(mf):
    orders = set()
    for _ in range(20):
        rc, head, error, hosts = run(mf, "mx", "remote.test")
        assert rc == 0 and error is None
        assert head == {"status": "ok", "secure": "no", "implicit": "no"}
        assert hosts[0] == (10, "mx1.remote.test", ["127.0.0.2:25"])
        rest = sorted(hosts[1:])
        assert rest == [(20, "mx2.remote.test", ["[::1]:25", "127.0.0.3:25"]),
                        (20, "mx3.remote.test", ["127.0.0.4:25"])]
        orders.add(tuple(h[1] for h in hosts))
    # equal preferences are shuffled (RFC 5321 §5.1)
    assert len(orders) == 2


def test_mx_port(make_server, dns):
    s = make_server(extra={"dns.resolver": dns.resolver,
                           "dns.trust_anchor": dns.trust_anchor,
                           "outbound.mx_port": "2525"}, start=False)
    rc, head, _, hosts = run(s, "mx", "signed.test")
    assert rc == 0
    assert hosts == [(5, "mx.signed.test", ["127.0.0.6:2525"])]


def test_implicit_mx(mf):
    rc, head, _, hosts = run(mf, "mx", "aonly.remote.test")
    assert rc == 0 and head["implicit"] == "yes"
    assert hosts == [(0, "aonly.remote.test", ["127.0.0.5:25"])]
    rc, head, _, hosts = run(mf, "mx", "v6only.remote.test")
    assert rc == 0 and head["implicit"] == "yes"
    assert hosts == [(0, "v6only.remote.test", ["[::5]:25"])]
    # a CNAME to a host: still the domain's own addresses
    rc, head, _, hosts = run(mf, "mx", "Alias.Remote.Test.")
    assert rc == 0 and head["implicit"] == "yes"
    assert hosts == [(0, "alias.remote.test", ["[::1]:25", "127.0.0.3:25"])]


def test_null_mx(mf):
    rc, head, error, hosts = run(mf, "mx", "null.remote.test")
    assert rc == 1 and head["status"] == "null-mx" and hosts == []
    assert error == "domain does not accept mail (null MX, RFC 7505)"


def test_nxdomain(mf):
    rc, head, error, hosts = run(mf, "mx", "nope.remote.test")
    assert rc == 1 and head["status"] == "not-found" and hosts == []
    assert "NXDOMAIN" in error


def test_mx_host_without_address(mf):
    # the MX host that does not exist is dropped, the other one stays
    rc, head, _, hosts = run(mf, "mx", "half.remote.test")
    assert rc == 0
    assert hosts == [(20, "mx1.remote.test", ["127.0.0.2:25"])]
    rc, head, error, hosts = run(mf, "mx", "noaddr.remote.test")
    assert rc == 1 and head["status"] == "not-found" and hosts == []
    assert "gone.remote.test" in error or "no MX host address" in error


def test_dnssec_secure(mf):
    rc, head, _, hosts = run(mf, "mx", "signed.test")
    assert rc == 0 and head["secure"] == "yes"
    rc, head, _, hosts = run(mf, "host", "mx.signed.test")
    assert rc == 0 and head["secure"] == "yes"
    assert hosts == [(None, "mx.signed.test", ["127.0.0.6:25"])]


def test_dnssec_bogus_is_tempfail(mf):
    rc, head, error, hosts = run(mf, "mx", "bogus.test")
    assert rc == 1 and head["status"] == "tempfail" and hosts == []
    assert error.startswith("DNSSEC validation failed"), error
    assert "expired" in error
    rc, head, error, _ = run(mf, "host", "mx.bogus.test")
    assert rc == 1 and head["status"] == "tempfail"
    assert error.startswith("DNSSEC validation failed"), error


def test_address_literals(mf):
    rc, head, _, hosts = run(mf, "mx", "[127.0.0.9]")
    assert rc == 0 and hosts == [(0, "127.0.0.9", ["127.0.0.9:25"])]
    rc, head, _, hosts = run(mf, "mx", "[IPv6:::1]")
    assert rc == 0 and hosts == [(0, "::1", ["[::1]:25"])]
    rc, head, error, _ = run(mf, "mx", "[127.0.0.300]")
    assert rc == 1 and head["status"] == "not-found"
    rc, head, _, hosts = run(mf, "host", "127.0.0.8")
    assert rc == 0 and hosts == [(None, "127.0.0.8", ["127.0.0.8:25"])]


def test_host(mf):
    rc, head, _, hosts = run(mf, "host", "mx2.remote.test")
    assert rc == 0 and head["implicit"] == "no"
    assert hosts == [(None, "mx2.remote.test", ["[::1]:25", "127.0.0.3:25"])]
    rc, head, error, _ = run(mf, "host", "nope.remote.test")
    assert rc == 1 and head["status"] == "not-found"


def test_bad_names(mf):
    for name in ("bad_name.remote.test", "a..remote.test",
                 "-x.remote.test", "x" * 64 + ".test",
                 "b\u00fccher\u2024.test"):
        rc, head, error, hosts = run(mf, "mx", name)
        assert rc == 1 and head["status"] == "not-found", name
        assert error
    assert "internationalized" in run(mf, "mx", "b\u00fccher\u2024.test")[2]
    r = mf.cli("dns", "mx")
    assert r.returncode == 2 and "usage" in r.stderr


def test_ipv6_off(make_server, dns):
    s = make_server(extra={"dns.resolver": dns.resolver,
                           "dns.trust_anchor": dns.trust_anchor,
                           "outbound.ipv6": "no"}, start=False)
    rc, head, _, hosts = run(s, "host", "mx2.remote.test")
    assert rc == 0
    assert hosts == [(None, "mx2.remote.test", ["127.0.0.3:25"])]
    rc, head, error, hosts = run(s, "mx", "v6only.remote.test")
    assert rc == 1 and head["status"] == "not-found" and hosts == []
    rc, head, error, _ = run(s, "mx", "[IPv6:::1]")
    assert rc == 1 and head["status"] == "not-found"


def test_unreachable_resolver(make_server, dns):
    # nothing listens there: libunbound retries, then SERVFAIL
    s = make_server(extra={"dns.resolver": "127.0.0.1:%d" % free_port(),
                           "dns.trust_anchor": dns.trust_anchor},
                    start=False)
    t = time.time()
    rc, head, error, hosts = run(s, "mx", "remote.test")
    assert time.time() - t < 35
    assert rc == 1 and head["status"] == "tempfail" and hosts == []
    assert error


def test_bad_config(make_server, dns):
    s = make_server(extra={"dns.resolver": "localhost:53",
                           "dns.trust_anchor": dns.trust_anchor},
                    start=False)
    r = s.cli("dns", "mx", "remote.test")
    assert r.returncode == 1 and "resolver" in r.stderr


def test_internationalized_domain(mf):
    """A U-label domain (an SMTPUTF8 recipient's) is looked up by its
    A-label (libidn2, IDNA2008 + UTS #46), upper case mapped."""
    for name in ("bücher.test", "BÜCHER.test", "xn--bcher-kva.test"):
        rc, head, error, hosts = run(mf, "mx", name)
        assert rc == 0 and error is None, (name, error)
        assert hosts == [(5, "mx.xn--bcher-kva.test", ["127.0.0.8:25"])]
    rc, head, error, _ = run(mf, "mx", "b\u00fccher..test")
    assert rc == 1 and head["status"] == "not-found" and error
