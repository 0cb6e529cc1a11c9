#!/bin/sh
# Forget the removed unit. State (/var/lib/tandem) and changed configs are
# the operator's: dpkg --purge removes conffiles, never LUNs or reservations.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
