#!/bin/sh
# tandem offline installer: installs this bundle's packages with dpkg or rpm,
# no network and no dependency needed.
#
#   sh install.sh storage   the storage server: tandem-target and tandemctl
#   sh install.sh node      each cluster node: tandem-agent and tandemctl
#   sh install.sh all       everything on one machine
#
# --root DIR installs into another root (dpkg --root, rpm --root).
set -eu

usage() {
	echo "usage: sh install.sh [--root DIR] storage|node|all" >&2
	exit 2
}

root=""
role=""
while [ $# -gt 0 ]; do
	case "$1" in
	--root) [ $# -ge 2 ] || usage; root=$2; shift 2 ;;
	storage | node | all) role=$1; shift ;;
	*) usage ;;
	esac
done
[ -n "$role" ] || usage

# Go's runtime (futexes, epoll_create1, ...) needs Linux 3.2 or later.
kernel=$(uname -r)
major=${kernel%%.*}
rest=${kernel#*.}
minor=${rest%%[!0-9]*}
case "$major$minor" in
*[!0-9]* | "") echo "install.sh: cannot read the kernel version from '$kernel'" >&2; exit 1 ;;
esac
if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 2 ]; }; then
	echo "install.sh: kernel $kernel: Go's runtime needs Linux >= 3.2, so RHEL 6 (2.6.32) cannot run tandem; RHEL 7+ and Debian 9+ can" >&2
	exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if command -v sha256sum >/dev/null 2>&1; then
	sha256sum --quiet -c SHA256SUMS || { echo "install.sh: the bundle is damaged (SHA256SUMS): copy it again" >&2; exit 1; }
fi

case "$role" in
storage) names="tandem-target tandemctl" ;;
node) names="tandem-agent tandemctl" ;;
all) names="tandem-target tandem-agent tandemctl" ;;
esac

# Debian's rpm package exists too: dpkg wins on a Debian system.
pm=""
if command -v dpkg >/dev/null 2>&1 && { [ -f /etc/debian_version ] || ! command -v rpm >/dev/null 2>&1; }; then
	pm=dpkg
elif command -v rpm >/dev/null 2>&1; then
	pm=rpm
fi
if [ "$pm" = dpkg ]; then
	files=""
	for n in $names; do files="$files $(ls packages/${n}_*.deb)"; done
	if [ -n "$root" ]; then
		dpkg --root="$root" --force-not-root -i $files
	else
		dpkg -i $files
	fi
elif [ "$pm" = rpm ]; then
	files=""
	for n in $names; do files="$files $(ls packages/${n}-[0-9]*.rpm)"; done
	if [ -n "$root" ]; then
		rpm --root "$root" -Uvh --replacepkgs $files
	else
		rpm -Uvh --replacepkgs $files
	fi
else
	echo "install.sh: neither dpkg nor rpm found: copy bin/ to /usr/local/bin by hand, or install on Debian 9+ or RHEL 7+" >&2
	exit 1
fi

echo
echo "installed: $names"
case "$role" in
storage | all)
	echo "next, on the storage server:"
	echo "  tandemctl provision        (or import tgt's targets.conf: tandemctl import tgt)"
	echo "  systemctl enable --now tandem-target"
	;;
esac
case "$role" in
node | all)
	echo "next, on each node:"
	echo "  tandemctl import heartbeat /etc/ha.d   (from heartbeat), or tandemctl node-config"
	echo "  tandemctl doctor --role node           (finds the pitfalls before they bite)"
	echo "  systemctl enable --now tandem-agent"
	;;
esac
