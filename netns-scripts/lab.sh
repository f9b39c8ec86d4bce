#!/usr/bin/env bash
# uvs labs in network namespaces.
#
#   lab.sh up dr [--rs N]     client, director and N (default 2) real servers on one L2 segment
#   lab.sh up nat [--rs N]    client and director on one segment, real servers on a second one
#                             behind the director (their default route), HTTP on 80 and 8080
#   lab.sh up tun [--rs N]    real servers on another subnet behind a router, reached over L3;
#                             each runs uvs-tun-decap (this kernel has no ipip) with the VIP on lo
#   lab.sh up vrrp [--rs N]   dr with two directors, each running uvsd -f keepalived.conf (VRRP for
#                             the VIP + a DR virtual_server); the master forwards, the backup waits
#   lab.sh up ecmp [--rs N]   a router doing kernel ECMP toward 3 directors (uvsd, mh, sloppy_tcp),
#                             each announcing the VIP over BGP (BIRD 2, BFD) while its uvsd is
#                             healthy (vip-health.mjs); DR real servers behind them (default 3)
#   lab.sh ecmp paths|link-down D|link-up D|uvsd-kill D|uvsd-start D
#                             the ECMP route's next hops; director D (1-3) loses or regains its
#                             link, its uvsd is killed (SIGKILL) or started again
#   lab.sh up ha [--rs N]     vrrp plus connection sync (lvs_sync_daemon): the backup learns the
#                             master's connections, so they survive a failover; a second,
#                             persistent service on port 8080
#   lab.sh down               removes every namespace, device and process of the lab
#   lab.sh demo               DR, then NAT, then TUN: uvsd + uvsadm like the seed tutorial, curl, down
#   lab.sh demo vrrp          up vrrp, a client fetching continuously, the master killed, service
#                             continuing from the backup, down
#   lab.sh demo ecmp          up ecmp, long-lived client connections spread over the directors,
#                             one director's link cut, another's uvsd killed, both brought back
#   lab.sh demo ha            up ha, a ~30 s rate-limited download through the master, the master
#                             killed mid-transfer, the download completing intact through the backup
#   lab.sh status             what is up
#
# UVS_LAB_DIR_QUEUES=N (1-16, default 1): the director's segment-A interface (uvs<S>e0) and its
# switch port get N RX and N TX queues, so that XDP in native mode spreads frames over N AF_XDP
# sockets (uvsd --io xdp --xdp-mode native --workers N); its other interfaces keep one.
#
# UVS_LAB_TUN_DECAP=kernel|user (default kernel): how tun's real servers decapsulate IP-in-IP. kernel:
# uvs-tun-decap --bpf, an eBPF program on the real server's tc ingress strips the outer header as
# the ipip module would (Linux 6.6 or later), with the TUN device for what it leaves (fragments);
# user: uvs-tun-decap's TUN device alone (a wake-up and two copies per packet in user space).
#
# Every name starts with "uvs" + the lab suffix (UVS_LAB, default "lab"), so several labs (and the
# test suite's) can coexist and `down` finds everything it made. Addresses exist only inside the
# lab's namespaces; nothing is added to the root namespace.
#
# Topology (dr):
#   uvs<S>cl   client     10.77.0.10/24
#   uvs<S>dir  director   10.77.0.2/24 + VIP 10.77.0.100/32
#   uvs<S>rsI  real srv   10.77.0.(20+I)/24, VIP on lo, arp_ignore=1, arp_announce=2
#   uvs<S>sw   switch     bridge uvs<S>br joining everyone's uvs<S>pK
#
# Topology (nat): segment A = bridge uvs<S>br, segment B = bridge uvs<S>bb
#   uvs<S>cl   client     10.77.0.10/24 (A)
#   uvs<S>dir  director   10.77.0.2/24 + VIP 10.77.0.100/32 (A), 10.78.0.1/24 (B);
#                         net.ipv4.ip_forward left as it is (0 in a new namespace): uvs forwards
#   uvs<S>rsI  real srv   10.78.0.(20+I)/24 (B), default route via 10.78.0.1
#
# Topology (tun): the real servers are one router away from the director
#   uvs<S>cl   client     10.77.0.10/24 (A)
#   uvs<S>dir  director   10.77.0.2/24 + VIP 10.77.0.100/32 (A), route to 10.79.0.0/24 via 10.77.0.1
#   uvs<S>rt   router     10.77.0.1/24 (A), 10.79.0.1/24 (B), ip_forward=1
#   uvs<S>rsI  real srv   10.79.0.(20+I)/24 (B), default route via 10.79.0.1; VIP on lo,
#                         uvs-tun-decap (--bpf uvs<S>e0, and device uvs<S>t0), rp_filter=0,
#                         arp_ignore/arp_announce
#
# Topology (vrrp): dr's segment with two directors instead of one, no VIP configured by hand
#   uvs<S>d1   director   10.77.0.2/24, uvsd -f d1.conf: VRRP priority 150 (master)
#   uvs<S>d2   director   10.77.0.3/24, uvsd -f d2.conf: VRRP priority 100 (backup)
#                         both: vrrp_instance VI_1 (VRID 51, PASS) holding VIP 10.77.0.100/32 and
#                         virtual_server 10.77.0.100 80 (rr, DR, TCP_CHECK) over the real servers
#   uvs<S>rsI  real srv   as in dr; uvs<S>cl client 10.77.0.10/24
#
# Topology (ecmp): the VIP 10.90.0.100 is routed, not on a shared segment
#   uvs<S>cl   client     10.80.0.10/24 (segment C, bridge uvs<S>bb), default route via 10.80.0.1
#   uvs<S>rt   router     10.80.0.1/24 (C), 10.77.0.1/24 (A); ip_forward=1,
#                         fib_multipath_hash_policy=1 (L4 hash); BIRD: eBGP AS 65000 with each
#                         director, BFD 100 ms x 3, kernel protocol with `merge paths on`, so the
#                         VIP's /32 becomes one multipath route over the directors announcing it
#   uvs<S>dD   director   10.77.0.(1+D)/24 (A), VIP on lo (arp_ignore=1); uvsd --workers 1
#                         --sysctl-file (net.ipv4.vs.sloppy_tcp = 1), service VIP:80 mh with
#                         mh-port, DR to every real server (added in a different order on each
#                         director: the mh table does not depend on it); BIRD AS 65001: static
#                         protocol "vip" (disabled until vip-health.mjs sees uvsd healthy)
#                         exported over BGP with BFD to the router
#   uvs<S>rsI  real srv   10.77.0.(20+I)/24 (A), VIP on lo, default route via 10.77.0.1: DR replies
#                         go straight back through the router
# Topology (ha): vrrp's, and in both configs `lvs_sync_daemon uvs<S>e0 VI_1` (the VRRP master runs
#   the sync master, the backup the sync backup: syncid 51, 224.0.0.81:8848 on the lab segment) and
#   virtual_server 10.77.0.100 8080 (rr, DR, persistence_timeout 600); each real server also
#   answers HTTP on 8080
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
S=${UVS_LAB:-lab}
if ! [[ $S =~ ^[a-z0-9]{1,6}$ ]]; then
  echo "lab.sh: UVS_LAB must be 1-6 lowercase letters or digits (interface names have 15 characters), got '$S'" >&2
  exit 2
