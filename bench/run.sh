#!/usr/bin/env bash
# Benchmarks sandlock against the bare command and against peers on this
# machine, all in one run, and prints one table of medians and ratios to
# bare. Usage:
#
#   bench/run.sh           # full run (a few minutes)
#   bench/run.sh --quick   # few runs: checks that everything still works
#
# Needs: go, gcc, hyperfine, bubblewrap and jq (installed with apt-get when
# missing and possible), /usr/bin/python3 and /usr/bin/perl. landrun is
# measured when it is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
# runs: start-up rows (hyperfine, in rounds); inruns: rounds of the
# in-process rows, each of which takes seconds.
if [ $quick = 1 ]; then
  runs=6; rounds=1; inruns=3; warm=1; loops=0.2; nbench=20000
else
  runs=240; rounds=4; inruns=18; warm=5; loops=1; nbench=300000
fi

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v jq >/dev/null || need+=(jq)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} …" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
  fi
  for c in hyperfine bwrap jq gcc; do
    command -v $c >/dev/null || { echo "bench/run.sh: missing $c (apt-get install hyperfine bubblewrap jq gcc)" >&2; exit 1; }
  done
fi
for f in /usr/bin/python3 /usr/bin/perl; do
  [ -x $f ] || { echo "bench/run.sh: missing $f" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/sandlock" ./cmd/sandlock
# The notified-syscall floor: a minimal C supervisor (bench/floor/floor.c) and
# sandlock with a user Handler (bench/notified), on the same Python loop.
CGO_ENABLED=0 go build -o "$work/notified" ./bench/notified
gcc -O2 -o "$work/floor" bench/floor/floor.c
# The floors of two rows, measured with them: a minimal C ptrace tracer with
# sandlock's tracer's options (bench/floor/tracer.c) for the spawn row, and
# Landlock alone (bench/landlocked) for the open loop.
gcc -O2 -o "$work/tracer" bench/floor/tracer.c
CGO_ENABLED=0 go build -o "$work/landlocked" ./bench/landlocked

grants=()
for p in /usr /lib /lib64 /bin /etc; do [ -e $p ] && grants+=(-r $p); done
chmod 755 "$work"
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

# medians NAME FILE : appends NAME, variant and the median of the variant's
# times (FILE holds "variant<TAB>ms" lines) to the results.
medians() {
  local name=$1 file=$2 variant
  for variant in $(cut -f1 "$file" | sort -u); do
    awk -F'\t' -v v="$variant" '$1 == v {print $2}' "$file" | sort -n |
      awk -v n="$name" -v v="$variant" '{a[NR]=$1} END {printf "%s\t%s\t%s\n", n, v, (a[int((NR+1)/2)] + a[int(NR/2)+1]) / 2}' >>"$results"
  done
}

# hyperfine_row NAME CMD [RUNS [SANDLOCK_FLAGS [FLOOR]]] : median wall time
# of each variant, in ms. The variants take turns in rounds (hyperfine runs
# one variant after the other), so that a drift of the machine during the
# row hits them all alike; every run of every round counts. FLOOR, if set,
# is a launcher measured as the variant "floor".
hyperfine_row() {
  local name=$1 cmd=$2 n=${3:-$runs} slflags=${4:-} floor=${5:-}
  local sl="$work/sandlock run ${grants[*]} -r $work $slflags --"
  local args=(-N -w $warm -r $(((n + rounds - 1) / rounds)) --export-json "$work/h.json" -n bare "$cmd" -n sandlock "$sl $cmd" -n bwrap "$BW $cmd")
  [ -n "$LR" ] && args+=(-n landrun "$LR $cmd")
  [ -n "$floor" ] && args+=(-n floor "$floor $cmd")
  : >"$work/times"
  for _ in $(seq $rounds); do
    hyperfine "${args[@]}" >/dev/null 2>&1
    jq -r '.results[] | .command as $v | .times[] | [$v, . * 1000] | @tsv' "$work/h.json" >>"$work/times"
  done
  medians "$name" "$work/times"
}

# inproc_row NAME SCRIPT [SANDLOCK_FLAGS [LANDRUN_FLAGS [FLOOR]]] : median
# of the time the script reports, in ms. The variants take turns, round
# after round, so that a drift of the machine during the row hits them all
# alike. FLOOR, if set, is a launcher measured as the variant "floor".
inproc_row() {
  local name=$1 script=$2 slflags=${3:-} lrflags=${4:-} floor=${5:-} variant cmd
  local variants=(bare sandlock bwrap)
  [ -n "$LR" ] && variants+=(landrun)
  [ -n "$floor" ] && variants+=(floor)
  : >"$work/times"
  for _ in $(seq $inruns); do
    for variant in "${variants[@]}"; do
      case $variant in
        bare) cmd="/usr/bin/python3 $script" ;;
        sandlock) cmd="$work/sandlock run ${grants[*]} -r $work $slflags -- /usr/bin/python3 $script" ;;
        bwrap) cmd="$BW /usr/bin/python3 $script" ;;
        landrun) cmd="landrun --rox /usr,/lib,/lib64,/bin --ro /etc,$work $lrflags -- /usr/bin/python3 $script" ;;
        floor) cmd="$floor /usr/bin/python3 $script" ;;
      esac
      printf '%s\t%s\n' $variant "$($cmd)" >>"$work/times"
    done
  done
  medians "$name" "$work/times"
}

