#!/usr/bin/env bash
# Installs Rampart on a bare-metal Debian edge server. Run from a built
# checkout (make build) as root: deploy/install.sh [IFACE]
set -euo pipefail
cd "$(dirname "$0")/.."
iface=${1:-}
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
[ -x bin/rampart ] && [ -x bin/rampartctl ] || { echo "install.sh: run 'make build' first" >&2; exit 1; }

install -m 0755 bin/rampart bin/rampartctl /usr/local/bin/
install -d -m 0755 /etc/rampart /usr/local/share/doc/rampart
install -m 0644 README.md /usr/local/share/doc/rampart/README.md
[ -e /etc/rampart/profile.yaml ] || install -m 0644 profiles/edge-default.yaml /etc/rampart/profile.yaml
[ -e /etc/default/rampart ] || install -m 0644 deploy/rampart.default /etc/default/rampart
if [ -n "$iface" ]; then
	sed -i "s/^RAMPART_IFACE=.*/RAMPART_IFACE=$iface/" /etc/default/rampart
fi
install -m 0644 deploy/99-rampart.conf /etc/sysctl.d/99-rampart.conf
sysctl --system >/dev/null
install -m 0644 deploy/rampart.service /etc/systemd/system/rampart.service
grep -q '^bpf /sys/fs/bpf' /etc/fstab || echo 'bpf /sys/fs/bpf bpf defaults 0 0' >> /etc/fstab
mountpoint -q /sys/fs/bpf || mount /sys/fs/bpf
systemctl daemon-reload
echo "installed. Edit /etc/rampart/profile.yaml (served addresses!) and /etc/default/rampart, then:"
echo "  systemctl enable --now rampart && rampartctl --iface \$(. /etc/default/rampart; echo \$RAMPART_IFACE) xdp stats"