fi
P="uvs$S"
state_dir="/run/uvs-lab/$S"
VIP=10.77.0.100
NET=10.77.0

die() { echo "lab.sh: $*" >&2; exit 1; }
DIR_QUEUES=${UVS_LAB_DIR_QUEUES:-1}
if ! [[ $DIR_QUEUES =~ ^[0-9]+$ ]] || [ "$DIR_QUEUES" -lt 1 ] || [ "$DIR_QUEUES" -gt 16 ]; then
  echo "lab.sh: UVS_LAB_DIR_QUEUES must be a number of queues from 1 to 16, got '$DIR_QUEUES'" >&2
  exit 2
fi
tun_decap=${UVS_LAB_TUN_DECAP:-kernel}
case "$tun_decap" in
  kernel|user) ;;
  *) echo "lab.sh: UVS_LAB_TUN_DECAP must be kernel or user, got '$tun_decap'" >&2; exit 2 ;;
esac
need_root() { [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${P}(cl|dir|d[1-3]|sw|rt|rs[0-9]+)$" || true; }

# Joins namespace $1 to a lab switch with interface $2 inside it (index $3 names the switch port;
# $4 the bridge, default segment A's; $5 the RX and TX queues of both ends, default 1).
plug() {
  local ns=$1 ifname=$2 idx=$3 bridge=${4:-${P}br} q=${5:-1}
  ip link add "$ifname" numrxqueues "$q" numtxqueues "$q" netns "$ns" type veth peer name "${P}p$idx" numrxqueues "$q" numtxqueues "$q" netns "${P}sw"
  nsx "${P}sw" ip link set "${P}p$idx" master "$bridge" up
  nsx "$ns" ip link set "$ifname" up
}

# Waits (bounded) until real server I answers HTTP at address $2 from namespace $3.
wait_rs() {
  local i=$1 addr=$2 from=$3 ok=0
  for _ in $(seq 1 50); do
    if nsx "$from" curl -s -m 1 "http://$addr/" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok -eq 1 ] || die "real server rs$i did not come up (see $state_dir/rs$i.log)"
}

# Segment A with the client and the director (VIP on the director's uvs<S>e0).
segment_a() {
  for ns in cl dir sw; do ip netns add "${P}$ns"; done
  for ns in cl dir sw; do nsx "${P}$ns" ip link set lo up; done
  nsx "${P}sw" ip link add "${P}br" type bridge
  nsx "${P}sw" ip link set "${P}br" up
  nsx "${P}sw" ip link add "${P}bb" type bridge
  nsx "${P}sw" ip link set "${P}bb" up
  plug "${P}cl" "${P}e0" 0
  nsx "${P}cl" ip addr add "$NET.10/24" dev "${P}e0"
  plug "${P}dir" "${P}e0" 1 "${P}br" "$DIR_QUEUES"
  nsx "${P}dir" ip addr add "$NET.2/24" dev "${P}e0"
  nsx "${P}dir" ip addr add "$VIP/32" dev "${P}e0"
}

up_nat() {
  local nrs=$1
  need_root
  bash "$here/deps.sh" lab
  [ -z "$(lab_namespaces)" ] || die "lab '$S' is already up (lab.sh down first)"
  trap 'echo "lab.sh: setup failed, tearing down" >&2; down' ERR
  segment_a
  plug "${P}dir" "${P}e1" d1 "${P}bb"
  nsx "${P}dir" ip addr add 10.78.0.1/24 dev "${P}e1"
  nsx "${P}dir" sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
  for i in $(seq 1 "$nrs"); do
    local ns="${P}rs$i"
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    plug "$ns" "${P}e0" $((i + 1)) "${P}bb"
    nsx "$ns" ip addr add "10.78.0.$((20 + i))/24" dev "${P}e0"
    nsx "$ns" ip route add default via 10.78.0.1
    start_bg "$ns" "rs$i" node "$here/rs-server.mjs" "rs$i" --port 80 --udp-port 53
    start_bg "$ns" "rs$i-alt" node "$here/rs-server.mjs" "rs$i" --port 8080 --udp-port 5353
  done
  for i in $(seq 1 "$nrs"); do
    wait_rs "$i" "10.78.0.$((20 + i))" "${P}dir"
    wait_rs "$i" "10.78.0.$((20 + i)):8080" "${P}dir"
  done
  trap - ERR
  echo "lab '$S' up (nat): client ${P}cl $NET.10, director ${P}dir $NET.2 VIP $VIP / 10.78.0.1, real servers $(seq -s ' ' -f "10.78.0.%g" 21 $((20 + nrs))) (HTTP 80 and 8080, UDP 53 and 5353)"
}

up_tun() {
  local nrs=$1
  need_root
  bash "$here/deps.sh" lab
  [ -z "$(lab_namespaces)" ] || die "lab '$S' is already up (lab.sh down first)"
  [ -f "$top/dist/src/cli/uvs-tun-decap.js" ] || die "build first (npm run build): uvs-tun-decap is not in dist/"
  trap 'echo "lab.sh: setup failed, tearing down" >&2; down' ERR
  segment_a
  ip netns add "${P}rt"
  nsx "${P}rt" ip link set lo up
  plug "${P}rt" "${P}e0" ra
  plug "${P}rt" "${P}e1" rb "${P}bb"
  nsx "${P}rt" ip addr add "$NET.1/24" dev "${P}e0"
  nsx "${P}rt" ip addr add 10.79.0.1/24 dev "${P}e1"
  nsx "${P}rt" sysctl -qw net.ipv4.ip_forward=1
  nsx "${P}dir" ip route add 10.79.0.0/24 via "$NET.1"
  nsx "${P}cl" ip route add 10.79.0.0/24 via "$NET.1"
  nsx "${P}dir" sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
  for i in $(seq 1 "$nrs"); do
    local ns="${P}rs$i"
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    plug "$ns" "${P}e0" $((i + 1)) "${P}bb"
    nsx "$ns" ip addr add "10.79.0.$((20 + i))/24" dev "${P}e0"
    nsx "$ns" ip route add default via 10.79.0.1
    nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    nsx "$ns" ip addr add "$VIP/32" dev lo
    local bpf=(--bpf "${P}e0")
    [ "$tun_decap" = user ] && bpf=()
    start_bg "$ns" "decap$i" node "$top/dist/src/cli/uvs-tun-decap.js" --dev "${P}t0" --local "10.79.0.$((20 + i))" --allow "$NET.2" "${bpf[@]}" -l --stats-interval 1
    start_bg "$ns" "rs$i" node "$here/rs-server.mjs" "rs$i" --port 80 --udp-port 53
  done
  for i in $(seq 1 "$nrs"); do
    local ok=0
    for _ in $(seq 1 50); do
      if nsx "${P}rs$i" ip link show "${P}t0" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    [ $ok -eq 1 ] || die "uvs-tun-decap on rs$i did not create ${P}t0 (see $state_dir/decap$i.log)"
    if [ "$tun_decap" = kernel ]; then
      ok=0
      for _ in $(seq 1 50); do
        if grep -q "in the kernel on" "$state_dir/decap$i.log" 2>/dev/null; then ok=1; break; fi
        sleep 0.1
      done
      [ $ok -eq 1 ] || die "uvs-tun-decap --bpf on rs$i failed (UVS_LAB_TUN_DECAP=user decapsulates in user space instead): $(tail -n 3 "$state_dir/decap$i.log" 2>/dev/null)"
    fi
    nsx "${P}rs$i" sysctl -qw "net.ipv4.conf.${P}t0.rp_filter=0"
    wait_rs "$i" "10.79.0.$((20 + i))" "${P}cl"
  done
  trap - ERR
  local how="uvs-tun-decap in the kernel on ${P}e0 (tc ingress), the rest on ${P}t0"
  [ "$tun_decap" = user ] && how="uvs-tun-decap on ${P}t0"
  echo "lab '$S' up (tun): client ${P}cl $NET.10, director ${P}dir $NET.2 VIP $VIP, router ${P}rt $NET.1 / 10.79.0.1, real servers $(seq -s ' ' -f "10.79.0.%g" 21 $((20 + nrs))) ($how)"
}

start_bg() { # ns name cmd...: starts a lab process, remembers its pid
  local ns=$1 name=$2; shift 2
  mkdir -p "$state_dir"
  nsx "$ns" "$@" >"$state_dir/$name.log" 2>&1 &
  echo $! >"$state_dir/$name.pid"
}

up_dr() {
  local nrs=$1
  need_root
  bash "$here/deps.sh" lab
  [ -z "$(lab_namespaces)" ] || die "lab '$S' is already up (lab.sh down first)"
  trap 'echo "lab.sh: setup failed, tearing down" >&2; down' ERR
  for ns in cl dir sw; do ip netns add "${P}$ns"; done
  for i in $(seq 1 "$nrs"); do ip netns add "${P}rs$i"; done
  for ns in $(lab_namespaces); do nsx "$ns" ip link set lo up; done

  nsx "${P}sw" ip link add "${P}br" type bridge
  nsx "${P}sw" ip link set "${P}br" up

  plug "${P}cl" "${P}e0" 0
  nsx "${P}cl" ip addr add "$NET.10/24" dev "${P}e0"

  plug "${P}dir" "${P}e0" 1 "${P}br" "$DIR_QUEUES"
  nsx "${P}dir" ip addr add "$NET.2/24" dev "${P}e0"
  nsx "${P}dir" ip addr add "$VIP/32" dev "${P}e0"
  # The seed tutorial's director settings for DR.
  nsx "${P}dir" sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.all.send_redirects=0 \
    net.ipv4.conf.default.send_redirects=0

  for i in $(seq 1 "$nrs"); do
    local ns="${P}rs$i"
    plug "$ns" "${P}e0" $((i + 1))
    nsx "$ns" ip addr add "$NET.$((20 + i))/24" dev "${P}e0"
    nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
    nsx "$ns" ip addr add "$VIP/32" dev lo
    start_bg "$ns" "rs$i" node "$here/rs-server.mjs" "rs$i" --port 80 --udp-port 53
  done
  # Wait (bounded) until every real server answers on its own address.
  for i in $(seq 1 "$nrs"); do
    local ok=0
    for _ in $(seq 1 50); do
      if nsx "${P}cl" curl -s -m 1 "http://$NET.$((20 + i))/" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    [ $ok -eq 1 ] || die "real server rs$i did not come up (see $state_dir/rs$i.log)"
  done
  trap - ERR
  echo "lab '$S' up (dr): client ${P}cl $NET.10, director ${P}dir $NET.2 VIP $VIP, real servers $(seq -s ' ' -f "$NET.%g" 21 $((20 + nrs)))"
}

# keepalived.conf of director $1 (1 or 2) with VRRP priority $2, over $3 real servers; $4 = ha
# adds connection sync and the persistent service on 8080.
vrrp_conf() {
  local d=$1 prio=$2 nrs=$3 mode=${4:-vrrp} state=BACKUP sync=""
  [ "$d" = 1 ] && state=MASTER
  [ "$mode" = ha ] && sync="  lvs_sync_daemon ${P}e0 VI_1"
  cat <<CONF
! uvs lab '$S', director d$d (written by lab.sh up $mode)
global_defs {
  router_id ${P}d$d
$sync
}
vrrp_instance VI_1 {
  state $state
  interface ${P}e0
  virtual_router_id 51
  priority $prio
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass uvslab
  }
  virtual_ipaddress {
    $VIP/32 dev ${P}e0
  }
}
virtual_server $VIP 80 {
  delay_loop 2
  lb_algo rr
  lb_kind DR
  protocol TCP
CONF
  for i in $(seq 1 "$nrs"); do
    cat <<CONF
  real_server $NET.$((20 + i)) 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
    }
  }
