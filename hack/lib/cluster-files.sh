# Shared by hack/*.sh: the admin token file and kubeconfig of a data dir.
# Source it; then call `ensure_admin_token DIR` and
# `write_admin_kubeconfig DIR PORT` (after the apiserver has created DIR/pki).

# Creates DIR/tokens.csv with a random admin token in the system:masters
# group, once.
ensure_admin_token() {
  local dir=$1 token
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ -s "$dir/tokens.csv" ] && return 0
  token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  (umask 077 && echo "$token,admin,admin,\"system:masters\"" >"$dir/tokens.csv")
}

# Writes DIR/kubeconfig for the admin, trusting DIR/pki/ca.crt, for a
# server on 127.0.0.1:PORT. The admin authenticates with the client
# certificate the apiserver issued (DIR/pki/admin.crt: CN kubernetes-admin,
# O system:masters), or with the token of DIR/tokens.csv when there is none.
write_admin_kubeconfig() {
  local dir=$1 port=$2 token credentials
  if [ -s "$dir/pki/admin.crt" ] && [ -s "$dir/pki/admin.key" ]; then
    credentials="    client-certificate-data: $(base64 -w0 <"$dir/pki/admin.crt")
    client-key-data: $(base64 -w0 <"$dir/pki/admin.key")"
  else
    token=$(cut -d, -f1 "$dir/tokens.csv" | head -1)
    credentials="    token: $token"
  fi
  (umask 077 && cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: rkube
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 <"$dir/pki/ca.crt")
users:
- name: admin
  user:
$credentials
contexts:
- name: rkube
  context:
    cluster: rkube
    user: admin
current-context: rkube
KUBECONFIG
  )
}
