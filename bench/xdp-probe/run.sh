#!/bin/bash
# Build, bring the lab up, run one alternating A/B session, always tear the lab down.
# usage: ./run.sh OUT.jsonl [SECS=4] [REPS=3] [all|unpaced|paced]
set -eu
cd "$(dirname "$0")"
# Build dependencies (Debian 12): clang for the XDP program, libxdp for the XSK helpers.
if ! command -v clang >/dev/null || [ ! -e /usr/include/xdp/xsk.h ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y clang llvm libbpf-dev libxdp-dev linux-libc-dev
fi
clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c xdp_kern.c -o xdp_kern.o
gcc -O2 -Wall -o fwd fwd.c -lxdp -lbpf
gcc -O2 -Wall -o gen gen.c
trap './lab.sh down' EXIT INT TERM
./lab.sh up
uptime
./bench.py "$1" "${2:-4}" "${3:-3}" "${4:-all}"
uptime
python3 ratios.py "$1"
