package mqres

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// State is what the agent needs from a queue manager's status. Its words are
// those of ha/resource.Status and of heartbeat's resource.d status action.
type State int

const (
	// StateRunning: the queue manager is active (or coming up) on this node.
	StateRunning State = iota
	// StateStopped: not active on this node and nothing left to clean up.
	StateStopped
	// StateFailed: the queue manager is in a state that needs a stop (and
	// maybe a restart): crashed, ending on its own, or unknown.
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateStopped:
		return "stopped"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// QMStatus is one documented STATUS value of `dspmq`.
type QMStatus int

// Every STATUS value dspmq documents; QMUnknown stands for anything else.
const (
	QMUnknown QMStatus = iota
	QMRunning
	QMRunningAsStandby
	QMRunningElsewhere
	QMStarting
	QMQuiescing
	QMEndingImmediately
	QMEndingPreemptively
	QMEndedNormally
	QMEndedImmediately
	QMEndedUnexpectedly
	QMEndedPreemptively
	QMStatusNotAvailable
	QMReplica
)

// statusInfo is the single table of dspmq STATUS values: the untranslated
// word (dspmq -n), the translated one (dspmq without -n) and the State.
var statusInfo = []struct {
	status     QMStatus
	raw        string // dspmq -n
	translated string // dspmq
	state      State
}{
	{QMUnknown, "UNKNOWN", "Unknown", StateFailed},
	// Active here. STARTING counts as running: IBM's own HA monitor tolerates
	// it, and a start in progress must not be killed as a failure.
	{QMRunning, "RUNNING", "Running", StateRunning},
	{QMStarting, "STARTING", "Starting", StateRunning},
	// Not serving on this node: another instance (multi-instance standby,
	// Native HA replica) or another node owns the queue manager.
	{QMRunningAsStandby, "RUNNING AS STANDBY", "Running as standby", StateStopped},
	{QMRunningElsewhere, "RUNNING ELSEWHERE", "Running elsewhere", StateStopped},
	{QMReplica, "REPLICA", "Replica", StateStopped},
	// Ending without the agent asking (the agent's own stop waits these out):
	// the queue manager still holds processes and the log here, so it is
	// neither usable nor safe to start elsewhere until a stop completes.
	{QMQuiescing, "QUIESCING", "Quiescing", StateFailed},
	{QMEndingImmediately, "ENDING IMMEDIATELY", "Ending immediately", StateFailed},
	{QMEndingPreemptively, "ENDING PREEMPTIVELY", "Ending preemptively", StateFailed},
	// Ended by endmqm: clean, nothing left behind.
	{QMEndedNormally, "ENDED NORMALLY", "Ended normally", StateStopped},
	{QMEndedImmediately, "ENDED IMMEDIATELY", "Ended immediately", StateStopped},
	{QMEndedPreemptively, "ENDED PREEMPTIVELY", "Ended preemptively", StateStopped},
	// Crashed: processes may linger (amqzmuc0 and friends), a stop must sweep
	// them before the queue manager may start anywhere.
	{QMEndedUnexpectedly, "ENDED UNEXPECTEDLY", "Ended unexpectedly", StateFailed},
	// MQ cannot tell: treat as a failure, never as stopped (that could start a
	// second writer on the shared log).
	{QMStatusNotAvailable, "STATUS NOT AVAILABLE", "Status not available", StateFailed},
}

// String returns the untranslated (dspmq -n) word.
func (s QMStatus) String() string {
	for _, i := range statusInfo {
		if i.status == s {
			return i.raw
		}
	}
	return fmt.Sprintf("QMStatus(%d)", int(s))
}

// Translated returns the word dspmq prints without -n.
func (s QMStatus) Translated() string {
	for _, i := range statusInfo {
		if i.status == s {
			return i.translated
		}
	}
	return s.String()
}

// State folds the status into running, stopped or failed.
func (s QMStatus) State() State {
	for _, i := range statusInfo {
		if i.status == s {
			return i.state
		}
	}
	return StateFailed
}

// ErrUnparsable is returned when dspmq printed no STATUS for the queue manager.
var ErrUnparsable = errors.New("unparsable dspmq output")

// LookupStatus maps a STATUS word, untranslated or translated, to a QMStatus.
// Older releases spell PRE-EMPTIVELY with a hyphen; both are accepted.
func LookupStatus(word string) (QMStatus, bool) {
	w := strings.ToUpper(strings.TrimSpace(word))
	w = strings.ReplaceAll(w, "PRE-EMPTIVELY", "PREEMPTIVELY")
	w = strings.Join(strings.Fields(w), " ")
	for _, i := range statusInfo[1:] {
		if i.raw == w {
			return i.status, true
		}
	}
	return QMUnknown, false
}

// ParseDspmq finds qm's STATUS in the output of `dspmq [-n] [-m qm] [-x]`:
// lines of QMNAME(name) STATUS(value), possibly followed by INSTANCE lines.
// It returns QMUnknown and ErrUnparsable (wrapped) when no line names qm or
// the value is not a documented one; callers treat that as StateFailed.
func ParseDspmq(out []byte, qm string) (QMStatus, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, ok := field(line, "QMNAME")
		if !ok || name != qm {
			continue
		}
		val, ok := field(line, "STATUS")
		if !ok {
			return QMUnknown, fmt.Errorf("%w: no STATUS for %s in %q", ErrUnparsable, qm, line)
		}
		st, ok := LookupStatus(val)
		if !ok {
			return QMUnknown, fmt.Errorf("%w: undocumented STATUS(%s) for %s", ErrUnparsable, val, qm)
		}
		return st, nil
	}
	return QMUnknown, fmt.Errorf("%w: no QMNAME(%s) line in %q", ErrUnparsable, qm, truncate(out, 200))
}

// field returns the value of KEY(value) in line. Values may contain spaces
// (RUNNING AS STANDBY) but not parentheses.
func field(line, key string) (string, bool) {
	i := strings.Index(line, key+"(")
	if i < 0 {
		return "", false
	}
	rest := line[i+len(key)+1:]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return "", false
	}
	return strings.TrimSpace(rest[:j]), true
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
