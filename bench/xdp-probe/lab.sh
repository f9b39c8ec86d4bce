#!/bin/bash
# usage: lab.sh up|down     gen(uvsx-g0) --veth-- (uvsx-d0) dir (uvsx-d1) --veth-- (uvsx-s0) sink
set -u
NS="uvsx-gen uvsx-dir uvsx-sink"
down() { for n in $NS; do ip netns del $n 2>/dev/null || true; done; }
up() {
  set -e
  down
  for n in $NS; do ip netns add $n; ip -n $n link set lo up; ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
  ip link add uvsx-g0 netns uvsx-gen address 02:00:00:00:00:01 type veth peer name uvsx-d0 netns uvsx-dir address 02:00:00:00:00:02
  ip link add uvsx-d1 netns uvsx-dir address 02:00:00:00:00:03 type veth peer name uvsx-s0 netns uvsx-sink address 02:00:00:00:00:04
  ip -n uvsx-gen addr add 10.211.1.2/24 dev uvsx-g0
  ip -n uvsx-dir addr add 10.211.1.1/24 dev uvsx-d0
  ip -n uvsx-dir addr add 10.211.2.1/24 dev uvsx-d1
  ip -n uvsx-dir neigh replace 10.211.2.2 lladdr 02:00:00:00:00:04 dev uvsx-d1 nud permanent
  ip netns exec uvsx-dir sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.ip_forward=0
  for i in uvsx-g0:uvsx-gen uvsx-d0:uvsx-dir uvsx-d1:uvsx-dir uvsx-s0:uvsx-sink; do ip -n ${i#*:} link set ${i%:*} up; done
  ip netns exec uvsx-sink nft -f - <<'NFT'
table netdev uvsxdrop {
  chain in { type filter hook ingress device "uvsx-s0" priority 0; policy drop; }
}
NFT
  set +e
}
case "${1:-}" in up) up;; down) down;; *) echo "usage: $0 up|down"; exit 2;; esac
