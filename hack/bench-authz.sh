#!/usr/bin/env bash
# Cost of authorization and admission on the hot path (issue 5): two
# release rkube-apiservers on the embedded store, side by side in one run,
# loaded by kube-load with the same stages as hack/bench-api.sh
# (create ConfigMaps at 64 clients and at 1 client, GET by name at 64
# clients, create Pods at 32 clients, and create-pods-32-same, where "off"
# posts the Pod as the chain leaves it, ~30% bigger, so that it stores the
# same object as "on" does):
#
#   - "on":  --authorization-mode Node,RBAC (the default) and the whole
#            default admission chain (ServiceAccount included: the script
#            creates each namespace's default ServiceAccount);
#   - "off": --authorization-mode AlwaysAllow and every admission plugin
#            disabled.
#
# Both stores hold the same policy: 5,000 RoleBindings over 50 namespaces,
# 100 Roles and 50 ClusterRoles besides the bootstrap ones. kube-load
# authenticates with a bearer token as user "bench" (group "bench-team"),
# not system:masters: its rights in each load namespace come from one
# RoleBinding of ClusterRole "edit", among ten more bindings naming it or
# its group that grant nothing the load needs, so the RBAC evaluator walks
# bindings on every request.
#
# Each stage runs on both servers in turn, --repeats times (the order
# alternating between repeats), each repeat in fresh namespaces so the
# create stages start from the same store size on both; even repeats run
# the stages in reverse order. With both pod stages, a last table compares
# "off" storing the pod as admitted with "off" storing it as sent: the
# cost of the bigger object alone, which bounds what any admission chain
# could reach on pods.
#
#   hack/bench-authz.sh                       3 repeats of 10 s stages (~10 min on 2 cores)
#   hack/bench-authz.sh --repeats 1 --duration-secs 3
#   hack/bench-authz.sh --out DIR             keep JSON reports and logs in DIR
#   hack/bench-authz.sh --skip-build          use the release binaries as built
#   hack/bench-authz.sh --stages get-64,create-pods-32   only these stages
#   RKUBE_BENCH_PERF=on hack/bench-authz.sh --out DIR
#                                             perf record (dwarf call graphs) the
#                                             named servers (comma-separated) during
#                                             each of their stages: DIR/perf-*.data
#                                             (RKUBE_BENCH_PERF_ARGS: other perf options)
#   hack/bench-authz.sh --baseline BIN        a third server, "base": BIN (an
#                                             earlier rkube-apiserver) set up as "on"
#
# Markdown to stdout (every measurement, then on/off ratios per stage and
# repeat, of throughput and of the server's CPU time per request: on a
# machine shared with other work the server gets a fraction of the cores,
# and CPU per request is the steadier measure of its cost), progress to
# stderr. Exits non-zero if any request failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib/deps.sh
source hack/lib/deps.sh
# shellcheck source=hack/lib/cluster-files.sh
source hack/lib/cluster-files.sh

duration=10
repeats=3
out=""
skip_build=""
baseline=""
only_stages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --duration-secs) duration=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --stages) IFS=, read -r -a only_stages <<<"$2"; shift 2 ;;
    --baseline) baseline=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

ensure_packages protobuf-compiler build-essential pkg-config jq
ensure_rust_tools
if [ -z "$skip_build" ]; then
  echo ">> building release rkube-apiserver and kube-load" >&2
  cargo build --profile "${RKUBE_BENCH_PROFILE:-release}" -p rkube-apiserver -p rkube-e2e --bin rkube-apiserver --bin kube-load >&2
fi
target=${CARGO_TARGET_DIR:-target}/${RKUBE_BENCH_PROFILE:-release}
apiserver_bin=$(realpath "$target/rkube-apiserver")
load_bin=$(realpath "$target/kube-load")
command -v kubectl >/dev/null || { echo "kubectl is needed to load the policy" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d -t rkube-bench-authz.XXXXXX)
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

