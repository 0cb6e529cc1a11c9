// Package benchpeers compares tandem-target with the targets users would
// otherwise pick (tgt, gotgt) under the same clients: qemu-img bench over
// libiscsi and tandem-bench, same LUN size and backing, interleaved
// repetitions, medians, ratios, target CPU per I/O from /proc/PID/stat,
// and stalled runs counted (issue 15).
//
// stats.go holds the pure part (medians, the stall verdict, output
// parsing, the Markdown table); run.go starts the targets and clients.
package benchpeers
