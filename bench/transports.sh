#!/usr/bin/env bash
# Measures MQTT over TCP, TLS, WebSocket and WebSocket over TLS, in one run, on edgemq
# and on Debian's Mosquitto with the same certificates, and prints a markdown table.
#
# Each measurement gets a freshly started broker with all four listeners (plain MQTT,
# mqtts, ws, wss) on free loopback ports; edgemq-bench uses one of them. Brokers are
# stopped by the PID this script started; every step has a time limit; temporary
# files (certificates, configs, data dirs, logs) go away on exit unless --keep.
#
# Usage: bench/transports.sh [options]      (bench/transports.sh --help for the list)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
prog=transports.sh
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
stand_in=0
mosquitto_bin=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
edgemq_bin=${EDGEMQ_BIN:-}
bench_bin=${EDGEMQ_BENCH:-}
extra_bench_args=()
scenarios=()
transports=(mqtt mqtts ws wss)
brokers=(edgemq-none mosquitto edgemq)

declare -A presets=(
  [qos0-8to1]="--publishers 8 --subscribers 1 --qos 0"
  [qos1-8to1]="--publishers 8 --subscribers 1 --qos 1 --inflight 64"
  [qos2-8to1]="--publishers 8 --subscribers 1 --qos 2 --inflight 64"
  [qos0-window-8to1]="--publishers 8 --subscribers 1 --qos 0 --qos0-window 100"
  [latency-qos1]="--publishers 8 --subscribers 1 --qos 1 --rate 500"
)
# edgemq-bench --transport for each listener.
declare -A bench_transport=([mqtt]=tcp [mqtts]=tls [ws]=ws [wss]=wss)

usage() {
  cat <<EOF
usage: bench/transports.sh [options]
MQTT over mqtt (TCP), mqtts (TLS), ws and wss (WebSocket at /mqtt) on edgemq and on
Mosquitto ($mosquitto_bin), 127.0.0.1, measured with edgemq-bench; a markdown table out.

  --edgemq PATH          edgemq binary (default \$EDGEMQ_BIN, else build/broker/edgemq)
  --bench PATH           edgemq-bench (default \$EDGEMQ_BENCH, else the first of
                         build-bench/bench/, build/bench/, build-bench-only/)
  --brokers LIST         space or comma separated, from: mosquitto, edgemq (its default
                         durability), edgemq-none, edgemq-process, edgemq-power
                         (edgemq --durability MODE); default "edgemq-none mosquitto edgemq"
  --transports LIST      from: mqtt mqtts ws wss (default all four)
  --scenario S           repeatable; a preset name or 'NAME|edgemq-bench args'
                         (default: qos0-8to1 and qos1-8to1). Presets:
$(presets_help)
  --runs N               runs per cell, brokers alternating (default 3)
  --duration S           measured seconds per run (default 10)
  --warmup S             warm-up seconds per run (default 2)
  --drain-max S          edgemq-bench --drain-max (default 30)
  --bench-threads T      edgemq-bench --threads (default 1: leaves a core to the broker)
  --bench-arg ARG        repeatable; passed to every edgemq-bench run
  --pin                  pin the broker to CPU 0 and edgemq-bench to CPU 1 (taskset)
  --stand-in-mosquitto   run Mosquitto as the "edgemq" brokers too (tests this script
                         without edgemq; its rows say so)
  --out FILE             also write the report to FILE
  --keep                 keep the temporary directory (logs, certificates, raw JSON)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --edgemq) edgemq_bin=$2; shift 2 ;;
    --bench) bench_bin=$2; shift 2 ;;
    --brokers)
      read -r -a brokers <<<"${2//,/ }"
      for b in "${brokers[@]}"; do
        [[ $b =~ ^(mosquitto|edgemq|edgemq-none|edgemq-process|edgemq-power)$ ]] || die "--brokers: unknown broker '$b'"
      done
      shift 2 ;;
    --transports)
      read -r -a transports <<<"${2//,/ }"
      for t in "${transports[@]}"; do [[ -n ${bench_transport[$t]:-} ]] || die "--transports: unknown transport '$t'"; done
      shift 2 ;;
    --scenario) scenarios+=("$2"); shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --drain-max) drain_max=$2; shift 2 ;;
    --bench-threads) bench_threads=$2; shift 2 ;;
    --bench-arg) extra_bench_args+=("$2"); shift 2 ;;
    --pin) pin=1; shift ;;
    --stand-in-mosquitto) stand_in=1; shift ;;
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
  die "edgemq-bench not found; build it: cmake -S bench -B build-bench-only && cmake --build build-bench-only (or --bench PATH)"
