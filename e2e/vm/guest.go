package vm

// initScript is the guest's /init (busybox sh as PID 1). Per-guest
// settings come from the kernel command line (tandem.ip, tandem.iqn,
// tandem.ip1, tandem.ip2, tandem.hostname, tandem.iscsid), so one image serves every guest.
//
// It stays PID 1 and sleeps in a loop: ash reaps any child while it waits
// for sleep, so daemons' orphans (iscsid forks) do not pile up as zombies.
const initScript = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
# CPU-specific crypto (crc32c-intel, crct10dif-pclmul) does not load under
# TCG: those failures are expected, the generic versions serve.
while read -r m; do
	insmod "$m" 2>/dev/null || case "$m" in *-intel.ko|*-pclmul.ko) ;; *) echo "init: insmod $m failed" ;; esac
done < /etc/tandem/modules
ip=; ip1=; ip2=; iqn=; hn=guest; iscsid=1
for a in $(cat /proc/cmdline); do
	case "$a" in
	tandem.ip=*) ip="${a#*=}" ;;
	tandem.ip1=*) ip1="${a#*=}" ;;
	tandem.ip2=*) ip2="${a#*=}" ;;
	tandem.iqn=*) iqn="${a#*=}" ;;
	tandem.hostname=*) hn="${a#*=}" ;;
	tandem.iscsid=*) iscsid="${a#*=}" ;;
	esac
done
hostname "$hn"
ip link set lo up
if [ -n "$ip" ]; then
	ip addr add "$ip" dev eth0
	ip link set eth0 up
fi
# Further NICs (vm.Config.NICs) are eth1, eth2 in order.
[ -n "$ip1" ] && { ip addr add "$ip1" dev eth1; ip link set eth1 up; }
[ -n "$ip2" ] && { ip addr add "$ip2" dev eth2; ip link set eth2 up; }
# Each guest needs its own InitiatorName (open-iscsi reads it at start).
[ -n "$iqn" ] && echo "InitiatorName=$iqn" > /etc/iscsi/initiatorname.iscsi
[ "$iscsid" = 1 ] && iscsid
/bin/vmagent &
echo "tandem-guest-ready $hn"
while :; do sleep 1; done
`

// iscsidConf is /etc/iscsi/iscsid.conf: Debian's defaults, except that
// iscsid is started by path (there is no systemd in the guest; Debian's
// file calls systemctl and iscsiadm then fails with rc 20).
const iscsidConf = `iscsid.startup = /usr/sbin/iscsid
node.startup = manual
node.leading_login = No
node.session.timeo.replacement_timeout = 120
node.conn[0].timeo.login_timeout = 15
node.conn[0].timeo.logout_timeout = 15
node.conn[0].timeo.noop_out_interval = 5
node.conn[0].timeo.noop_out_timeout = 5
node.session.err_timeo.abort_timeout = 15
node.session.err_timeo.lu_reset_timeout = 30
node.session.err_timeo.tgt_reset_timeout = 30
node.session.err_timeo.host_reset_timeout = 60
node.session.initial_login_retry_max = 8
node.session.cmds_max = 128
node.session.queue_depth = 32
node.session.iscsi.InitialR2T = No
node.session.iscsi.ImmediateData = Yes
node.session.iscsi.FirstBurstLength = 262144
node.session.iscsi.MaxBurstLength = 16776192
node.conn[0].iscsi.MaxRecvDataSegmentLength = 262144
node.conn[0].iscsi.MaxXmitDataSegmentLength = 0
discovery.sendtargets.iscsi.MaxRecvDataSegmentLength = 32768
node.session.nr_sessions = 1
node.session.reopen_max = 0
node.session.iscsi.FastAbort = Yes
node.session.scan = auto
`
