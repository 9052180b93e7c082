"""IMAP SORT and THREAD (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO;
issue #4): every sort key with REVERSE and exact orders on messages
delivered over SMTP with chosen Date/Subject/From/To/Cc, THREAD
ORDEREDSUBJECT and REFERENCES on a small conversation with the expected
output derived by hand from RFC 5256 §3, the UID variants and bad
syntax.  Raw lines over TLS: imaplib has no SORT/THREAD parsing."""
import pytest

from test_imap_selected import Raw, deliver

USER = "user@example.test"
OTHER = "other@example.test"
ADMIN = "admin@example.org"


def msg(headers, body="x"):
    return "".join("%s: %s\r\n" % h for h in headers) + "\r\n" + body + \
        "\r\n"


# SORT set, in delivery order (sequence numbers 1..4 once the first,
# expunged message is gone; UIDs are one more).  UTC dates: 1 10:00,
# 2 04:30, 3 07:00 on 4 Mar 2024; 4 has no Date (its arrival, later).
SORT_MSGS = [
    msg([("From", '"Zed Zulu" <mallory@example.org>'),
         ("To", "bob@example.test"), ("Cc", "carol@example.test"),
         ("Subject", "Re: apple"),
         ("Date", "Mon, 4 Mar 2024 10:00:00 +0000")], "a" * 500),
    msg([("From", "bob@example.org"),
         ("To", '"Aaron" <zack@example.test>'),
         ("Subject", "banana"),
         ("Date", "Sun, 03 Mar 2024 23:30:00 -0500 (EST)")], "b" * 3000),
    msg([("From", "Carl <alice@example.org>"),
         ("To", "alice@example.test (Alice)"),
         ("Cc", "undisclosed-recipients:;"),
         ("Subject", "[list] Apple (fwd)"),
         ("Date", "04 Mar 2024 09:00 +0200")], "c" * 1500),
    msg([("From", "<dave@example.org>"),
         ("To", '"Bob B" <bob@example.test>'),
         ("Cc", "aaron@example.test"),
         ("Subject", "cherry")], "d"),
]


def thread_msg(mid, subject, date, refs=None, irt=None):
    h = [("From", "x@example.org"), ("To", ADMIN),
         ("Message-ID", mid), ("Subject", subject),
         ("Date", date)]
    if refs:
        h.append(("References", refs))
    if irt:
        h.append(("In-Reply-To", irt))
    return msg(h)


# A conversation (sequence numbers = UIDs = list index + 1):
# 1 <- 2 <- 3 and 1 <- 4 by References/In-Reply-To; 5 "Fwd: Lunch" and
# 6 "Lunch" only by subject; 7 and 8 share a parent that is not here; 9
# alone; 10 repeats 1's Message-ID (so counts as a message of its own).
THREAD_MSGS = [
    thread_msg("<a@x.test>", "Plan", "Fri, 1 Mar 2024 10:00:00 +0000"),
    thread_msg("<b@x.test>", "Re: Plan", "Fri, 1 Mar 2024 11:00:00 +0000",
               irt="<a@x.test>"),
    thread_msg("<c@x.test>", "Re: Plan", "Fri, 1 Mar 2024 12:00:00 +0000",
               refs="<a@x.test>\r\n <b@x.test>"),
    thread_msg("<d@x.test>", "RE: [team] Plan",
               "Fri, 1 Mar 2024 11:30:00 +0000", refs="<a@x.test>"),
    thread_msg("<e@x.test>", "Fwd: Lunch", "Sat, 2 Mar 2024 09:00:00 +0000"),
    thread_msg("<f@x.test>", "Lunch", "Sat, 2 Mar 2024 08:00:00 +0000"),
    thread_msg("<g@x.test>", "Re: Budget", "Fri, 1 Mar 2024 09:00:00 +0000",
               refs="<missing@x.test>"),
    thread_msg("<h@x.test>", "Re: Re: Budget",
               "Fri, 1 Mar 2024 09:30:00 +0000", refs="<missing@x.test>"),
    thread_msg("<i@x.test>", "Solo", "Sun, 3 Mar 2024 10:00:00 +0000"),
    thread_msg("<a@x.test>", "plan", "Mon, 4 Mar 2024 10:00:00 +0000"),
]


