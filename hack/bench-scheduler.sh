#!/usr/bin/env bash
# Scheduler benchmark in the style of upstream scheduler_perf: the release
# rkube-scheduler against the release rkube-apiserver (embedded store),
# loopback only. For each case a fresh apiserver, N Nodes of
# scheduler_perf's default shape, P pending pods; then the scheduler starts
# and bench-scheduler reports pods/s from the first bind to the last, with
# the scheduler's CPU and peak RSS.
#
#   hack/bench-scheduler.sh                     the default cases (~10 min on 2 cores)
#   hack/bench-scheduler.sh --cases basic:1000:10000,spread:1000:10000
#   hack/bench-scheduler.sh --out DIR           keep JSON results and logs in DIR
#   hack/bench-scheduler.sh --skip-build        use the release binaries as built
#   hack/bench-scheduler.sh --baseline BIN      also run every case with another
#                                               rkube-scheduler binary (row "baseline"),
#                                               alternating with the built one
#   hack/bench-scheduler.sh --repeat N          run every case N times (the machine is noisy)
#
# A case is WORKLOAD:NODES:PODS with WORKLOAD basic, anti-affinity (one pod
# per node, so PODS <= NODES), spread (maxSkew 5 over 10 zones) or deploy
# (pods of ReplicaSets, 10 each, labelled as a Deployment's: the system
# default spread constraints apply with a new selector every 10 pods, as in
# the cluster scale run; e.g. deploy:1000:30000). Every row also gives the
# scheduler's CPU ms per pod over the first and the last third of the binds.
# Markdown goes to stdout, progress to stderr. Exits non-zero if a case
# did not bind every pod.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh
# shellcheck source=hack/lib/cluster-files.sh
source hack/lib/cluster-files.sh

cases="basic:1000:10000,basic:5000:10000,basic:5000:50000,anti-affinity:1000:1000,spread:1000:10000"
out=""
skip_build=""
baseline=""
repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cases) cases=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --baseline) baseline=$(realpath "$2"); shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The build needs protoc (etcd-client generates its gRPC code).
ensure_packages protobuf-compiler build-essential pkg-config
ensure_rust_tools
if [ -z "$skip_build" ]; then
  echo ">> building release rkube-apiserver, rkube-scheduler and bench-scheduler" >&2
  cargo build --profile "${RKUBE_BENCH_PROFILE:-release}" -p rkube-apiserver -p rkube-scheduler -p rkube-e2e \
    --bin rkube-apiserver --bin rkube-scheduler --bin bench-scheduler >&2
fi
target=${CARGO_TARGET_DIR:-target}/${RKUBE_BENCH_PROFILE:-release}
apiserver_bin=$(realpath "$target/rkube-apiserver")
scheduler_bin=$(realpath "$target/rkube-scheduler")
bench_bin=$(realpath "$target/bench-scheduler")

work=$(mktemp -d -t rkube-bench-scheduler.XXXXXX)
if [ -n "$out" ]; then
  mkdir -p "$out"
  out=$(realpath "$out")
else
  out=$work/out
  mkdir -p "$out"
fi
# shellcheck source=hack/lib/bench-server.sh
source hack/lib/bench-server.sh

status=0
rows=()
api_rows=()
IFS=, read -r -a case_list <<<"$cases"
runs=("rkube:$scheduler_bin")
if [ -n "$baseline" ]; then
  runs=("baseline:$baseline" "${runs[@]}")
fi
for c in "${case_list[@]}"; do
  IFS=: read -r workload nodes pods <<<"$c"
  for r in $(seq 1 "$repeat"); do
    for run in "${runs[@]}"; do
      label=${run%%:*}
      bin=${run#*:}
      name="$workload-$nodes-$pods-$label-$r"
      dir=$work/$name
      api_port=""
      new_server_dir "$dir"
      start_apiserver "$dir" embedded
      write_kubeconfig "$dir"
      echo ">> $name: apiserver ready in $ready_ms ms" >&2
      if result=$("$bench_bin" --kubeconfig "$dir/kubeconfig" --nodes "$nodes" --pods "$pods" --workload "$workload" \
        --scheduler-bin "$bin" --scheduler-arg=--leader-elect=false --scheduler-arg=--secure-port=0 \
        --scheduler-log "$out/$name-scheduler.log" --json "$out/$name.json" --label "$label"); then
        rows+=("$(echo "$result" | tail -1)")
        api_rows+=("| $name | $(rss_mib "$api_pid") | $(hwm_mib "$api_pid") |")
      else
        status=1
      fi
      stop_apiserver
      cp "$dir/apiserver.log" "$out/$name-apiserver.log" 2>/dev/null || true
      rm -rf "$dir"
    done
  done
done

echo "## rkube-scheduler: hack/bench-scheduler.sh (${RKUBE_BENCH_PROFILE:-release} build, $(nproc) CPUs, $(uname -r))"
echo
echo "| run | workload | nodes | pods | bound | start to first bind s | first to last bind s | pods/s | scheduler CPU cores | CPU ms/pod first third | CPU ms/pod last third | scheduler peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "| case | apiserver RSS after MiB | apiserver peak (VmHWM) MiB |"
echo "|---|---:|---:|"
printf '%s\n' "${api_rows[@]}"
exit $status
