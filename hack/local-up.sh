#!/usr/bin/env bash
# Brings up a local rkube cluster on the embedded store and prints how to
# point kubectl at it. Installs what it needs when run as root. Idempotent:
# running it again rebuilds and restarts the cluster, keeping its data.
#
#   hack/local-up.sh                       build, (re)start, print the KUBECONFIG line
#   hack/local-up.sh --simulated-nodes N   also run N simulated nodes (no containers)
#   hack/local-up.sh --down                stop the cluster (data is kept)
#   hack/local-up.sh --clean               stop it and delete its data
#
# Environment: RKUBE_DATA_DIR (default .local/cluster in the checkout),
# RKUBE_PORT (default 6443), RKUBE_CONTROLLERS_PORT (default 10257) and
# RKUBE_SCHEDULER_PORT (default 10259) for their /healthz and /metrics,
# RKUBE_STORAGE_BACKEND (embedded|etcd), RKUBE_ETCD_SERVERS (with the etcd
# backend), RKUBE_SKIP_BUILD (use target/release as it is), RKUBE_BIN_DIR
# (run the binaries of that directory as they are, e.g. target/debug;
# nothing is built).
#
# The cluster is the API server, the controller manager and the scheduler
# (each a separate process, logs and pid files in the data dir), plus
# simulated nodes when asked for; the node components come here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/deps.sh
source hack/lib/cluster-files.sh

repo=$(pwd)
data=${RKUBE_DATA_DIR:-$repo/.local/cluster}
port=${RKUBE_PORT:-6443}
backend=${RKUBE_STORAGE_BACKEND:-embedded}
pidfile=$data/apiserver.pid

components="simnodes scheduler controllers apiserver"

stop_one() { # name
  local pidfile=$data/$1.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid; pid=$(cat "$pidfile")
    echo ">> stopping $1 (pid $pid)" >&2
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  for c in $components; do stop_one "$c"; done
}

start_one() { # name binary args...
  local name=$1 binary=$2
  shift 2
  nohup "$binary" "$@" >>"$data/$name.log" 2>&1 &
  echo $! > "$data/$name.pid"
}

simulated_nodes=0
while [ $# -gt 0 ]; do
  case "$1" in
    --down) stop; exit 0 ;;
    --clean) stop; rm -rf "$data"; echo ">> removed $data" >&2; exit 0 ;;
    --simulated-nodes)
      simulated_nodes=${2:-}
      [[ "$simulated_nodes" =~ ^[0-9]+$ ]] || { echo "--simulated-nodes needs a number" >&2; exit 2; }
      shift 2 ;;
    *) echo "unknown argument: $1 (expected --simulated-nodes N, --down or --clean)" >&2; exit 2 ;;
  esac
done

if [ -n "${RKUBE_BIN_DIR:-}" ]; then
  ensure_packages curl ca-certificates
  bin_dir=$(cd "$RKUBE_BIN_DIR" && pwd)
  for b in rkube-apiserver rkube-controllers rkube-scheduler $([ "$simulated_nodes" -gt 0 ] && echo rkube-simnodes); do
    [ -x "$bin_dir/$b" ] || { echo "RKUBE_BIN_DIR=$RKUBE_BIN_DIR has no $b" >&2; exit 1; }
  done
else
  ensure_packages build-essential pkg-config curl ca-certificates protobuf-compiler
  ensure_rust_tools
  if [ -z "${RKUBE_SKIP_BUILD:-}" ]; then
    echo ">> building (cargo build --release)" >&2
    cargo build --release --locked -p rkube-apiserver -p rkube-controllers -p rkube-scheduler -p rkube-e2e \
      --bin rkube-apiserver --bin rkube-controllers --bin rkube-scheduler --bin rkube-simnodes >&2
  fi
  bin_dir=$repo/target/release
fi
bin=$bin_dir/rkube-apiserver

ensure_admin_token "$data"

stop
echo ">> starting the API server on https://127.0.0.1:$port (storage: $backend)" >&2
start_one apiserver "$bin" \
  --data-dir "$data" \
  --secure-port "$port" \
  --storage-backend "$backend" \
  ${RKUBE_ETCD_SERVERS:+--etcd-servers "$RKUBE_ETCD_SERVERS"} \
  --token-auth-file "$data/tokens.csv"
pidfile=$data/apiserver.pid

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

echo ">> starting the controller manager and the scheduler" >&2
start_one controllers "$bin_dir/rkube-controllers" --kubeconfig "$kubeconfig" \
  --root-ca-file "$data/pki/ca.crt" --port "${RKUBE_CONTROLLERS_PORT:-10257}" \
  --cluster-signing-cert-file "$data/pki/ca.crt" --cluster-signing-key-file "$data/pki/ca.key"
start_one scheduler "$bin_dir/rkube-scheduler" --kubeconfig "$kubeconfig" \
  --secure-port "${RKUBE_SCHEDULER_PORT:-10259}"
if [ "$simulated_nodes" -gt 0 ]; then
  echo ">> starting $simulated_nodes simulated nodes" >&2
  start_one simnodes "$bin_dir/rkube-simnodes" --kubeconfig "$kubeconfig" \
    --nodes "$simulated_nodes" --zones zone-a,zone-b,zone-c
fi
sleep 1
for c in controllers scheduler $([ "$simulated_nodes" -gt 0 ] && echo simnodes); do
  if ! kill -0 "$(cat "$data/$c.pid")" 2>/dev/null; then
    echo "$c exited; last lines of $data/$c.log:" >&2
    tail -20 "$data/$c.log" >&2
    exit 1
  fi
done

cat <<DONE
rkube is up: API server (pid $(cat "$pidfile")), controller manager, scheduler$([ "$simulated_nodes" -gt 0 ] && echo ", $simulated_nodes simulated nodes").
Data and logs (apiserver.log, controllers.log, scheduler.log, simnodes.log) are in $data.
Point kubectl at it with:

  export KUBECONFIG=$kubeconfig

Stop it with: hack/local-up.sh --down
DONE