stages=(create-configmaps-64 create-configmaps-1 get-64 create-pods-32 create-pods-32-same)
if [ ${#only_stages[@]} -gt 0 ]; then
  for stage in "${only_stages[@]}"; do
    [[ " ${stages[*]} " == *" $stage "* ]] || { echo "unknown stage: $stage (${stages[*]})" >&2; exit 2; }
  done
  stages=("${only_stages[@]}")
fi
all_plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,TaintNodesByCondition,PodSecurity,Priority
all_plugins+=,DefaultTolerationSeconds,DefaultStorageClass,MutatingAdmissionWebhook
all_plugins+=,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota

# The load namespaces of repeat R: one per stage.
load_namespaces() {
  local r=$1 s
  for s in "${stages[@]}"; do echo "authz-r$r-$s"; done
}

# The policy and namespaces, written to $work/policy/: 00-cluster.yaml
# (50 ClusterRoles, 50 namespaces with their default ServiceAccount: the
# load namespaces first, then fillers) and one file per namespace with 2
# Roles and 100 RoleBindings; the load namespaces' bindings include the
# bench user's.
write_policy() {
  local dir=$work/policy namespaces=() r n i ns
  mkdir -p "$dir"
  for r in $(seq 1 "$repeats"); do
    mapfile -t -O "${#namespaces[@]}" namespaces < <(load_namespaces "$r")
  done
  n=${#namespaces[@]}
  for i in $(seq $((n + 1)) 50); do namespaces+=("authz-fill-$i"); done
  {
    for i in $(seq 0 49); do
      cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bench-crole-$i}
rules:
- {apiGroups: [""], resources: [secrets], resourceNames: [s-$i], verbs: [get]}
- {apiGroups: [apps], resources: [deployments], verbs: [get, list]}
EOF
    done
    for ns in "${namespaces[@]}"; do
      cat <<EOF
---
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: $ns}
EOF
    done
  } >"$dir/00-cluster.yaml"
  for ns in "${namespaces[@]}"; do
    {
      cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: $ns}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: event-writer, namespace: $ns}
rules:
- {apiGroups: [""], resources: [events], verbs: [create, patch]}
EOF
      # 100 bindings: 89 to other users and groups, 10 more naming the
      # bench user or its group that grant nothing the load uses, and the
      # one that grants it "edit" (named to sort last).
      for i in $(seq 0 88); do
        local role="kind: Role, name: secret-reader"
        [ $((i % 2)) = 0 ] && role="kind: ClusterRole, name: bench-crole-$((i % 50))"
        cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb-$i, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, $role}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: user-$i}
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: team-$((i % 7))}
EOF
      done
      for i in $(seq 0 9); do
        local who="kind: User, name: bench"
        [ $((i % 2)) = 0 ] && who="kind: Group, name: bench-team"
        cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bench-other-$i, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: event-writer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, $who}
EOF
      done
      local role=edit user=bench
      if [[ "$ns" != authz-r* ]]; then
        role=view user=someone-else
      fi
      cat <<EOF
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: zz-bench-edit, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $role}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: $user}
EOF
    } >"$dir/ns-$ns.yaml"
  done
}

# The bench user's kubeconfig for the server of DIR on PORT.
write_bench_kubeconfig() {
  local dir=$1 port=$2
  (umask 077 && cat >"$dir/bench.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: rkube
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 <"$dir/pki/ca.crt")
users:
- name: bench
  user:
    token: $bench_token
contexts:
- name: rkube
  context:
    cluster: rkube
    user: bench
current-context: rkube
KUBECONFIG
  )
}

bench_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
declare -A pid_of port_of dir_of

