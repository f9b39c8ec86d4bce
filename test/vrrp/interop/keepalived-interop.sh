#!/bin/bash
# uvs VRRP (raw-socket io) against real keepalived, two network namespaces joined by a veth.
# Needs root, keepalived, and a built tree (npm run build, native addon). Not run by test/run.mjs;
# run it by hand or from a netns test:  test/vrrp/interop/keepalived-interop.sh [all|v2|v3|unicast|reverse|killed|password]
# Names start with uvs and carry this shell's pid; everything is removed on exit.
set -u
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
DRIVER=$ROOT/dist/test/vrrp/interop/driver.js
[ "$(id -u)" = 0 ] || { echo "keepalived-interop.sh: needs root (network namespaces, raw sockets)"; exit 2; }
command -v keepalived >/dev/null || { echo "keepalived-interop.sh: keepalived is not installed"; exit 2; }
[ -f "$DRIVER" ] || { echo "keepalived-interop.sh: $DRIVER missing; run npm run build"; exit 2; }

S=$$
A=uvsvA$S; B=uvsvB$S; VA=uvsva$S; VB=uvsvb$S
D=$(mktemp -d /tmp/uvs-vrrp-interop.XXXXXX)
UPID=""
FAILED=0

cleanup() {
  [ -n "$UPID" ] && kill "$UPID" 2>/dev/null
  [ -f "$D/ka.pid" ] && kill "$(cat "$D/ka.pid")" 2>/dev/null
  sleep 0.3
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT

holders() { echo "$(ip -n "$A" -4 -o addr show | grep -c ' 10.77.0.100/')$(ip -n "$B" -4 -o addr show | grep -c ' 10.77.0.100/')"; }
expect() { # expect NAME WANT(uvs keepalived as "10"/"01") WITHIN_SECONDS
  local name=$1 want=$2 within=$3 got
  for _ in $(seq 1 $((within * 10))); do got=$(holders); [ "$got" = "$want" ] && { echo "ok   $name ($got)"; return 0; }; sleep 0.1; done
  echo "FAIL $name: VIP holders uvs/keepalived = $got, want $want"; FAILED=1
  echo "--- uvs log"; tail -15 "$D/uvs.log"; echo "--- keepalived log"; grep -v 'gratuitous ARP' "$D/ka.log" | tail -10
  return 1
}

lab() {
  ip netns add "$A" && ip netns add "$B" || exit 1
  ip link add "$VA" type veth peer name "$VB"
  ip link set "$VA" netns "$A"; ip link set "$VB" netns "$B"
  ip -n "$A" addr add 10.77.0.1/24 dev "$VA"; ip -n "$A" link set "$VA" up; ip -n "$A" link set lo up
  ip -n "$B" addr add 10.77.0.2/24 dev "$VB"; ip -n "$B" link set "$VB" up; ip -n "$B" link set lo up
}

start_keepalived() { # VERSION PRIO PASS UNICAST
  local auth="" unicast=""
  [ "$1" = 2 ] && auth="authentication {
    auth_type PASS
    auth_pass $3
  }"
  [ -n "$4" ] && unicast="unicast_src_ip 10.77.0.2
  unicast_peer {
    10.77.0.1
  }"
  cat >"$D/ka.conf" <<CONF
global_defs {
  vrrp_version $1
  script_user root
}
vrrp_instance VI_K {
  interface $VB
  virtual_router_id 77
  priority $2
  advert_int 1
  $auth
  $unicast
  virtual_ipaddress {
    10.77.0.100/24
  }
}
CONF
  ip netns exec "$B" timeout 120 keepalived -n -l -D -P -f "$D/ka.conf" -p "$D/ka.pid" -r "$D/vrrp.pid" >"$D/ka.log" 2>&1 &
}

start_uvs() { # VERSION PRIO PASS UNICAST
  local json="{\"name\":\"VI_U\",\"interface\":\"$VA\",\"primaryAddress\":\"10.77.0.1\",\"vrid\":77,\"priority\":$2,\"version\":$1"
  json="$json,\"virtualAddresses\":[{\"address\":\"10.77.0.100\",\"prefixLength\":24,\"dev\":\"$VA\"}]"
  [ "$1" = 2 ] && json="$json,\"authType\":1,\"authPass\":\"$3\""
  [ -n "$4" ] && json="$json,\"unicastSource\":\"10.77.0.1\",\"unicastPeers\":[\"10.77.0.2\"]"
  ip netns exec "$A" timeout 120 node "$DRIVER" "$json}" >>"$D/uvs.log" 2>&1 &
  UPID=$!
}