"$bench_bin" --help | grep -q -- '--transport' || die "$bench_bin has no --transport: rebuild it"
[[ -x $mosquitto_bin ]] || die "mosquitto not found at $mosquitto_bin (apt-get install mosquitto, or MOSQUITTO_BIN)"
command -v openssl >/dev/null || die "needs the openssl command (apt-get install openssl)"
needs_edgemq=0
for b in "${brokers[@]}"; do [[ $b == edgemq* ]] && needs_edgemq=1; done
if [[ $needs_edgemq == 1 && $stand_in == 0 ]]; then
  edgemq_bin=${edgemq_bin:-$repo_dir/build/broker/edgemq}
  [[ -x $edgemq_bin ]] ||
    die "edgemq binary not found at $edgemq_bin: build it, or set EDGEMQ_BIN / --edgemq PATH"
  "$edgemq_bin" --help 2>&1 | grep -q -- '--listen' || die "$edgemq_bin has no --listen option (no ws/wss/mqtts listeners yet)"
fi
if [[ $pin == 1 ]]; then
  command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
  [[ $(nproc) -ge 2 ]] || die "--pin needs 2 CPUs"
fi

make_tmp transports

# ---- certificates: a CA and a server certificate for localhost and 127.0.0.1 ---------------

certs="$tmp/certs"
mkdir -p "$certs"
(
  cd "$certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
    -days 2 -subj "/CN=edgemq bench CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
    -subj /CN=localhost
  printf '%s\n' basicConstraints=CA:FALSE subjectAltName=DNS:localhost,IP:127.0.0.1 extendedKeyUsage=serverAuth >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "$RANDOM$RANDOM" -days 2 \
    -out server.pem -extfile server.ext
) >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log" >&2; die "openssl could not make the test certificates"; }

# ---- brokers -----------------------------------------------------------------------

pin_broker=()
pin_bench=()
if [[ $pin == 1 ]]; then pin_broker=(taskset -c 0); pin_bench=(taskset -c 1); fi

declare -A port=()

# start_mosquitto DIR: sets broker_pid and port[mqtt|mqtts|ws|wss]. Random ports that
# look free can be taken a moment later; Mosquitto then exits, and we try others.
start_mosquitto() {
  local dir=$1 attempt t p tls
  mkdir -p "$dir"
  tls="cafile $certs/ca.pem
certfile $certs/server.pem
keyfile $certs/server.key"
  for attempt in 1 2 3 4 5; do
    for t in mqtt mqtts ws wss; do
      p=$(( 20000 + RANDOM % 40000 ))
      while port_in_use "$p"; do p=$(( 20000 + RANDOM % 40000 )); done
      port[$t]=$p
    done
    cat >"$dir/mosquitto.conf" <<EOF
allow_anonymous true
user root
log_dest stderr
log_type error
log_type warning
set_tcp_nodelay true
persistence false
listener ${port[mqtt]} 127.0.0.1
listener ${port[mqtts]} 127.0.0.1
$tls
listener ${port[ws]} 127.0.0.1
protocol websockets
socket_domain ipv4
listener ${port[wss]} 127.0.0.1
protocol websockets
socket_domain ipv4
$tls
EOF
    "${pin_broker[@]}" "$mosquitto_bin" -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
    broker_pid=$!
    if wait_listening "$broker_pid" "${port[mqtt]}" "${port[mqtts]}" "${port[ws]}" "${port[wss]}"; then return 0; fi
    stop_broker
  done
  note "Mosquitto did not start; last log:"; tail -5 "$dir/broker.log" >&2 || true
  return 1
}

# start_edgemq DIR [DURABILITY]: edgemq picks its own ports and logs
# "listening SCHEME 127.0.0.1:PORT" for each listener on stderr.
start_edgemq() {
  local dir=$1 durability=() t p missing
  [[ -n ${2:-} ]] && durability=(--durability "$2")
  mkdir -p "$dir/data"
  "${pin_broker[@]}" "$edgemq_bin" -p 0 --bind 127.0.0.1 --data-dir "$dir/data" "${durability[@]}" \
    --listen ws://127.0.0.1:0/mqtt --listen wss://127.0.0.1:0/mqtt --listen mqtts://127.0.0.1:0 \
    --cert "$certs/server.pem" --key "$certs/server.key" >"$dir/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    missing=0
    for t in mqtt mqtts ws wss; do
      p=$(sed -n "s/.*listening $t 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p" "$dir/broker.log" | head -1)
      port[$t]=$p
      [[ -n $p ]] || missing=1
    done
    [[ $missing == 0 ]] && break
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $missing == 1 ]] || ! wait_listening "$broker_pid" "${port[mqtt]}" "${port[mqtts]}" "${port[ws]}" "${port[wss]}"; then
    note "edgemq did not start (no 'listening mqtt|mqtts|ws|wss 127.0.0.1:PORT' lines within 10 s); last log:"
    tail -5 "$dir/broker.log" >&2 || true
    stop_broker
    return 1
  fi
}

