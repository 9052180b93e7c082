"""SEARCH over decoded text: RFC 2047 encoded-words in header keys,
base64 and quoted-printable bodies in their charsets for BODY and TEXT
(mime_decode.c), with UTF-8 search strings sent as literals."""
import base64
import imaplib
import quopri

import pytest

from conftest import PASSWORDS, client_ctx, send

USER = "other@example.test"

# 1: encoded UTF-8 subject (B), plain ASCII body
M1 = ("From: a@example.org\r\n"
      "To: other@example.test\r\n"
      "Subject: =?UTF-8?B?" +
      base64.b64encode("Grüße aus Köln".encode()).decode() + "?=\r\n"
      "\r\n"
      "plain ascii body\r\n").encode()

# 2: Latin-1 Q subject, split over two folded words
M2 = (b"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\n"
      b"To: other@example.test\r\n"
      b"Subject: =?ISO-8859-1?Q?caf=E9_cr=E8me?=\r\n"
      b" =?ISO-8859-1?Q?_br=FBl=E9e?=\r\n"
      b"\r\n"
      b"nothing here\r\n")

# 3: base64 UTF-8 text body in a multipart
M3 = (b"From: b@example.org\r\n"
      b"Subject: base64 body\r\n"
      b"MIME-Version: 1.0\r\n"
      b"Content-Type: multipart/mixed; boundary=zz\r\n"
      b"\r\n"
      b"--zz\r\n"
      b"Content-Type: text/plain; charset=utf-8\r\n"
      b"Content-Transfer-Encoding: base64\r\n"
      b"\r\n" +
      base64.encodebytes("Der Bär schläft im Schnee.\r\n".encode())
      .replace(b"\n", b"\r\n") +
      b"--zz\r\n"
      b"Content-Type: application/octet-stream\r\n"
      b"Content-Transfer-Encoding: base64\r\n"
      b"\r\n" +
      base64.encodebytes(b"binaryneedle").replace(b"\n", b"\r\n") +
      b"--zz--\r\n")

# 4: quoted-printable Latin-1 body with a soft line break
M4 = (b"From: c@example.org\r\n"
      b"Subject: qp body\r\n"
      b"MIME-Version: 1.0\r\n"
      b"Content-Type: text/plain; charset=iso-8859-1\r\n"
      b"Content-Transfer-Encoding: quoted-printable\r\n"
      b"\r\n" +
      quopri.encodestring("Voilà une phrase très longue=".encode("latin-1"))
      .replace(b"\n", b"\r\n") + b"\r\n" +
      b"sp=\r\nlit word\r\n")


@pytest.fixture(scope="module")
def loaded(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    for n, m in enumerate((M1, M2, M3, M4), 1):
        send(s, s.smtp_port, "sender@example.org", [USER], m)
        assert len(s.wait_messages(USER, n)) >= n
    yield s
    check_log_clean(s.cleanup())


@pytest.fixture
def c(loaded, pki):
    c = imaplib.IMAP4_SSL("127.0.0.1", loaded.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(USER, PASSWORDS[USER])
    c.select("INBOX", readonly=True)
    yield c
    c.logout()


def search(c, key, text):
    """SEARCH CHARSET UTF-8 key {n} text, the string as a literal."""
    c.literal = text.encode("utf-8")
    typ, data = c.search("UTF-8", key)
    assert typ == "OK"
    return data[0].decode().split()


def test_subject_encoded_words(c):
    assert search(c, "SUBJECT", "grüße") == ["1"]
    assert search(c, "SUBJECT", "KÖLN") == ["1"]
    assert search(c, "SUBJECT", "crème brûlée") == ["2"]
    assert search(c, "FROM", "André") == ["2"]
    # the raw encoded form no longer matches
    assert search(c, "SUBJECT", "ISO-8859-1") == []


def test_body_decoded(c):
    assert search(c, "BODY", "Bär schläft") == ["3"]
    assert search(c, "BODY", "BÄR") == ["3"]
    assert search(c, "BODY", "très longue") == ["4"]
    assert search(c, "BODY", "split word") == ["4"]
    # non-text parts are not searched
    assert search(c, "BODY", "binaryneedle") == []
    # bodies, not headers
    assert search(c, "BODY", "grüße") == []


def test_text_decoded(c):
    assert search(c, "TEXT", "grüße") == ["1"]
    assert search(c, "TEXT", "brûlée") == ["2"]
    assert search(c, "TEXT", "schläft") == ["3"]
    assert search(c, "TEXT", "voilà") == ["4"]
    assert search(c, "TEXT", "nowhere") == []


def test_plain_ascii_still_works(c):
    typ, data = c.search(None, "BODY", '"plain ascii"')
    assert data[0].split() == [b"1"]
    typ, data = c.search(None, "SUBJECT", "qp")
    assert data[0].split() == [b"4"]
    typ, data = c.search(None, "TEXT", "c@example.org")
    assert data[0].split() == [b"4"]
    typ, data = c.search(None, "HEADER", "Content-Type", "iso-8859-1")
    assert data[0].split() == [b"4"]
    typ, data = c.search(None, "OR", "BODY", "nothing", "SUBJECT",
                         "base64")
    assert data[0].split() == [b"2", b"3"]
