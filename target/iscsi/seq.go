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

// maxCmdSN is the highest CmdSN the target accepts; depth is the number
// of commands that may be queued (depth 0 would close the window, which
// tandem never wants, so it counts as 1).
func maxCmdSN(exp, depth uint32) uint32 {
	if depth == 0 {
		depth = 1
	}
	return exp + depth - 1
}
