#!/bin/sh
# On removal (deb: "remove", rpm: 0 packages left) stop and disable the
# unit; an upgrade (deb: "upgrade", rpm: 1) leaves the daemon running.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl --no-reload disable --now @UNIT@ >/dev/null 2>&1 || true
	fi
	;;
esac
