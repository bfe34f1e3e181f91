#!/usr/bin/env bash
# Installs, from Debian 12's archive, whatever edgemq needs that this machine lacks.
#   scripts/install-deps.sh          build dependencies only
#   scripts/install-deps.sh --test   also what the test suite needs (clients, fuzzing)
set -euo pipefail

build_packages=(g++ cmake make pkg-config ccache libboost-dev nlohmann-json3-dev libsqlite3-dev libmbedtls-dev libssl-dev)
test_packages=(doctest-dev libpaho-mqttpp-dev libpaho-mqtt-dev mosquitto mosquitto-clients
               clang libclang-rt-14-dev python3 sqlite3 openssl chromium)

wanted=("${build_packages[@]}")
if [[ "${1:-}" == "--test" ]]; then
  wanted+=("${test_packages[@]}")
fi

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# MQTT.js tests need Node.js and npm; machines of this project usually have them from
# elsewhere (newer than Debian's), so Debian's are only a fallback.
if [[ "${1:-}" == "--test" ]] && ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the mosquitto service on install where systemd runs; the tests start
# their own Mosquitto on free ports and do not need it.