# start MODE: a server with its policy loaded, as the bench user sees it
# ("base" is the --baseline binary, set up as "on").
start() {
  local mode=$1
  local dir=$work/$mode
  api_port=""
  new_server_dir "$dir"
  local apiserver_bin=$apiserver_bin
  [ "$mode" = base ] && apiserver_bin=$baseline
  echo "$bench_token,bench,bench-uid,\"bench-team\"" >>"$dir/tokens.csv"
  # "on": the whole default chain (the load namespaces have their default
  # ServiceAccount); "off": no plugin and no authorization.
  local extra="" disable=""
  if [ "$mode" = off ]; then
    extra="--authorization-mode AlwaysAllow"
    disable=$all_plugins
  fi
  APISERVER_EXTRA_ARGS=$extra APISERVER_DISABLE_PLUGINS=$disable start_apiserver "$dir" embedded
  write_kubeconfig "$dir"
  write_bench_kubeconfig "$dir" "$api_port"
  pid_of[$mode]=$api_pid
  port_of[$mode]=$api_port
  dir_of[$mode]=$dir
  echo ">> $mode: ready in $ready_ms ms; loading the policy" >&2
  local t0
  t0=$(now_ms)
  # kubectl paces its requests; eight of them at once load it faster.
  kubectl --kubeconfig "$dir/kubeconfig" create -f "$work/policy/00-cluster.yaml" >/dev/null
  find "$work/policy" -name 'ns-*.yaml' -print0 |
    xargs -0 -n 1 -P 8 kubectl --kubeconfig "$dir/kubeconfig" create -f >/dev/null
  local rbs
  rbs=$(kubectl --kubeconfig "$dir/kubeconfig" get rolebindings -A --no-headers | wc -l)
  echo ">> $mode: $rbs RoleBindings in $((($(now_ms) - t0) / 1000)) s" >&2
  local ns
  ns=$(load_namespaces 1 | head -1)
  if [ "$mode" != off ]; then
    # RBAC must be what lets the bench user in, and only there.
    local bench=(kubectl --kubeconfig "$dir/bench.kubeconfig") yes no who
    yes=$("${bench[@]}" auth can-i create pods -n "$ns" || true)
    no=$("${bench[@]}" auth can-i create pods -n authz-fill-50 || true)
    who=$("${bench[@]}" auth whoami -o jsonpath='{.status.userInfo.username}')
    if [ "$yes/$no/$who" != yes/no/bench ]; then
      echo "the bench user's rights are not as meant: $yes/$no/$who (want yes/no/bench)" >&2
      exit 1
    fi
  fi
}

status=0
reports=()
# load MODE REPEAT STAGE
load() {
  local mode=$1 r=$2 stage=$3 args
  local json=$out/$mode-r$r-$stage.json d=(--duration-secs "$duration")
  case "$stage" in
    create-configmaps-64) args=(--scenario create-configmaps --clients 64 "${d[@]}") ;;
    create-configmaps-1) args=(--scenario create-configmaps --clients 1 "${d[@]}") ;;
    get-64) args=(--scenario get --clients 64 --objects 1000 "${d[@]}") ;;
    create-pods-32) args=(--scenario create-pods --clients 32 "${d[@]}") ;;
    create-pods-32-same)
      # "off" stores the pod the chain makes ("on" and "base" post the
      # plain one): the chain's own cost, without that of the bigger object.
      args=(--scenario create-pods --clients 32 "${d[@]}")
      [ "$mode" = off ] && args+=(--admitted-pods)
      ;;
  esac
  echo ">> repeat $r, $mode: $stage" >&2
  local perf_pid=""
  if [ -n "${RKUBE_BENCH_PERF:-}" ] && [[ ",$RKUBE_BENCH_PERF," == *",$mode,"* ]]; then
    # shellcheck disable=SC2086
    perf record ${RKUBE_BENCH_PERF_ARGS:--F 499 --call-graph dwarf} -p "${pid_of[$mode]}" -o "$out/perf-$mode-r$r-$stage.data" \
      -- sleep "$((duration + 1))" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  if ! "$load_bin" --kubeconfig "${dir_of[$mode]}/bench.kubeconfig" --server-pid "${pid_of[$mode]}" \
    --label "$mode r$r" --namespace "authz-r$r-$stage" --json "$json" "${args[@]}" >/dev/null; then
    status=1
  fi
  [ -f "$json" ] && reports+=("$json")
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
}

