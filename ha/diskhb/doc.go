// Package diskhb is tandem-agent's disk heartbeat: a third heartbeat
// medium, next to the network links, on a small arbiter LUN of the shared
// target (the idea of SBD's slots, without its poison pill: fencing is the
// reservation's job).
//
// The LUN holds one slot per node, one logical block each, at block
// BaseLBA + the node's position in the sorted node list. Every keepalive a
// node writes its own slot with FUA (durable before the next read) and
// reads its peer's slot with FUA (from the medium, not a cache). A slot is
// (big-endian, SlotLen bytes, the rest of the block zero):
//
//	0   magic "TNDMDHB1"      8 bytes
//	8   version (1)           1
//	9   state (fsm.NodeState) 1
//	10  node name length      1 (1..MaxNode)
//	11  reserved (0)          1
//	12  cluster hash          8 (ClusterHash: SHA-256(cluster)[0:8])
//	20  boot generation       8
//	28  sequence              8
//	36  node name             MaxNode, zero padded
//	100 CRC32C (Castagnoli)   4, of bytes 0..99
//
// The codec (Encode, Decode) and the liveness Tracker are pure; Runner
// does the I/O over an initiator/device.Device.
package diskhb