echo "measuring start-up…" >&2
hyperfine_row "start: /bin/true" /bin/true
hyperfine_row "start: python3 -c pass" "/usr/bin/python3 -c pass"
echo "measuring filesystem-heavy…" >&2
hyperfine_row "find /usr -maxdepth 3" "find /usr -maxdepth 3"
inproc_row "100k os.stat (in-process)" "$work/stat.py"
inproc_row "20k open+close (in-process)" "$work/open.py" "" "" "$work/landlocked $work"
# With a grant on /proc, the served view: every open and every directory
# listing goes through the supervisor (issue 16).
echo "measuring the served /proc view…" >&2
hyperfine_row "served /proc: python3 -c pass" "/usr/bin/python3 -c pass" $runs "-r /proc"
hyperfine_row "served /proc: find -maxdepth 3" "find /usr -maxdepth 3" $runs "-r /proc"
inproc_row "served /proc: 20k open+close" "$work/open.py" "-r /proc" "--ro /proc"
echo "measuring spawn-heavy…" >&2
hyperfine_row "200 × /bin/true from sh" "/bin/sh -c 'for i in \$(seq 200); do /bin/true; done'" $((runs / 6)) "" "$work/tracer"

echo "measuring network…" >&2
# A loopback server outside every sandbox: it accepts and closes (connect
# loop) and answers HTTP/1.1 with keep-alive (throughput).
cat >"$work/server.py" <<'EOF'
import http.server, socket, threading
# Deep accept queues: a dropped SYN costs a one-second retransmit, which
# would measure the server, not the sandbox.
a = socket.create_server(("127.0.0.1", 0), backlog=4096)
def accept_and_close():
    while True:
        a.accept()[0].close()
class Page(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the
    # body waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    body = b"x" * 1024
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)
    def log_message(self, *a): pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 4096
h = Server(("127.0.0.1", 0), Page)
print(a.getsockname()[1], h.server_address[1], flush=True)
threading.Thread(target=accept_and_close, daemon=True).start()
h.serve_forever()
EOF
/usr/bin/python3 "$work/server.py" >"$work/ports" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/ports" ] && break; sleep 0.1; done
read -r cport hport <"$work/ports"
cat >"$work/connect.py" <<EOF
import socket, struct, time
n = int(2000 * $loops)
t = time.perf_counter()
# Close with a reset: no TIME_WAIT left behind, so that thousands of runs
# do not use up the ephemeral ports and slow down later variants.
linger = struct.pack("ii", 1, 0)
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", $cport))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    s.close()
print((time.perf_counter() - t) * 1e3)
EOF
cat >"$work/gets.py" <<EOF
import http.client, time
n = int(5000 * $loops)
c = http.client.HTTPConnection("127.0.0.1", $hport)
t = time.perf_counter()
for _ in range(n):
    c.request("GET", "/")
    c.getresponse().read()
