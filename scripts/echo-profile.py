#!/usr/bin/env python3
"""Per-echo costs of a server from a callgrind profile (see scripts/echo-profile.sh).

usage: echo-profile.py CALLGRIND_OUT SERVER_BINARY ECHOES

Prints, per echoed message: the instructions the server executed; its locked
read-modify-write instructions (x86 `lock`-prefixed ones and `xchg` with memory: the
atomic operations of mutexes, reference counts and wakers, each a full barrier that
costs several nanoseconds however few instructions it is), by function; and its calls
of clock_gettime. The profile must come from `valgrind --tool=callgrind --dump-instr=yes
--compress-strings=no --compress-pos=no`.
"""

import collections
import re
import subprocess
import sys


def locked_instructions(binary):
    """Address -> (function, mnemonic) of the binary's locked instructions."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", binary],
        capture_output=True, text=True, check=True,
    ).stdout
    found, function = {}, "?"
    for line in listing.splitlines():
        head = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if head:
            function = head.group(2)
            continue
        insn = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if not insn:
            continue
        mnemonic, operands = insn.group(2), insn.group(3)
        if mnemonic == "lock":
            found[int(insn.group(1), 16)] = (function, operands.split()[0])
        elif mnemonic.startswith("xchg") and "(" in operands:
            found[int(insn.group(1), 16)] = (function, "xchg")
    return found


def read_profile(path):
    """Self cost per instruction address, total cost, and calls per callee."""
    per_address = collections.Counter()
    calls = collections.Counter()
    total = 0
    callee, pending_call = None, False
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                total = int(line.split()[1])
                continue
            if line.startswith("cfn="):
                callee = line[4:].strip()
                continue
            if line.startswith("calls="):
                calls[callee] += int(line[6:].split()[0])
                pending_call = True
                continue
            if not line[:1].isdigit() and not line.startswith("0x"):
                continue
            fields = line.split()
            if pending_call:
                # The line after `calls=` is the call's inclusive cost, not the caller's own.
                pending_call = False
                continue
            if len(fields) >= 3:
                per_address[int(fields[0], 0)] += int(fields[2])
    return per_address, total, calls


def main():
    out, binary, echoes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    per_address, total, calls = read_profile(out)
    locked = locked_instructions(binary)
    # A position-independent executable runs under valgrind at 0x108000.
    base = max((0, 0x108000), key=lambda b: sum(per_address.get(a + b, 0) for a in locked))
    by_function = collections.Counter()
    for address, (function, mnemonic) in locked.items():
        count = per_address.get(address + base, 0)
        if count:
            by_function[(function, mnemonic)] += count
    clock = sum(n for name, n in calls.items() if name.startswith("clock_gettime@@"))
    print(f"echoes: {echoes}")
    print(f"instructions per echo: {total / echoes:.0f}")
    print(f"locked instructions per echo: {sum(by_function.values()) / echoes:.2f}")
    for (function, mnemonic), count in by_function.most_common():
        if count / echoes >= 0.05:
            print(f"  {count / echoes:5.2f}  {mnemonic:8s} {function[:100]}")
    print(f"clock_gettime calls per echo: {clock / echoes:.2f}")


if __name__ == "__main__":
    main()
