#!/usr/bin/env bash
# Regenerates test/fixtures/packets/*.txt from real traffic between network namespaces.
#
# Needs root (network namespaces), tcpdump, tshark, python3, curl, socat, ping, arping (Habets),
# keepalived, ethtool. Every namespace/device is named uvs* with a per-run suffix and is removed on
# exit, also on failure or Ctrl-C. No address or route of the root namespace is touched.
#
# Topology (10.x only, all inside the namespaces):
#
#   uvsfA<s> ──veth── uvsfB<s> ──veth (MTU 1280)── uvsfC<s>
#   10.201.0.1       10.201.0.2 | 10.201.1.2        10.201.1.3
#                    (router, ip_forward=1)
#
# This kernel has no 802.1Q (CONFIG_VLAN_8021Q) and no ipip module, so the tagged frame comes from
# arping -V (Habets arping builds the tag itself with libnet) and there is no IPIP capture.
#
# Transmit checksum offload is turned off on every veth, so the captured checksums are the real,
# complete ones (with offload on, a veth hands frames to tcpdump with only the pseudo-header sum).
#
# Output format of each fixture file: for each frame, a "# === frame N ===" line, tshark -V text as
# "# " comments, then the frame's bytes as hex (whitespace is ignored by the reader).
#
# Usage: netns-scripts/capture-fixtures.sh [OUTDIR]   (default test/fixtures/packets)
#        UVS_KEEP_TMP=1 keeps the pcaps and logs of the run (the path is printed).
# Check a fresh capture against the tests: UVS_PACKET_FIXTURES=OUTDIR node --test dist/test/packet/
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/test/fixtures/packets}
suffix=$(printf '%04x' $((RANDOM % 65536)))
nsA=uvsfA$suffix nsB=uvsfB$suffix nsC=uvsfC$suffix
vAB=uvsfab$suffix vBA=uvsfba$suffix vBC=uvsfbc$suffix vCB=uvsfcb$suffix
pids=()

if [ "$(id -u)" -ne 0 ]; then
  echo "capture-fixtures.sh: needs root (it creates network namespaces)" >&2
  exit 1
fi
for c in ip tcpdump tshark python3 curl socat ping arping keepalived ethtool timeout; do
  command -v "$c" >/dev/null || { echo "capture-fixtures.sh: '$c' not found" >&2; exit 1; }
