#!/usr/bin/env bash
# Runs the same edgemq-bench scenarios against edgemq and against Debian's Mosquitto on
# loopback, in one run, alternating brokers, and prints a markdown table.
#
# Each measurement gets a freshly started broker (so peak RSS is per scenario), on a
# port of its own, and the broker is stopped by the PID this script started. Every
# step has a time limit; temporary files go away on exit (unless --keep).
#
# Usage: bench/compare.sh [options]      (bench/compare.sh --help for the list)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
prog=compare.sh
# shellcheck source=bench/lib.sh
source "$script_dir/lib.sh"

runs=3
duration=10
warmup=2
drain_max=30
bench_threads=1
pin=0
keep=0
out_file=""
persistence=0
stand_in=0
mosquitto_nodelay=1
mosquitto_bin=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
edgemq_bin=${EDGEMQ_BIN:-}
bench_bin=${EDGEMQ_BENCH:-}
extra_bench_args=()
mosquitto_extra=()
scenarios=()
brokers=(edgemq mosquitto)

# Named scenarios; --scenario NAME picks one, --scenario 'NAME|ARGS' defines one.
declare -A presets=(
  [qos0-8to1]="--publishers 8 --subscribers 1 --qos 0"
  [qos1-8to1]="--publishers 8 --subscribers 1 --qos 1 --inflight 64"
  [qos2-8to1]="--publishers 8 --subscribers 1 --qos 2 --inflight 64"
  [qos0-window-8to1]="--publishers 8 --subscribers 1 --qos 0 --qos0-window 100"
  [fanout-1to8]="--publishers 1 --subscribers 8 --qos 0"
  [latency-qos1]="--publishers 8 --subscribers 1 --qos 1 --rate 500"
  [many-clients]="--publishers 200 --subscribers 4 --qos 1 --rate 20 --inflight 8"
)

usage() {
  cat <<EOF
usage: bench/compare.sh [options]
Benchmarks edgemq against Mosquitto ($mosquitto_bin) on 127.0.0.1 with edgemq-bench.

  --edgemq PATH          edgemq binary (default \$EDGEMQ_BIN, else build/broker/edgemq)
  --stand-in-mosquitto   run a second Mosquitto as the "edgemq" side (tests this script
                         while edgemq does not exist yet; its rows say so)
  --only edgemq|mosquitto  measure one broker only
  --brokers LIST         the brokers to compare, space or comma separated, from:
                         mosquitto, edgemq, edgemq-none, edgemq-process, edgemq-power
                         (edgemq-MODE runs edgemq with --durability MODE; default
                         "edgemq mosquitto")
  --bench PATH           edgemq-bench binary (default \$EDGEMQ_BENCH, else the first of
                         build-bench/bench/, build/bench/)
  --scenario S           repeatable; a preset name or 'NAME|edgemq-bench args'
                         (default: qos0-8to1 and qos1-8to1). Presets:
$(presets_help)
  --runs N               runs per scenario and broker, brokers alternating (default 3)
  --duration S           measured seconds per run (default 10)
  --warmup S             warm-up seconds per run (default 2)
  --drain-max S          edgemq-bench --drain-max: how long to wait for late messages
                         after the load stops (default 30)
  --bench-threads T      edgemq-bench --threads (default 1: leaves a core to the broker)
  --bench-arg ARG        repeatable; passed to every edgemq-bench run
  --pin                  pin the broker to CPU 0 and edgemq-bench to CPU 1 (taskset)
  --persistence          Mosquitto with persistence on (edgemq always has its data dir)
  --mosquitto-default-nodelay  keep Mosquitto's default set_tcp_nodelay false (Nagle on
                         its sends, which adds latency at QoS 0); default is true
  --mosquitto-conf LINE  repeatable; extra line for the generated mosquitto.conf
  --out FILE             also write the report to FILE
  --keep                 keep the temporary directory (broker logs, raw JSON results)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --edgemq) edgemq_bin=$2; shift 2 ;;
    --stand-in-mosquitto) stand_in=1; shift ;;
    --only) [[ $2 == edgemq || $2 == mosquitto ]] || die "--only edgemq|mosquitto"; brokers=("$2"); shift 2 ;;
    --brokers)
      read -r -a brokers <<<"${2//,/ }"
      for b in "${brokers[@]}"; do
        [[ $b =~ ^(mosquitto|edgemq|edgemq-none|edgemq-process|edgemq-power)$ ]] || die "--brokers: unknown broker '$b'"
      done
      shift 2 ;;
    --bench) bench_bin=$2; shift 2 ;;
    --scenario) scenarios+=("$2"); shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --drain-max) drain_max=$2; shift 2 ;;
    --bench-threads) bench_threads=$2; shift 2 ;;
    --bench-arg) extra_bench_args+=("$2"); shift 2 ;;
    --pin) pin=1; shift ;;
    --persistence) persistence=1; shift ;;
    --mosquitto-default-nodelay) mosquitto_nodelay=0; shift ;;
    --mosquitto-conf) mosquitto_extra+=("$2"); shift 2 ;;
    --out) out_file=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive whole number"
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(qos0-8to1 qos1-8to1)

