#!/usr/bin/env bash
# Runs rkube's whole test suite: formatting, clippy, then every test of every
# crate with cargo-nextest (real etcd, real kubectl where tests need them).
# Installs the Debian packages it needs when run as root. Idempotent.
#
#   hack/test.sh               everything (what CI runs)
#   hack/test.sh --no-lint     skip fmt and clippy
#   hack/test.sh -- <args>     extra arguments for cargo nextest run (e.g. a filter)
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/deps.sh

lint=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-lint) lint=0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

ensure_packages etcd-server protobuf-compiler build-essential pkg-config curl ca-certificates
ensure_rust_tools nextest
# e2e/tests/python_client.rs drives rkube with the Python `kubernetes` client
# (PyPI), installed once into a venv under target/ (the test skips without it).
if ! target/pyenv/bin/python3 -c 'import kubernetes' 2>/dev/null; then
  echo ">> installing the Python kubernetes client into target/pyenv" >&2
  { python3 -m venv target/pyenv && target/pyenv/bin/pip install --quiet kubernetes; } ||
    echo "warning: could not install the Python kubernetes client; its e2e test will be skipped" >&2
fi
export ETCD_BIN="${ETCD_BIN:-$(command -v etcd || echo /usr/bin/etcd)}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

start=$(date +%s)
if [ "$lint" = 1 ]; then
  echo ">> cargo fmt --check" >&2
  cargo fmt --all -- --check
  echo ">> cargo clippy" >&2
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
# End-to-end tests run the components' binaries (apiserver, controller
# manager, scheduler, simulated nodes): build every binary first.
echo ">> cargo build --workspace --bins" >&2
cargo build --workspace --bins --locked
echo ">> cargo nextest run" >&2
cargo nextest run --workspace --locked --profile ci "${extra[@]}"
echo ">> tests finished in $(( $(date +%s) - start ))s" >&2