CONF
  done
  echo "}"
  [ "$mode" = ha ] || return 0
  cat <<CONF
virtual_server $VIP 8080 {
  delay_loop 2
  lb_algo rr
  lb_kind DR
  protocol TCP
  persistence_timeout 600
CONF
  for i in $(seq 1 "$nrs"); do
    cat <<CONF
  real_server $NET.$((20 + i)) 8080 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
    }
  }
CONF
  done
  echo "}"
}

# The pids of uvsd in director $1's namespace.
uvsd_pids() {
  local pid
  for pid in $(ip netns pids "${P}d$1" 2>/dev/null); do
    grep -qa uvsd.js "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  done
  return 0
}

# Who holds the VIP: "d1", "d2", "both" or "none".
vip_holder() {
  local h1=0 h2=0
  nsx "${P}d1" ip -4 -o addr show | grep -q " $VIP/" && h1=1
  nsx "${P}d2" ip -4 -o addr show | grep -q " $VIP/" && h2=1
  case "$h1$h2" in 10) echo d1 ;; 01) echo d2 ;; 11) echo both ;; *) echo none ;; esac
}

# Which director the client's ARP entry for the VIP points at: "d1", "d2" or "?".
arp_owner() {
  local mac d
  mac=$(nsx "${P}cl" ip neigh show "$VIP" dev "${P}e0" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}')
  for d in 1 2; do
    [ -n "$mac" ] && [ "$mac" = "$(nsx "${P}d$d" cat "/sys/class/net/${P}e0/address")" ] && { echo "d$d"; return; }
  done
  echo "?"
}

