#!/usr/bin/env bash
# Installs the Debian packages a purpose needs, only when something is missing.
# Usage: deps.sh build|test|lab|ecmp|bench
set -euo pipefail
purpose=${1:-test}

declare -A pkg_of=(
  [ip]=iproute2 [nft]=nftables [tcpdump]=tcpdump [tshark]=tshark [curl]=curl
  [keepalived]=keepalived [ethtool]=ethtool [ping]=iputils-ping [nstat]=iproute2
  [iperf3]=iperf3 [wrk]=wrk [haproxy]=haproxy [nginx]=nginx [socat]=socat
  [pcap-config]=libpcap-dev [make]=make [g++]=g++ [gcc]=gcc [python3]=python3 [bird]=bird2
)
case "$purpose" in
  build) cmds=(make g++ python3 pcap-config) ;;
  test)  cmds=(ip nft nstat curl wrk keepalived ethtool ping tcpdump tshark socat make g++ python3 pcap-config bird) ;;
  lab)   cmds=(ip nft curl ethtool ping make g++ python3) ;;
  # The ECMP lab's routing daemon: BIRD 2 (BGP, BFD and ECMP in one small daemon).
  ecmp)  cmds=(ip nft curl ethtool ping make g++ python3 bird) ;;
  # gcc: the packet-rate reference row's XDP program loader (bench/xdp-probe/redirect.c).
  bench) cmds=(ip nft curl ethtool ping iperf3 wrk haproxy nginx keepalived make g++ gcc python3) ;;
  *) echo "deps.sh: unknown purpose '$purpose' (build, test, lab, ecmp or bench)" >&2; exit 2 ;;
esac

missing=()
for c in "${cmds[@]}"; do
  command -v "$c" >/dev/null 2>&1 || missing+=("${pkg_of[$c]}")
done
# nginx's stream proxy (the bench's "nginx stream" case) is a separate module package on Debian.
if [ "$purpose" = bench ] && ! [ -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
  missing+=(libnginx-mod-stream)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
