// Package lvm will provision LUN backing volumes through the lvm2 tools
// (lvcreate, lvextend, lvremove, lvs), wrapping each call in an adapter
// that reports the command, its stderr and the fix.
package lvm
