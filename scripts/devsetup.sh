#!/bin/sh
# Writes the development setup under dev/ (once; delete dev/ to start over):
# a CA and a certificate for mail.example.test, dev/mailfort.ini on the
# development ports, and one account user@example.test / password "changeme".
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
dev=$top/dev
bin=$top/build/mailfort
mkdir -p "$dev"

if [ ! -f "$dev/ca.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
		-subj "/CN=Mailfort development CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$dev/ca.key" -out "$dev/ca.pem" 2>/dev/null
fi
if [ ! -f "$dev/cert.pem" ]; then
	openssl req -newkey rsa:2048 -nodes -subj "/CN=mail.example.test" \
		-keyout "$dev/key.pem" -out "$dev/cert.csr" 2>/dev/null
	printf "subjectAltName=DNS:mail.example.test,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > "$dev/cert.ext"
	openssl x509 -req -in "$dev/cert.csr" -CA "$dev/ca.pem" \
		-CAkey "$dev/ca.key" -CAcreateserial -days 825 -sha256 \
		-extfile "$dev/cert.ext" -out "$dev/cert.pem" 2>/dev/null
	chmod 600 "$dev/key.pem" "$dev/ca.key"
fi

# As root the children drop to a system user, which must be able to reach
# the data directory; fall back to root when the tree is private.
user=$(id -un)
if [ "$(id -u)" = 0 ]; then
	user=root
	reachable=yes
	d=$top
	while [ "$d" != "/" ]; do
		perm=$(stat -c %A "$d")
		case "$perm" in
		*x) ;;
		*) reachable=no ;;
		esac
		d=$(dirname "$d")
	done
	if [ "$reachable" = yes ]; then
		id mailfort >/dev/null 2>&1 || useradd --system --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin mailfort
		user=mailfort
	fi
fi

if [ ! -f "$dev/mailfort.ini" ]; then
	cat > "$dev/mailfort.ini" <<INI
; Development configuration written by scripts/devsetup.sh
[server]
hostname = mail.example.test
domains = example.test
data_dir = $top/var
user = $user

[listen]
smtp = 127.0.0.1:2525
submissions = 127.0.0.1:4465
submission = 127.0.0.1:5587
imap = 127.0.0.1:1143
imaps = 127.0.0.1:1993
pop3 = 127.0.0.1:1110
pop3s = 127.0.0.1:1995

[tls]
cert = $dev/cert.pem
key = $dev/key.pem

[accounts]
users = $dev/postfix-accounts.cf
aliases = $dev/postfix-virtual.cf
INI
fi
[ -f "$dev/postfix-accounts.cf" ] || : > "$dev/postfix-accounts.cf"
[ -f "$dev/postfix-virtual.cf" ] || : > "$dev/postfix-virtual.cf"
chmod 644 "$dev/postfix-accounts.cf" "$dev/postfix-virtual.cf"
if ! grep -q '^user@example.test|' "$dev/postfix-accounts.cf"; then
	"$bin" -c "$dev/mailfort.ini" user add user@example.test changeme
	chmod 644 "$dev/postfix-accounts.cf"
fi
echo "development setup in $dev (account user@example.test / changeme)"
