#!/bin/sh
# Installs the Debian packages Mailfort needs to build, run and test.
# Idempotent: installs only what is missing.  Usage: scripts/deps.sh [build|test|bench]
set -eu
what=${1:-build}
pkgs="build-essential meson ninja-build pkg-config libevent-dev libssl-dev
 libsqlite3-dev libinih-dev libcrypt-dev libargon2-dev libunbound-dev libidn2-dev
 dns-root-data ca-certificates openssl"
case "$what" in
test) pkgs="$pkgs python3 python3-pytest swaks fetchmail isync clang libclang-rt-14-dev python3-dkim
 nsd ldnsutils postfix python3-aiosmtpd python3-dnspython" ;;
bench) pkgs="$pkgs python3 postfix swaks dovecot-imapd nsd ldnsutils" ;;
fuzz) pkgs="$pkgs clang libclang-rt-14-dev" ;;
esac
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /var/lib/apt/periodic/.mailfort-updated ] || \
    [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
	$SUDO apt-get update -q
	$SUDO mkdir -p /var/lib/apt/periodic
	$SUDO touch /var/lib/apt/periodic/.mailfort-updated
fi
# postfix asks questions on install; answer them up front.
if echo "$missing" | grep -q postfix; then
	echo "postfix postfix/main_mailer_type select No configuration" | \
		$SUDO debconf-set-selections
fi
$SUDO apt-get install -y -q --no-install-recommends $missing
