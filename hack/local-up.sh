#!/usr/bin/env bash
# Brings up a local rkube cluster on the embedded store and prints how to
# point kubectl at it. Installs what it needs when run as root. Idempotent:
# running it again rebuilds and restarts the cluster, keeping its data.
#
#   hack/local-up.sh                  build, (re)start, print the KUBECONFIG line
#   hack/local-up.sh --down           stop the cluster (data is kept)
#   hack/local-up.sh --clean          stop it and delete its data
#
# Environment: RKUBE_DATA_DIR (default .local/cluster in the checkout),
# RKUBE_PORT (default 6443), RKUBE_STORAGE_BACKEND (embedded|etcd),
# RKUBE_ETCD_SERVERS (with the etcd backend).
#
# Today the cluster is the API server alone; components are added here as
# they land.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/deps.sh
source hack/lib/cluster-files.sh

repo=$(pwd)
data=${RKUBE_DATA_DIR:-$repo/.local/cluster}
port=${RKUBE_PORT:-6443}
backend=${RKUBE_STORAGE_BACKEND:-embedded}
pidfile=$data/apiserver.pid

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid; pid=$(cat "$pidfile")
    echo ">> stopping the API server (pid $pid)" >&2
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  --down) stop; exit 0 ;;
  --clean) stop; rm -rf "$data"; echo ">> removed $data" >&2; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1 (expected --down or --clean)" >&2; exit 2 ;;
esac

ensure_packages build-essential pkg-config curl ca-certificates protobuf-compiler
ensure_rust_tools
if [ -z "${RKUBE_SKIP_BUILD:-}" ]; then
  echo ">> building (cargo build --release)" >&2
  cargo build --release --locked -p rkube-apiserver --bin rkube-apiserver >&2
fi
bin=$repo/target/release/rkube-apiserver

ensure_admin_token "$data"

stop
echo ">> starting the API server on https://127.0.0.1:$port (storage: $backend)" >&2
nohup "$bin" \
  --data-dir "$data" \
  --secure-port "$port" \
  --storage-backend "$backend" \
  ${RKUBE_ETCD_SERVERS:+--etcd-servers "$RKUBE_ETCD_SERVERS"} \
  --token-auth-file "$data/tokens.csv" \
  >>"$data/apiserver.log" 2>&1 &
echo $! > "$pidfile"

for i in $(seq 1 100); do
  if curl -sf --cacert "$data/pki/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "the API server exited; last lines of $data/apiserver.log:" >&2
    tail -20 "$data/apiserver.log" >&2
    exit 1
  fi
  [ "$i" = 100 ] && { echo "the API server did not become ready; see $data/apiserver.log" >&2; exit 1; }
  sleep 0.1
done

write_admin_kubeconfig "$data" "$port"
kubeconfig=$data/kubeconfig

cat <<DONE
rkube is up (API server pid $(cat "$pidfile"), data in $data, log in $data/apiserver.log).
Point kubectl at it with:

  export KUBECONFIG=$kubeconfig

Stop it with: hack/local-up.sh --down
DONE
