#!/usr/bin/env bash
# Installs what is missing, builds edgemq (Release) and runs it on its defaults:
# MQTT on 0.0.0.0:1883, one worker per core. Extra arguments go to edgemq,
# e.g. scripts/run.sh -p 1884 --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DEDGEMQ_BUILD_TESTS=OFF >/dev/null
cmake --build build/release --target edgemq -j"$(nproc)"
exec build/release/broker/edgemq "$@"
