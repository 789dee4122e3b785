#!/usr/bin/env bash
# Cluster scale run (cluster-loader2's load profile): the apiserver
# (embedded store), controller manager, scheduler and N simulated nodes;
# bench-scale creates Deployments at a fixed rate (default 1,000 nodes,
# 3,000 Deployments x 10 replicas = 30 pods per node at 10 Deployments/s =
# 100 pods/s) and reports pod startup latency (created -> Running, seen by
# a watch, see e2e/src/pod_startup.rs) against the 5 s SLO, API call p99
# per verb from the apiserver's /metrics against the 1 s SLO, and each
# component's memory and CPU time over the run (CPU ms per pod Running does
# not depend much on what else the machine runs, unlike the latencies; the
# load average is reported beside them).
#
#   hack/bench-scale.sh                                   1,000 nodes, 30,000 pods
#   hack/bench-scale.sh --nodes 5000 --deployments 15000  5,000 nodes, 150,000 pods
#   hack/bench-scale.sh --rate 20 --replicas 5            other load profiles
#   hack/bench-scale.sh --out DIR                         keep the JSON result and logs in DIR
#   hack/bench-scale.sh --skip-build                      use the binaries as built
#   RKUBE_BENCH_PROFILE=fast-release hack/bench-scale.sh  build and run target/fast-release
#   CARGO_TARGET_DIR=DIR RKUBE_BENCH_PROFILE=P hack/bench-scale.sh --skip-build
#                                                         run the binaries in DIR/P (a "before" side)
#
# Markdown goes to stdout, progress to stderr. Exits non-zero if not every
# pod became Running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh
# shellcheck source=hack/lib/cluster-files.sh
source hack/lib/cluster-files.sh
# shellcheck source=hack/lib/bench-cluster.sh
source hack/lib/bench-cluster.sh

nodes=1000
deployments=3000
replicas=10
rate=10
out=""
skip_build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --deployments) deployments=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

start_bench_cluster scale bench-scale

start_control_plane "$dir" "$out" "$nodes"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
status=0
result=$("$release/bench-scale" --kubeconfig "$dir/kubeconfig" --nodes "$nodes" --deployments "$deployments" \
  --replicas "$replicas" --rate "$rate" --json "$out/result.json" \
  --component "apiserver=$api_pid" --component "controller manager=$controllers_pid" \
  --component "scheduler=$scheduler_pid" --component "simulated nodes (load tool)=$simnodes_pid") || status=1

echo "## Cluster scale run: hack/bench-scale.sh --nodes $nodes --deployments $deployments --replicas $replicas --rate $rate (${RKUBE_BENCH_PROFILE:-release} build, $(nproc) CPUs, $(uname -r), load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "$result"
cp "$dir/apiserver.log" "$out/apiserver.log" 2>/dev/null || true
exit $status
