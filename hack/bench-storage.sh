#!/usr/bin/env bash
# Storage benchmark: rkube's embedded backend and a real etcd, side by side
# on this machine (writes/s, reads/s, p50/p99 latency, watch fan-out).
#
#   hack/bench-storage.sh                       # the full default run (~3 min)
#   hack/bench-storage.sh --json out.json       # also machine-readable results
#   hack/bench-storage.sh --backends embedded --clients 16 --duration-secs 1
#
# Flags are passed through to the `bench-storage` binary (see --help). The
# markdown table goes to stdout, progress to stderr. Exits non-zero if any
# operation failed or any watcher missed an event.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ETCD=/usr/bin/etcd
if [[ ! -x "$ETCD" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        echo "bench-storage.sh: installing etcd-server (for $ETCD)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
    else
        echo "bench-storage.sh: $ETCD is missing; install it with: sudo apt-get install -y etcd-server" >&2
        exit 1
    fi
fi

cargo build --release -p rkube-e2e --bin bench-storage
exec "${CARGO_TARGET_DIR:-target}/release/bench-storage" "$@"