# ---- binaries ----------------------------------------------------------------------

[[ -n $bench_bin ]] || bench_bin=$(find_bench_bin) || true
[[ -n $bench_bin && -x $bench_bin ]] ||
  die "edgemq-bench not found; build it: cmake --build build-bench --target edgemq-bench (or --bench PATH)"
[[ -x $mosquitto_bin ]] || die "mosquitto not found at $mosquitto_bin (apt-get install mosquitto, or MOSQUITTO_BIN)"
needs_edgemq=0
for b in "${brokers[@]}"; do [[ $b == edgemq* ]] && needs_edgemq=1; done
if [[ $needs_edgemq == 1 && $stand_in == 0 ]]; then
  edgemq_bin=${edgemq_bin:-$repo_dir/build/broker/edgemq}
  [[ -x $edgemq_bin ]] ||
    die "edgemq binary not found at $edgemq_bin: build it, or set EDGEMQ_BIN / --edgemq PATH (--stand-in-mosquitto tests this script with Mosquitto on both sides)"
fi
if [[ $pin == 1 ]]; then
  command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
  [[ $(nproc) -ge 2 ]] || die "--pin needs 2 CPUs"
fi

make_tmp compare

# ---- brokers -----------------------------------------------------------------------

pin_broker=()
pin_bench=()
if [[ $pin == 1 ]]; then pin_broker=(taskset -c 0); pin_bench=(taskset -c 1); fi

# start_mosquitto DIR: sets broker_pid and broker_port. A random port that looks free
# can be taken a moment later; Mosquitto then exits, and we try another.
start_mosquitto() {
  local dir=$1 attempt port
  mkdir -p "$dir"
  for attempt in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 40000 ))
    port_in_use "$port" && continue
    {
      echo "listener $port 127.0.0.1"
      echo "allow_anonymous true"
      # Started as root, Mosquitto drops to user 'mosquitto' unless told otherwise;
      # staying root keeps the temp dir (and persistence file) writable.
      echo "user root"
      echo "log_dest stderr"
      echo "log_type error"
      echo "log_type warning"
      if [[ $mosquitto_nodelay == 1 ]]; then echo "set_tcp_nodelay true"; fi
      if [[ $persistence == 1 ]]; then echo "persistence true"; echo "persistence_location $dir/"; else echo "persistence false"; fi
      for line in "${mosquitto_extra[@]}"; do echo "$line"; done
    } >"$dir/mosquitto.conf"
    "${pin_broker[@]}" "$mosquitto_bin" -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
    broker_pid=$!
    if wait_listening "$broker_pid" "$port"; then broker_port=$port; return 0; fi
    stop_broker
  done
  note "Mosquitto did not start; last log:"; tail -5 "$dir/broker.log" >&2 || true
  return 1
}

# start_edgemq DIR [DURABILITY]: edgemq picks its own port (-p 0) and logs
# "listening mqtt 127.0.0.1:PORT" on stderr.
start_edgemq() {
  local dir=$1 port="" durability=()
  [[ -n ${2:-} ]] && durability=(--durability "$2")
  mkdir -p "$dir/data"
  "${pin_broker[@]}" "$edgemq_bin" -p 0 --bind 127.0.0.1 --data-dir "$dir/data" "${durability[@]}" >"$dir/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening mqtt 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$dir/broker.log" | head -1)
    [[ -n $port ]] && break
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]] || ! wait_listening "$broker_pid" "$port"; then
    note "edgemq did not start (no 'listening mqtt 127.0.0.1:PORT' line within 10 s); last log:"
    tail -5 "$dir/broker.log" >&2 || true
    stop_broker
    return 1
  fi
  broker_port=$port
}

