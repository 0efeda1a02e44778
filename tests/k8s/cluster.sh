#!/usr/bin/env bash
# A single-node Kubernetes on this machine, made from Go modules and Debian packages:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
#   built from k8s.io/kubernetes and CoreDNS from github.com/coredns/coredns
#   (tests/k8s/build-kube.sh); etcd, containerd, runc and the CNI plugins from Debian.
# Everything runs as plain processes of root (no systemd), on loopback and on one bridge
# the script creates (sk8sbr0, 10.218.0.1/24: the node's address, the pods' gateway and the
# address of CoreDNS; Services get 10.219.0.0/24). Certificates and kubeconfigs are made
# with openssl. The PersistentVolumeClaim of the chart binds a hostPath PersistentVolume of
# the default StorageClass "standard" that the script creates.
#
#   tests/k8s/cluster.sh up          build what is missing, start everything, wait for the node
#   tests/k8s/cluster.sh load IMG..  podman save IMG | ctr -n k8s.io images import (skipped
#                                    when containerd already has the same image id)
#   tests/k8s/cluster.sh down        stop every pod, process, mount, iptables rule and link
#   tests/k8s/cluster.sh env         prints "export KUBECONFIG=... PATH=..."
#
# Built things and the pause image are cached in $K8S_CACHE (/var/cache/sparkernel-k8s);
# the cluster's state (etcd, containerd's images, certificates) in $K8S_STATE
# (/var/lib/sparkernel-k8s) and survives `down`, so a second `up` takes about a minute;
# `down --purge` removes the state too. Logs: $K8S_LOGS (build/k8s/ in the repo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${K8S_CACHE:-/var/cache/sparkernel-k8s}
state=${K8S_STATE:-/var/lib/sparkernel-k8s}
logs=${K8S_LOGS:-$root/build/k8s}
run=/run/sparkernel-k8s
node=sk8s-node
node_ip=10.218.0.1
pod_cidr=10.218.0.0/24
svc_cidr=10.219.0.0/24
svc_ip=10.219.0.1
bridge=sk8sbr0
api_port=6443
pause_image=registry.k8s.io/pause:3.10
export KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
pki=$state/pki
export KUBECONFIG=$state/admin.kubeconfig

say() { echo "== k8s: $*" >&2; }
die() { echo "k8s: $*" >&2; exit 1; }
low() { nice -n 19 ionice -c3 "$@"; }

need_root() { [[ $(id -u) == 0 ]] || die "run as root (it starts containerd, the kubelet and iptables rules)"; }

# ---- packages ---------------------------------------------------------------------------
install_packages() {
  local missing=() cmd pkg
  for pair in containerd:containerd runc:runc etcd:etcd-server conntrack:conntrack \
              iptables:iptables socat:socat openssl:openssl ip:iproute2 ionice:util-linux curl:curl; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null || missing+=("$pkg")
  done
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/$(uname -m)-linux-gnu/libc.a ]] || missing+=(libc6-dev)
  command -v gcc >/dev/null || missing+=(gcc)
  if (( ${#missing[@]} )); then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get"
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  bash "$root/charts/images/setup-podman.sh" >&2
}

# ---- certificates -----------------------------------------------------------------------
cert() {  # cert NAME CN [O] [SANs]: a key and a certificate signed by the cluster CA
  local name=$1 cn=$2 o=${3:-} sans=${4:-}
  [[ -f $pki/$name.crt ]] && return 0
  local subj="/CN=$cn"; [[ -n $o ]] && subj="/O=$o$subj"
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  local ext="$pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $sans ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"
    else echo "extendedKeyUsage=clientAuth"; fi
  } >"$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$ext"
}

kubeconfig() {  # kubeconfig FILE CERTNAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sparkernel
  cluster:
    certificate-authority: $pki/ca.crt
    server: https://$node_ip:$api_port
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: sparkernel
  context: {cluster: sparkernel, user: $2, namespace: default}
current-context: sparkernel
EOF
  chmod 600 "$1"
}

make_pki() {
  mkdir -p "$pki"; chmod 700 "$pki"
  if [[ ! -f $pki/ca.crt ]]; then
    say "making the cluster CA and certificates (openssl)"
    openssl genrsa -out "$pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=sparkernel-k8s-ca" -days 365 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$pki/ca.crt" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$node_ip,IP:$svc_ip"
  cert admin sparkernel-admin system:masters
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kubelet "system:node:$node" system:nodes
  cert kube-proxy system:kube-proxy
  cert coredns sparkernel:coredns
  cert kubelet-serving "system:node:$node" system:nodes "DNS:$node,IP:$node_ip,IP:127.0.0.1"
  [[ -f $pki/sa.key ]] || { openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null;
                            openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null; }
  kubeconfig "$state/admin.kubeconfig" admin
  kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  kubeconfig "$state/scheduler.kubeconfig" scheduler
  kubeconfig "$state/kubelet.kubeconfig" kubelet
  kubeconfig "$state/kube-proxy.kubeconfig" kube-proxy
  kubeconfig "$state/coredns.kubeconfig" coredns
}

# ---- processes --------------------------------------------------------------------------
start() {  # start NAME CMD...: a daemon in its own session, its pid in $run/NAME.pid
  local name=$1; shift
  if [[ -f $run/$name.pid ]] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then return 0; fi
  setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$run/$name.pid"
}

wait_for() {  # wait_for SECONDS WHAT CMD...
  local limit=$1 what=$2; shift 2
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - t0 > limit )); then die "$what not ready after ${limit}s (logs: $logs)"; fi
    sleep 1
  done
}

