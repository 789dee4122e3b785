#!/usr/bin/env bash
# API benchmark: the release rkube-apiserver on the embedded store, then on a
# real etcd, loaded by kube-load (JSON over HTTPS through kube-rs, loopback
# only). Measures, per backend:
#
#   - time from process start to /readyz, and RSS idle on an empty store;
#   - create ConfigMaps at 64 clients and at 1 client; GET by name at 64
#     clients; PUT at 64 clients; create Pods (~2 KiB) at 32 clients;
#   - LIST of 10,000 Pods, full and with limit=500;
#   - 1,000 watchers while 500 ConfigMaps/s are created;
#   - the same GET, create-Pods and LIST loads again in Kubernetes protobuf
#     (kube-load --protobuf, as client-go's typed clients speak), reported
#     as "<backend> protobuf" next to the JSON rows; the protobuf LIST reads
#     the same 10,000 Pods;
#   - with --big: RSS with 100,000 ConfigMaps stored (a separate server:
#     after loading them, and again after a restart), and /readyz time then.
#
#   hack/bench-api.sh                          both backends (~10 min on 2 cores)
#   hack/bench-api.sh --big                    also the 100,000-ConfigMap stage (long)
#   hack/bench-api.sh --backends embedded --duration-secs 3
#   hack/bench-api.sh --out DIR                keep JSON reports and logs in DIR
#   hack/bench-api.sh --skip-build             use the release binaries as built
#   RKUBE_BENCH_PROFILE=fast-release hack/bench-api.sh   build and run that Cargo profile
#   hack/bench-api.sh --no-protobuf            skip the protobuf stage
#   hack/bench-api.sh --only watch-1000,get-64 only these load stages (names as in the reports)
#
# Markdown tables go to stdout, progress to stderr. Exits non-zero if any
# request failed or any watcher missed an event.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh
# shellcheck source=hack/lib/cluster-files.sh
source hack/lib/cluster-files.sh

backends="embedded,etcd"
duration=10
big=""
out=""
skip_build=""
protobuf=1
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backends) backends=$2; shift 2 ;;
    --duration-secs) duration=$2; shift 2 ;;
    --big) big=1; shift ;;
    --out) out=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --no-protobuf) protobuf=""; shift ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [[ ",$backends," == *,etcd,* && ! -x /usr/bin/etcd ]]; then
  ensure_packages etcd-server
fi
# The build needs protoc (etcd-client generates its gRPC code).
ensure_packages protobuf-compiler build-essential pkg-config
ensure_rust_tools
if [ -z "$skip_build" ]; then
  echo ">> building release rkube-apiserver and kube-load" >&2
  cargo build --profile "${RKUBE_BENCH_PROFILE:-release}" -p rkube-apiserver -p rkube-e2e --bin rkube-apiserver --bin kube-load >&2
fi
target=${CARGO_TARGET_DIR:-target}/${RKUBE_BENCH_PROFILE:-release}
apiserver_bin=$(realpath "$target/rkube-apiserver")
load_bin=$(realpath "$target/kube-load")

# 1,000 watchers and 64 clients hold over a thousand connections open.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d -t rkube-bench-api.XXXXXX)
keep=""
if [ -n "$out" ]; then
  mkdir -p "$out"
  out=$(realpath "$out")
  keep=1
else
  out=$work/out
  mkdir -p "$out"
fi
# shellcheck source=hack/lib/bench-server.sh
source hack/lib/bench-server.sh

status=0
reports=()
summary=()

# load NAME BACKEND DIR ARGS...: one kube-load run, its JSON kept in $out.
# LOAD_LABEL and LOAD_NS override the report label and the namespace.
load() {
  local name=$1 backend=$2 dir=$3
  shift 3
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then
    return 0
  fi
  local json=$out/$backend-$name.json
  echo ">> $backend: $name" >&2
  if ! "$load_bin" --kubeconfig "$dir/kubeconfig" --server-pid "$api_pid" --label "${LOAD_LABEL:-$backend}" \
    --namespace "${LOAD_NS:-bench-$name}" --json "$json" "$@" >/dev/null; then
    status=1
  fi
  [ -f "$json" ] && reports+=("$json")
}

