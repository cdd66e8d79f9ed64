#!/usr/bin/env python3
"""Writes the linker script that puts the read-only data of the hot functions first.

Usage: scripts/hot-rodata.py UNORDERED MAP ORDER SCRIPT
       scripts/hot-rodata.py --check FINAL_MAP SCRIPT

UNORDERED: the first link of scripts/link-hot-first.sh, linked with --emit-relocs; MAP:
its lld link map; ORDER: the mangled names of the hot functions, one per line (the
--symbol-ordering-file of the second link). Writes SCRIPT, a linker script for the second
link whose .rodata starts with every input section a hot function refers to (string
literals, switch tables, constant tables: ring's, SQLite's), followed by the rest. Prints
one summary line.

Why (docs/performance.md, "Read-only data"): the kernel maps the binary in 64 KiB windows
around each page it reads, and the read-only data of the code the agent runs all day was
spread over the whole segment, so every window of it was resident. Placing what the hot
code refers to first leaves the windows at the end of the segment unread.

The references come from the relocations --emit-relocs keeps. Targets that keep relocations
without addends (REL, as on 32-bit Arm) cannot be read this way: for them SCRIPT is left
empty and the data keeps the default order.

--check reads the second link's map and fails unless the data SCRIPT lists came first.
"""
import bisect
import re
import subprocess
import sys

MAP_LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+(\d+)\s(.*)$")
INPUT_SECTION = re.compile(r"^(.*):\(([^)]*)\)$")
RELOCATION = re.compile(
    r"^([0-9a-f]+)\s+[0-9a-f]+\s+(R_\S+)\s+([0-9a-f]+)\s+(\S+)\s*([+-])\s*([0-9a-f]+)$"
)
# x86_64 PC-relative fields end the instruction, so their addend is the target minus 4.
PC_RELATIVE = ("R_X86_64_PC32", "R_X86_64_PLT32", "R_X86_64_GOTPCREL", "R_X86_64_REX_GOTPCRELX")
# Sections the linker merges by content: listed whole, they cannot be split.
MERGED = re.compile(r"^\.rodata(\.str\d+\.\d+|\.cst\d+)?$")


def input_sections(map_path):
    """[(start, size, output section, input section name, alignment)] from an lld map."""
    sections = []
    output = None
    with open(map_path) as link_map:
        for line in link_map:
            fields = MAP_LINE.match(line)
            if not fields:
                continue
            rest = fields.group(4)
            if not rest.startswith(" "):
                # Sections not loaded (relocations, debug info) have address 0 and overlap
                # the loaded ones.
                output = rest.strip() if int(fields.group(1), 16) else None
                continue
            if output is None:
                continue
            named = INPUT_SECTION.match(rest.strip())
            if named:
                start, size = int(fields.group(1), 16), int(fields.group(2), 16)
                align = int(fields.group(3))
                sections.append((start, size, output, named.group(2), align))
    sections.sort()
    return sections


def hot_ranges(binary, order_path):
    """Sorted [(start, end)] of the hot functions in the first link."""
    with open(order_path) as order:
        hot = {line.strip() for line in order if line.strip()}
    nm = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True)
    ranges = []
    for line in nm.stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tT" and fields[3] in hot:
            start = int(fields[0], 16)
            ranges.append((start, start + int(fields[1], 16)))
    ranges.sort()
    return ranges


def relocations(binary):
    """(offset, type, symbol value, symbol name, addend, relocated section) of each
    relocation the link kept, or None when it keeps them without addends."""
    readelf = subprocess.run(["readelf", "-rW", binary], capture_output=True, text=True, check=True)
    kept = []
    section = None
    for line in readelf.stdout.splitlines():
        if line.startswith("Relocation section"):
            section = line.split("'")[1]
            if section == ".rel.text":
                return None
            continue
        # .rela.dyn is the loader's, .rela.debug_* the debugger's.
        if section is None or section == ".rela.dyn" or section.startswith(".rela.debug"):
            continue
        fields = RELOCATION.match(line.strip())
        if fields:
            offset, kind, value, name, sign, addend = fields.groups()
            addend = int(addend, 16) * (1 if sign == "+" else -1)
            kept.append((int(offset, 16), kind, int(value, 16), name, addend, section))
    return kept