start_broker() {  # start_broker NAME DIR
  if [[ $1 == mosquitto || $stand_in == 1 ]]; then start_mosquitto "$2"
  elif [[ $1 == edgemq-* ]]; then start_edgemq "$2" "${1#edgemq-}"
  else start_edgemq "$2"; fi
}

# ---- runs ------------------------------------------------------------------------------

for s in "${scenarios[@]}"; do scenario_args "$s" >/dev/null; done

results="$tmp/results.jsonl"   # one line per run: broker, scenario, bench JSON, broker stats
: >"$results"
# edgemq-bench bounds itself with --max-time; `timeout` is the backstop.
bench_max=$(awk -v d="$duration" -v w="$warmup" -v m="$drain_max" 'BEGIN { printf "%d", 20 + w + d + m + 15 }')
bench_limit=$((bench_max + 10))
total_runs=$(( ${#scenarios[@]} * runs * ${#brokers[@]} ))
note "$total_runs runs of $(awk -v d="$duration" -v w="$warmup" 'BEGIN{print d+w}') s plus drain (at most ${bench_limit} s) each; bench $bench_bin; temp $tmp"

run_no=0
for s in "${scenarios[@]}"; do
  name=$(scenario_name "$s")
  read -r -a sargs <<<"$(scenario_args "$s")"
  for ((r = 1; r <= runs; r++)); do
    # Rotate which broker goes first so a drift in machine load hits all alike.
    k=$(( (r - 1) % ${#brokers[@]} ))
    order=("${brokers[@]:k}" "${brokers[@]:0:k}")
    for b in "${order[@]}"; do
      run_no=$((run_no + 1))
      dir="$tmp/$b-$name-$r"
      if ! start_broker "$b" "$dir"; then
        printf '{"broker":"%s","scenario":"%s","run":%d,"status":2,"error":"broker did not start"}\n' "$b" "$name" "$r" >>"$results"
        continue
      fi
      cpu0=$(broker_cpu_s)
      disk0=$(broker_disk_bytes)
      set +e
      line=$(timeout -k 5 "$bench_limit" "${pin_bench[@]}" "$bench_bin" --port "$broker_port" --json \
               --duration "$duration" --warmup "$warmup" --threads "$bench_threads" \
               --max-time "$bench_max" --drain-max "$drain_max" --label "$b/$name/$r" \
               "${sargs[@]}" "${extra_bench_args[@]}" 2>"$dir/bench.log" | tail -1)
      status=$?
      set -e
      cpu1=$(broker_cpu_s)
      disk1=$(broker_disk_bytes)
      rss=$(broker_peak_rss_kib)
      alive=1; kill -0 "$broker_pid" 2>/dev/null || alive=0
      stop_broker
      [[ $line == "{"* ]] || line="{\"status\":$status,\"error\":\"$(tail -1 "$dir/bench.log" | tr -d '"\\')\"}"
      cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
      disk=$(( ${disk1:-0} - ${disk0:-0} ))
      printf '{"broker":"%s","scenario":"%s","run":%d,"broker_peak_rss_kib":%s,"broker_cpu_s":%s,"broker_disk_bytes":%d,"broker_survived":%s,%s\n' \
        "$b" "$name" "$r" "${rss:-0}" "$cpu" "$disk" "$([[ $alive == 1 ]] && echo true || echo false)" "${line#\{}" >>"$results"
      note "[$run_no/$total_runs] $b $name run $r: $(json_get delivered_per_s "$line") delivered/s, p99 $(json_get latency_p99_us "$line") us, lost $(json_get lost "$line"), broker cpu ${cpu} s, rss ${rss} KiB, disk ${disk} B$( [[ -n $(json_get error "$line") ]] && echo ", error: $(json_get error "$line")")"
    done
  done
done

# ---- report ------------------------------------------------------------------------------

label_of() {
  if [[ $1 == edgemq && $stand_in == 1 ]]; then echo "edgemq (stand-in: mosquitto)"; else echo "$1"; fi
}
field_values() {  # field_values BROKER SCENARIO KEY: one value per successful run
  grep -F "\"broker\":\"$1\",\"scenario\":\"$2\"," "$results" | while IFS= read -r l; do
    [[ $(json_get status "$l") == 0 ]] && json_get "$3" "$l"
  done
}
field_sum() { field_values "$@" | awk '{s += $1} END {printf "%d", s}'; }

report() {
  # A cell with no successful run makes greps fail; the report must still print.
  set +e +o pipefail
  echo "## edgemq vs Mosquitto ($(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r))"
  echo
  echo "edgemq-bench $(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo '?'), loopback, $runs run(s) per cell, ${warmup} s warm-up + ${duration} s measured, bench threads $bench_threads$([[ $pin == 1 ]] && echo ', pinned: broker CPU 0, bench CPU 1'). Mosquitto: $("$mosquitto_bin" -h 2>/dev/null | head -1 | sed 's/^mosquitto version //; s/ .*//'), set_tcp_nodelay $([[ $mosquitto_nodelay == 1 ]] && echo true || echo false), persistence $([[ $persistence == 1 ]] && echo on || echo off)."
  echo
  echo "| scenario | broker | delivered msgs/s (median) | min-max | p50 latency us | p99 latency us | lost | dup | ooo | broker peak RSS MiB | broker CPU s | CPU us/msg | disk B/msg | vs mosquitto |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for s in "${scenarios[@]}"; do
    name=$(scenario_name "$s")
    declare -A med=()
    for b in "${brokers[@]}"; do med[$b]=$(field_values "$b" "$name" delivered_per_s | median); done
    for b in "${brokers[@]}"; do
      ok=$(field_values "$b" "$name" delivered_per_s | wc -l)
      failed=$(( $(grep -cF "\"broker\":\"$b\",\"scenario\":\"$name\"," "$results" || true) - ok ))
      range=$(field_values "$b" "$name" delivered_per_s | value_range)
      p50=$(field_values "$b" "$name" latency_p50_us | median)
      p99=$(field_values "$b" "$name" latency_p99_us | median)
      rss=$(field_values "$b" "$name" broker_peak_rss_kib | median)
      cpu=$(field_values "$b" "$name" broker_cpu_s | median)
      # Broker CPU per delivered message over the whole run (warm-up and drain included).
      per_msg=$(paste <(field_values "$b" "$name" broker_cpu_s) <(field_values "$b" "$name" received) |
                awk '$2 > 0 {print $1 * 1e6 / $2}' | median)
      # Bytes written to disk per delivered message, from /proc/PID/io (see broker_disk_bytes).
      disk_per_msg=$(paste <(field_values "$b" "$name" broker_disk_bytes) <(field_values "$b" "$name" received) |
                     awk '$2 > 0 {print $1 / $2}' | median)
      ratio="-"
      if [[ $b == edgemq* && -n ${med[mosquitto]:-} && ${med[mosquitto]} != "-" && ${med[$b]} != "-" ]]; then
        ratio=$(ratio "${med[$b]}" "${med[mosquitto]}")
      fi
      undrained=$(field_values "$b" "$name" drain_end | grep -cE 'max|cut' || true)
      lost=$(field_sum "$b" "$name" lost)
      (( undrained > 0 )) && lost="$lost*"
      label=$(label_of "$b")
      (( failed > 0 )) && label="$label ($failed failed)"
      echo "| $name | $label | $(fmt_int "${med[$b]}") | $range | $(fmt_lat "$p50") | $(fmt_lat "$p99") | $lost | $(field_sum "$b" "$name" duplicates) | $(field_sum "$b" "$name" out_of_order) | $(fmt_mib "$rss") | $(fmt_1 "$cpu") | $(fmt_1 "$per_msg") | $(fmt_1 "$disk_per_msg") | $ratio |"
    done
    unset med
  done
  echo
  echo "Scenarios:"
  for s in "${scenarios[@]}"; do echo "- \`$(scenario_name "$s")\`: edgemq-bench $(scenario_args "$s")"; done
  echo
  echo "disk B/msg: bytes the broker wrote to disk during the run (/proc/PID/io write_bytes - cancelled_write_bytes, warm-up and drain included) per delivered message."
  echo "lost/dup/ooo: summed over the runs; * = some run's drain was cut off (--drain-max), so 'lost' may include late messages (see bench/README.md)."
  echo "Failed runs (left out of the medians), and brokers that died:"
  local failures
  failures=$(grep -v '"status":0[,}]' "$results" | while IFS= read -r l; do
    echo "- $(json_get broker "$l") $(json_get scenario "$l") run $(json_get run "$l"): status $(json_get status "$l") $(json_get error "$l")"
  done; grep -F '"broker_survived":false' "$results" | while IFS= read -r l; do
    echo "- $(json_get broker "$l") $(json_get scenario "$l") run $(json_get run "$l"): the broker was gone at the end of the run"
  done)
  echo "${failures:-- none}"
  true
}

if [[ -n $out_file ]]; then report | tee "$out_file"; else report; fi
if [[ $keep == 1 ]]; then note "raw results: $results"; fi