alive() { [[ -f $run/$1.pid ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

check_alive() {
  local name
  for name in "$@"; do
    alive "$name" || { tail -n 30 "$logs/$name.log" >&2; die "$name exited (log above: $logs/$name.log)"; }
  done
}

# ---- pause image ------------------------------------------------------------------------
pause_image() {
  local src=$cache/src/kubernetes-$KUBE_VERSION/build/pause/linux/pause.c
  local dir=$cache/pause
  if [[ ! -f $dir/pause.tar ]]; then
    [[ -f $src ]] || die "no $src: run tests/k8s/build-kube.sh first"
    say "building the pause image from Kubernetes' build/pause/linux/pause.c"
    mkdir -p "$dir"
    gcc -Os -static -DVERSION="$KUBE_VERSION" -o "$dir/pause" "$src"
    strip "$dir/pause"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$dir/Containerfile"
    podman build -q -t "$pause_image" -f "$dir/Containerfile" "$dir" >/dev/null
    podman save --format docker-archive -o "$dir/pause.tar.tmp" "$pause_image"
    mv "$dir/pause.tar.tmp" "$dir/pause.tar"
  fi
  if ! ctr_k8s images ls -q | grep -qx "$pause_image"; then
    ctr_k8s images import "$dir/pause.tar" >/dev/null
  fi
}

ctr_k8s() { ctr --address "$run/containerd.sock" -n k8s.io "$@"; }

# load IMAGE...: podman's image into containerd, under podman's name and Docker Hub's
# (Kubernetes reads "sparkernel/spark:TAG" as docker.io/sparkernel/spark:TAG).
load_images() {
  local img id have short
  for img in "$@"; do
    id=$(podman image inspect --format '{{.Id}}' "$img") || die "podman has no image $img (make images)"
    short=${img#localhost/}
    # ctr lists an imported image under its names and its id (config digest), each with
    # the manifest's digest: the same digest on both means this very image is there
    have=$(ctr_k8s images ls 2>/dev/null | awk -v n="docker.io/$short" -v i="sha256:$id" \
      '$1 == n {a = $3} $1 == i {b = $3} END {if (a != "" && a == b) print "yes"}')
    if [[ $have == yes ]]; then say "$img already in containerd"; continue; fi
    say "loading $img into containerd (podman save | ctr import)"
    local t0=$SECONDS
    podman save --format docker-archive "$img" | low ctr --address "$run/containerd.sock" -n k8s.io images import - >/dev/null
    ctr_k8s images tag --force "$img" "docker.io/$short" >/dev/null
    say "loaded $img in $((SECONDS - t0)) s"
  done
}

# ---- up ---------------------------------------------------------------------------------
up() {
  need_root
  mkdir -p "$cache" "$state" "$logs" "$run"
  install_packages
  local bin; bin=$(bash "$here/build-kube.sh" | tail -n 1)
  ln -sfn "$bin" "$cache/bin/current"
  export PATH=$bin:$PATH
  make_pki

  # the node's network: a bridge holding the node's address, forwarding, br_netfilter
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$node_ip/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  sysctl -qw net.ipv4.ip_forward=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    die "no /proc/sys/net/bridge: the kernel lacks br_netfilter (kube-proxy needs it for Services between pods on one bridge)"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1

  say "etcd"
  start etcd etcd --name "$node" --data-dir "$state/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$node=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381
  wait_for 60 etcd etcdctl_health

  say "kube-apiserver"
  start kube-apiserver kube-apiserver --advertise-address "$node_ip" --bind-address "$node_ip" \
    --secure-port "$api_port" --etcd-servers http://127.0.0.1:2379 \
    --service-cluster-ip-range "$svc_cidr" --allow-privileged=true \
    --authorization-mode Node,RBAC --client-ca-file "$pki/ca.crt" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --enable-admission-plugins NodeRestriction --profiling=false
  wait_for 120 kube-apiserver kubectl get --raw /readyz
  check_alive etcd kube-apiserver

  say "kube-controller-manager, kube-scheduler"
  start kube-controller-manager kube-controller-manager --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range "$svc_cidr" --profiling=false
  start kube-scheduler kube-scheduler --kubeconfig "$state/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" \
    --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false

  say "containerd"
  mkdir -p "$state/cni/net.d" "$state/containerd"
  cat >"$state/cni/net.d/10-sparkernel.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "sparkernel",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr", "rangeStart": "10.218.0.10", "gateway": "$node_ip"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$state/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$run/containerd/state"
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = "$run/containerd-debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  enable_unprivileged_ports = false
  # This machine's root lacks CAP_SYS_RESOURCE (bit 24 is clear in CapBnd), so no process may
  # lower its oom_score_adj: runc's "nsexec: failed to update /proc/self/oom_score_adj:
  # Permission denied" for the sandbox's -998. containerd's own knob for that case keeps
  # every container's oom_score_adj at or above containerd's own (0 here).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
EOF
  start containerd containerd --config "$state/containerd/config.toml"
  wait_for 60 containerd ctr_k8s version
  pause_image

  say "CoreDNS (on the node, at $node_ip:53)"
  cat >"$state/Corefile" <<EOF
.:53 {
    bind $node_ip
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $state/coredns.kubeconfig sparkernel
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
EOF
  kubectl apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "sparkernel:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "sparkernel:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "sparkernel:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "sparkernel:coredns"}
EOF
  start coredns coredns -conf "$state/Corefile"

  say "kubelet"
  cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$node_ip]
clusterDomain: cluster.local
resolvConf: ""
containerRuntimeEndpoint: unix://$run/containerd.sock
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "200Mi", nodefs.available: "2%", imagefs.available: "2%"}
EOF
  start kubelet kubelet --config "$state/kubelet.yaml" --kubeconfig "$state/kubelet.kubeconfig" \
    --hostname-override "$node" --node-ip "$node_ip" --root-dir "$state/kubelet"

  say "kube-proxy"
  cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
hostnameOverride: $node
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0}
nodePortAddresses: ["$node_ip/32"]
EOF
  start kube-proxy kube-proxy --config "$state/kube-proxy.yaml"

  wait_for 180 "node $node" node_ready
  check_alive etcd kube-apiserver kube-controller-manager kube-scheduler containerd coredns kubelet kube-proxy

  # storage: a default StorageClass and one hostPath volume the chart's claim binds
  mkdir -p "$state/volumes/data"; chmod 0777 "$state/volumes/data"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
reclaimPolicy: Retain
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: sparkernel-data-0}
spec:
  storageClassName: standard
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteMany, ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: $state/volumes/data, type: Directory}
EOF
  say "ready: node $node, $(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n 1)"
}

