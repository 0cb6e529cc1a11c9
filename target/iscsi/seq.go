package iscsi

// Serial number arithmetic on 32-bit sequence numbers (RFC 1982, as
// RFC 7143 section 4.2.2.1 requires for CmdSN and StatSN).

// snLess reports a < b in serial arithmetic.
func snLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// snLessEq reports a <= b in serial arithmetic.
func snLessEq(a, b uint32) bool { return a == b || int32(a-b) < 0 }

// cmdWindow classifies a non-immediate CmdSN against the command window
// [exp, exp+depth-1] (RFC 7143 section 4.2.2.1): deliver now, queue until
// the gap before it fills, or drop silently.
type cmdVerdict int

const (
	cmdDeliver cmdVerdict = iota
	cmdQueue
	cmdDrop
)

func classifyCmdSN(cmdSN, exp, depth uint32) cmdVerdict {
	switch {
	case cmdSN == exp:
		return cmdDeliver
	case snLess(exp, cmdSN) && snLessEq(cmdSN, maxCmdSN(exp, depth)):
		return cmdQueue
	}
	return cmdDrop
}

// advertisedMaxCmdSN is the MaxCmdSN a PDU carries: the window holds
// depth commands counting those still executing (busy), so that a slow
// disk stops the initiator instead of piling commands up in the target
// (RFC 7143 section 4.2.2.1 leaves the window to the target's resources).
// It never goes below prev, the MaxCmdSN sent last: an initiator ignores
// a smaller one, and commands it sent under prev must still be taken. A
// full queue gives ExpCmdSN-1, a closed window, until a command ends.
func advertisedMaxCmdSN(exp, depth, busy, prev uint32) uint32 {
	free := uint32(0)
	if busy < depth {
		free = depth - busy
	}
	adv := exp + free - 1
	if snLess(adv, prev) {
		return prev
	}
	return adv
}

// maxCmdSN is the highest CmdSN the target accepts; depth is the number
// of commands that may be queued (depth 0 would close the window, which
// tandem never wants, so it counts as 1).
func maxCmdSN(exp, depth uint32) uint32 {
	if depth == 0 {
		depth = 1
	}
	return exp + depth - 1
}
