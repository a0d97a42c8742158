#!/usr/bin/python3
"""Start-up of wrappers, split in phases by the kernel's own timestamps.

    bench/startup.py [--rounds N] [--cmd "PROGRAM ARGS"] LAUNCHER...

Each LAUNCHER is a command line that runs the program, written with {} where
the program goes, e.g. "./sandlock run -r /usr -r /lib -r /lib64 -r /bin
-r /etc -- {}" or "bwrap --ro-bind / / --dev /dev --proc /proc -- {}"; the
word "bare" runs the program alone. Every launcher must be a different
executable file (copy a binary to compare two settings of it).

The runs are recorded with perf (sched_process_exec and sched_process_exit,
so root), every round runs each launcher once in a shuffled order, and the
page cache is dropped first: two byte-identical copies of one binary start
up to 0.4 ms apart on a small VM until it is, depending on the page-cache
folios each copy happens to get. For each launcher it prints the median of

  total        its exec to the exit of its last thread (bare: the program's)
  to-exec      its exec to the program's exec
  after-exit   the program's exit to the launcher's end

and total as a ratio to the first launcher. hyperfine's medians (bench/run.sh)
include fork, exec and wait in the benchmarking shell and move by a few
tenths of a millisecond from run to run here; these do not.
"""

import argparse
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--cmd", default="/bin/true", help="the program and its arguments (default /bin/true)")
    ap.add_argument("launchers", nargs="+")
    a = ap.parse_args()

    prog = shlex.split(a.cmd)[0]
    lines, files = [], []
    for l in a.launchers:
        if l == "bare":
            lines.append(a.cmd)
            files.append(None)
            continue
        if "{}" not in l:
            sys.exit(f"startup.py: launcher {l!r}: no {{}} for the program")
        exe = shlex.split(l)[0]
        path = exe if "/" in exe else subprocess.run(["sh", "-c", "command -v " + shlex.quote(exe)], capture_output=True, text=True).stdout.strip()
        if not path:
            sys.exit(f"startup.py: launcher {l!r}: {exe} not found")
        real = os.path.realpath(path)
        if real in files:
            sys.exit(f"startup.py: launcher {l!r}: {real} is already another launcher's (copy the binary)")
        files.append(real)
        lines.append(l.replace("{}", a.cmd))
    if os.geteuid() != 0:
        sys.exit("startup.py: needs root (perf tracepoints, drop_caches)")

    rnd = random.Random(1)
    with tempfile.TemporaryDirectory() as work:
        script = os.path.join(work, "rounds.sh")
        with open(script, "w") as f:
            for _ in range(a.rounds):
                order = list(range(len(lines)))
                rnd.shuffle(order)
                f.write("; ".join(lines[i] + " >/dev/null 2>&1" for i in order) + "\n")
        subprocess.run(["sync"])
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        data = os.path.join(work, "perf.data")
        subprocess.run(["perf", "record", "-q", "-o", data, "-a",
                        "-e", "sched:sched_process_exec", "-e", "sched:sched_process_exit",
                        "--", "sh", script], check=True, stderr=subprocess.DEVNULL)
        out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,time,event,trace"],
                             capture_output=True, text=True, check=True).stdout

    # A run starts at its launcher's exec; the program's exec and exit are
    # the first of another pid after it (a launcher's own re-exec keeps its
    # pid); the run ends at the exit of the launcher's last thread.
    res = [{"total": [], "to-exec": [], "after-exit": []} for _ in lines]
    cur = None
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
        if not m:
            continue
        _, pid, t, ev, tr = m.groups()
        t = float(t) * 1e3
        if ev.endswith("exec"):
            fn = re.search(r"filename=(\S+)", tr).group(1)
            real = os.path.realpath(fn)
            if cur is None and real in files:
                cur = {"i": files.index(real), "pid": pid, "start": t}
            elif cur is None and None in files and fn == prog:
                cur = {"i": files.index(None), "pid": pid, "start": t, "prog": t, "progpid": pid}
            elif cur is not None and "prog" not in cur and fn == prog and pid != cur["pid"]:
                cur["prog"], cur["progpid"] = t, pid
        elif ev.endswith("exit") and cur is not None and "group_dead=true" in tr:
            if pid == cur.get("progpid") and "progexit" not in cur:
                cur["progexit"] = t
            if pid == cur["pid"]:
                r = res[cur["i"]]
                r["total"].append(t - cur["start"])
                if "prog" in cur and "progexit" in cur:
                    r["to-exec"].append(cur["prog"] - cur["start"])
                    r["after-exit"].append(t - cur["progexit"])
                cur = None

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    base = med(res[0]["total"])
    print(f"{a.cmd}: {a.rounds} shuffled rounds, page cache dropped first; medians in ms")
    print(f"{'launcher':<48} {'runs':>5} {'total':>8} {'ratio':>6} {'to-exec':>8} {'after-exit':>10}")
    for l, r in zip(a.launchers, res):
        name = l if len(l) <= 48 else l[:45] + "..."
        tot = med(r["total"])
        print(f"{name:<48} {len(r['total']):>5} {tot:>8.3f} {tot / base:>5.2f}x {med(r['to-exec']):>8.3f} {med(r['after-exit']):>10.3f}")


if __name__ == "__main__":
    main()
