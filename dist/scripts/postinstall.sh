#!/bin/sh
# Make systemd see the unit. Never start or restart the daemon here: an
# agent restart moves the resource group, so the operator chooses when.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
