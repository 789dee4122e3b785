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
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh

# The etcd the benchmark compares against: Debian's, at /usr/bin/etcd.
if [[ ! -x /usr/bin/etcd ]]; then
    ensure_packages etcd-server
fi
# The build needs protoc (etcd-client generates its gRPC code).
ensure_packages protobuf-compiler build-essential pkg-config
ensure_rust_tools

cargo build --profile "${RKUBE_BENCH_PROFILE:-release}" -p rkube-e2e --bin bench-storage
exec "${CARGO_TARGET_DIR:-target}/${RKUBE_BENCH_PROFILE:-release}/bench-storage" "$@"
