"""The README documents every configuration key (STYLE.md §3.10) and the
two set-up commands."""
import os
import re
import subprocess

from conftest import BIN, ROOT


def test_readme_lists_every_config_key():
    out = subprocess.run([BIN, "config-keys"], capture_output=True,
                         text=True, check=True).stdout
    keys = []
    section = None
    for line in out.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^\| `([\w.]+)` \|", line)
        if m:
            keys.append((section, m.group(1)))
    assert len(keys) > 30
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    table = readme.split("## Configuration reference", 1)[1]
    for section, key in keys:
        sec_at = table.find("**[%s]**" % section)
        assert sec_at >= 0, "README lacks section [%s]" % section
        nxt = table.find("**[", sec_at + 1)
        body = table[sec_at:nxt if nxt > 0 else None]
        assert "| `%s` |" % key in body, "README lacks %s.%s" % (section,
                                                                  key)


def test_readme_has_the_two_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert "make run" in readme and "make test" in readme
