"""IMAP issue #4: ENVELOPE, BODYSTRUCTURE and the MIME part tree are
computed once when a message enters the store (SMTP delivery, APPEND) and
cached in its row; FETCH answers section fetches from byte ranges of the
stored file with the cached tree, and rows of older stores (cache NULL)
still get the same bytes, the cache filled on first use."""
import os
import sqlite3

import pytest

from test_imap_selected import ALT, NESTED, OTHER, Raw, deliver, login

SECTIONS = ("BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)] "
            "BODY.PEEK[HEADER.FIELDS.NOT (Received Content-Type)] "
            "BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1.1] "
            "BODY.PEEK[1.2.MIME] BODY.PEEK[2] BINARY.PEEK[1.1] "
            "BINARY.SIZE[2] BODY.PEEK[1]<5.10> BODY.PEEK[9]")


def db(srv, sql, args=(), write=False):
    path = os.path.join(srv.store_dir(OTHER), "index.db")
    con = sqlite3.connect(path if write else "file:%s?mode=ro" % path,
                          uri=not write, timeout=10)
    try:
        rows = con.execute(sql, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def cache_of(srv, uid):
    return db(srv, "SELECT envelope, bodystructure, mime_tree FROM"
              " messages m JOIN mailboxes b ON b.id = m.mailbox_id"
              " WHERE b.name = 'INBOX' AND m.uid = ?", (uid,))[0]


@pytest.fixture(scope="module")
def srv(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    deliver(s, OTHER, ALT, 1)
    deliver(s, OTHER, NESTED, 2)
    yield s
    check_log_clean(s.cleanup())


def fetch_sections(srv, pki, uid):
    r = Raw(srv, pki)
    r.ok("EXAMINE INBOX")
    lines, _ = r.ok("UID FETCH %d (%s)" % (uid, SECTIONS))
    r.close()
    assert len(lines) == 1, lines
    return lines[0]


def test_delivery_fills_cache(srv, pki):
    for uid in (1, 2):
        env, bs, tree = cache_of(srv, uid)
        assert env and env.startswith("(")
        assert bs and bs.startswith("(")
        assert tree
    # what FETCH answers is exactly what the delivery cached
    r = Raw(srv, pki)
    r.ok("EXAMINE INBOX")
    lines, _ = r.ok("FETCH 1 (ENVELOPE BODYSTRUCTURE)")
    env, bs, _ = cache_of(srv, 1)
    assert lines[0] == "* 1 FETCH (ENVELOPE %s BODYSTRUCTURE %s)" % (env,
                                                                    bs)
    r.close()


def test_sections_same_bytes_from_cache_and_parse(srv, pki):
    c = login(srv, pki)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    whole = data[0][1]
    c.logout()
    hdr_end = whole.index(b"\r\n\r\n") + 4
    cached = fetch_sections(srv, pki, 1)
    fields = ("From: Alice Example <alice@example.org>\r\n"
              "Subject: Quarterly report\r\n"
              "Date: Tue, 05 Mar 2024 10:20:30 +0100\r\n\r\n")
    assert "BODY[HEADER.FIELDS (FROM SUBJECT DATE)] {%d}\r\n%s" % (
        len(fields), fields) in cached
    assert "BODY[HEADER] {%d}\r\n%s" % (
        hdr_end, whole[:hdr_end].decode()) in cached
    assert "BODY[TEXT] {%d}\r\n" % (len(whole) - hdr_end) in cached
    assert "BINARY[1.1] {34}\r\nHello Bob, caf" in cached
    assert 'BODY[9] ""' in cached
    # an old row: no cache columns, as schema 2 left them
    db(srv, "UPDATE messages SET envelope = NULL, bodystructure = NULL,"
       " mime_tree = NULL WHERE uid = 1", write=True)
    assert cache_of(srv, 1) == (None, None, None)
    assert fetch_sections(srv, pki, 1) == cached
    # the parse filled the cache again, the same as delivery had
    env, bs, tree = cache_of(srv, 1)
    assert env and bs and tree
    assert fetch_sections(srv, pki, 1) == cached


def test_nested_sections_from_cache(srv, pki):
    c = login(srv, pki)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("2", "(BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] "
                        "BODY.PEEK[2.1] BODY.PEEK[1])")
    parts = [x for x in data if isinstance(x, tuple)]
    assert parts[0][1] == (b"From: orig@example.net\r\nSubject: hello"
                           b"\r\n\r\n")
    assert parts[1][1] == b"inner body"
    assert parts[2][1] == b"inner body"
    assert parts[3][1] == b"see below"
    c.logout()


def test_append_fills_cache(srv, pki):
    c = login(srv, pki)
    typ, _ = c.append("INBOX", None, None, NESTED.encode())
    assert typ == "OK"
    c.logout()
    uid = db(srv, "SELECT max(uid) FROM messages")[0][0]
    env, bs, tree = cache_of(srv, uid)
    assert '"Fwd: hello"' in env
    assert bs.startswith("((")
    assert tree