def target(relocation, source_start):
    """The address a relocation refers to. Against a section symbol the addend locates it:
    in code, x86_64's PC-relative field ends the instruction (4 bytes before the addend's
    origin); in a table of relative offsets (switch tables of strings), each entry is
    relative to the table's start, which is where the section starts."""
    offset, kind, value, name, addend, section = relocation
    if not name.startswith("."):
        return value
    if section == ".rela.text":
        return value + addend + (4 if kind in PC_RELATIVE else 0)
    if "PC" in kind or "PREL" in kind:
        return value + addend - (offset - source_start)
    return value + addend


def check(map_path, script_path):
    """Fails unless the link put every section the script lists, and the merged strings
    and constants, before all the others."""
    with open(script_path) as script:
        listed = set(re.findall(r'\("([^"]+)"\)', script.read()))
    if not listed:
        return
    first_rest = None
    for start, size, output, name, _ in input_sections(map_path):
        if output != ".rodata" or size == 0:
            continue
        placed_first = name in listed or MERGED.match(name)
        if not placed_first and first_rest is None:
            first_rest = (start, name)
        elif placed_first and first_rest is not None:
            sys.exit(
                f"hot-rodata: {map_path}: {name} at {start:#x} lies after {first_rest[1]} "
                f"at {first_rest[0]:#x}; the link did not follow {script_path}"
            )


def main():
    if sys.argv[1] == "--check":
        check(*sys.argv[2:4])
        return
    binary, map_path, order_path, script_path = sys.argv[1:5]
    kept = relocations(binary)
    if kept is None:
        open(script_path, "w").close()
        print("read-only data in the default order (relocations without addends)")
        return
    sections = input_sections(map_path)
    starts = [s[0] for s in sections]
    ranges = hot_ranges(binary, order_path)
    range_starts = [r[0] for r in ranges]

    def section_at(address):
        i = bisect.bisect_right(starts, address) - 1
        while i >= 0 and sections[i][1] == 0:
            i -= 1
        if i >= 0 and address < sections[i][0] + sections[i][1]:
            return sections[i]
        return None

    def in_hot_function(address):
        i = bisect.bisect_right(range_starts, address) - 1
        return i >= 0 and address < ranges[i][1]

    # What the hot functions refer to, and what that data refers to in turn (a switch
    # table's strings, SQLite's tables of built-in function names, a template's bytes):
    # code is not followed, a function is hot only if it is listed.
    refers_to = {}
    seeds = []
    for relocation in kept:
        source = section_at(relocation[0])
        if source is None:
            continue
        referred = section_at(target(relocation, source[0]))
        if referred is None or referred[2] == ".text":
            continue
        if relocation[5] == ".rela.text":
            if in_hot_function(relocation[0]):
                seeds.append(referred)
        else:
            refers_to.setdefault(source, set()).add(referred)
    reached = set()
    while seeds:
        section = seeds.pop()
        if section not in reached:
            reached.add(section)
            seeds.extend(refers_to.get(section, ()))
    hot = {s[3]: s for s in reached if s[2] == ".rodata" and not MERGED.match(s[3])}

    rodata = [s for s in sections if s[2] == ".rodata"]
    merged = sum(s[1] for s in rodata if MERGED.match(s[3]))
    with open(script_path, "w") as script:
        script.write(
            "/* Written by scripts/hot-rodata.py at each dist link: the read-only data the hot\n"
            "   functions refer to first, then the rest (docs/performance.md). */\n"
            "SECTIONS {\n  .rodata : {\n"
        )
        # The most aligned first (ring's page-aligned P-256 table at the segment's first
        # page boundary): fewer bytes of padding between them.
        for name in sorted(hot, key=lambda name: (-hot[name][4], name)):
            script.write(f'    *("{name}")\n')
        script.write("    *(.rodata .rodata.str* .rodata.cst*)\n")
        script.write("    *(.rodata.*)\n  }\n}\nINSERT BEFORE .text;\n")
    total = sum(s[1] for s in rodata)
    first = sum(s[1] for s in hot.values()) + merged
    print(
        f"{len(hot)} of {len(rodata)} read-only data sections first "
        f"({first} of {total} bytes, with the merged strings and constants)"
    )


if __name__ == "__main__":
    main()
