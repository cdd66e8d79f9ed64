#!/usr/bin/env bash
# Builds (once) and prints the path of the Debian 12 root the nspawn tests boot: minbase
# plus systemd, systemd-sysv and dbus, from the mirror apt is configured with. It lives
# outside the repository (ASSENT_TEST_ROOT, default /var/cache/assent-test/bookworm-root)
# and is reused between runs; a root is complete only once its stamp file exists, so an
# interrupted build is started again instead of booted half-made.
set -euo pipefail

root=${ASSENT_TEST_ROOT:-/var/cache/assent-test/bookworm-root}
stamp="$root.complete"
if [ -f "$stamp" ]; then
    echo "$root"
    exit 0
fi

command -v debootstrap >/dev/null || { echo "missing: debootstrap; install: apt-get install debootstrap" >&2; exit 1; }
command -v systemd-nspawn >/dev/null || { echo "missing: systemd-nspawn; install: apt-get install systemd-container" >&2; exit 1; }

# The first deb822 URIs or one-line `deb` entry naming the main archive.
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\/debian\)\/\{0,1\} .*/\2/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$(dirname "$root")"
partial="$root.partial"
rm -rf "$partial"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$partial" "$mirror" >&2
# No getty on the console (the tests talk to it with systemctl through nspawn), and no
# apt timers waking up in a test.
rm -f "$partial"/etc/systemd/system/getty.target.wants/* \
    "$partial"/etc/systemd/system/timers.target.wants/*
rm -rf "$root"
mv "$partial" "$root"
touch "$stamp"
echo "$root"