# Hostile references: 1 and 2 name each other, 3 itself, 4 has
# garbage and an id far too long; 5 a message without any header
# fields to speak of.
LOOP_MSGS = [
    thread_msg("<x@l.test>", "one", "Fri, 1 Mar 2024 10:00:00 +0000",
               refs="<y@l.test>"),
    thread_msg("<y@l.test>", "two", "Fri, 1 Mar 2024 09:00:00 +0000",
               refs="<x@l.test>"),
    thread_msg("<z@l.test>", "three", "Fri, 1 Mar 2024 08:00:00 +0000",
               refs="<z@l.test>"),
    thread_msg("no-brackets@l.test", "four", "garbage date",
               refs="<> <no-at> <%s@l.test> <y@l.test" % ("v" * 300)),
    "X-Nothing: here\r\n\r\nbody\r\n",
]


@pytest.fixture(scope="module")
def srv(pki):
    from conftest import Server, check_log_clean
    s = Server(pki, imap=True).start()
    # USER: a first message, expunged, so that UIDs differ from
    # sequence numbers
    deliver(s, USER, "Subject: gone\r\n\r\nx\r\n", 1)
    r = Raw(s, pki, USER)
    r.ok("SELECT INBOX")
    r.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r.ok("EXPUNGE")
    r.close()
    for i, m in enumerate(SORT_MSGS):
        deliver(s, USER, m, i + 1)
    for i, m in enumerate(THREAD_MSGS):
        deliver(s, ADMIN, m, i + 1)
    for i, m in enumerate(LOOP_MSGS):
        deliver(s, OTHER, m, i + 1)
    yield s
    check_log_clean(s.cleanup())


def answer(r, command, word):
    lines, tagged = r.ok(command)
    assert len(lines) == 1 and lines[0].startswith("* " + word), lines
    return lines[0][len("* " + word):].strip(), tagged


SORT_CASES = [
    ("ARRIVAL", "1 2 3 4"),
    ("REVERSE SIZE", "2 3 1 4"),
    ("SIZE", "4 1 3 2"),
    ("DATE", "2 3 1 4"),
    ("REVERSE DATE", "4 1 3 2"),
    # base subjects APPLE BANANA APPLE CHERRY; ties by sequence number
    ("SUBJECT", "1 3 2 4"),
    ("SUBJECT DATE", "3 1 2 4"),
    ("REVERSE SUBJECT", "4 2 1 3"),
    ("REVERSE SUBJECT REVERSE DATE", "4 2 1 3"),
    ("SUBJECT REVERSE DATE", "1 3 2 4"),
    # addr-mailbox: mallory bob alice dave
    ("FROM", "3 2 4 1"),
    ("REVERSE FROM", "1 4 2 3"),
    # display: ZED ZULU, BOB@EXAMPLE.ORG, CARL, DAVE@EXAMPLE.ORG
    ("DISPLAYFROM", "2 3 4 1"),
    # bob zack alice bob
    ("TO", "3 1 4 2"),
    # BOB@EXAMPLE.TEST AARON ALICE@EXAMPLE.TEST "BOB B" (SP < "@")
    ("DISPLAYTO", "2 3 4 1"),
    # carol "" "" aaron
    ("CC", "2 3 4 1"),
    ("CC SIZE", "3 2 4 1"),
]


@pytest.mark.parametrize("crit,order", SORT_CASES)
def test_sort_keys(srv, pki, crit, order):
    r = Raw(srv, pki, USER)
    r.ok("EXAMINE INBOX")
    got, tagged = answer(r, "SORT (%s) UTF-8 ALL" % crit, "SORT")
    assert got == order, crit
    assert tagged.endswith("OK SORT completed")
    r.close()


def test_sort_search_keys_and_uid(srv, pki):
    r = Raw(srv, pki, USER)
    r.ok("SELECT INBOX")
    assert answer(r, "SORT (DATE) US-ASCII NOT FROM bob", "SORT")[0] == \
        "3 1 4"
    assert answer(r, "SORT (SIZE) utf-8 OR SUBJECT apple 4", "SORT")[0] \
        == "4 1 3"
    assert answer(r, "SORT (DATE) UTF-8 2:3 (LARGER 1)", "SORT")[0] == \
        "2 3"
    assert answer(r, "SORT (DATE) UTF-8 SUBJECT nothing-here", "SORT")[0] \
        == ""
    got, tagged = answer(r, "UID SORT (REVERSE DATE) UTF-8 ALL", "SORT")
    assert got == "5 2 4 3"
    assert tagged.endswith("OK UID SORT completed")
    assert answer(r, "UID SORT (SIZE) UTF-8 UID 3:5", "SORT")[0] == "5 4 3"
    # RFC 7162 §3.1.5: a MODSEQ key adds the highest MODSEQ
    got, _ = answer(r, "SORT (ARRIVAL) UTF-8 MODSEQ 1", "SORT")
    assert got.startswith("1 2 3 4 (MODSEQ ") and got.endswith(")")
    r.close()


