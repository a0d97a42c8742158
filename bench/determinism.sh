#!/usr/bin/env bash
# Benchmarks of deterministic runs (issue 15): what --time-start and
# --random-seed cost. Prints one table. Usage:
#
#   bench/determinism.sh           # full run (a minute or two)
#   bench/determinism.sh --quick   # few runs: checks that everything works
#
# Rows:
#   - clock_gettime in a loop, in-process (ns per call), REALTIME and
#     MONOTONIC: bare, in plain sandlock, and under --time-start (the vDSO
#     stub: the issue's bound is 1.3x bare);
#   - the exec stop: 200 × /bin/true from sh, in plain sandlock and under
#     --time-start (the exec stop and the vDSO patch), --random-seed (the
#     exec stop, AT_RANDOM, and every open done on the program's behalf)
#     and both (the difference per exec);
#   - start-up of python3 -c pass, the same way.
# Needs: go, gcc, bc, bash 5 (EPOCHREALTIME), /usr/bin/python3.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ $quick = 1 ]; then
  runs=5; warm=1; loops=200000; rounds=1
else
  runs=60; warm=5; loops=20000000; rounds=5
fi
for c in go gcc bc; do
  command -v $c >/dev/null || { echo "bench/determinism.sh: missing $c" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
CGO_ENABLED=0 go build -o "$work/sandlock" ./cmd/sandlock
cat >"$work/clock.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* clock <id> <n>: n clock_gettime calls on clock id; prints ns per call. */
int main(int argc, char **argv) {
	clockid_t id = atoi(argv[1]);
	long n = atol(argv[2]);
	struct timespec t0, t1, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) clock_gettime(id, &t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.2f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
	return 0;
}
C
gcc -O2 -o "$work/clock" "$work/clock.c"

grants=()
for p in /usr /lib /lib64 /bin /etc; do [ -e $p ] && grants+=(-r $p); done
SL="$work/sandlock run ${grants[*]} -r $work"
DET="--time-start 2000-01-01T00:00:00Z --random-seed 1"

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", (a[int((NR+1)/2)] + a[int(NR/2)+1]) / 2}'; }

# clock_row NAME ID: the median ns per call of each variant, over rounds
# in which the variants take turns.
clock_row() {
  local name=$1 id=$2 bare=() plain=() shifted=()
  for _ in $(seq $rounds); do
    bare+=("$("$work/clock" "$id" $loops)")
    plain+=("$($SL -- "$work/clock" "$id" $loops)")
    shifted+=("$($SL --time-start 2000-01-01T00:00:00Z -- "$work/clock" "$id" $loops)")
  done
  local b p s
  b=$(printf '%s\n' "${bare[@]}" | median)
  p=$(printf '%s\n' "${plain[@]}" | median)
  s=$(printf '%s\n' "${shifted[@]}" | median)
  printf '%-40s %10s ns %10s ns %10s ns %8.2fx\n' "$name" "$b" "$p" "$s" "$(echo "$s / $b" | bc -l)"
}

# run_ms ARGS...: the wall time of one run of ARGS, in ms.
run_ms() {
  local t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || { echo "bench/determinism.sh: failed: $*" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}

# interleaved_rows NAME DIVISOR UNIT CMD...: the median wall time of CMD in
# plain sandlock and under each of --time-start, --random-seed and both,
# and their difference to plain divided by DIVISOR. The variants take
# turns, run by run, so that a drift of the machine's load (other jobs)
# hits them alike; the first $warm rounds are not counted.
interleaved_rows() {
  local name=$1 div=$2 unit=$3 r v p d
  shift 3
  local -A flags=([plain]="" ["+time"]="--time-start 2000-01-01T00:00:00Z" ["+seed"]="--random-seed 1" ["+time+seed"]="$DET")
  local variants=(plain "+time" "+seed" "+time+seed")
  for v in "${variants[@]}"; do : >"$work/t.$v"; done
  for r in $(seq $((warm + runs))); do
    for v in "${variants[@]}"; do
      # shellcheck disable=SC2086 # the flags are words
      t=$(run_ms $SL ${flags[$v]} -- "$@")
      [ "$r" -gt "$warm" ] && echo "$t" >>"$work/t.$v"
    done
  done
  p=$(median <"$work/t.plain")
  for v in "+time" "+seed" "+time+seed"; do
    d=$(median <"$work/t.$v")
    printf '%-40s %10.2f ms %10.2f ms %+9.1f %s %8.2fx\n' "$name, $v" "$p" "$d" "$(echo "($d - $p) * 1000 / $div" | bc -l)" "$unit" "$(echo "$d / $p" | bc -l)"
  done
}

printf '%-40s %13s %13s %13s %9s\n' "in-process loop" bare sandlock time-start "ts/bare"
clock_row "clock_gettime(REALTIME)" 0
clock_row "clock_gettime(MONOTONIC)" 1
echo
printf '%-40s %13s %13s %14s %9s\n' "" sandlock "with" "difference" "ratio"
interleaved_rows "200 × /bin/true from sh" 200 "µs/exec" /bin/sh -c 'for i in $(seq 200); do /bin/true; done'
interleaved_rows "start: python3 -c pass" 1 "µs" /usr/bin/python3 -c pass