up_vrrp() {
  local nrs=$1 mode=${2:-vrrp}
  need_root
  bash "$here/deps.sh" lab
  [ -f "$uvsd_bin" ] || die "$uvsd_bin missing: run npm run build"
  [ -z "$(lab_namespaces)" ] || die "lab '$S' is already up (lab.sh down first)"
  trap 'echo "lab.sh: setup failed, tearing down" >&2; down' ERR
  for ns in cl d1 d2 sw; do ip netns add "${P}$ns"; done
  for i in $(seq 1 "$nrs"); do ip netns add "${P}rs$i"; done
  for ns in $(lab_namespaces); do nsx "$ns" ip link set lo up; done
  nsx "${P}sw" ip link add "${P}br" type bridge
  nsx "${P}sw" ip link set "${P}br" up

  plug "${P}cl" "${P}e0" 0
  nsx "${P}cl" ip addr add "$NET.10/24" dev "${P}e0"
  # ha: a small receive buffer, so that a client reading slowly (curl --limit-rate) holds the
  # transfer back on the wire too (with the default autotuning the socket would take megabytes at
  # once). The lab's own downloads are paced by the real server (rs-server.mjs /paced).
  [ "$mode" = ha ] && nsx "${P}cl" sysctl -qw net.ipv4.tcp_rmem="4096 32768 65536"
  for d in 1 2; do
    plug "${P}d$d" "${P}e0" "$d"
    nsx "${P}d$d" ip addr add "$NET.$((1 + d))/24" dev "${P}e0"
    nsx "${P}d$d" sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.all.send_redirects=0 \
      net.ipv4.conf.default.send_redirects=0
  done
  for i in $(seq 1 "$nrs"); do
    local ns="${P}rs$i"
    plug "$ns" "${P}e0" $((i + 2))
    nsx "$ns" ip addr add "$NET.$((20 + i))/24" dev "${P}e0"
    nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
    nsx "$ns" ip addr add "$VIP/32" dev lo
    start_bg "$ns" "rs$i" node "$here/rs-server.mjs" "rs$i" --port 80 --udp-port 53
    [ "$mode" = ha ] && start_bg "$ns" "rs$i-8080" node "$here/rs-server.mjs" "rs$i" --port 8080 --udp-port 5353
  done
  for i in $(seq 1 "$nrs"); do wait_rs "$i" "$NET.$((20 + i))" "${P}cl"; done

  mkdir -p "$state_dir"
  vrrp_conf 1 150 "$nrs" "$mode" >"$state_dir/d1.conf"
  vrrp_conf 2 100 "$nrs" "$mode" >"$state_dir/d2.conf"
  for d in 1 2; do
    start_bg "${P}d$d" "uvsd-d$d" node "$uvsd_bin" -n -l --workers 1 --conn-state "$state_dir/uvsd-d$d.conns" -f "$state_dir/d$d.conf"
  done
  # Bounded: the master claims the VIP after at most Master_Down_Interval (~3.4 s).
  local holder=none
  for _ in $(seq 1 100); do holder=$(vip_holder); [ "$holder" = d1 ] && break; sleep 0.1; done
  [ "$holder" = d1 ] || die "d1 did not become VRRP master (VIP holder: $holder; see $state_dir/uvsd-d1.log)"
  trap - ERR
  echo "lab '$S' up ($mode): client ${P}cl $NET.10, directors ${P}d1 $NET.2 (master) and ${P}d2 $NET.3 (backup)" \
    "sharing VIP $VIP, real servers $(seq -s ' ' -f "$NET.%g" 21 $((20 + nrs))); configs and logs in $state_dir"
}

# ---- ECMP scale-out -----------------------------------------------------------------------------
ECMP_VIP=10.90.0.100
ECMP_DIRS="1 2 3"