run_backend() {
  local backend=$1 dir=$work/$backend
  api_port=""
  new_server_dir "$dir"
  if [ "$backend" = etcd ]; then
    start_etcd "$work/$backend-etcd"
  fi
  start_apiserver "$dir" "$backend"
  write_kubeconfig "$dir"
  sleep 3
  local idle
  idle=$(rss_mib "$api_pid")
  echo ">> $backend: ready in $ready_ms ms, idle RSS $idle MiB" >&2

  local d=(--duration-secs "$duration")
  load create-configmaps-64 "$backend" "$dir" --scenario create-configmaps --clients 64 "${d[@]}"
  load create-configmaps-1 "$backend" "$dir" --scenario create-configmaps --clients 1 "${d[@]}"
  load get-64 "$backend" "$dir" --scenario get --clients 64 --objects 1000 "${d[@]}"
  load update-64 "$backend" "$dir" --scenario update --clients 64 --objects 1000 "${d[@]}"
  load create-pods-32 "$backend" "$dir" --scenario create-pods --clients 32 "${d[@]}"
  load list-10k "$backend" "$dir" --scenario list --objects 10000 --page-size 500 --count 10
  load watch-1000 "$backend" "$dir" --scenario watch --watchers 1000 --event-rate 500 "${d[@]}"
  if [ -n "$protobuf" ]; then
    local pb=(--protobuf)
    LOAD_LABEL="$backend protobuf" LOAD_NS=bench-get-64 \
      load get-64-protobuf "$backend" "$dir" --scenario get --clients 64 --objects 1000 "${pb[@]}" "${d[@]}"
    LOAD_LABEL="$backend protobuf" \
      load create-pods-32-protobuf "$backend" "$dir" --scenario create-pods --clients 32 "${pb[@]}" "${d[@]}"
    LOAD_LABEL="$backend protobuf" LOAD_NS=bench-list-10k \
      load list-10k-protobuf "$backend" "$dir" --scenario list --objects 10000 --page-size 500 --count 10 "${pb[@]}"
  fi

  summary+=("| $backend | $ready_ms | $idle | $(rss_mib "$api_pid") | $(hwm_mib "$api_pid") |")
  stop_apiserver
  cp "$dir/apiserver.log" "$out/$backend-apiserver.log" 2>/dev/null || true
  if [ "$backend" = etcd ]; then
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
    rm -rf "$work/$backend-etcd"
  fi
  rm -rf "$dir"
}

big_summary=()
run_big() {
  local backend=$1 dir=$work/$backend-big
  api_port=""
  new_server_dir "$dir"
  if [ "$backend" = etcd ]; then
    start_etcd "$work/$backend-big-etcd"
  fi
  start_apiserver "$dir" "$backend"
  write_kubeconfig "$dir"
  load big-100k "$backend" "$dir" --scenario create-configmaps --clients 64 --count 100000
  sleep 5
  local loaded restarted_ready restarted
  loaded=$(rss_mib "$api_pid")
  stop_apiserver
  start_apiserver "$dir" "$backend"
  restarted_ready=$ready_ms
  sleep 5
  restarted=$(rss_mib "$api_pid")
  big_summary+=("| $backend | $loaded | $restarted_ready | $restarted |")
  stop_apiserver
  if [ "$backend" = etcd ]; then
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
  fi
  rm -rf "$dir" "$work/$backend-big-etcd"
}

started=$(now_ms)
IFS=, read -r -a backend_list <<<"$backends"
for backend in "${backend_list[@]}"; do
  case "$backend" in
    embedded|etcd) run_backend "$backend" ;;
    *) echo "unknown backend: $backend (embedded or etcd)" >&2; exit 2 ;;
  esac
done
if [ -n "$big" ]; then
  for backend in "${backend_list[@]}"; do
    run_big "$backend"
  done
fi

echo "## rkube-apiserver: hack/bench-api.sh (${RKUBE_BENCH_PROFILE:-release} build, $(nproc) CPUs, $(uname -r))"
echo
echo "| backend | start to /readyz ms | RSS idle, empty store MiB | RSS after the run MiB | peak (VmHWM) MiB |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${summary[@]}"
if [ ${#big_summary[@]} -gt 0 ]; then
  echo
  echo "| backend | RSS after creating 100,000 ConfigMaps MiB | restart to /readyz ms | RSS idle after restart MiB |"
  echo "|---|---:|---:|---:|"
  printf '%s\n' "${big_summary[@]}"
fi
echo
if [ ${#reports[@]} -gt 0 ]; then
  "$load_bin" --merge "${reports[@]}"
fi
echo
echo "Total time: $((($(now_ms) - started) / 1000)) s.${keep:+ JSON reports and logs: $out}"
exit "$status"