started=$(now_ms)
write_policy
modes=(on off)
[ -n "$baseline" ] && modes=(on base off)
for mode in "${modes[@]}"; do start "$mode"; done
for r in $(seq 1 "$repeats"); do
  # Each server goes first in turn.
  order=("${modes[@]:$(((r - 1) % ${#modes[@]}))}" "${modes[@]:0:$(((r - 1) % ${#modes[@]}))}")
  # The stores grow through the run, so the stages run in reverse order
  # in even repeats: comparisons between stages (below) are balanced.
  run_stages=("${stages[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    run_stages=()
    for ((i = ${#stages[@]} - 1; i >= 0; i--)); do run_stages+=("${stages[i]}"); done
  fi
  for stage in "${run_stages[@]}"; do
    for mode in "${order[@]}"; do
      load "$mode" "$r" "$stage"
    done
  done
done
for mode in "${modes[@]}"; do
  cp "${dir_of[$mode]}/apiserver.log" "$out/$mode-apiserver.log" 2>/dev/null || true
done

echo "## Authorization and admission: hack/bench-authz.sh (${RKUBE_BENCH_PROFILE:-release} build, $(nproc) CPUs, $(uname -r))"
echo
if [ ${#reports[@]} -gt 0 ]; then
  "$load_bin" --merge "${reports[@]}"
fi
echo
# jq helpers for the tables: the server's CPU µs per request of a report's
# row, and a ratio to three decimals.
jq_defs='def cpu: .server_cores / .ops_per_sec * 1e6; def r3: (. * 1000 | round) / 1000;'
for mode in "${modes[@]}"; do
  [ "$mode" = off ] && continue
  echo "| stage | repeat | $mode ops/s | off ops/s | $mode/off | $mode p50 ms | off p50 ms | $mode CPU µs/op | off CPU µs/op | off/$mode CPU |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
  for stage in "${stages[@]}"; do
    for r in $(seq 1 "$repeats"); do
      on=$out/$mode-r$r-$stage.json off=$out/off-r$r-$stage.json
      [ -f "$on" ] && [ -f "$off" ] || continue
      jq -rn --slurpfile a "$on" --slurpfile b "$off" --arg s "$stage" --arg r "$r" "$jq_defs"'
        ($a[0].rows[0]) as $x | ($b[0].rows[0]) as $y | ($x | cpu) as $cx | ($y | cpu) as $cy |
        "| \($s) | \($r) | \($x.ops_per_sec | floor) | \($y.ops_per_sec | floor) | " +
        "\($x.ops_per_sec / $y.ops_per_sec | r3) | \($x.p50_ms) | \($y.p50_ms) | " +
        "\($cx | round) | \($cy | round) | \($cy / $cx | r3) |"'
    done
  done
  echo
done
# The bigger object alone: "off" (no authorization, no admission) storing
# the pod as admitted against storing it as sent. "on" stores the admitted
# pod too, so no chain can do much better than this ratio (only the
# decode of the bigger body posted in -same, which "on" does not pay).
if [[ " ${stages[*]} " == *" create-pods-32 "* && " ${stages[*]} " == *" create-pods-32-same "* ]]; then
  echo "The admitted pod alone, both on \"off\" (create-pods-32-same against create-pods-32):"
  echo
  echo "| repeat | off ops/s, pod as sent | off ops/s, pod as admitted | admitted/sent ops/s | CPU µs/op as sent | CPU µs/op as admitted | sent/admitted CPU |"
  echo "|--:|--:|--:|--:|--:|--:|--:|"
  for r in $(seq 1 "$repeats"); do
    sent=$out/off-r$r-create-pods-32.json admitted=$out/off-r$r-create-pods-32-same.json
    [ -f "$sent" ] && [ -f "$admitted" ] || continue
    jq -rn --slurpfile a "$admitted" --slurpfile b "$sent" --arg r "$r" "$jq_defs"'
      ($a[0].rows[0]) as $x | ($b[0].rows[0]) as $y | ($x | cpu) as $cx | ($y | cpu) as $cy |
      "| \($r) | \($y.ops_per_sec | floor) | \($x.ops_per_sec | floor) | " +
      "\($x.ops_per_sec / $y.ops_per_sec | r3) | \($cy | round) | \($cx | round) | \($cy / $cx | r3) |"'
  done
  echo
fi
echo
echo "Total time: $((($(now_ms) - started) / 1000)) s.${keep:+ JSON reports and logs: $out}"
exit "$status"
