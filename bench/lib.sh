# What the bench scripts share: messages, the temporary directory and stopping the
# broker they started (by its PID only), port checks, the broker's CPU / RSS / disk
# from /proc, JSON fields of edgemq-bench's output, statistics and scenarios.
#
# Sourced, not run. The script sets `prog` (its name, for messages) and `keep`
# (1: keep the temporary directory), and, for scenario_args, an associative array
# `presets` of scenario name -> edgemq-bench arguments. Broker state lives in
# `broker_pid`.

die() { echo "$prog: $*" >&2; exit 2; }
note() { echo "$prog: $*" >&2; }

# find_bench_bin: prints the first edgemq-bench of the usual build directories.
find_bench_bin() {
  local c
  for c in "$repo_dir/build-bench/bench/edgemq-bench" "$repo_dir/build/bench/edgemq-bench" \
           "$repo_dir/build-bench-only/edgemq-bench"; do
    [[ -x $c ]] && { echo "$c"; return 0; }
  done
  return 1
}

# ---- the temporary directory and the broker: only what we started ---------------------

broker_pid=""
stop_broker() {
  [[ -n $broker_pid ]] || return 0
  if kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$broker_pid" 2>/dev/null && { note "broker $broker_pid ignored SIGTERM; killing it"; kill -KILL "$broker_pid" 2>/dev/null || true; }
  fi
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=""
}

# make_tmp NAME: sets `tmp` to a new directory, removed on exit (with the broker
# stopped first) unless keep=1.
make_tmp() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgemq-$1.XXXXXX")
  trap cleanup EXIT
  trap 'note interrupted; exit 130' INT TERM
}
cleanup() {
  stop_broker
  if [[ $keep == 1 ]]; then note "kept $tmp"; else rm -rf "$tmp"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_listening PID PORT...: until PID accepts connections on every PORT, or dies;
# 10 s at most.
wait_listening() {
  local pid=$1 p up
  shift
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    up=1
    for p in "$@"; do port_in_use "$p" || { up=0; break; }; done
    [[ $up == 1 ]] && return 0
    sleep 0.1
  done
  return 1
}

# ---- the running broker, from /proc ---------------------------------------------------

clk_tck=$(getconf CLK_TCK)
# Peak RSS in KiB.
broker_peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$broker_pid/status" 2>/dev/null || echo 0; }
# CPU seconds so far, user + system.
broker_cpu_s() {
  # Fields after the ")" closing the command name: utime is the 12th, stime the 13th.
  sed 's/.*) //' "/proc/$broker_pid/stat" 2>/dev/null | awk -v hz="$clk_tck" '{printf "%.2f", ($12 + $13) / hz}'
}
# Bytes the broker has caused to be written to disk so far: write_bytes minus
# cancelled_write_bytes from /proc/PID/io (page-cache pages dirtied in disk-backed files,
# counted when dirtied, so an fsync-free write counts too; see bench/proc_io.py).
broker_disk_bytes() {
  awk '/^write_bytes:/ {w = $2} /^cancelled_write_bytes:/ {c = $2} END {printf "%d", w - c}' "/proc/$broker_pid/io" 2>/dev/null || echo 0
}

# ---- JSON and statistics ------------------------------------------------------------------

# json_get KEY LINE: the value of a flat key (numbers, booleans, strings without quotes).
json_get() {
  sed -n "s/.*\"$1\":\(\"\([^\"\\\\]\|\\\\.\)*\"\|[^,}]*\).*/\1/p" <<<"$2" | sed 's/^"\(.*\)"$/\1/'
}
# median of numbers on stdin ("-" if none)
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "-"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
fmt_int() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.0f", x }'; }
fmt_1() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.1f", x }'; }
fmt_lat() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else if (x >= 1000) printf "%.0f", x; else printf "%.1f", x }'; }
fmt_mib() { awk -v k="$1" 'BEGIN { if (k == "-") print "-"; else printf "%.1f", k / 1024 }'; }
# ratio A B: A / B to two places, "-" when either is missing or B is not positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b <= 0) print "-"; else printf "%.2f", a / b }'; }
# min-max of numbers on stdin, as whole numbers ("-" if none).
value_range() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {if (NR) printf "%.0f-%.0f", lo, hi; else print "-"}'; }

# ---- scenarios: a preset name, or 'NAME|edgemq-bench args' --------------------------------

scenario_name() { if [[ $1 == *"|"* ]]; then echo "${1%%|*}"; else echo "$1"; fi; }
scenario_args() {
  if [[ $1 == *"|"* ]]; then echo "${1#*|}"
  elif [[ -n ${presets[$1]:-} ]]; then echo "${presets[$1]}"
  else die "unknown scenario '$1' (presets: ${!presets[*]}; or 'NAME|ARGS')"; fi
}
presets_help() {
  local k
  for k in $(printf '%s\n' "${!presets[@]}" | sort); do printf '                           %-18s %s\n' "$k" "${presets[$k]}"; done
}