done
# -V (802.1Q tag) and -S/-U as used below are Thomas Habets' arping (Debian package "arping"), not
# iputils-arping.
arpingUsage=$(arping 2>&1 || true)
if [[ $arpingUsage != *Habets* ]]; then
  echo "capture-fixtures.sh: needs Thomas Habets' arping (apt-get install arping)" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/uvs-fix-XXXXXX)

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "$nsA" "$nsB" "$nsC"; do ip netns del "$ns" 2>/dev/null; done
  [ -n "${UVS_KEEP_TMP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

inA() { ip netns exec "$nsA" "$@"; }
inB() { ip netns exec "$nsB" "$@"; }
inC() { ip netns exec "$nsC" "$@"; }

# --- topology -------------------------------------------------------------------------------
for ns in "$nsA" "$nsB" "$nsC"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # No IPv6 chatter (router solicitations, MLD) in the captures.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add "$vAB" netns "$nsA" type veth peer name "$vBA" netns "$nsB"
ip link add "$vBC" netns "$nsB" type veth peer name "$vCB" netns "$nsC"
ip -n "$nsA" addr add 10.201.0.1/24 dev "$vAB"
ip -n "$nsB" addr add 10.201.0.2/24 dev "$vBA"
ip -n "$nsB" addr add 10.201.1.2/24 dev "$vBC"
ip -n "$nsC" addr add 10.201.1.3/24 dev "$vCB"
ip -n "$nsB" link set "$vBC" mtu 1280
ip -n "$nsC" link set "$vCB" mtu 1280
inA ethtool -K "$vAB" tx off >/dev/null 2>&1 || true
inB ethtool -K "$vBA" tx off >/dev/null 2>&1 || true
inB ethtool -K "$vBC" tx off >/dev/null 2>&1 || true
inC ethtool -K "$vCB" tx off >/dev/null 2>&1 || true
ip -n "$nsA" link set "$vAB" up
ip -n "$nsB" link set "$vBA" up
ip -n "$nsB" link set "$vBC" up
ip -n "$nsC" link set "$vCB" up
ip -n "$nsA" route add 10.201.1.0/24 via 10.201.0.2
ip -n "$nsC" route add 10.201.0.0/24 via 10.201.1.2
inB sysctl -qw net.ipv4.ip_forward=1
# Rate limits would swallow the second ICMP error of a run.
inB sysctl -qw net.ipv4.icmp_ratelimit=0
inA sysctl -qw net.ipv4.icmp_ratelimit=0
sleep 0.5 # let link-up settle; the capture filters select what each fixture needs anyway

# --- capture helpers ----------------------------------------------------------------------------
capPid=
# start_capture NS IFACE PCAP FILTER...
start_capture() {
  local ns=$1 dev=$2 pcap=$3; shift 3
  ip netns exec "$ns" timeout 30 tcpdump --immediate-mode -i "$dev" -U -s 0 -w "$pcap" "$@" >/dev/null 2>"$pcap.log" &
  capPid=$!
  pids+=("$capPid")
  # tcpdump prints "listening on" once the socket is bound; wait for it (bounded).
  for _ in $(seq 50); do grep -q listening "$pcap.log" 2>/dev/null && return 0; sleep 0.1; done
  echo "capture-fixtures.sh: tcpdump did not start on $ns/$dev" >&2
  cat "$pcap.log" >&2
  return 1
}
stop_capture() {
  sleep 0.5
  kill -INT "$capPid" 2>/dev/null || true
  wait "$capPid" 2>/dev/null || true
}
# write_fixture NAME PCAP TITLE: pcap → hex + tshark -V text.
write_fixture() {
  local name=$1 pcap=$2 title=$3
  local n
  n=$(tshark -r "$pcap" -T fields -e frame.number 2>/dev/null | wc -l)
  if [ "$n" -eq 0 ]; then
    echo "capture-fixtures.sh: no frames captured for $name" >&2
    return 1
  fi
  tshark -r "$pcap" -V -o tcp.relative_sequence_numbers:FALSE -o ip.check_checksum:TRUE \
    -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE >"$tmp/$name.V" 2>/dev/null
  python3 - "$pcap" "$tmp/$name.V" "$out/$name.txt" "$title" <<'PY'
import struct, sys, re
pcap, vtext, dest, title = sys.argv[1:5]
data = open(pcap, 'rb').read()
magic = struct.unpack('<I', data[:4])[0]
endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
linktype = struct.unpack(endian + 'I', data[20:24])[0]
if linktype != 1:
    sys.exit(f'{pcap}: link type {linktype}, expected 1 (Ethernet)')
frames, off = [], 24
while off + 16 <= len(data):
    incl = struct.unpack(endian + 'I', data[off + 8:off + 12])[0]
    frames.append(data[off + 16:off + 16 + incl])
    off += 16 + incl
# tshark -V prints one block per frame, each starting with "Frame N: ".
blocks = re.split(r'(?m)^(?=Frame \d+: )', open(vtext).read())
blocks = [b for b in blocks if b.startswith('Frame ')]
if len(blocks) != len(frames):
    sys.exit(f'{pcap}: {len(frames)} frames but {len(blocks)} tshark blocks')
with open(dest, 'w') as f:
    f.write(f'# {title}\n# Captured by netns-scripts/capture-fixtures.sh; regenerate with it, do not edit.\n')
    for i, (fr, blk) in enumerate(zip(frames, blocks), 1):
        f.write(f'\n# === frame {i} ===\n')
        for line in blk.rstrip('\n').split('\n'):
            # Arrival times change on every run and say nothing about the packet.
            if re.match(r'\s*(Arrival Time|UTC Arrival Time|Epoch Time|\[Time )', line):
                continue
            f.write(('# ' + line).rstrip() + '\n')
        hx = fr.hex()
        for j in range(0, len(hx), 64):
            f.write(hx[j:j + 64] + '\n')
PY
  echo "fixture $name: $n frame(s)"
}

mkdir -p "$out"

# --- HTTP over TCP: curl (A) → python3 http.server (B) ---------------------------------------------
echo 'hello from uvs fixtures' >"$tmp/index.txt"
(cd "$tmp" && exec ip netns exec "$nsB" timeout 60 python3 -m http.server 8080 --bind 10.201.0.2) >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do inA curl -s -o /dev/null http://10.201.0.2:8080/ 2>/dev/null && break; sleep 0.1; done
start_capture "$nsA" "$vAB" "$tmp/http.pcap" tcp port 8080
inA curl -s -o /dev/null --max-time 5 http://10.201.0.2:8080/index.txt
stop_capture
write_fixture http-tcp "$tmp/http.pcap" 'curl GET over TCP to python3 http.server: handshake, request, response, close'

# --- ICMP echo request + reply ----------------------------------------------------------------------
start_capture "$nsA" "$vAB" "$tmp/ping.pcap" icmp
inA ping -c 1 -W 2 10.201.0.2 >/dev/null
stop_capture
write_fixture icmp-echo "$tmp/ping.pcap" 'ping -c 1: ICMP echo request and echo reply'

# --- IPv4 fragments: a 2000-byte ping is fragmented by A (MTU 1500), the reply by B -----------------
start_capture "$nsA" "$vAB" "$tmp/frag.pcap" icmp or '(ip[6:2] & 0x1fff != 0)'
inA ping -c 1 -s 2000 -W 2 10.201.0.2 >/dev/null
stop_capture
write_fixture ipv4-fragments "$tmp/frag.pcap" 'ping -c 1 -s 2000: echo request and reply, each in two IPv4 fragments (MF, offset 185)'

# --- IPv4 options: ping -R (record route) across the router --------------------------------------
start_capture "$nsA" "$vAB" "$tmp/rr.pcap" icmp
inA ping -R -c 1 -W 2 10.201.1.3 >/dev/null
stop_capture
write_fixture ipv4-options "$tmp/rr.pcap" 'ping -R -c 1 through a router: IPv4 record-route option (IHL 15)'

# --- UDP to a closed port → ICMP port unreachable -------------------------------------------------
start_capture "$nsA" "$vAB" "$tmp/unreach.pcap" udp or icmp
echo 'is anybody there' | inA timeout 3 socat -u - UDP:10.201.0.2:9,sourceport=40000 || true
stop_capture
write_fixture icmp-port-unreachable "$tmp/unreach.pcap" 'UDP datagram to a closed port and the ICMP port unreachable quoting it'

# --- DF packet too big for the router's 1280-byte link → frag needed (next-hop MTU 1280) -----------
start_capture "$nsA" "$vAB" "$tmp/fragneeded.pcap" icmp
inA ping -M do -s 1400 -c 1 -W 2 10.201.1.3 >/dev/null 2>&1 || true
stop_capture
write_fixture icmp-frag-needed "$tmp/fragneeded.pcap" 'ping -M do -s 1400 across a 1280-MTU link: ICMP fragmentation needed, next-hop MTU 1280'

# --- TTL 1 across the router → time exceeded ---------------------------------------------------
start_capture "$nsA" "$vAB" "$tmp/ttl.pcap" icmp
inA ping -t 1 -c 1 -W 2 10.201.1.3 >/dev/null 2>&1 || true
stop_capture
write_fixture icmp-time-exceeded "$tmp/ttl.pcap" 'ping -t 1 across a router: ICMP time exceeded in transit'

# --- ARP request/reply, then gratuitous ARP --------------------------------------------------------
inA ip neigh flush dev "$vAB"
inB ip neigh flush dev "$vBA"
start_capture "$nsB" "$vBA" "$tmp/arp.pcap" arp
inA arping -c 1 -w 2000000 -i "$vAB" 10.201.0.2 >/dev/null 2>&1 || true
stop_capture
write_fixture arp-request-reply "$tmp/arp.pcap" 'arping -c 1 (Habets): ARP request and the kernel reply'

start_capture "$nsB" "$vBA" "$tmp/garp.pcap" arp
inA arping -U -c 1 -w 1000000 -i "$vAB" -S 10.201.0.1 10.201.0.1 >/dev/null 2>&1 || true
stop_capture
write_fixture arp-gratuitous "$tmp/garp.pcap" 'arping -U (Habets): gratuitous ARP request announcing 10.201.0.1'

# --- 802.1Q tagged frame (VLAN 100, priority 5), captured on the receiving side ---------------------
# Nobody answers: without 8021q the receiving kernel has no vlan 100 device.
start_capture "$nsB" "$vBA" "$tmp/vlan.pcap" vlan 100
inA arping -V 100 -Q 5 -c 1 -w 1000000 -i "$vAB" -S 10.201.100.1 10.201.100.2 >/dev/null 2>&1 || true
stop_capture
write_fixture vlan-arp "$tmp/vlan.pcap" 'arping -V 100 -Q 5 (Habets): 802.1Q-tagged ARP request, VLAN 100, PCP 5, padded by libnet'

# --- VRRP adverts from real keepalived in namespace A, captured in B --------------------------------
# run_keepalived NAME CONF: starts keepalived in A, captures 3 adverts in B, stops keepalived.
run_keepalived() {
  local name=$1 conf=$2 title=$3
  local kpid
  start_capture "$nsB" "$vBA" "$tmp/$name.pcap" -c 3 ip proto 112
  ip netns exec "$nsA" keepalived -n -l -D -P -f "$conf" -p "$tmp/$name.pid" -r "$tmp/$name-vrrp.pid" \
    >"$tmp/$name.klog" 2>&1 &
  kpid=$!
  pids+=("$kpid")
  # three adverts: one becoming master (after ~3 advert intervals as backup) plus two more
  for _ in $(seq 150); do kill -0 "$capPid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$kpid" 2>/dev/null || true
  wait "$kpid" 2>/dev/null || true
  stop_capture
  write_fixture "$name" "$tmp/$name.pcap" "$title"
}

cat >"$tmp/v2.conf" <<EOF
global_defs {
  router_id uvsfix
  vrrp_version 2
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 1
}
vrrp_instance uvsv2 {
  state MASTER
  interface $vAB
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass uvs-pw
  }
  virtual_ipaddress {
    10.201.0.100/24
    10.201.0.101/24
  }
}
EOF
run_keepalived vrrp-v2 "$tmp/v2.conf" 'keepalived v2.2 VRRPv2 adverts: vrid 51, priority 150, advert_int 1, PASS auth, two VIPs'

cat >"$tmp/v3.conf" <<EOF
global_defs {
  router_id uvsfix
  vrrp_version 3
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 1
}
vrrp_instance uvsv3 {
  state MASTER
  interface $vAB
  virtual_router_id 52
  priority 200
  advert_int 0.5
  virtual_ipaddress {
    10.201.0.110/24
    10.201.0.111/24
    10.201.0.112/24
  }
}
EOF
run_keepalived vrrp-v3 "$tmp/v3.conf" 'keepalived v2.2 VRRPv3 adverts: vrid 52, priority 200, advert_int 0.5 s (50 cs), three VIPs'

echo "fixtures written to $out"
