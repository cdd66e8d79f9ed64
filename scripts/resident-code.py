#!/usr/bin/env python3
"""Which code of a running agent is resident, and whose it is.

Usage: scripts/resident-code.py PID MAP [HOT_BYTES]

PID: a running dist `assent`; MAP: the lld link map its build wrote beside it
(target/<t>/dist/deps/assent-*.map, see scripts/link-hot-first.sh). Reads the process's
page table (/proc/PID/pagemap, as root) for the binary's executable mapping and prints
each resident 64 KiB window (the kernel's fault-around unit) with its resident pages.
With HOT_BYTES (how far into .text the hot functions reach), it also prints the
functions in each resident page of windows past them. Which function faulted a window
in is what `perf record -e page-faults -c 1 -d` tells (docs/performance.md, "Code
layout").
"""
import re
import struct
import sys

PAGE = 4096
WINDOW = 64 * 1024


def mapping(pid, binary_name):
    """(start, end, file offset, path) of the binary's executable mapping."""
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5].endswith(binary_name) and "x" in fields[1]:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                return start, end, int(fields[2], 16), fields[5]
    sys.exit(f"no executable mapping of {binary_name} in /proc/{pid}/maps")


def vaddr_of_offset(path, offset):
    """The link-time address of file offset `offset`, from the ELF64 program headers."""
    with open(path, "rb") as f:
        header = f.read(64)
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        kind, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if kind == 1 and p_offset <= offset < p_offset + p_filesz + 0x1000:
            return offset - p_offset + p_vaddr
    sys.exit(f"offset {offset:#x} is in no LOAD segment of {path}")


def resident_pages(pid, start, end):
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(start // PAGE * 8)
        data = pagemap.read((end - start) // PAGE * 8)
    entries = struct.unpack(f"{len(data) // 8}Q", data)
    return [start + i * PAGE for i, e in enumerate(entries) if e >> 63 & 1]


def functions(map_path):
    """(vma, size, name) of every symbol in .text, sorted, from an lld map."""
    out, in_text = [], False
    line_re = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s(\s*)(.*)$")
    with open(map_path, errors="replace") as m:
        for line in m:
            match = line_re.match(line)
            if not match:
                continue
            vma, size, indent, rest = int(match[1], 16), int(match[2], 16), match[3], match[4]
            if not indent:
                in_text = rest.strip() == ".text"
                continue
            # Input sections are indented once, symbols twice (after the section's name).
            if in_text and len(indent) >= 16:
                out.append((vma, size, rest.strip()))
    out.sort()
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    pid, map_path = int(sys.argv[1]), sys.argv[2]
    binary = open(f"/proc/{pid}/comm").read().strip()
    start, end, offset, path = mapping(pid, binary)
    # Runtime address minus this is the link-time address the map uses.
    delta = start - vaddr_of_offset(path, offset)
    pages = resident_pages(pid, start, end)
    symbols = functions(map_path)
    text_start = symbols[0][0] if symbols else 0
    hot_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else None
    # Fault-around maps the aligned 64 KiB window of the runtime address.
    windows = {}
    for page in pages:
        windows.setdefault(page // WINDOW, []).append(page - delta)
    print(f"{len(pages) * 4} kB resident of {(end - start) // 1024} kB executable, "
          f"in {len(windows)} windows of 64 KiB")
    for window, vmas in sorted(windows.items()):
        print(f"window at {vmas[0]:#x}: {len(vmas)} pages")
        if hot_bytes is None or vmas[-1] < text_start + hot_bytes:
            continue
        for vma in vmas:
            names = [n for (a, s, n) in symbols if a < vma + PAGE and a + max(s, 1) > vma]
            print(f"  page {vma:#x}: " + (", ".join(names[:6]) or "(no symbol)")
                  + (f" and {len(names) - 6} more" if len(names) > 6 else ""))

if __name__ == "__main__":
    main()
