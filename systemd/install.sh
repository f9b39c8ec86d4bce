#!/bin/bash
# Installs uvsd.service for the uvsd on PATH (after `npm install -g .` or `npm link`): the unit
# with ExecStart pointing at that uvsd, /etc/default/uvsd if it is not there yet, and the man
# pages where man finds them. Then: systemctl daemon-reload && systemctl enable --now uvsd.
# Usage: systemd/install.sh [UNIT_DIR]   (default /etc/systemd/system)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
unit_dir=${1:-/etc/systemd/system}
uvsd=$(command -v uvsd) || { echo "install.sh: uvsd is not on PATH: run npm install -g . (or npm link) first" >&2; exit 1; }
sed "s|^ExecStart=/usr/bin/uvsd |ExecStart=$uvsd |" "$here/uvsd.service" > "$unit_dir/uvsd.service"
[ -e /etc/default/uvsd ] || install -m 0644 "$here/uvsd.default" /etc/default/uvsd
for page in "$here"/../man/*.8; do install -D -m 0644 "$page" "/usr/local/share/man/man8/$(basename "$page")"; done
echo "installed $unit_dir/uvsd.service (ExecStart=$uvsd); next: systemctl daemon-reload && systemctl enable --now uvsd"
