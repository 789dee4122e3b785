#!/usr/bin/env bash
# Controller benchmark: the apiserver (embedded store), controller
# manager, scheduler and simulated nodes, then bench-controllers creates
# Deployments at once and reports pod startup (the SLO's creationTimestamp
# -> Running, watch first seen -> Running/Ready, Deployment create request
# -> Running/Ready), a per-stage timeline, and each process's CPU ms per pod
# and memory over the run.
#
#   hack/bench-controllers.sh                         1,000 Deployments x 10 on 100 nodes
#   hack/bench-controllers.sh --deployments 100 --replicas 10 --nodes 20
#   hack/bench-controllers.sh --out DIR               keep the JSON result, logs and the controller
#                                                     manager's and apiserver's /metrics in DIR
#   hack/bench-controllers.sh --skip-build            use the binaries as built
#   RKUBE_BENCH_PROFILE=fast-release hack/bench-controllers.sh
#                                                     build and run target/fast-release
#   CARGO_TARGET_DIR=DIR RKUBE_BENCH_PROFILE=P hack/bench-controllers.sh --skip-build
#                                                     run the binaries in DIR/P (a "before" side)
#   hack/bench-controllers.sh --controllers-flags "--concurrent-replicaset-syncs 50"
#                                                     extra flags for rkube-controllers
#   RKUBE_BENCH_WRAP_CONTROLLERS="heaptrack -o F" hack/bench-controllers.sh ...
#                                                     the controller manager under a profiler
#
# Markdown goes to stdout, progress to stderr. Exits non-zero if not every
# pod became Ready.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh
# shellcheck source=hack/lib/cluster-files.sh
source hack/lib/cluster-files.sh
# shellcheck source=hack/lib/bench-cluster.sh
source hack/lib/bench-cluster.sh

deployments=1000
replicas=10
nodes=100
out=""
skip_build=""
cm_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deployments) deployments=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --controllers-flags) cm_flags=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

start_bench_cluster controllers bench-controllers

cm_args=()
[ -n "$cm_flags" ] && read -r -a cm_args <<<"$cm_flags"
start_control_plane "$dir" "$out" "$nodes" "${cm_args[@]}"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
result=$("$release/bench-controllers" --kubeconfig "$dir/kubeconfig" --deployments "$deployments" \
  --replicas "$replicas" --json "$out/result.json" \
  --component "apiserver=$api_pid" --component "controller manager=$controllers_pid" \
  --component "scheduler=$scheduler_pid" --component "simulated nodes (load tool)=$simnodes_pid") || status=1

echo "## rkube-controllers: hack/bench-controllers.sh --deployments $deployments --replicas $replicas --nodes $nodes${cm_flags:+ --controllers-flags \"$cm_flags\"} (${RKUBE_BENCH_PROFILE:-release} build, $(nproc) CPUs, $(uname -r), load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "$result"
cp "$dir/apiserver.log" "$out/apiserver.log" 2>/dev/null || true
# Per-controller work-queue figures (sync durations, adds, retries) for
# finding which loop a slow run waited on.
curl -fsS "http://127.0.0.1:$cm_port/metrics" >"$out/controllers.metrics" 2>/dev/null || true
# Request counts and latencies by verb and resource: how many round trips
# the controllers made and how long each waited under the burst.
KUBECONFIG=$dir/kubeconfig kubectl get --raw /metrics >"$out/apiserver.metrics" 2>/dev/null || true
exit $status