# BIRD 2 for the router: one eBGP session per director, BFD, the multipath route to the kernel.
ecmp_bird_router() {
  cat <<CONF
# uvs lab '$S', router (written by lab.sh up ecmp)
router id $NET.1;
log stderr all;
protocol device { scan time 10; }
# ECMP: the routes of the directors, equal for BGP's selection, become one multipath route.
protocol kernel {
  ipv4 { import none; export all; };
  merge paths on;
}
protocol bfd {
  interface "${P}e1" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
template bgp director {
  local $NET.1 as 65000;
  ipv4 { import where net = $ECMP_VIP/32; export none; };
  bfd on;
  hold time 3;
  connect retry time 1;
  error wait time 1, 3;
}
CONF
  for d in $ECMP_DIRS; do echo "protocol bgp d$d from director { neighbor $NET.$((1 + d)) as 65001; }"; done
}

# BIRD 2 for director $1: the VIP's /32 (protocol "vip", off until the health hook enables it).
ecmp_bird_director() {
  local d=$1
  cat <<CONF
# uvs lab '$S', director d$d (written by lab.sh up ecmp)
router id $NET.$((1 + d));
log stderr all;
protocol device { scan time 10; }
protocol static vip {
  disabled yes;
  ipv4;
  route $ECMP_VIP/32 blackhole;
}
protocol bfd {
  interface "${P}e0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
protocol bgp uplink {
  local $NET.$((1 + d)) as 65001;
  neighbor $NET.1 as 65000;
  ipv4 { import none; export where proto = "vip"; next hop self; };
  bfd on;
  hold time 3;
  connect retry time 1;
  error wait time 1, 3;
}
CONF
}

ecmp_uvsadm() { local d=$1; shift; nsx "${P}d$d" node "$uvsadm_bin" "$@"; }

# Starts uvsd on director $1 and configures the service (real servers in an order of its own).
ecmp_uvsd_start() {
  local d=$1 nrs i order
  nrs=$(cat "$state_dir/nrs")
  start_bg "${P}d$d" "uvsd-d$d" node "$uvsd_bin" -n -l --no-config --workers 1 --conn-state "$state_dir/uvsd-d$d.conns" --iface "${P}e0" \
    --sysctl-file "$state_dir/ipvs.conf"
  local ok=0
  for _ in $(seq 1 100); do ecmp_uvsadm "$d" -L -n >/dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
  [ $ok -eq 1 ] || { cat "$state_dir/uvsd-d$d.log" >&2; die "uvsd on d$d did not come up"; }
  # d1 adds the real servers in order, d2 in reverse, d3 rotated by one: the mh table is the same.
  case $d in
    1) order=$(seq 1 "$nrs") ;;
    2) order=$(seq "$nrs" -1 1) ;;
    *) order="$(seq 2 "$nrs") 1" ;;
  esac
  # One atomic change (-R): the health hook announces the VIP as soon as the table can forward,
  # and a table with only some of the real servers would send flows of the others elsewhere.
  {
    echo "-A -t $ECMP_VIP:80 -s mh -b mh-port"
    for i in $order; do echo "-a -t $ECMP_VIP:80 -r $NET.$((20 + i)):80 -g"; done
  } | ecmp_uvsadm "$d" -R
}

ecmp_uvsd_pid() {
  local pid
  for pid in $(ip netns pids "${P}d$1" 2>/dev/null); do
    grep -qa uvsd.js "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  done
  return 0
}

ecmp_uvsd_kill() {
  local pid
  for pid in $(ip netns pids "${P}d$1" 2>/dev/null); do
    grep -qa uvsd.js "/proc/$pid/cmdline" 2>/dev/null && kill -9 "$pid"
  done
  return 0
}

# The router's next hops for the VIP, one director per line (d1, d2, d3), sorted.
ecmp_paths() {
  nsx "${P}rt" ip -4 route show "$ECMP_VIP/32" 2>/dev/null | grep -oE "via $NET\.[0-9]+" | awk -F. '{print "d" ($4 - 1)}' | sort
}

