# Shared by the hack/bench-*.sh scripts: start and stop release servers
# (apiserver, etcd) on free loopback ports and read their memory use.
# Source it after setting `apiserver_bin` and `work` (a scratch dir the
# EXIT trap removes); every started process is killed on exit.

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    # A wrapper (RKUBE_BENCH_WRAP_CONTROLLERS="heaptrack ...") runs the
    # server as its child: stop the children too, not only the wrapper.
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# A port no socket uses, below the kernel's ephemeral range (so that no
# outgoing connection takes it before the server binds it).
free_port() {
  local low p
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 1 200); do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

rss_mib() { # pid -> VmRSS in MiB
  awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"
}

hwm_mib() { # pid -> VmHWM in MiB
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"
}

cpu_secs() { # pid -> user + system CPU seconds used so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo "-"
}

# start_etcd DIR -> sets etcd_url, etcd_pid. Tries again on other ports if
# a port was taken between choosing and binding it.
start_etcd() {
  local dir=$1 client peer
  for _ in 1 2 3; do
    client=$(free_port)
    peer=$(free_port)
    rm -rf "$dir"
    mkdir -p "$dir"
    /usr/bin/etcd --name bench --data-dir "$dir/data" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "bench=http://127.0.0.1:$peer" --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
      >"$dir/etcd.log" 2>&1 &
    etcd_pid=$!
    pids+=("$etcd_pid")
    etcd_url=http://127.0.0.1:$client
    for _ in $(seq 1 200); do
      if curl -sf --max-time 1 "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"'; then
        return 0
      fi
      kill -0 "$etcd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$etcd_pid" 2>/dev/null || true
    wait "$etcd_pid" 2>/dev/null || true
    grep -q "address already in use" "$dir/etcd.log" || break
  done
  echo "etcd did not become healthy; log:" >&2
  tail -20 "$dir/etcd.log" >&2
  return 1
}

# start_apiserver DIR BACKEND -> sets api_pid, api_port, ready_ms (the time
# from starting the process to the first 200 from /readyz, polled every
# ~10 ms). Keeps api_port if set (a restart); otherwise picks one, and
# another if it was taken meanwhile.
start_apiserver() {
  local dir=$1 backend=$2 start fresh=""
  if [ -z "$api_port" ]; then
    fresh=1
  fi
  for _ in 1 2 3; do
    [ -n "$fresh" ] && api_port=$(free_port)
    # No controllers run in a benchmark: nothing creates namespaces'
    # default ServiceAccounts or lifts the not-ready taint new Nodes get,
    # so those two admission plugins are off (as in upstream's
    # integration benchmarks); the rest of the default chain stays on.
    # APISERVER_DISABLE_PLUGINS replaces that list (empty: none).
    local disable=${APISERVER_DISABLE_PLUGINS-ServiceAccount,TaintNodesByCondition}
    local args=(--data-dir "$dir" --secure-port "$api_port" --token-auth-file "$dir/tokens.csv")
    if [ -n "$disable" ]; then
      args+=(--disable-admission-plugins "$disable")
    fi
    if [ "$backend" = etcd ]; then
      args+=(--storage-backend etcd --etcd-servers "$etcd_url")
    fi
    # More flags, space-separated (hack/bench-authz.sh's AlwaysAllow server).
    # shellcheck disable=SC2206
    args+=(${APISERVER_EXTRA_ARGS:-})
    start=$(now_ms)
    "$apiserver_bin" "${args[@]}" >>"$dir/apiserver.log" 2>&1 &
    api_pid=$!
    pids+=("$api_pid")
    for _ in $(seq 1 6000); do
      if [ -f "$dir/pki/ca.crt" ] &&
        curl -sf --max-time 1 --cacert "$dir/pki/ca.crt" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
        ready_ms=$(($(now_ms) - start))
        return 0
      fi
      if ! kill -0 "$api_pid" 2>/dev/null; then
        break
      fi
      sleep 0.01
    done
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    if [ -z "$fresh" ] || ! tail -5 "$dir/apiserver.log" | grep -qi "in use"; then
      break
    fi
  done
  echo "the apiserver did not become ready; log:" >&2
  tail -20 "$dir/apiserver.log" >&2
  return 1
}

stop_apiserver() {
  kill "$api_pid" 2>/dev/null || true
  wait "$api_pid" 2>/dev/null || true
}

# new_server_dir DIR: a fresh data dir with its admin token file
new_server_dir() {
  rm -f "$1/tokens.csv"
  ensure_admin_token "$1"
}

write_kubeconfig() {
  write_admin_kubeconfig "$1" "$api_port"
}


# start_control_plane DIR OUT NODES [controller-manager flags...]: the
# release controller manager (its /metrics on a free port, cm_port; run
# under RKUBE_BENCH_WRAP_CONTROLLERS, e.g. "heaptrack -o FILE", when set:
# its CPU and RSS figures are then the wrapper's), scheduler and NODES
# simulated nodes in three zones against the apiserver of DIR, logs in OUT;
# returns once every node is Ready (or after 10 minutes). Needs `release`
# (the dir of the release binaries). Sets controllers_pid, scheduler_pid,
# simnodes_pid, cm_port and ready_nodes.
start_control_plane() {
  local dir=$1 out=$2 nodes=$3 started wrap
  shift 3
  cm_port=$(free_port)
  read -r -a wrap <<<"${RKUBE_BENCH_WRAP_CONTROLLERS:-}"
  "${wrap[@]}" "$release/rkube-controllers" --kubeconfig "$dir/kubeconfig" --leader-elect=false \
    --port "$cm_port" --root-ca-file "$dir/pki/ca.crt" "$@" >"$out/controllers.log" 2>&1 &
  controllers_pid=$!
  pids+=("$controllers_pid")
  "$release/rkube-scheduler" --kubeconfig "$dir/kubeconfig" --leader-elect=false --secure-port 0 \
    >"$out/scheduler.log" 2>&1 &
  scheduler_pid=$!
  pids+=("$scheduler_pid")
  "$release/rkube-simnodes" --kubeconfig "$dir/kubeconfig" --nodes "$nodes" --zones zone-a,zone-b,zone-c \
    >"$out/simnodes.log" 2>&1 &
  simnodes_pid=$!
  pids+=("$simnodes_pid")
  started=$(now_ms)
  ready_nodes=0
  for _ in $(seq 1 1200); do
    ready_nodes=$(KUBECONFIG=$dir/kubeconfig kubectl get nodes --no-headers 2>/dev/null | grep -c " Ready" || true)
    [ "$ready_nodes" -ge "$nodes" ] && break
    sleep 0.5
  done
  echo ">> $ready_nodes of $nodes simulated nodes Ready after $(($(now_ms) - started)) ms" >&2
}
