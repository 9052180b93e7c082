"""IMAP4rev2 (RFC 9051) next to IMAP4rev1 (issue #4): both advertised,
IMAP4rev1 behaviour by default, ENABLE IMAP4rev2 switching to what RFC
9051 Appendix E changes (no RECENT, ESEARCH answers, STATUS without
RECENT, UTF-8 mailbox names), ENABLE UTF8=ACCEPT (RFC 6855) for UTF-8
names alone, and [CLOSED] on a second SELECT.  Raw lines over TLS."""
import socket

import pytest

from test_imap_selected import Raw, deliver

USER = "user@example.test"
OTHER = "other@example.test"

# modified UTF-7 (RFC 3501 §5.1.3) of the UTF-8 names used below
GRUSSE, GRUSSE_M7 = "Grüße", "Gr&APwA3w-e"
MENU, MENU_M7 = "Café/Menü", "Caf&AOk-/Men&APw-"


@pytest.fixture(scope="module")
def srv(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    deliver(s, OTHER, "Subject: one\r\n\r\nx\r\n", 1)
    deliver(s, OTHER, "Subject: two\r\n\r\ny\r\n", 2)
    yield s
    check_log_clean(s.cleanup())


def test_both_versions_advertised(srv, pki):
    # 143 before STARTTLS
    sock = socket.create_connection(("127.0.0.1", srv.imap_port),
                                    timeout=10)
    f = sock.makefile("rb")
    greeting = f.readline().decode()
    assert "IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED" in greeting
    sock.close()
    r = Raw(srv, pki, None)
    lines, _ = r.ok("CAPABILITY")
    caps = lines[0].split()
    assert "IMAP4rev1" in caps and "IMAP4rev2" in caps
    assert "UTF8=ACCEPT" not in caps        # only once logged in
    r.ok("LOGIN %s %s" % (OTHER, "secret-other"))
    lines, _ = r.ok("CAPABILITY")
    caps = lines[0].split()
    for cap in ("IMAP4rev1", "IMAP4rev2", "UTF8=ACCEPT", "ENABLE",
                "ESEARCH", "LIST-STATUS", "STATUS=SIZE"):
        assert cap in caps, cap
    r.close()


def test_rev1_by_default(srv, pki):
    r = Raw(srv, pki, OTHER)
    lines, _ = r.ok("SELECT INBOX")
    assert "* 0 RECENT" in lines
    assert not any(l.startswith("* LIST") for l in lines)
    lines, _ = r.ok("SEARCH ALL")
    assert lines == ["* SEARCH 1 2"]
    lines, _ = r.ok("STATUS INBOX (MESSAGES RECENT)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 2 RECENT 0)']
    r.close()


def test_enable_rev2(srv, pki):
    r = Raw(srv, pki, OTHER)
    lines, _ = r.ok("ENABLE IMAP4rev2")
    assert lines == ["* ENABLED IMAP4rev2"]
    # RFC 5161 §3.1: only what this command newly enabled
    lines, _ = r.ok("ENABLE IMAP4rev2 UTF8=ACCEPT X-UNKNOWN")
    assert lines == ["* ENABLED"]
    lines, tagged = r.ok("SELECT INBOX")
    assert not any("RECENT" in l for l in lines), lines
    assert '* LIST () "/" "INBOX"' in lines
    assert "* 2 EXISTS" in lines
    assert tagged.endswith("OK [READ-WRITE] SELECT completed")
    # RFC 9051 §7.3.4: SEARCH answers ESEARCH, also without RETURN
    lines, _ = r.ok("SEARCH ALL")
    assert lines == ['* ESEARCH (TAG "t%d") ALL 1:2' % r.n]
    lines, _ = r.ok("UID SEARCH SUBJECT two")
    assert lines == ['* ESEARCH (TAG "t%d") UID ALL 2' % r.n]
    lines, _ = r.ok("SEARCH SUBJECT nothing-like-this")
    assert lines == ['* ESEARCH (TAG "t%d")' % r.n]
    # RFC 9051 §6.3.11: no RECENT status item
    _, tagged = r.cmd("STATUS INBOX (RECENT)")
    assert " BAD " in tagged
    lines, _ = r.ok("STATUS INBOX (MESSAGES UNSEEN DELETED)")
    assert lines == ['* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 DELETED 0)']
    # RFC 9051 §6.3.2: the previous mailbox closes with [CLOSED]
    lines, _ = r.ok("EXAMINE INBOX")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed"
    assert not any("RECENT" in l for l in lines)
    # ENABLE is for the authenticated state only (RFC 9051 §6.3.1)
    _, tagged = r.cmd("ENABLE IMAP4rev2")
    assert " BAD " in tagged
    r.close()


def test_enable_syntax(srv, pki):
    r = Raw(srv, pki, OTHER)
    _, tagged = r.cmd("ENABLE")
    assert " BAD " in tagged
    r.close()
    r = Raw(srv, pki, None)
    _, tagged = r.cmd("ENABLE IMAP4rev2")
    assert " BAD " in tagged                # not authenticated
    r.close()


def list_names(r, pattern):
    lines, _ = r.ok('LIST "" "%s"' % pattern)
    return sorted(l.split(' "/" ', 1)[1] for l in lines)


def test_mailbox_names_utf8_vs_mutf7(srv, pki):
    rev1 = Raw(srv, pki, USER)
    rev1.ok('CREATE "%s"' % GRUSSE_M7)
    assert list_names(rev1, "Gr*") == ['"%s"' % GRUSSE_M7]
    # 8-bit is not a mailbox name for an IMAP4rev1 client
    _, tagged = rev1.cmd('CREATE "%s"' % MENU)
    assert " OK " not in tagged

    rev2 = Raw(srv, pki, USER)
    rev2.ok("ENABLE IMAP4rev2")
    assert list_names(rev2, "Gr*") == ['"%s"' % GRUSSE]
    rev2.ok('CREATE "%s"' % MENU)
    assert list_names(rev2, "Caf*") == ['"Café"', '"%s"' % MENU]
    lines, _ = rev2.ok('SELECT "%s"' % GRUSSE)
    assert '* LIST () "/" "%s"' % GRUSSE in lines
    lines, _ = rev2.ok('STATUS "%s" (MESSAGES)' % MENU)
    assert lines == ['* STATUS "%s" (MESSAGES 0)' % MENU]
    # the modified UTF-7 form is just a name of ASCII characters here
    _, tagged = rev2.cmd('STATUS "%s" (MESSAGES)' % GRUSSE_M7)
    assert " NO " in tagged
    rev2.close()

    # UTF8=ACCEPT alone: UTF-8 names, IMAP4rev1 otherwise
    u8 = Raw(srv, pki, USER)
    lines, _ = u8.ok("ENABLE UTF8=ACCEPT")
    assert lines == ["* ENABLED UTF8=ACCEPT"]
    assert list_names(u8, "Caf*/*") == ['"%s"' % MENU]
    lines, _ = u8.ok('STATUS "%s" (MESSAGES RECENT)' % GRUSSE)
    assert lines == ['* STATUS "%s" (MESSAGES 0 RECENT 0)' % GRUSSE]
    lines, _ = u8.ok("SELECT INBOX")
    assert "* 0 RECENT" in lines
    u8.close()

    # and the IMAP4rev1 client sees what the others made in mUTF-7
    assert list_names(rev1, "Caf*/*") == ['"%s"' % MENU_M7]
    lines, _ = rev1.ok('LIST "" "*" RETURN (STATUS (MESSAGES))')
    assert '* STATUS "%s" (MESSAGES 0)' % MENU_M7 in lines
    rev1.ok('DELETE "%s"' % MENU_M7)
    rev1.close()