# Waits (bounded, $2 seconds) until the router's paths are exactly "$1" (e.g. "d1 d2 d3").
ecmp_wait_paths() {
  local want=$1 deadline=$((SECONDS + ${2:-30})) got=""
  while [ $SECONDS -lt $deadline ]; do
    got=$(ecmp_paths | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  echo "lab.sh: the router's paths to $ECMP_VIP are '$got', expected '$want'" >&2
  return 1
}

up_ecmp() {
  local nrs=$1
  need_root
  bash "$here/deps.sh" ecmp
  [ -f "$uvsd_bin" ] || die "$uvsd_bin missing: run npm run build"
  [ -z "$(lab_namespaces)" ] || die "lab '$S' is already up (lab.sh down first)"
  trap 'echo "lab.sh: setup failed, tearing down" >&2; down' ERR
  for ns in cl rt sw d1 d2 d3; do ip netns add "${P}$ns"; done
  for i in $(seq 1 "$nrs"); do ip netns add "${P}rs$i"; done
  for ns in $(lab_namespaces); do nsx "$ns" ip link set lo up; done
  for br in br bb; do nsx "${P}sw" ip link add "${P}$br" type bridge; nsx "${P}sw" ip link set "${P}$br" up; done
  mkdir -p "$state_dir"
  echo "$nrs" >"$state_dir/nrs"

  plug "${P}cl" "${P}e0" c "${P}bb"
  nsx "${P}cl" ip addr add 10.80.0.10/24 dev "${P}e0"
  nsx "${P}cl" ip route add default via 10.80.0.1
  plug "${P}rt" "${P}e0" rc "${P}bb"
  plug "${P}rt" "${P}e1" ra
  nsx "${P}rt" ip addr add 10.80.0.1/24 dev "${P}e0"
  nsx "${P}rt" ip addr add "$NET.1/24" dev "${P}e1"
  # L4 hash (fib_multipath_hash_policy=1): a client's connections spread over the directors.
  # rp_filter off: DR replies come from the VIP, which is routed back toward the directors.
  nsx "${P}rt" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 "net.ipv4.conf.${P}e1.rp_filter=0"
  for d in $ECMP_DIRS; do
    plug "${P}d$d" "${P}e0" "$d"
    nsx "${P}d$d" ip addr add "$NET.$((1 + d))/24" dev "${P}e0"
    nsx "${P}d$d" ip addr add "$ECMP_VIP/32" dev lo
    nsx "${P}d$d" sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.all.send_redirects=0 \
      net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  done
  for i in $(seq 1 "$nrs"); do
    local ns="${P}rs$i"
    plug "$ns" "${P}e0" $((i + 3))
    nsx "$ns" ip addr add "$NET.$((20 + i))/24" dev "${P}e0"
    nsx "$ns" ip route add default via "$NET.1"
    nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2
    nsx "$ns" ip addr add "$ECMP_VIP/32" dev lo
    start_bg "$ns" "rs$i" node "$here/rs-server.mjs" "rs$i" --port 80 --udp-port 53
  done
  for i in $(seq 1 "$nrs"); do wait_rs "$i" "$NET.$((20 + i))" "${P}rt"; done

  # Every director: the same knobs (sloppy_tcp: pick up flows whose SYN went to another director).
  printf '# IPVS knobs of the ECMP directors (uvsd --sysctl-file)\nnet.ipv4.vs.sloppy_tcp = 1\n' >"$state_dir/ipvs.conf"
  ecmp_bird_router >"$state_dir/bird-rt.conf"
  start_bg "${P}rt" bird-rt bird -f -c "$state_dir/bird-rt.conf" -s "$state_dir/bird-rt.ctl"
  for d in $ECMP_DIRS; do
    ecmp_bird_director "$d" >"$state_dir/bird-d$d.conf"
    start_bg "${P}d$d" "bird-d$d" bird -f -c "$state_dir/bird-d$d.conf" -s "$state_dir/bird-d$d.ctl"
    ecmp_uvsd_start "$d"
    start_bg "${P}d$d" "health-d$d" node "$here/vip-health.mjs" --birdc-socket "$state_dir/bird-d$d.ctl" --protocol vip
  done
  # Bounded: BGP sessions come up within a few seconds (connect retry 1 s).
  ecmp_wait_paths "d1 d2 d3" 30 || die "the router did not learn the VIP from all three directors (see $state_dir/bird-*.log)"
  trap - ERR
  echo "lab '$S' up (ecmp): client ${P}cl 10.80.0.10, router ${P}rt 10.80.0.1 / $NET.1 (BIRD, ECMP over $(ecmp_paths | tr '\n' ' '))," \
    "directors ${P}d1-3 $NET.2-4 (uvsd mh + sloppy_tcp, BIRD + BFD), VIP $ECMP_VIP:80," \
    "real servers $(seq -s ' ' -f "$NET.%g" 21 $((20 + nrs))); configs and logs in $state_dir"
}

# lab.sh ecmp ACTION [D]
ecmp_cmd() {
  local action=${1:-} d=${2:-}
  need_root
  [ -f "$state_dir/nrs" ] || die "the ecmp lab '$S' is not up (lab.sh up ecmp)"
  case "$action" in
    paths) ecmp_paths; return ;;
    link-down|link-up|uvsd-kill|uvsd-start) [[ $d =~ ^[1-3]$ ]] || die "ecmp $action needs a director 1, 2 or 3" ;;
    *) die "unknown ecmp action '$action' (paths, link-down D, link-up D, uvsd-kill D, uvsd-start D)" ;;
  esac
  case "$action" in
    link-down) nsx "${P}d$d" ip link set "${P}e0" down ;;
    link-up) nsx "${P}d$d" ip link set "${P}e0" up ;;
    uvsd-kill) ecmp_uvsd_kill "$d" ;;
    uvsd-start) ecmp_uvsd_start "$d" ;;
  esac
}

down() {
  # Processes first (uvsd removes its own nftables table on SIGTERM), then the namespaces.
  for ns in $(lab_namespaces); do
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
  done
  for _ in $(seq 1 30); do
    local alive=0
    for ns in $(lab_namespaces); do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for ns in $(lab_namespaces); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    # What a killed uvsd of this namespace left under /run/uvs (its socket, a pcap offload record):
    # named after the namespace's inode, which a later namespace may get again.
    local ino
    ino=$(ip netns exec "$ns" stat -L -c %i /proc/self/ns/net 2>/dev/null || true)
    [[ $ino =~ ^[0-9]+$ ]] && rm -f "/run/uvs/$ino.sock" "/run/uvs/pcap-offloads-$ino.json"
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$state_dir"
}

status() {
  local nss
  nss=$(lab_namespaces)
  if [ -z "$nss" ]; then echo "lab '$S' is down"; return; fi
  echo "lab '$S':"
  for ns in $nss; do echo "  $ns: $(nsx "$ns" ip -4 -o addr show | awk '$2 != "lo" || $4 != "127.0.0.1/8" {print $2" "$4}' | tr '\n' ' ')"; done
}

uvsd_bin="$top/dist/src/cli/uvsd.js"
uvsadm_bin="$top/dist/src/cli/uvsadm.js"
uvsadm() { nsx "${P}dir" node "$uvsadm_bin" "$@"; }

# Runs uvsd on the director and waits (bounded) until uvsadm reaches it.
demo_uvsd() {
  start_bg "${P}dir" uvsd node "$uvsd_bin" -n -l --no-config --conn-state "$state_dir/uvsd.conns"
  for _ in $(seq 1 100); do uvsadm -L -n >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$state_dir/uvsd.log" >&2; die "uvsd did not come up"
}

# Echoes a uvsadm command line, then runs it.
run_uvsadm() { echo "+ uvsadm $*"; uvsadm "$@"; }

demo_clients() {
  echo "== client: curl http://$VIP/ six times"
  for _ in 1 2 3 4 5 6; do nsx "${P}cl" curl -s -m 2 "http://$VIP/" || echo "(no answer)"; done
  run_uvsadm -L -n --stats
}

