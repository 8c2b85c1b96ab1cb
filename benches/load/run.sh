#!/usr/bin/env bash
# Load run of POST /licenses/new against the release binary, side by side in one run:
# fresh calls (codes issued) and replays (stored answer), on SQLite and, when one answers,
# PostgreSQL. Prints requests per second and latency; compare the ratios, not the absolutes.
#   benches/load/run.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-16}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 1; }
cargo build --release -q
export NEXKEY_NEXWAY_USER=nexway NEXKEY_NEXWAY_PASSWORD=load-test-password NEXKEY_LOG=warn
export AUTH=$(printf '%s' "$NEXKEY_NEXWAY_USER:$NEXKEY_NEXWAY_PASSWORD" | base64)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

start() { # name port [database url]
    local dir="$work/$1"
    mkdir -p "$dir"
    env NEXKEY_BIND="127.0.0.1:$2" NEXKEY_DATA_DIR="$dir" ${3:+NEXKEY_DATABASE_URL="$3"} \
        target/release/nexkey serve >"$dir/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/health/live" >/dev/null && return; sleep 0.1; done
    echo "$1 did not start:"; cat "$dir/log"; exit 1
}

backends=("sqlite 18081")
start sqlite 18081
if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    db="nexkey_load_$$"
    psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $db"
    trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"; psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists $db with (force)"' EXIT
    start postgres 18082 "postgres://postgres@127.0.0.1:5432/$db"
    backends+=("postgres 18082")
fi

for backend in "${backends[@]}"; do
    set -- $backend
    for mode in fresh replay; do
        FRESH=$([ $mode = fresh ] && echo 1 || echo 0) RUN="$1$$" \
            wrk -t2 -c"$connections" -d"${seconds}s" -s benches/load/new.lua "http://127.0.0.1:$2" |
            grep '^requests=' | sed "s/^/$1 $mode: /"
    done
done