def test_sort_bad_syntax(srv, pki):
    r = Raw(srv, pki, USER)
    _, tagged = r.cmd("SORT (DATE) UTF-8 ALL")
    assert " BAD " in tagged         # not selected
    r.ok("EXAMINE INBOX")
    for bad in ("SORT", "SORT DATE UTF-8 ALL", "SORT () UTF-8 ALL",
                "SORT (FOO) UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL",
                "SORT (DATE REVERSE) UTF-8 ALL",
                "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                "SORT (DATE)", "SORT (DATE) UTF-8",
                "SORT (DATE) UTF-8 BOGUS", "UID SORT (DATE) (UTF-8) ALL"):
        _, tagged = r.cmd(bad)
        assert " BAD " in tagged, bad
    _, tagged = r.cmd("SORT (DATE) KOI8-R ALL")
    assert " NO [BADCHARSET (UTF-8 US-ASCII)]" in tagged
    # the session is fine after all that
    assert answer(r, "SORT (ARRIVAL) UTF-8 ALL", "SORT")[0] == "1 2 3 4"
    r.close()


def test_capabilities_list_sort_and_thread(srv, pki):
    r = Raw(srv, pki, USER)
    lines, _ = r.ok("CAPABILITY")
    caps = lines[0].split()
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES"):
        assert cap in caps, cap
    r.close()


# RFC 5256 §3 REFERENCES by hand: 1 <- 2 <- 3, 1 <- 4 (threaded by
# ids; 2 and 4 are siblings sorted by date); 7 and 8 under a dummy for
# <missing@x.test> (kept at the root: two children); 5 "Fwd: Lunch"
# becomes a child of 6 "Lunch" (step 5C iii: a reply under a
# non-reply); 10 has 1's Message-ID, so it gets an id of its own and
# meets 1's thread by subject: neither is a reply, so both go under a
# new dummy (5C iv).  Roots sorted by date, a dummy by its first child:
# dummy(7) 1 Mar 09:00, dummy(1) 10:00, 6 2 Mar, 9 3 Mar.
REFERENCES = "((7)(8))((1 (2 3)(4))(10))(6 5)(9)"
# ORDEREDSUBJECT: BUDGET 7 8; PLAN 1 2 4 3 10 (by date); LUNCH 6 5;
# SOLO 9; threads by the date of their first message.
ORDEREDSUBJECT = "(7 8)(1 (2)(4)(3)(10))(6 5)(9)"


def test_thread_references(srv, pki):
    r = Raw(srv, pki, ADMIN)
    r.ok("EXAMINE INBOX")
    got, tagged = answer(r, "THREAD REFERENCES UTF-8 ALL", "THREAD")
    assert got == REFERENCES
    assert tagged.endswith("OK THREAD completed")
    got, tagged = answer(r, "UID THREAD REFERENCES US-ASCII ALL", "THREAD")
    assert got == REFERENCES
    assert tagged.endswith("OK UID THREAD completed")
    # without 1: its id stays as a dummy parent of 2 and 4, kept at the
    # root for its two children (step 4)
    got, _ = answer(r, "THREAD REFERENCES UTF-8 2:4", "THREAD")
    assert got == "((2 3)(4))"
    got, _ = answer(r, "THREAD REFERENCES UTF-8 SUBJECT nothing-here",
                    "THREAD")
    assert got == ""
    r.close()


def test_thread_orderedsubject(srv, pki):
    r = Raw(srv, pki, ADMIN)
    r.ok("EXAMINE INBOX")
    got, _ = answer(r, "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD")
    assert got == ORDEREDSUBJECT
    got, _ = answer(r, "THREAD ORDEREDSUBJECT UTF-8 1:6", "THREAD")
    assert got == "(1 (2)(4)(3))(6 5)"
    r.close()
    # UIDs one above the sequence numbers: APPLE 2 4, BANANA 3, CHERRY 5
    r = Raw(srv, pki, USER)
    r.ok("EXAMINE INBOX")
    got, _ = answer(r, "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD")
    assert got == "(2)(3 1)(4)"
    got, tagged = answer(r, "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
                         "THREAD")
    assert got == "(3)(4 2)(5)"
    r.close()