# The VRRP demo: the client fetches continuously while the master is killed.
demo_vrrp() {
  need_root
  [ -f "$uvsd_bin" ] || (cd "$top" && npm run -s build) || die "build failed"
  trap down EXIT
  echo "==== VRRP: two directors, uvsd -f keepalived.conf on each, the master killed mid-stream"
  up_vrrp 2
  echo "== VIP $VIP is on: $(vip_holder)"
  for d in 1 2; do
    echo "+ ip netns exec ${P}d$d uvsadm -L -n        (director d$d)"
    nsx "${P}d$d" node "$uvsadm_bin" -L -n
  done
  echo "== client: one request every 0.25 s; the master (d1) is killed with SIGKILL after 8"
  local n ok=0 failed=0 start
  start=$(date +%s.%N)
  for n in $(seq 1 48); do
    if [ "$n" = 9 ]; then
      echo "   ---- kill -9 uvsd on d1 (the master): no priority-0 advert, d2 waits Master_Down_Interval;"
      echo "        d1 keeps a stale copy of the VIP (a killed process removes nothing, as with keepalived),"
      echo "        the client follows d2's gratuitous ARP"
      kill -9 $(uvsd_pids 1) 2>/dev/null || true
    fi
    local body
    if body=$(nsx "${P}cl" curl -s -m 1 "http://$VIP/" 2>/dev/null); then
      ok=$((ok + 1)); printf '   %5.2fs %s (client ARP: VIP at %s)\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$body" "$(arp_owner)"
    else
      failed=$((failed + 1)); printf '   %5.2fs (no answer)\n' "$(echo "$(date +%s.%N) - $start" | bc)"
    fi
    sleep 0.25
  done
  echo "== $ok answered, $failed not answered (the failover window)"
  echo "+ ip netns exec ${P}d2 uvsadm -L -n --stats   (the new master forwarded the rest)"
  nsx "${P}d2" node "$uvsadm_bin" -L -n --stats
  echo "== d2's VRRP log"
  grep -E 'Entering|VIP|gratuitous' "$state_dir/uvsd-d2.log" | tail -5 || true
}

# The ECMP demo: long-lived client connections while directors fail and come back.
demo_ecmp() {
  need_root
  [ -f "$uvsd_bin" ] || (cd "$top" && npm run -s build) || die "build failed"
  trap 'kill "${client_pid:-}" 2>/dev/null || true; down' EXIT
  echo "==== ECMP: a router spreading flows over 3 directors (BGP + BFD), mh + sloppy_tcp on each"
  up_ecmp 3
  echo "+ ip netns exec ${P}rt ip route show $ECMP_VIP     (the router's multipath route, from BIRD)"
  nsx "${P}rt" ip route show "$ECMP_VIP"
  echo "+ ip netns exec ${P}d1 uvsadm --sysctl net.ipv4.vs.sloppy_tcp"
  ecmp_uvsadm 1 --sysctl net.ipv4.vs.sloppy_tcp
  echo "+ ip netns exec ${P}d2 uvsadm -L -n        (real servers added in another order than on d1)"
  ecmp_uvsadm 2 -L -n
  local report="$state_dir/flows.json"
  echo "== client: 24 keep-alive connections, one request each every 250 ms (flow-client.mjs)"
  # Not through nsx: $! must be node itself (ip netns exec execs it), so that TERM reaches it.
  ip netns exec "${P}cl" node "$here/flow-client.mjs" "$ECMP_VIP" 80 --connections 24 --ports-file "$state_dir/ports" >"$report" 2>"$state_dir/flows.err" &
  client_pid=$!
  for _ in $(seq 1 100); do [ -s "$state_dir/ports" ] && break; sleep 0.1; done
  sleep 2
  # Packets each director forwarded since the last call (uvsadm -L -n --stats, InPkts).
  local -A last=()
  demo_ecmp_spread() {
    local d n
    for d in $ECMP_DIRS; do
      n=$( (ecmp_uvsadm "$d" -L -n --stats 2>/dev/null || true) | awk -v v="$ECMP_VIP:80" '$1 == "TCP" && $2 == v {print $4}' || true)
      n=${n:-0}
      # A restarted uvsd counts from 0 again.
      if [ "$n" -lt "${last[$d]:-0}" ]; then last[$d]=0; fi
      printf '   d%s: %5s client packets forwarded since the last look%s\n' "$d" "$((n - ${last[$d]:-0}))" \
        "$([ -z "$(ecmp_uvsd_pid "$d")" ] && echo ' (uvsd not running)')"
      last[$d]=$n
    done
  }
  demo_ecmp_spread
  local t0
  echo "== d2 loses its link: BFD notices in ~300 ms, the router drops d2's path"
  t0=$(date +%s%N); nsx "${P}d2" ip link set "${P}e0" down
  ecmp_wait_paths "d1 d3" 10 && echo "   paths now: $(ecmp_paths | tr '\n' ' ')(after $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
  sleep 3; demo_ecmp_spread
  echo "== d3's uvsd is killed (SIGKILL): its health hook withdraws the VIP, BGP stays up"
  ecmp_uvsd_kill 3; t0=$(date +%s%N)
  ecmp_wait_paths "d1" 10 && echo "   paths now: $(ecmp_paths | tr '\n' ' ')(withdrawn $(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill)"
  grep -h withdrew "$state_dir/health-d3.log" | tail -1 | sed 's/^/   /'
  sleep 3; demo_ecmp_spread
  echo "== both come back: d2's link up, d3's uvsd started (and configured) again"
  nsx "${P}d2" ip link set "${P}e0" up
  ecmp_uvsd_start 3
  ecmp_wait_paths "d1 d2 d3" 60 && echo "   paths now: $(ecmp_paths | tr '\n' ' ')"
  sleep 4; demo_ecmp_spread
  kill -TERM "$client_pid"; wait "$client_pid" 2>/dev/null || true
  echo "== every connection, start to end (port: answers per real server, failures, longest pause):"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    let bad = 0;
    for (const c of r.connections) {
      const servers = Object.entries(c.servers).map(([s, n]) => `${s} x${n}`).join(", ");
      if (c.failures.length || Object.keys(c.servers).length !== 1) bad++;
      console.log(`   ${c.port}: ${servers}; failures: ${c.failures.length ? c.failures.join("; ") : "none"}; longest pause ${c.maxGapMs} ms`);
    }
    console.log(`== ${r.connections.length - bad} of ${r.connections.length} connections kept working on one real server throughout ${r.seconds.toFixed(0)} s`);
  ' "$report"
}

