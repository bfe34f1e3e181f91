#!/usr/bin/env python3
"""Disk writes of a process (the broker) from /proc/PID/io, before and after a run.

    bench/proc_io.py PID                      # the counters now, one JSON line
    bench/proc_io.py PID -- CMD [ARGS...]     # runs CMD, then prints what PID wrote
                                              # meanwhile (JSON on stdout; CMD's own
                                              # stdout/stderr pass through to stderr)
    bench/proc_io.py PID --messages N -- CMD  # also bytes per message

write_bytes: bytes the process caused to be sent to the block layer (charged when a
page of a disk-backed file first becomes dirty, so page granular; tmpfs does not
count). cancelled_write_bytes: dirty pages truncated or deleted before write-back (a
WAL file reset, a deleted temp file); write_bytes - cancelled is the net figure.
wchar counts every write(2)-like call, sockets included, so it says little about disk.
Reading another process's io file needs the same user or root (ptrace access).
Exit status: CMD's, or 2 if PID's counters cannot be read.
"""
import json
import subprocess
import sys

FIELDS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes")


def read_io(pid):
    counters = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in FIELDS:
                counters[key] = int(value)
    return counters


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    pid = int(argv[1])
    rest = argv[2:]
    messages = None
    if len(rest) >= 2 and rest[0] == "--messages":
        messages = int(rest[1])
        rest = rest[2:]
    try:
        before = read_io(pid)
    except OSError as e:
        print(f"proc_io.py: cannot read /proc/{pid}/io: {e}", file=sys.stderr)
        return 2
    if not rest:
        print(json.dumps({"pid": pid, **before}))
        return 0
    if rest[0] != "--" or len(rest) < 2:
        print("proc_io.py: expected '-- CMD [ARGS...]' after the PID (see --help)", file=sys.stderr)
        return 2
    status = subprocess.call(rest[1:], stdout=sys.stderr)
    try:
        after = read_io(pid)
    except OSError as e:
        print(f"proc_io.py: process {pid} is gone after the run ({e}); no figures", file=sys.stderr)
        return 2
    delta = {k: after[k] - before[k] for k in FIELDS if k in before and k in after}
    out = {"pid": pid, "status": status, **delta}
    out["net_write_bytes"] = delta.get("write_bytes", 0) - delta.get("cancelled_write_bytes", 0)
    if messages:
        out["messages"] = messages
        out["write_bytes_per_message"] = round(delta.get("write_bytes", 0) / messages, 1)
    print(json.dumps(out))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
