package lvm

import (
	"errors"
	"strings"
)

// Sentinels that *OpError matches with errors.Is, for callers that branch.
var (
	// ErrInvalidName is returned when a VG or LV name breaks lvm(8)'s rules.
	ErrInvalidName = errors.New("invalid name")
	// ErrNoSpace is returned when the VG has fewer free extents than asked.
	ErrNoSpace = errors.New("not enough free space")
	// ErrExists is returned when the LV name is taken in its VG.
	ErrExists = errors.New("name taken")
	// ErrNotFound is returned when the VG or LV does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInUse is returned when the LV is open or a LUN uses it.
	ErrInUse = errors.New("in use")
	// ErrShrink is returned when a resize would shrink and was not forced.
	ErrShrink = errors.New("shrink refused")
	// ErrTimeout is returned when an lvm command did not finish in time.
	ErrTimeout = errors.New("lvm command hung")
	// ErrNoKernelSupport is returned when the kernel lacks the
	// device-mapper target the LV type needs.
	ErrNoKernelSupport = errors.New("kernel lacks device-mapper support")
	// ErrBadOutput is returned when lvm's report is not the JSON expected.
	ErrBadOutput = errors.New("unreadable lvm report")
)

// OpError is a failed or refused lvm operation.
type OpError struct {
	// Op is what was attempted: "create vg0/data", "list LVs of vg0"...
	Op string
	// Args is the command that ran (argv), nil when refused before any.
	Args []string
	// ExitCode is lvm's exit status; -1 when it did not exit (killed at
	// the deadline, not found) or did not run.
	ExitCode int
	// Stderr is lvm's message.
	Stderr string
	// Err is the cause: one of the sentinels above, or the exec error.
	Err error
	// Detail says what was found, e.g. how much space the VG has.
	Detail string
	// Fix says what repairs it.
	Fix string
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("lvm ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Fix != "" {
		b.WriteString(": ")
		b.WriteString(e.Fix)
	}
	if msg := summary(e.Stderr, 2); msg != "" {
		b.WriteString(" (lvm said: ")
		b.WriteString(msg)
		b.WriteString(")")
	}
	if len(e.Args) > 0 {
		b.WriteString(" [command: ")
		b.WriteString(strings.Join(e.Args, " "))
		b.WriteString("]")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *OpError) Unwrap() error { return e.Err }

// summary joins the last n lines of s that are not warnings, so that
// "WARNING: Activation disabled" does not hide the error itself.
func summary(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "WARNING:") || strings.HasPrefix(l, "File descriptor") {
			continue
		}
		out = append(out, l)
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, " / ")
}

// failure is one row of the table that maps lvm's stderr to a cause.
type failure struct {
	// any of these substrings (lowercase) of stderr selects the row
	match []string
	err   error
	fix   string
}

// failures is checked in order; messages are those of lvm2 2.03
// (lib/metadata/lv_manip.c, tools/toollib.c).
var failures = []failure{
	{[]string{"already exists in volume group"}, ErrExists,
		"pick another LV name, or remove the existing LV first (lvs VG lists them)"},
	{[]string{"insufficient free space", "insufficient suitable allocatable extents"}, ErrNoSpace,
		"extend the VG (vgextend) or ask less"},
	{[]string{"failed to find logical volume", "not found in volume group"}, ErrNotFound,
		"check the LV or thin pool name (lvs VG lists them); a thin LV needs its pool made first"},
	{[]string{"in use", "can't remove open logical volume", "is used by another device", "open logical volume"}, ErrInUse,
		"stop what holds the LV open first (the LUN in the target, a mount, a process)"},
	{[]string{"without using device-mapper kernel driver", "required device-mapper target(s) not detected"}, ErrNoKernelSupport,
		"load the device-mapper modules (modprobe dm-mod dm-thin-pool), or use linear LVs; without device-mapper (NoDeviceMapper) thin pools cannot be made"},
}

// classify returns the cause and fix for lvm's stderr (nil when unknown).
func classify(stderr string) (error, string) {
	s := strings.ToLower(stderr)
	// "Volume group "x" not found" needs both parts: "not found" alone
	// also ends other messages.
	if strings.Contains(s, "volume group \"") && strings.Contains(s, "not found") {
		return ErrNotFound, "check the VG name (vgs lists them), or create it (vgcreate)"
	}
	for _, f := range failures {
		for _, m := range f.match {
			if strings.Contains(s, m) {
				return f.err, f.fix
			}
		}
	}
	return nil, ""
}
