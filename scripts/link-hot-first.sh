#!/usr/bin/env bash
# The linker of the dist builds (Makefile cross-build; docs/performance.md, "Code layout").
# The kernel maps a program's code in 64 KiB windows around each page it executes, so an
# agent whose idle, sync and collection code is spread over 2.5 MB of .text keeps nearly
# all of it resident. This links the agent twice: the first link, with symbols, names
# every function; the second puts the functions listed in scripts/hot-functions.txt (by
# name without the hash, so the list holds across targets and builds) first in .text, in
# that order, with lld's --symbol-ordering-file, and starts .rodata with the data those
# functions refer to (scripts/hot-rodata.py). Everything else links as it would.
# ASSENT_LINKER: the real linker driver (the target's gcc). Not the agent: passed through.
set -euo pipefail
real=${ASSENT_LINKER:?ASSENT_LINKER must name the linker driver}
here=$(cd "$(dirname "$0")" && pwd)
hot=${ASSENT_HOT_FUNCTIONS:-$here/hot-functions.txt}

# One pass over the arguments: the output file; the first link's arguments (the same, but
# keeping symbols and writing to another file); whether this is a static-pie link.
out=
first=()
packed=()
prev=
for arg in "$@"; do
    if [ "$prev" = -o ]; then
        out=$arg
        first+=("$arg.unordered")
    else
        case "$arg" in
        -s | -Wl,--strip-all | -Wl,-s) ;;
        # lld crashes writing --emit-relocs for sections a script discards (no-eh-frame.ld);
        # the first link only names functions and data, so it links without the scripts.
        -Wl,-T,*) ;;
        # A static build relocates itself at start with the C library inside it (musl reads
        # DT_RELR): packed relative relocations take 1.4 kB instead of 113 kB (x86_64), all
        # of which start-up reads and keeps resident. A dynamic build would need a glibc of
        # 2.36 or later on the device, so it keeps RELA.
        -static-pie)
            packed=(-Wl,-z,pack-relative-relocs)
            first+=("$arg")
            ;;
        *) first+=("$arg") ;;
        esac
    fi
    prev=$arg
done
case "$(basename "$out")" in
assent-collector-*) exec "$real" "$@" ;;
assent-*) [ "$(basename "$(dirname "$out")")" = deps ] || exec "$real" "$@" ;;
*) exec "$real" "$@" ;;
esac

# First link: symbols and relocations kept, to another file, with its link map.
"$real" "${first[@]}" -Wl,--emit-relocs -Wl,-Map="$out.unordered.map"

# Mangled names of the hot functions, in the list's order. nm -p keeps the symbol table's
# order, so the plain and the demangled listing pair up line by line.
order=$out.order
paste -d '\t' <(nm -p --defined-only "$out.unordered") <(nm -p -C --defined-only "$out.unordered") |
    awk -F '\t' -v hot="$hot" '
        {
            split($1, m, " "); if (m[2] != "t" && m[2] != "T") next
            name = $2; sub(/^[^ ]+ [^ ]+ /, "", name)
            sub(/::h[0-9a-f]{16}$/, "", name)
            mangled[name] = mangled[name] m[3] "\n"
        }
        END {
            while ((getline line < hot) > 0) {
                if (line == "" || line ~ /^#/) continue
                listed++
                if (line in mangled) { found++; printf "%s", mangled[line]; delete mangled[line] }
            }
            printf "%d of %d hot functions found\n", found, listed > "/dev/stderr"
        }' >"$order" 2>"$out.order-summary"

# The read-only data the hot functions refer to, first in .rodata. Its script goes before
# init-before-text.ld: both insert before .text, and .rodata must stay before .init.
rodata=()
"$here/hot-rodata.py" "$out.unordered" "$out.unordered.map" "$order" "$out.rodata.ld" \
    >"$out.rodata-summary"
[ -s "$out.rodata.ld" ] && rodata=(-Wl,-T,"$out.rodata.ld")

# The link map (every function's address in the shipped layout, which keeps no symbols)
# is what scripts/resident-code.py reads.
"$real" "$@" -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering \
    "${rodata[@]}" -Wl,-T,"$here/init-before-text.ld" -Wl,-Map="$out.map" "${packed[@]}"
exec "$here/hot-rodata.py" --check "$out.map" "$out.rodata.ld"
