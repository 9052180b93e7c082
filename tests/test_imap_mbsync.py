"""A real IMAP client nobody here wrote: mbsync (isync, Debian) syncing
a mailbox both ways over implicit TLS - server to Maildir, new local mail
and flag changes back (APPEND, STORE), and deletions (EXPUNGE)."""
import imaplib
import os
import smtplib
import subprocess
import time

from conftest import PASSWORDS, client_ctx

USER = "user@example.test"


def mbsync_rc(s, pki, maildir, state):
    rc = os.path.join(s.dir, "mbsyncrc")
    with open(rc, "w") as f:
        f.write("""IMAPAccount mf
Host localhost
Port %d
User %s
Pass %s
SSLType IMAPS
SSLVersions TLSv1.2 TLSv1.3
CertificateFile %s

IMAPStore remote
Account mf

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState %s/
""" % (s.imaps_port, USER, PASSWORDS[USER], pki["ca"], maildir, maildir,
            state))
    return rc


def run_mbsync(rc):
    p = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def local_files(maildir):
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(maildir, "INBOX", sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                out[name] = os.path.join(d, name)
    return out


def server_view(s, pki):
    c = imaplib.IMAP4_SSL("127.0.0.1", s.imaps_port,
                          ssl_context=client_ctx(pki))
    c.login(USER, PASSWORDS[USER])
    c.select("INBOX")
    typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    msgs = []
    for item in data:
        if isinstance(item, tuple):
            msgs.append((item[0].decode(), item[1].decode()))
    c.logout()
    return msgs


def test_mbsync_two_way(make_server, pki):
    s = make_server(imap=True)
    for i in range(2):
        c = smtplib.SMTP("127.0.0.1", s.smtp_port)
        c.sendmail("a@remote.example", [USER],
                   ("Subject: server %d\r\n\r\nbody %d\r\n" % (i, i))
                   .encode())
        c.quit()
    assert len(s.wait_messages(USER, 2)) == 2
    maildir = os.path.join(s.dir, "Mail")
    state = os.path.join(s.dir, "state")
    os.makedirs(state)
    os.makedirs(maildir)
    rc = mbsync_rc(s, pki, maildir, state)
    run_mbsync(rc)
    files = local_files(maildir)
    assert len(files) == 2
    bodies = sorted(open(p, "rb").read() for p in files.values())
    assert b"Subject: server 0" in bodies[0]
    assert b"Subject: server 1" in bodies[1]

    # a new local message goes up; a local flag change goes up
    new = os.path.join(maildir, "INBOX", "new",
                       "%d.local.mf:2," % int(time.time()))
    with open(new, "wb") as f:
        f.write(b"From: me@example.test\r\nSubject: local 1\r\n\r\n"
                b"written locally\r\n")
    name, path = sorted(local_files(maildir).items())[0]
    base = name.split(":2,")[0]
    os.rename(path, os.path.join(maildir, "INBOX", "cur",
                                 base + ":2,FS"))
    run_mbsync(rc)
    view = server_view(s, pki)
    assert len(view) == 3, view
    subjects = "".join(v[1] for v in view)
    assert "local 1" in subjects
    flagged = [v for v in view if "\\Flagged" in v[0] and "\\Seen" in v[0]]
    assert len(flagged) == 1, view

    # a local deletion is expunged on the server
    name, path = [(n, p) for n, p in local_files(maildir).items()
                  if "local" not in open(p, "rb").read().decode()][0]
    base, flags = name.split(":2,")
    os.rename(path, os.path.join(maildir, "INBOX", "cur",
                                 base + ":2," + "".join(sorted(flags +
                                                               "T"))))
    run_mbsync(rc)
    view = server_view(s, pki)
    assert len(view) == 2, view
