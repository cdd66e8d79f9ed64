#!/usr/bin/env bash
# Builds the Citus extension from source for the installed PostgreSQL and installs it
# into that PostgreSQL's extension and library directories, for the sharding test
# (collector/tests/citus.rs). Citus is not in Debian 12's archive.
# Usage: scripts/citus.sh   (as root; idempotent: a build of this version is reused)
# The source is the tag CITUS_VERSION of github.com/citusdata/citus, cloned, or read from
# a local git directory given as CITUS_GIT. The build is cached outside the repository,
# in /var/cache/assent-test/citus (CITUS_CACHE). Build dependencies: the server headers
# of exactly the installed server version (so that apt does not upgrade the server),
# lz4 and zstd (Citus columnar) and krb5 (the server headers include GSSAPI's).
set -euo pipefail
version=${CITUS_VERSION:-v13.2.2}
cache=${CITUS_CACHE:-/var/cache/assent-test/citus}
pg_config=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)/pg_config
[ -x "$pg_config" ] || { echo "postgresql is not installed (apt-get install postgresql)" >&2; exit 1; }
major=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
pkglib=$("$pg_config" --pkglibdir)
sharedir=$("$pg_config" --sharedir)
stamp="$cache/installed-$version-pg$major"
if [ -f "$stamp" ] && [ -f "$pkglib/citus.so" ] && [ -f "$sharedir/extension/citus.control" ]; then
    exit 0
fi

server=$(dpkg-query -W -f='${Version}' "postgresql-$major")
packages=("postgresql-server-dev-$major=$server" liblz4-dev libzstd-dev libkrb5-dev libicu-dev git)
missing=()
for p in "${packages[@]}"; do
    name=${p%%=*}
    want=${p#*=}
    have=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$name" 2>/dev/null || true)
    if [ "$name" = "$p" ]; then
        [[ "$have" == ii* ]] || missing+=("$p")
    else
        [ "$have" = "ii  $want" ] || missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

src="$cache/src-$version"
mkdir -p "$cache"
if [ ! -f "$src/configure" ]; then
    rm -rf "$src.tmp"
    if [ -n "${CITUS_GIT:-}" ]; then
        mkdir -p "$src.tmp"
        git --git-dir="$CITUS_GIT" archive "$version" | tar -x -C "$src.tmp"
    else
        git clone -q --depth 1 --branch "$version" https://github.com/citusdata/citus.git "$src.tmp" \
            || { echo "citus.sh: cannot clone github.com/citusdata/citus; on a machine without" \
                "GitHub access, set CITUS_GIT to a git directory holding tag $version" >&2; exit 1; }
    fi
    mv "$src.tmp" "$src"
fi
cd "$src"
if [ ! -f Makefile.global ]; then
    # No libcurl: it only serves Citus's anonymous usage statistics, which stay off.
    ./configure -q PG_CONFIG="$pg_config" --without-libcurl >"$cache/configure.log" 2>&1 \
        || { tail -30 "$cache/configure.log" >&2; exit 1; }
fi
# with_llvm=no: no JIT bitcode (clang), which the tests never use.
make -s -j"$(nproc)" with_llvm=no >"$cache/build.log" 2>&1 || { tail -40 "$cache/build.log" >&2; exit 1; }
make -s install with_llvm=no >>"$cache/build.log" 2>&1 || { tail -40 "$cache/build.log" >&2; exit 1; }
touch "$stamp"
