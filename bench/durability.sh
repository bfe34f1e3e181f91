#!/usr/bin/env bash
# The cost of durability: QoS 1 fan-in to a persistent subscriber through edgemq with
# --durability none / process / power and through Mosquitto with persistence on (its
# defaults otherwise: autosave_interval 1800 s, so it does not wait for the disk), in
# one run (bench/compare.sh), then the size of edgemq's database after 1,000,000
# messages passed through it and were delivered.
#
# The data directories are on the disk that holds $TMPDIR (default /var/tmp, not a
# tmpfs: writes to tmpfs are not disk writes and /proc/PID/io does not count them).
#
# Usage: bench/durability.sh [--runs N] [--duration S] [--out FILE] [--skip-compare]
#                            [--skip-million] [--edgemq PATH] [--bench PATH]
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
export TMPDIR=${TMPDIR:-/var/tmp}

runs=3
duration=10
out_file=""
do_compare=1
do_million=1
edgemq_bin=${EDGEMQ_BIN:-$repo_dir/build/broker/edgemq}
bench_bin=${EDGEMQ_BENCH:-}

die() { echo "durability.sh: $*" >&2; exit 2; }
note() { echo "durability.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --out) out_file=$2; shift 2 ;;
    --skip-compare) do_compare=0; shift ;;
    --skip-million) do_million=0; shift ;;
    --edgemq) edgemq_bin=$2; shift 2 ;;
    --bench) bench_bin=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
if [[ -z $bench_bin ]]; then
  for c in "$repo_dir/build-bench/bench/edgemq-bench" "$repo_dir/build/bench/edgemq-bench"; do
    [[ -x $c ]] && { bench_bin=$c; break; }
  done
fi
[[ -x $edgemq_bin ]] || die "edgemq not found at $edgemq_bin (--edgemq PATH)"
[[ -n $bench_bin && -x $bench_bin ]] || die "edgemq-bench not found (--bench PATH)"
[[ $(stat -f -c %T "$TMPDIR") != tmpfs ]] || die "TMPDIR=$TMPDIR is a tmpfs: disk writes would not show"

report=$(mktemp "$TMPDIR/edgemq-durability-report.XXXXXX")
tmp=$(mktemp -d "$TMPDIR/edgemq-durability.XXXXXX")
broker_pid=""
cleanup() {
  if [[ -n $broker_pid ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp" "$report"
}
trap cleanup EXIT

# Persistent 5.0 sessions on both sides, so that every message is owed to a session
# that outlives its connection: edgemq acknowledges each only once it is stored.
persistent="--publishers 8 --subscribers 1 --qos 1 --inflight 64 --persistent --mqtt-version 5"
if [[ $do_compare == 1 ]]; then
  "$script_dir/compare.sh" --edgemq "$edgemq_bin" --bench "$bench_bin" \
    --brokers "edgemq-none edgemq-process edgemq-power mosquitto" --persistence \
    --runs "$runs" --duration "$duration" \
    --scenario "qos1-persistent-8to1|$persistent" \
    --scenario "qos1-persistent-latency|$persistent --rate 500" >"$report"
fi

# ---- 1,000,000 messages through a process-durability edgemq ---------------------------

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

million() {
  local dir="$tmp/million" port="" db
  mkdir -p "$dir/data"
  db="$dir/data/edgemq.db"
  "$edgemq_bin" -p 0 --bind 127.0.0.1 --data-dir "$dir/data" --durability process >"$dir/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening mqtt 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/broker.log" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { tail -5 "$dir/broker.log" >&2; die "edgemq did not start"; }
  # 8 publishers x 12,500 msgs/s x 10 s = 1,000,000 messages, paced so the run does not
  # depend on how fast this machine is; the JSON line says how many went through.
  local line
  line=$(timeout 180 "$bench_bin" --port "$port" --json --threads 1 --warmup 0 --duration 10 --rate 12500 \
           --drain-max 60 $persistent --label million 2>"$dir/bench.log" | tail -1)
  local published received lost
  published=$(sed -n 's/.*"published":\([0-9]*\).*/\1/p' <<<"$line")
  received=$(sed -n 's/.*"received":\([0-9]*\).*/\1/p' <<<"$line")
  lost=$(sed -n 's/.*"lost":\([0-9]*\).*/\1/p' <<<"$line")
  local live_db live_wal
  live_db=$(size_of "$db"); live_wal=$(size_of "$db-wal")
  kill -TERM "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; broker_pid=""
  local closed_db closed_wal
  closed_db=$(size_of "$db"); closed_wal=$(size_of "$db-wal")
  {
    echo
    echo "### Database size after 1,000,000 messages"
    echo
    echo "edgemq --durability process; edgemq-bench $persistent --rate 12500 --duration 10 (8 x 12,500 msgs/s x 10 s); published ${published:-?}, delivered ${received:-?}, lost ${lost:-?}."
    echo
    echo "| when | edgemq.db | edgemq.db-wal |"
    echo "|---|---:|---:|"
    echo "| all delivered, broker running | $(mib "$live_db") MiB | $(mib "$live_wal") MiB |"
    echo "| after SIGTERM (final checkpoint) | $(mib "$closed_db") MiB | $(mib "$closed_wal") MiB |"
  } >>"$report"
}
if [[ $do_million == 1 ]]; then million; fi

if [[ -n $out_file ]]; then cp "$report" "$out_file"; fi
cat "$report"
