#!/usr/bin/env bash
# Benchmarks sandlock against the bare command and against peers on this
# machine, all in one run, and prints one table of medians and ratios to
# bare. Usage:
#
#   bench/run.sh           # full run (a few minutes)
#   bench/run.sh --quick   # few runs: checks that everything still works
#
# Needs: go, hyperfine and bubblewrap (installed with apt-get when missing
# and possible), /usr/bin/python3 and /usr/bin/perl. landrun is measured
# when it is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ $quick = 1 ]; then runs=5; warm=1; loops=0.2; nbench=20000; else runs=60; warm=5; loops=1; nbench=300000; fi

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} …" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
  fi
  for c in hyperfine bwrap; do
    command -v $c >/dev/null || { echo "bench/run.sh: missing $c (apt-get install hyperfine bubblewrap)" >&2; exit 1; }
  done
fi
for f in /usr/bin/python3 /usr/bin/perl; do
  [ -x $f ] || { echo "bench/run.sh: missing $f" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/sandlock" ./cmd/sandlock

grants=()
for p in /usr /lib /lib64 /bin /etc; do [ -e $p ] && grants+=(-r $p); done
chmod 755 "$work"
SL="$work/sandlock run ${grants[*]} -r $work --"
BW="bwrap --ro-bind / / --dev /dev --proc /proc"
LR=""
command -v landrun >/dev/null && LR="landrun --rox /usr,/lib,/lib64,/bin --ro /etc,$work --"

# In-process loops: each prints its own elapsed time, so start-up does not
# hide a per-syscall cost.
cat >"$work/stat.py" <<EOF
import os, time
n = int(100000 * $loops)
t = time.perf_counter()
for _ in range(n): os.stat("/usr/bin/python3")
print((time.perf_counter() - t) * 1e3)
EOF
cat >"$work/open.py" <<EOF
import time
n = int(20000 * $loops)
t = time.perf_counter()
for _ in range(n): open("/usr/lib/os-release").close()
print((time.perf_counter() - t) * 1e3)
EOF
chmod 644 "$work"/*.py

results="$work/results.tsv"
: >"$results"

# hyperfine_row NAME CMD… : median wall time of each variant, in ms.
hyperfine_row() {
  local name=$1 cmd=$2
  local args=(-N -w $warm -r $runs --export-json "$work/h.json" -n bare "$cmd" -n sandlock "$SL $cmd" -n bwrap "$BW $cmd")
  [ -n "$LR" ] && args+=(-n landrun "$LR $cmd")
  hyperfine "${args[@]}" >/dev/null 2>&1
  jq -r --arg n "$name" '.results[] | [$n, .command, (.median*1000)] | @tsv' "$work/h.json" >>"$results"
}

# inproc_row NAME SCRIPT : median of the time the script reports, in ms.
inproc_row() {
  local name=$1 script=$2 variant cmd
  for variant in bare sandlock bwrap landrun; do
    case $variant in
      bare) cmd="/usr/bin/python3 $script" ;;
      sandlock) cmd="$SL /usr/bin/python3 $script" ;;
      bwrap) cmd="$BW /usr/bin/python3 $script" ;;
      landrun) [ -n "$LR" ] || continue; cmd="$LR /usr/bin/python3 $script" ;;
    esac
    for _ in $(seq $((runs / 4 + 3))); do $cmd; done | sort -n | awk -v n="$name" -v v=$variant '{a[NR]=$1} END {printf "%s\t%s\t%s\n", n, v, a[int((NR+1)/2)]}' >>"$results"
  done
}

echo "measuring start-up…" >&2
hyperfine_row "start: /bin/true" /bin/true
hyperfine_row "start: python3 -c pass" "/usr/bin/python3 -c pass"
echo "measuring filesystem-heavy…" >&2
hyperfine_row "find /usr -maxdepth 3" "find /usr -maxdepth 3"
inproc_row "100k os.stat (in-process)" "$work/stat.py"
inproc_row "20k open+close (in-process)" "$work/open.py"
echo "measuring spawn-heavy…" >&2
hyperfine_row "200 × /bin/true from sh" "/bin/sh -c 'for i in \$(seq 200); do /bin/true; done'"

echo "measuring notified syscalls…" >&2
notif() {
  CGO_ENABLED=0 go test -run '^$' -bench "^Benchmark$1\$" -benchtime ${nbench}x . 2>/dev/null |
    awk '/^Benchmark/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /call/) print $i}'
}
sync_us=$(notif NotifiedSyscall)
nosync_us=$(SANDLOCK_SYNC_WAKEUP=0 notif NotifiedSyscall)
plain_ns=$(notif UnnotifiedSyscall)

echo
echo "sandlock benchmarks — $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo "medians of repeated runs; ratio = variant / bare, measured in the same run"
echo
/usr/bin/python3 - "$results" <<'EOF'
import sys, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, variant, ms = line.rstrip("\n").split("\t")
    rows.setdefault(name, {})[variant] = float(ms)
variants = ["bare", "sandlock", "bwrap", "landrun"]
present = [v for v in variants if any(v in r for r in rows.values())]
print(f"{'workload':32}" + "".join(f"{v:>22}" for v in present))
for name, r in rows.items():
    cells = []
    for v in present:
        if v not in r:
            cells.append(f"{'-':>22}")
        elif v == "bare":
            cells.append(f"{r[v]:>13.2f} ms      ")
        else:
            cells.append(f"{r[v]:>10.2f} ms {r[v]/r['bare']:>6.2f}x ")
    print(f"{name:32}" + "".join(cells))
EOF
echo
printf '%-32s %8s µs/call (SYNC_WAKE_UP on)\n' "notified syscall (Continue)" "$sync_us"
printf '%-32s %8s µs/call (SYNC_WAKE_UP off)\n' "notified syscall (Continue)" "$nosync_us"
printf '%-32s %8s ns/call (not notified)\n' "getppid in a sandbox" "$plain_ns"