print((time.perf_counter() - t) * 1e3)
EOF
chmod 644 "$work"/*.py
inproc_row "2k connects, host rule" "$work/connect.py" "--net-allow 127.0.0.1:$cport" "--connect-tcp $cport"
inproc_row "2k connects, port rule" "$work/connect.py" "--net-allow :$cport" "--connect-tcp $cport"
inproc_row "5k HTTP GETs, port rule" "$work/gets.py" "--net-allow :$hport" "--connect-tcp $hport"

echo "measuring the copy-on-write workdir…" >&2
# A project of 1,000 files in 20 directories, under git. Every variant runs
# in it with HOME pointing nowhere (git would read ~/.gitconfig, which the
# sandbox does not grant).
proj="$work/cow/project"
mkdir -p "$proj"
for i in $(seq 1000); do mkdir -p "$proj/d$((i % 20))"; echo "file $i" >"$proj/d$((i % 20))/f$i"; done
git -C "$proj" init -q && git -C "$proj" add -A && HOME=/nonexistent git -C "$proj" -c user.email=b@b -c user.name=b commit -qm base
chmod -R a+rwX "$work/cow"
SLW="$work/sandlock run ${grants[*]} --env HOME=/nonexistent --workdir $proj"
# cow_row NAME CMD [RUNS] : the command bare and under --workdir, both in
# the project directory.
cow_row() {
  local name=$1 cmd=$2 n=${3:-$runs}
  : >"$work/times"
  for _ in $(seq $rounds); do
    (cd "$proj" && HOME=/nonexistent hyperfine -N -w $warm -r $(((n + rounds - 1) / rounds)) --export-json "$work/h.json" \
      -n bare "$cmd" -n sandlock "$SLW -- $cmd" >/dev/null 2>&1)
    jq -r '.results[] | .command as $v | .times[] | [$v, . * 1000] | @tsv' "$work/h.json" >>"$work/times"
  done
  medians "$name" "$work/times"
}
cow_row "cow: python3 -c pass" "/usr/bin/python3 -c pass"
cow_row "cow: git status, 1000 files" "/usr/bin/git status --porcelain"
# A commit of 1,000 new files: the same script writes them bare (in a
# fresh copy each time), and under --workdir with the commit, and with
# --on-exit abort; the difference between the last two is the commit.
cp -a "$proj" "$work/cow/base"
write1000='for i in $(seq 1000); do echo $i > n$i; done'
: >"$work/times"
for _ in $(seq $rounds); do
  hyperfine -N -w 1 -r $(((runs / 6 + rounds + 1) / rounds)) --export-json "$work/h.json" \
    --prepare "/bin/sh -c 'rm -rf $proj && cp -a $work/cow/base $proj'" \
    -n bare "/bin/sh -c 'cd $proj && $write1000'" \
    -n sandlock "$SLW -- /bin/sh -c '$write1000'" \
    -n abort "$SLW --on-exit abort -- /bin/sh -c '$write1000'" >/dev/null 2>&1
  jq -r '.results[] | .command as $v | .times[] | [$v, . * 1000] | @tsv' "$work/h.json" >>"$work/times"
done
medians "cow: write 1000 files, commit" "$work/times"
cow_commit=$(awk -F'\t' '$1 == "cow: write 1000 files, commit" {m[$2] = $3} END {printf "%.2f", m["sandlock"] - m["abort"]}' "$results")

echo "measuring notified syscalls…" >&2
# The same Python loop of getppid, each answered Continue, under the C
# floor and under sandlock (a user Handler), taking turns.
cat >"$work/getppid.py" <<EOF
import os, time
n = int(100000 * $loops)
t = time.perf_counter()
for _ in range(n): os.getppid()
print((time.perf_counter() - t) * 1e6 / n)
EOF
chmod 644 "$work/getppid.py"
: >"$work/times"
for _ in $(seq $inruns); do
  printf 'floor\t%s\n' "$("$work/floor" /usr/bin/python3 "$work/getppid.py")" >>"$work/times"
  printf 'sandlock\t%s\n' "$("$work/notified" "$work" /usr/bin/python3 "$work/getppid.py")" >>"$work/times"
done
main_results=$results
results="$work/floor.tsv"
: >"$results"
medians "notified getppid" "$work/times"
floor_us=$(awk -F'\t' '$2 == "floor" {print $3}' "$results")
handler_us=$(awk -F'\t' '$2 == "sandlock" {print $3}' "$results")
results=$main_results

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
variants = ["bare", "sandlock", "bwrap", "landrun", "abort", "floor"]
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
echo "floor: the least any sandbox built like sandlock pays on the row, measured with it:"
echo "  spawn: a C ptrace tracer with sandlock's tracer's options (bench/floor/tracer.c);"
echo "  open loop: the same Landlock rules alone, no seccomp (bench/landlocked)"
echo
printf '%-32s %8.2f µs/call (C floor: one thread, blocking RECV/SEND)\n' "notified getppid from Python" "$floor_us"
printf '%-32s %8.2f µs/call %5.2fx the C floor (user Handler, Continue)\n' "notified getppid from Python" "$handler_us" "$(echo "$handler_us $floor_us" | awk '{print $1 / $2}')"
printf '%-32s %8s µs/call (SYNC_WAKE_UP on)\n' "notified syscall (Continue)" "$sync_us"
printf '%-32s %8s µs/call (SYNC_WAKE_UP off)\n' "notified syscall (Continue)" "$nosync_us"
printf '%-32s %8s ns/call (not notified)\n' "getppid in a sandbox" "$plain_ns"
printf '%-32s %8s ms (write 1000 files: --workdir minus --on-exit abort)\n' "cow: commit of 1000 files" "$cow_commit"