start_broker() {  # start_broker NAME DIR
  if [[ $1 == mosquitto || $stand_in == 1 ]]; then start_mosquitto "$2"
  elif [[ $1 == edgemq-* ]]; then start_edgemq "$2" "${1#edgemq-}"
  else start_edgemq "$2"; fi
}

# ---- runs ------------------------------------------------------------------------------

for s in "${scenarios[@]}"; do scenario_args "$s" >/dev/null; done

results="$tmp/results.jsonl"
: >"$results"
bench_max=$(awk -v d="$duration" -v w="$warmup" -v m="$drain_max" 'BEGIN { printf "%d", 20 + w + d + m + 15 }')
bench_limit=$((bench_max + 10))
total_runs=$(( ${#scenarios[@]} * ${#transports[@]} * runs * ${#brokers[@]} ))
note "$total_runs runs of $(awk -v d="$duration" -v w="$warmup" 'BEGIN{print d+w}') s plus drain (at most ${bench_limit} s) each; bench $bench_bin; temp $tmp"

run_no=0
for s in "${scenarios[@]}"; do
  name=$(scenario_name "$s")
  read -r -a sargs <<<"$(scenario_args "$s")"
  for t in "${transports[@]}"; do
    for ((r = 1; r <= runs; r++)); do
      # Rotate which broker goes first so a drift in machine load hits all alike.
      k=$(( (r - 1) % ${#brokers[@]} ))
      order=("${brokers[@]:k}" "${brokers[@]:0:k}")
      for b in "${order[@]}"; do
        run_no=$((run_no + 1))
        dir="$tmp/$b-$name-$t-$r"
        if ! start_broker "$b" "$dir"; then
          printf '{"broker":"%s","scenario":"%s","listener":"%s","run":%d,"status":2,"error":"broker did not start"}\n' "$b" "$name" "$t" "$r" >>"$results"
          continue
        fi
        cpu0=$(broker_cpu_s)
        set +e
        line=$(timeout -k 5 "$bench_limit" "${pin_bench[@]}" "$bench_bin" --port "${port[$t]}" --json \
                 --transport "${bench_transport[$t]}" --cafile "$certs/ca.pem" \
                 --duration "$duration" --warmup "$warmup" --threads "$bench_threads" \
                 --max-time "$bench_max" --drain-max "$drain_max" --label "$b/$name/$t/$r" \
                 "${sargs[@]}" "${extra_bench_args[@]}" 2>"$dir/bench.log" | tail -1)
        status=$?
        set -e
        cpu1=$(broker_cpu_s)
        rss=$(broker_peak_rss_kib)
        alive=1; kill -0 "$broker_pid" 2>/dev/null || alive=0
        stop_broker
        [[ $line == "{"* ]] || line="{\"status\":$status,\"error\":\"$(tail -1 "$dir/bench.log" | tr -d '"\\')\"}"
        cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
        printf '{"broker":"%s","scenario":"%s","listener":"%s","run":%d,"broker_peak_rss_kib":%s,"broker_cpu_s":%s,"broker_survived":%s,%s\n' \
          "$b" "$name" "$t" "$r" "${rss:-0}" "$cpu" "$([[ $alive == 1 ]] && echo true || echo false)" "${line#\{}" >>"$results"
        note "[$run_no/$total_runs] $b $name $t run $r: $(json_get delivered_per_s "$line") delivered/s, p99 $(json_get latency_p99_us "$line") us, lost $(json_get lost "$line"), broker cpu ${cpu} s, rss ${rss} KiB$( [[ -n $(json_get error "$line") ]] && echo ", error: $(json_get error "$line")")"
      done
    done
  done
done

# ---- report ------------------------------------------------------------------------------

label_of() {
  local l=$1
  [[ $1 == edgemq ]] && l="edgemq (default durability)"
  [[ $1 == edgemq-* ]] && l="edgemq --durability ${1#edgemq-}"
  [[ $1 == edgemq* && $stand_in == 1 ]] && l="$l (stand-in: mosquitto)"
  echo "$l"
}
field_values() {  # field_values BROKER SCENARIO LISTENER KEY: one value per successful run
  grep -F "\"broker\":\"$1\",\"scenario\":\"$2\",\"listener\":\"$3\"," "$results" | while IFS= read -r l; do
    [[ $(json_get status "$l") == 0 ]] && json_get "$4" "$l"
  done
}
field_sum() { field_values "$@" | awk '{s += $1} END {printf "%d", s}'; }

report() {
  set +e +o pipefail
  local mver
  mver=$("$mosquitto_bin" -h 2>/dev/null | head -1 | sed 's/^mosquitto version //; s/ .*//')
  echo "## MQTT transports: edgemq vs Mosquitto ($(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r))"
  echo
  echo "edgemq-bench $(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo '?') (TLS: OpenSSL $(openssl version | awk '{print $2}'); WebSocket: Boost.Beast), loopback, $runs run(s) per cell, ${warmup} s warm-up + ${duration} s measured, bench threads $bench_threads$([[ $pin == 1 ]] && echo ', pinned: broker CPU 0, bench CPU 1'). Mosquitto $mver: set_tcp_nodelay true, persistence off. Same ECDSA P-256 server certificate on both; load average at the start $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| scenario | listener | broker | delivered msgs/s (median) | min-max | p50 latency us | p99 latency us | lost | dup | ooo | broker peak RSS MiB | broker CPU s | CPU us/msg | vs own mqtt | vs mosquitto |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for s in "${scenarios[@]}"; do
    name=$(scenario_name "$s")
    for t in "${transports[@]}"; do
      for b in "${brokers[@]}"; do
        med=$(field_values "$b" "$name" "$t" delivered_per_s | median)
        med_plain=$(field_values "$b" "$name" mqtt delivered_per_s | median)
        med_mosq=$(field_values mosquitto "$name" "$t" delivered_per_s | median)
        ok=$(field_values "$b" "$name" "$t" delivered_per_s | wc -l)
        failed=$(( $(grep -cF "\"broker\":\"$b\",\"scenario\":\"$name\",\"listener\":\"$t\"," "$results" || true) - ok ))
        range=$(field_values "$b" "$name" "$t" delivered_per_s | value_range)
        p50=$(field_values "$b" "$name" "$t" latency_p50_us | median)
        p99=$(field_values "$b" "$name" "$t" latency_p99_us | median)
        rss=$(field_values "$b" "$name" "$t" broker_peak_rss_kib | median)
        cpu=$(field_values "$b" "$name" "$t" broker_cpu_s | median)
        per_msg=$(paste <(field_values "$b" "$name" "$t" broker_cpu_s) <(field_values "$b" "$name" "$t" received) |
                  awk '$2 > 0 {print $1 * 1e6 / $2}' | median)
        vs_plain="-"; [[ $t != mqtt ]] && vs_plain=$(ratio "$med" "$med_plain")
        vs_mosq="-"; [[ $b != mosquitto ]] && vs_mosq=$(ratio "$med" "$med_mosq")
        undrained=$(field_values "$b" "$name" "$t" drain_end | grep -cE 'max|cut' || true)
        lost=$(field_sum "$b" "$name" "$t" lost)
        (( undrained > 0 )) && lost="$lost*"
        label=$(label_of "$b")
        (( failed > 0 )) && label="$label ($failed failed)"
        echo "| $name | $t | $label | $(fmt_int "$med") | $range | $(fmt_lat "$p50") | $(fmt_lat "$p99") | $lost | $(field_sum "$b" "$name" "$t" duplicates) | $(field_sum "$b" "$name" "$t" out_of_order) | $(fmt_mib "$rss") | $(fmt_1 "$cpu") | $(fmt_1 "$per_msg") | $vs_plain | $vs_mosq |"
      done
    done
  done
  echo
  echo "Scenarios:"
  for s in "${scenarios[@]}"; do echo "- \`$(scenario_name "$s")\`: edgemq-bench $(scenario_args "$s")"; done
  echo
  echo "Listeners: mqtt = TCP, mqtts = TLS, ws / wss = MQTT over WebSocket (over TLS) at /mqtt; edgemq-bench --transport tcp|tls|ws|wss, verifying the server certificate against the test CA."
  echo "vs own mqtt: this broker's median on this listener / its median on plain mqtt (the cost of the transport). vs mosquitto: / Mosquitto's median on the same listener."
  echo "CPU us/msg: broker CPU over the whole run (connect, warm-up, drain) / messages delivered in it. lost/dup/ooo: summed over the runs; * = a drain was cut off (--drain-max)."
  echo "Failed runs (left out of the medians), and brokers that died:"
  local failures
  failures=$(grep -v '"status":0[,}]' "$results" | while IFS= read -r l; do
    echo "- $(json_get broker "$l") $(json_get scenario "$l") $(json_get listener "$l") run $(json_get run "$l"): status $(json_get status "$l") $(json_get error "$l")"
  done; grep -F '"broker_survived":false' "$results" | while IFS= read -r l; do
    echo "- $(json_get broker "$l") $(json_get scenario "$l") $(json_get listener "$l") run $(json_get run "$l"): the broker was gone at the end of the run"
  done)
  echo "${failures:-- none}"
  true
}

if [[ -n $out_file ]]; then report | tee "$out_file"; else report; fi
if [[ $keep == 1 ]]; then note "raw results: $results"; fi
