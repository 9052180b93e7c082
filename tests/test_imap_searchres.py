"""IMAP4rev2 pieces (RFC 9051 §6.4.4.1): SEARCHRES (RFC 5182) - SEARCH
RETURN (SAVE), "$" in every sequence set, its reset and shrinking; the
APPEND UTF8 data item (RFC 6855 §4); IMAP4rev1's [UNSEEN n] on SELECT
(RFC 3501 §6.3.1).  Raw lines over TLS."""
import re

import pytest

from test_imap_selected import Raw, deliver

USER = "other@example.test"
SUBJECTS = ["alpha", "beta", "gamma", "beta", "delta"]


@pytest.fixture(scope="module")
def srv(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    for i, subj in enumerate(SUBJECTS):
        deliver(s, USER, "Subject: %s\r\n\r\nbody %d\r\n" % (subj, i),
                i + 1)
    yield s
    check_log_clean(s.cleanup())


def uids_of(lines):
    """{seq: uid} of FETCH (UID n) lines."""
    out = {}
    for l in lines:
        m = re.match(r"\* (\d+) FETCH \(UID (\d+)\)", l)
        assert m, l
        out[int(m.group(1))] = int(m.group(2))
    return out


def test_capability(srv, pki):
    r = Raw(srv, pki, USER)
    lines, _ = r.ok("CAPABILITY")
    assert "SEARCHRES" in lines[0].split()
    r.close()


def test_dollar_empty_before_save(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("EXAMINE INBOX")
    lines, _ = r.ok("FETCH $ UID")
    assert lines == []
    lines, _ = r.ok("UID FETCH $ UID")
    assert lines == []
    lines, _ = r.ok("SEARCH $")
    assert lines == ["* SEARCH"]
    lines, _ = r.ok("UID SEARCH UID $")
    assert lines == ["* SEARCH"]
    r.close()


def test_save_alone_and_use(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("EXAMINE INBOX")
    # RFC 5182 §2.1: SAVE alone returns no ESEARCH
    lines, tagged = r.ok("SEARCH RETURN (SAVE) SUBJECT beta")
    assert lines == []
    assert tagged.endswith("OK SEARCH completed, result saved")
    lines, _ = r.ok("FETCH $ UID")
    assert sorted(uids_of(lines)) == [2, 4]
    lines, _ = r.ok("UID FETCH $ UID")
    assert sorted(uids_of(lines)) == [2, 4]
    lines, _ = r.ok("SEARCH $")
    assert lines == ["* SEARCH 2 4"]
    lines, _ = r.ok("UID SEARCH UID $")
    assert lines == ["* SEARCH 2 4"]
    lines, _ = r.ok("SEARCH 1,$")
    assert lines == ["* SEARCH 1 2 4"]
    # RFC 5182 §2.4: "$" in the SEARCH that saves is the old result
    lines, _ = r.ok("SEARCH RETURN (SAVE ALL) OR $ SUBJECT delta")
    assert lines == ['* ESEARCH (TAG "t%d") ALL 2,4:5' % r.n]
    lines, _ = r.ok("SEARCH $")
    assert lines == ["* SEARCH 2 4 5"]
    lines, _ = r.ok("SORT (SUBJECT) UTF-8 $")
    assert lines == ["* SORT 2 4 5"]
    r.close()


def test_save_with_min_max_count(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("EXAMINE INBOX")
    # RFC 5182 §2.1: MIN and/or MAX alone save only what they name
    lines, _ = r.ok("SEARCH RETURN (MIN SAVE) SUBJECT beta")
    assert lines == ['* ESEARCH (TAG "t%d") MIN 2' % r.n]
    assert r.ok("SEARCH $")[0] == ["* SEARCH 2"]
    lines, _ = r.ok("SEARCH RETURN (SAVE MAX) NOT SUBJECT beta")
    assert lines == ['* ESEARCH (TAG "t%d") MAX 5' % r.n]
    assert r.ok("SEARCH $")[0] == ["* SEARCH 5"]
    r.ok("SEARCH RETURN (MIN MAX SAVE) ALL")
    assert r.ok("SEARCH $")[0] == ["* SEARCH 1 5"]
    lines, _ = r.ok("SEARCH RETURN (MIN SAVE COUNT) SUBJECT ta")
    assert lines == ['* ESEARCH (TAG "t%d") MIN 2 COUNT 3' % r.n]
    assert r.ok("SEARCH $")[0] == ["* SEARCH 2 4 5"]
    # UID SEARCH saves too; "$" is the same messages in both forms
    lines, _ = r.ok("UID SEARCH RETURN (SAVE ALL) SUBJECT gamma")
    assert lines == ['* ESEARCH (TAG "t%d") UID ALL 3' % r.n]
    assert r.ok("SEARCH $")[0] == ["* SEARCH 3"]
    r.close()


def test_failed_search_empties(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("EXAMINE INBOX")
    r.ok("SEARCH RETURN (SAVE) ALL")
    assert r.ok("SEARCH $")[0] == ["* SEARCH 1 2 3 4 5"]
    _, tagged = r.cmd("SEARCH RETURN (SAVE) NOSUCHKEY")
    assert " BAD " in tagged
    assert r.ok("SEARCH $")[0] == ["* SEARCH"]
    r.ok("SEARCH RETURN (SAVE) ALL")
    _, tagged = r.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert " NO [BADCHARSET" in tagged
    assert r.ok("FETCH $ UID")[0] == []
    # a failed SEARCH without SAVE leaves "$" alone
    r.ok("SEARCH RETURN (SAVE) ALL")
    _, tagged = r.cmd("SEARCH NOSUCHKEY")
    assert " BAD " in tagged
    assert r.ok("SEARCH $")[0] == ["* SEARCH 1 2 3 4 5"]
    r.close()


def test_reset_on_select_close_unselect(srv, pki):
    r = Raw(srv, pki, USER)
    for again in ("SELECT INBOX", "EXAMINE INBOX"):
        r.ok("EXAMINE INBOX")
        r.ok("SEARCH RETURN (SAVE) ALL")
        r.ok(again)
        assert r.ok("FETCH $ UID")[0] == []
    for leave in ("UNSELECT", "CLOSE"):
        r.ok("EXAMINE INBOX")
        r.ok("SEARCH RETURN (SAVE) ALL")
        r.ok(leave)
        r.ok("EXAMINE INBOX")
        assert r.ok("FETCH $ UID")[0] == []
    r.close()


def test_store_copy_move_expunge_shrink(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("CREATE sr1")
    r.ok("CREATE sr2")
    r.ok("SELECT INBOX")
    r.ok("UID SEARCH RETURN (SAVE) SUBJECT beta")
    lines, _ = r.ok("STORE $ +FLAGS.SILENT (\\Flagged)")
    lines, _ = r.ok("SEARCH FLAGGED")
    assert lines == ["* SEARCH 2 4"]
    _, tagged = r.ok("COPY $ sr1")
    assert "[COPYUID " in tagged
    lines, _ = r.ok("STATUS sr1 (MESSAGES)")
    assert lines == ['* STATUS "sr1" (MESSAGES 2)']
    r.ok("UID COPY $ sr2")
    r.ok("SELECT sr2")
    assert r.ok("SEARCH ALL")[0] == ["* SEARCH 1 2"]
    # saved as UIDs: expunging a saved message shrinks "$", expunging
    # another renumbers it
    r.ok("SEARCH RETURN (SAVE) ALL")
    r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines, _ = r.ok("EXPUNGE")
    assert lines == ["* 1 EXPUNGE"]
    lines, _ = r.ok("FETCH $ UID")
    assert list(uids_of(lines)) == [1]
    # UID EXPUNGE $ and MOVE $
    r.ok("STORE $ +FLAGS.SILENT (\\Deleted)")
    lines, _ = r.ok("UID EXPUNGE $")
    assert lines == ["* 1 EXPUNGE"]
    r.ok("SELECT sr1")
    r.ok("SEARCH RETURN (SAVE) ALL")
    _, tagged = r.ok("MOVE $ sr2")
    lines, _ = r.ok("STATUS sr2 (MESSAGES)")
    assert lines == ['* STATUS "sr2" (MESSAGES 2)']
    assert r.ok("FETCH $ UID")[0] == []
    r.ok("SELECT INBOX")
    r.ok("STORE 1:* -FLAGS.SILENT (\\Flagged)")
    r.close()


# ---- [UNSEEN n] ----

def test_select_unseen_rev1_only(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("SELECT INBOX")
    r.ok("STORE 1:* -FLAGS.SILENT (\\Seen)")
    r.ok("STORE 1:2 +FLAGS.SILENT (\\Seen)")
    lines, _ = r.ok("SELECT INBOX")
    assert "* OK [UNSEEN 3] First unseen" in lines
    r.ok("STORE 1:* +FLAGS.SILENT (\\Seen)")
    lines, _ = r.ok("EXAMINE INBOX")
    assert not any("[UNSEEN" in l for l in lines), lines
    r.ok("SELECT INBOX")
    r.ok("STORE 1:* -FLAGS.SILENT (\\Seen)")
    r.close()
    r = Raw(srv, pki, USER)
    r.ok("ENABLE IMAP4rev2")
    lines, _ = r.ok("SELECT INBOX")
    assert not any("[UNSEEN" in l for l in lines), lines
    r.close()


# ---- APPEND UTF8 (RFC 6855 §4) ----

UTF8_MSG = ("Subject: Grüße aus Köln\r\nFrom: jörg@example.test\r\n\r\n"
            "Hallo\r\n").encode("utf-8")


def append_raw(r, line, data, tail=b""):
    """Sends an APPEND of one literal; returns the tagged reply."""
    r.n += 1
    tag = b"t%d" % r.n
    r.sock.sendall(tag + b" " + line + data + tail + b"\r\n")
    while True:
        l = r.f.readline()
        assert l, "connection closed"
        if l.startswith(tag + b" "):
            return l.decode("utf-8", "replace").rstrip("\r\n")


def test_append_utf8(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("CREATE u8")
    n = len(UTF8_MSG)
    # before ENABLE: BAD
    tagged = append_raw(r, b"APPEND u8 UTF8 (~{%d+}\r\n" % n, UTF8_MSG,
                        b")")
    assert " BAD " in tagged, tagged
    # bare literal8: [UNKNOWN-CTE] (also once enabled, below)
    tagged = append_raw(r, b"APPEND u8 ~{%d+}\r\n" % n, UTF8_MSG)
    assert " NO [UNKNOWN-CTE]" in tagged, tagged
    r.ok("ENABLE UTF8=ACCEPT")
    tagged = append_raw(r, b"APPEND u8 ~{%d+}\r\n" % n, UTF8_MSG)
    assert " NO [UNKNOWN-CTE]" in tagged, tagged
    tagged = append_raw(r, b"APPEND u8 (\\Seen) UTF8 (~{%d+}\r\n" % n,
                        UTF8_MSG, b")")
    assert " OK [APPENDUID " in tagged, tagged
    # MULTIAPPEND: a plain literal next to a UTF8 one
    tagged = append_raw(r, b"APPEND u8 {%d+}\r\n" % n, UTF8_MSG,
                        b" UTF8 (~{%d+}\r\n" % n + UTF8_MSG + b")")
    assert re.search(r" OK \[APPENDUID \d+ 2:3\]", tagged), tagged
    # NUL stays out of the store as with a plain literal
    bad = UTF8_MSG.replace(b"Hallo", b"Ha\0lo")
    tagged = append_raw(r, b"APPEND u8 UTF8 (~{%d+}\r\n" % n, bad, b")")
    assert " NO [CANNOT] NUL in message" in tagged, tagged
    # a UTF8 item must hold one literal8
    tagged = append_raw(r, b"APPEND u8 UTF8 ({%d+}\r\n" % n, UTF8_MSG,
                        b")")
    assert " BAD " in tagged, tagged
    r.ok("EXAMINE u8")
    lines, _ = r.ok("SEARCH ALL")
    assert lines == ["* SEARCH 1 2 3"]
    r.sock.sendall(b"f FETCH 1 (FLAGS BODY.PEEK[])\r\n")
    data = b""
    while not data.endswith(b"f OK FETCH completed\r\n") and \
            b"\r\nf " not in data:
        chunk = r.f.readline()
        assert chunk
        data += chunk
    assert UTF8_MSG in data
    assert b"\\Seen" in data
    r.close()
