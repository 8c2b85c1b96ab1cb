#!/usr/bin/env bash
# Soak: a bounded run of mixed calls (new, replay, renew, suspend, reactivate, cancel, conflict)
# against the release binary, printing its RSS, open files and database connections at intervals.
#   benches/soak.sh [seconds] [postgres admin url]
# With a URL, nexkey runs on a fresh database of that server; else on SQLite. Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-180}
cargo build --release -q
export NEXKEY_SOAK_BINARY="$PWD/target/release/nexkey" NEXKEY_SOAK_SECS="$seconds"
if [ -n "${2:-}" ]; then export NEXKEY_SOAK_DATABASE_URL="$2"; fi
cargo test -q --test api faults::soak::soak -- --ignored --nocapture --exact