etcdctl_health() { curl -fsS http://127.0.0.1:2379/health | grep -q '"health":"true"'; }
node_ready() {
  [[ $(kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# ---- down -------------------------------------------------------------------------------
stop() {  # stop NAME: TERM, then KILL after 20 s
  local name=$1 pid
  [[ -f $run/$name.pid ]] || return 0
  pid=$(cat "$run/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
}

down() {
  need_root
  [[ -d $run ]] || { say "nothing running"; cleanup_host; return 0; }
  export PATH=$cache/bin/current:$PATH
  if alive kube-apiserver && alive kubelet; then
    say "deleting every pod"
    kubectl delete pods --all -A --grace-period=5 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 60); do
      [[ -z $(kubectl get pods -A -o name 2>/dev/null) ]] && break; sleep 1
    done
  fi
  stop kube-proxy; stop kubelet
  if alive containerd; then  # pods the kubelet did not get to: stop their sandboxes' tasks
    local c
    for c in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s KILL "$c" >/dev/null 2>&1 || true; done
    sleep 2
    for c in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$c" >/dev/null 2>&1 || true; done
    for c in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$c" >/dev/null 2>&1 || true; done
  fi
  stop containerd; stop coredns; stop kube-scheduler; stop kube-controller-manager
  stop kube-apiserver; stop etcd
  # shims left by containerd (they outlive it by design)
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $run/containerd.sock" || true); do
    kill -KILL "$p" 2>/dev/null || true
  done
  cleanup_host
  say "stopped"
}

cleanup_host() {
  local m
  # mounts under the state and run dirs (kubelet volumes, sandboxes' shm, overlay rootfs)
  for m in $(awk -v s="$state" -v r="$run" '$2 ~ "^"s"/" || $2 ~ "^"r"/" {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  for m in $(awk '$2 ~ "^/run/netns/cni-" || $2 ~ "^/var/run/netns/cni-" {print $2}' /proc/mounts); do
    umount "$m" 2>/dev/null || true; rm -f "$m"
  done
  # kube-proxy's and the portmap plugin's iptables rules
  if [[ -x $cache/bin/current/kube-proxy ]]; then
    "$cache/bin/current/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  # the kubelet's own chains (KUBE-KUBELET-CANARY, KUBE-FIREWALL, ...) and any KUBE-* left:
  # first the jumps to them from the built-in chains, then the chains themselves
  local ipt t r c
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    for t in filter nat mangle; do
      $ipt -t $t -S 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*KUBE-' |
        sed 's/^-A/-D/' | while read -r r; do eval "$ipt -t $t $r" 2>/dev/null || true; done || true
      for c in $($ipt -t $t -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do $ipt -t $t -F "$c" 2>/dev/null || true; done
      for c in $($ipt -t $t -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do $ipt -t $t -X "$c" 2>/dev/null || true; done
    done
  done
  if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge"; fi
  # the pods' cgroups (kubepods) in every v1 hierarchy
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$run"
}

# recycle-volume: what minikube's provisioner does when a claim is deleted: the volume's
# files go, and the volume is free for the next claim.
recycle_volume() {
  export PATH=$cache/bin/current:$PATH
  local phase; phase=$(kubectl get pv sparkernel-data-0 -o jsonpath='{.status.phase}')
  [[ $phase == Bound ]] && die "the volume is still bound to a claim"
  find "$state/volumes/data" -mindepth 1 -delete
  kubectl patch pv sparkernel-data-0 --type json -p '[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null 2>&1 || true
  say "volume sparkernel-data-0 emptied and $(kubectl get pv sparkernel-data-0 -o jsonpath='{.status.phase}' 2>/dev/null || echo available)"
}

case ${1:-} in
  up) up ;;
  down) down; if [[ ${2:-} == --purge ]]; then rm -rf "$state"; say "removed $state"; fi ;;
  load) shift; need_root; mkdir -p "$logs"; load_images "$@" ;;
  recycle-volume) recycle_volume ;;
  env) echo "export KUBECONFIG=$KUBECONFIG PATH=$cache/bin/current:\$PATH" ;;
  *) echo "usage: $0 up|down [--purge]|load IMAGE...|recycle-volume|env" >&2; exit 2 ;;
esac