# The HA demo: a long download through the master survives the master's death (connection sync).
demo_ha() {
  need_root
  [ -f "$uvsd_bin" ] || (cd "$top" && npm run -s build) || die "build failed"
  trap down EXIT
  echo "==== HA: two directors with VRRP and connection sync (lvs_sync_daemon), the master killed mid-download"
  up_vrrp 2 ha
  for d in 1 2; do
    echo "+ ip netns exec ${P}d$d uvsadm -L --daemon     (director d$d)"
    nsx "${P}d$d" node "$uvsadm_bin" -L --daemon
  done
  local size=6000000 rate=204800 out="$state_dir/download.bin"
  # Bounded: curl gives up after 90 s. The real server paces the body (rs-server.mjs /paced).
  echo "== client: curl http://$VIP/paced/$size/$rate (200 KiB/s, about 30 s) through d1"
  nsx "${P}cl" curl -s -m 90 -o "$out" -w '%{http_code} %{size_download} bytes in %{time_total} s\n' \
    "http://$VIP/paced/$size/$rate" >"$state_dir/download.txt" 2>&1 &
  local curl_pid=$!
  sleep 8
  echo "+ ip netns exec ${P}d2 uvsadm -L -n -c          (the backup already knows the connection)"
  nsx "${P}d2" node "$uvsadm_bin" -L -n -c
  echo "   ---- kill -9 uvsd on d1 (the master) at $(stat -c %s "$out" 2>/dev/null || echo 0) bytes"
  kill -9 $(uvsd_pids 1) 2>/dev/null || true
  local t
  for t in $(seq 1 90); do
    kill -0 "$curl_pid" 2>/dev/null || break
    [ $((t % 5)) = 0 ] && printf '   %3ds: %s bytes, VIP on %s\n' "$((t + 8))" "$(stat -c %s "$out" 2>/dev/null || echo 0)" "$(vip_holder)"
    sleep 1
  done
  wait "$curl_pid" || true
  echo "== curl: $(cat "$state_dir/download.txt")"
  local want got
  want=$(node -e "const n=$size,b=Buffer.allocUnsafe(n);for(let i=0;i<n;i++)b[i]=(i*31+7)&255;process.stdout.write(require('crypto').createHash('sha256').update(b).digest('hex'))")
  got=$(sha256sum "$out" | cut -d' ' -f1)
  if [ "$want" = "$got" ]; then echo "== intact: sha256 $got"; else echo "== CORRUPT: sha256 $got, expected $want"; fi
  echo "+ ip netns exec ${P}d2 uvsadm -L -n --stats    (the new master forwarded the rest)"
  nsx "${P}d2" node "$uvsadm_bin" -L -n --stats
}

demo() {
  need_root
  [ -f "$uvsd_bin" ] && [ -f "$top/dist/src/cli/uvs-tun-decap.js" ] || (cd "$top" && npm run -s build) || die "build failed"
  trap down EXIT

  echo "==== 1/3 DR (direct routing): real servers on the director's segment, VIP on their lo"
  up_dr 2
  demo_uvsd
  run_uvsadm -A -t "$VIP:80" -s rr
  run_uvsadm -a -t "$VIP:80" -r "$NET.21:80" -g
  run_uvsadm -a -t "$VIP:80" -r "$NET.22:80" -g
  run_uvsadm -L -n
  demo_clients
  down

  echo
  echo "==== 2/3 NAT (masquerading): real servers behind the director, replies come back through it"
  up_nat 2
  demo_uvsd
  run_uvsadm -A -t "$VIP:80" -s wrr
  run_uvsadm -a -t "$VIP:80" -r 10.78.0.21:8080 -m -w 2
  run_uvsadm -a -t "$VIP:80" -r 10.78.0.22:80 -m -w 1
  run_uvsadm -L -n
  demo_clients
  down

  echo
  echo "==== 3/3 TUN (IP-in-IP): real servers one router away, decapsulating with uvs-tun-decap"
  up_tun 2
  demo_uvsd
  run_uvsadm -A -t "$VIP:80" -s rr
  run_uvsadm -a -t "$VIP:80" -r 10.79.0.21:80 -i
  run_uvsadm -a -t "$VIP:80" -r 10.79.0.22:80 -i
  run_uvsadm -L -n
  demo_clients
}

cmd=${1:-}
shift || true
case "$cmd" in
  up)
    mode=${1:-dr}; shift || true
    nrs=2
    [ "$mode" = ecmp ] && nrs=3
    while [ $# -gt 0 ]; do
      case "$1" in
        --rs) nrs=${2:?--rs needs a number}; shift 2 ;;
        *) die "unknown option '$1' for up" ;;
      esac
    done
    [[ $nrs =~ ^[1-9]$ ]] || die "--rs takes 1 to 9, got '$nrs'"
    case "$mode" in
      dr) up_dr "$nrs" ;;
      nat) up_nat "$nrs" ;;
      tun) up_tun "$nrs" ;;
      vrrp) up_vrrp "$nrs" ;;
      ecmp) up_ecmp "$nrs" ;;
      ha) up_vrrp "$nrs" ha ;;
      *) die "unknown mode '$mode' (dr, nat, tun, vrrp, ha, ecmp)" ;;
    esac ;;
  down) need_root; down ;;
  ecmp) ecmp_cmd "$@" ;;
  demo)
    case "${1:-}" in
      "") demo ;;
      vrrp) demo_vrrp ;;
      ha) demo_ha ;;
      ecmp) demo_ecmp ;;
      *) die "unknown demo '$1' (lab.sh demo [vrrp|ha|ecmp])" ;;
    esac ;;
  status) status ;;
  *) echo "usage: lab.sh up dr|nat|tun|vrrp|ha|ecmp [--rs N] | ecmp ACTION [D] | down | demo [vrrp|ha|ecmp] | status   (UVS_LAB=suffix selects the lab)" >&2; exit 2 ;;
esac
