// Package heartbeat is the wire format of tandem-agent's heartbeat datagram
// and the receive-side filter that drops forged, foreign-cluster, looped-back
// and replayed datagrams.
//
// One datagram is sent on every link each keepalive (TypeKeepalive). When
// an agent dies, its guard stops the group and then sends one datagram of
// TypeReleased on every link, so the peer takes over at once instead of
// after deadtime. It is authenticated with
// HMAC-SHA256 (RFC 2104, FIPS 198-1) under the cluster's shared key, computed
// over every byte before the tag, so a datagram is accepted whole or not at
// all. The layout is fixed and versioned (all integers big-endian):
//
//	offset size field
//	0      1    version (1)
//	1      1    state   (fsm.NodeState, append-only enum)
//	2      1    flags   (fsm.Flags bit set, e.g. takeover request)
//	3      1    len(cluster), 1..255
//	4      1    len(node),    1..255
//	5      1    type    (Type: keepalive, released; append-only)
//	6      2    reserved, zero
//	8      8    boot generation of the sender (increases on each agent start)
//	16     8    sequence number (unique per datagram, also across links)
//	24     8    sent-at, sender's clock in ns (echoed back for RTT)
//	32     8    echo-of, the peer's last sent-at we received (0 = none)
//	40     n    cluster bytes, then node bytes
//	40+n   32   HMAC-SHA256 tag over bytes [0, 40+n)
//
// The codec imports no fmt and allocates only the two strings of a decoded
// Message.
package heartbeat
