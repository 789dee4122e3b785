# Shared by hack/bench-controllers.sh and hack/bench-scale.sh: build the
# release binaries (unless skip_build is set), make the scratch dir `work`
# and the result dir `out` (kept if the caller set it), load
# lib/bench-server.sh and start the apiserver on the embedded store with an
# admin kubeconfig in `dir`. Then call start_control_plane.
#
#   start_bench_cluster NAME BENCH_BIN   e.g. controllers bench-controllers

start_bench_cluster() {
  local name=$1 bench_bin=$2 target
  # The build needs protoc (etcd-client generates its gRPC code).
  ensure_packages protobuf-compiler build-essential pkg-config
  ensure_rust_tools
  if [ -z "${skip_build:-}" ]; then
    echo ">> building the release binaries" >&2
    cargo build --profile "${RKUBE_BENCH_PROFILE:-release}" -p rkube-apiserver -p rkube-controllers -p rkube-scheduler -p rkube-e2e \
      --bin rkube-apiserver --bin rkube-controllers --bin rkube-scheduler --bin rkube-simnodes \
      --bin "$bench_bin" >&2
  fi
  target=${CARGO_TARGET_DIR:-target}/${RKUBE_BENCH_PROFILE:-release}
  apiserver_bin=$(realpath "$target/rkube-apiserver")
  release=$(dirname "$apiserver_bin")

  work=$(mktemp -d -t "rkube-bench-$name.XXXXXX")
  if [ -n "${out:-}" ]; then
    mkdir -p "$out"
    out=$(realpath "$out")
  else
    out=$work/out
    mkdir -p "$out"
  fi
  # shellcheck source=hack/lib/bench-server.sh
  source hack/lib/bench-server.sh
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

  dir=$work/cluster
  api_port=""
  new_server_dir "$dir"
  start_apiserver "$dir" embedded
  write_kubeconfig "$dir"
  echo ">> apiserver ready in $ready_ms ms" >&2
}