stop_uvs() { kill -TERM "$UPID"; wait "$UPID" 2>/dev/null; UPID=""; }
stop_keepalived() { kill "$(cat "$D/ka.pid")" 2>/dev/null; sleep 1; rm -f "$D/ka.pid"; }

scenario() { # NAME VERSION UVS_PRIO KA_PRIO UNICAST
  local name=$1 v=$2 up=$3 kp=$4 uc=$5
  echo "== $name: VRRPv$v uvs=$up keepalived=$kp ${uc:+unicast}"
  lab
  start_keepalived "$v" "$kp" uvspw "$uc"
  start_uvs "$v" "$up" uvspw "$uc"
  if [ "$up" -gt "$kp" ]; then
    expect "$name: uvs elected" 10 8
    stop_uvs
    expect "$name: keepalived takes over after a clean stop" 01 2
    start_uvs "$v" "$up" uvspw "$uc"
    expect "$name: uvs preempts when it returns" 10 8
  else
    expect "$name: keepalived elected, uvs backup" 01 8
    stop_keepalived
    expect "$name: uvs takes over after keepalived stops" 10 2
    stop_uvs
  fi
  grep -q "WARN" "$D/uvs.log" && { echo "FAIL $name: uvs logged warnings:"; grep WARN "$D/uvs.log" | head -5; FAILED=1; }
  [ -n "$UPID" ] && stop_uvs
  [ -f "$D/ka.pid" ] && stop_keepalived
  ip netns del "$A"; ip netns del "$B"; : >"$D/uvs.log"
}

killed() {
  echo "== killed: uvs master killed with SIGKILL, keepalived takes over; uvs restarts clean and preempts"
  lab
  start_keepalived 2 90 uvspw ""
  start_uvs 2 100 uvspw ""
  expect "killed: uvs elected" 10 8
  # SIGKILL the node process itself (not the timeout wrapper): no priority 0, VIP left behind.
  pkill -KILL -P "$UPID" node 2>/dev/null || kill -KILL "$UPID"
  wait "$UPID" 2>/dev/null; UPID=""
  # keepalived waits Master_Down_Interval (3 x 1 s + skew(90) = 3.65 s); the stale VIP stays on A.
  expect "killed: keepalived takes over after Master_Down_Interval" 11 6
  start_uvs 2 100 uvspw ""
  expect "killed: uvs restarts, removes the stale VIP, then preempts" 10 10
  stop_uvs; stop_keepalived
  ip netns del "$A"; ip netns del "$B"; : >"$D/uvs.log"
}

password() {
  echo "== password: an advert with the wrong password is ignored and logged"
  lab
  start_keepalived 2 150 otherpw ""
  start_uvs 2 100 uvspw ""
  sleep 5
  if grep -q "received an invalid password from 10.77.0.2 - dropped" "$D/uvs.log"; then echo "ok   password: logged"; else echo "FAIL password: no log line"; FAILED=1; fi
  # Each side ignores the other: both hold the VIP (what keepalived does too).
  expect "password: uvs did not obey the bad advert" 11 6
  stop_uvs; stop_keepalived
  ip netns del "$A"; ip netns del "$B"; : >"$D/uvs.log"
}

case "${1:-all}" in
  v2) scenario v2 2 100 90 "" ;;
  v3) scenario v3 3 100 90 "" ;;
  reverse) scenario reverse 2 90 150 "" ;;
  unicast) scenario unicast 2 100 90 1; scenario unicast-v3 3 100 90 1 ;;
  password) password ;;
  killed) killed ;;
  all)
    scenario v2 2 100 90 ""; scenario reverse 2 90 150 ""; scenario v3 3 100 90 ""; scenario v3-reverse 3 90 150 ""
    scenario unicast 2 100 90 1; scenario unicast-v3 3 90 150 1; killed; password ;;
  *) echo "usage: $0 [all|v2|v3|unicast|reverse|killed|password]"; exit 2 ;;
esac
[ "$FAILED" = 0 ] && echo "all passed" || echo "FAILED"
exit "$FAILED"
