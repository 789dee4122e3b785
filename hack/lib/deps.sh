# Shared by hack/*.sh: install what the scripts need, idempotently.
# Source it; then call `ensure_packages pkg...` and `ensure_rust_tools`.

# Installs Debian packages that are missing (only when running as root;
# otherwise says what to install and fails).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]}; run this script as root or: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo ">> installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Debian's etcd-server package may start a system etcd; rkube's tests start
  # their own members, and a stray one on :2379 only gets in the way.
  if printf '%s\n' "${missing[@]}" | grep -qx etcd-server; then
    (systemctl disable --now etcd >/dev/null 2>&1 || service etcd stop >/dev/null 2>&1 || true)
  fi
}

# Makes sure cargo (and, when asked, cargo-nextest) are available.
ensure_rust_tools() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; return 1; }
  if [ "${1:-}" = nextest ] && ! cargo nextest --version >/dev/null 2>&1; then
    echo ">> installing cargo-nextest" >&2
    cargo install --locked cargo-nextest >/dev/null
  fi
}