def test_thread_bad_syntax(srv, pki):
    r = Raw(srv, pki, ADMIN)
    r.ok("EXAMINE INBOX")
    for bad in ("THREAD", "THREAD REFERENCES", "THREAD REFERENCES UTF-8",
                "THREAD FOO UTF-8 ALL", "THREAD (REFERENCES) UTF-8 ALL",
                "UID THREAD ORDEREDSUBJECT UTF-8 BOGUS"):
        _, tagged = r.cmd(bad)
        assert " BAD " in tagged, bad
    _, tagged = r.cmd("THREAD REFERENCES ISO-2022-JP ALL")
    assert " NO [BADCHARSET" in tagged
    r.close()


def test_thread_hostile_references(srv, pki):
    r = Raw(srv, pki, OTHER)
    r.ok("EXAMINE INBOX")
    # 2 has no parent (1 under 2 would close a loop with 2 under 1), 1
    # is under 2; 3 is not its own parent; 4 and 5 have no references
    # and, without a usable Date, their arrival (later) as sent date
    got, _ = answer(r, "THREAD REFERENCES UTF-8 ALL", "THREAD")
    assert got == "(3)(2 1)(4)(5)"
    got, _ = answer(r, "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD")
    assert got == "(3)(2)(1)(4)(5)"
    got, _ = answer(r, "SORT (DATE) UTF-8 ALL", "SORT")
    assert got == "3 2 1 4 5"
    got, _ = answer(r, "SORT (SUBJECT) UTF-8 ALL", "SORT")
    assert got == "5 4 1 3 2"
    r.close()


def test_thread_deep_chain(srv, pki):
    """A conversation 100 deep (References naming the last 10): one
    chain, written without recursion on the server."""
    from test_imap_selected import login
    n = 100
    c = login(srv, pki, OTHER)
    c.create("Deep")
    for i in range(1, n + 1):
        refs = " ".join("<m%d@deep.test>" % k
                        for k in range(max(1, i - 10), i))
        m = thread_msg("<m%d@deep.test>" % i, "Re: deep" if i > 1
                       else "deep", "Fri, 1 Mar 2024 %02d:%02d:00 +0000"
                       % (i // 60, i % 60), refs=refs or None)
        typ, _ = c.append("Deep", None, None, m.encode())
        assert typ == "OK"
    c.logout()
    r = Raw(srv, pki, OTHER)
    r.ok("EXAMINE Deep")
    got, _ = answer(r, "THREAD REFERENCES UTF-8 ALL", "THREAD")
    assert got == "(%s)" % " ".join(str(i) for i in range(1, n + 1))
    got, _ = answer(r, "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD")
    assert got == "(1 %s)" % "".join("(%d)" % i for i in range(2, n + 1))
    got, _ = answer(r, "SORT (REVERSE DATE) UTF-8 ALL", "SORT")
    assert got == " ".join(str(i) for i in range(n, 0, -1))
    r.close()


def test_sort_and_thread_decode_encoded_subjects(make_server, pki):
    """RFC 5256 §2.1 step 1: encoded-words are decoded before the base
    subject is taken, so "=?UTF-8?B?...?=" sorts by its text and threads
    with the same subject sent unencoded."""
    import imaplib
    import smtplib
    from conftest import PASSWORDS, client_ctx
    s = make_server(imap=True)
    msgs = [("=?UTF-8?B?Wm9ldHJvcGU=?=", "1"),       # "Zoetrope"
            ("Apple", "2"),
            ("=?ISO-8859-1?Q?Re=3A_Zoetrope?=", "3")]  # "Re: Zoetrope"
    c = smtplib.SMTP("127.0.0.1", s.smtp_port)
    for subj, n in msgs:
        c.sendmail("a@remote.example", ["user@example.test"],
                   ("Subject: %s\r\nMessage-ID: <m%s@x>\r\n"
                    "Date: Mon, 30 Nov 2026 08:0%s:00 +0000\r\n\r\nb\r\n"
                    % (subj, n, n)).encode())
    c.quit()
    assert len(s.wait_messages("user@example.test", 3)) == 3
    m = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    m.login("user@example.test", PASSWORDS["user@example.test"])
    m.select("INBOX")
    typ, data = m.sort("(SUBJECT)", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"2 1 3", data
    typ, data = m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    # threads ordered by the date of their first message (§2.1)
    assert typ == "OK" and data[0] == b"(1 3)(2)", data
    m.logout()
