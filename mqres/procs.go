package mqres

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// KillOrder is the order in which IBM's documentation ("Stopping a queue
// manager manually") and its HA-cluster sample stop script kill a queue
// manager's leftover processes: the critical process manager first, so it
// cannot restart the others, then the execution controller, then the rest.
var KillOrder = []string{
	"amqzmuc0", // critical process manager
	"amqzxma0", // execution controller
	"amqfcxba", // broker worker
	"amqfqpub", // publish/subscribe
	"amqpcsea", // command server
	"amqzlaa0", // queue manager agents
	"amqzlsa0",
	"amqzmgr0", // process controller
	"amqzmur0", // restartable process manager
	"amqzmuf0", // utility manager
	"amqzfuma", // object authority manager
	"amqrmppa", // channel process pooling
	"amqrrmfa", // cluster repository
	"amqzdmaa", // deferred message processor
	"amqcrsta", // TCP/IP receiver channels
	"amqcrs6b", // LU 6.2 receiver channels
	"runmqchi", // channel initiator
	"runmqlsr", // listener
	"runmqchl", // sender channels
}

// Proc is one process of the queue manager.
type Proc struct {
	PID  int
	Name string // program basename, one of KillOrder
}

// ProcTable finds and kills a queue manager's processes; the production one
// reads /proc, tests may substitute a fake.
type ProcTable interface {
	// Find lists qm's processes among KillOrder programs.
	Find(qm string) ([]Proc, error)
	Kill(pid int) error
}

// ProcFS is the /proc ProcTable. MQ's processes carry "-m QM" (or "-mQM")
// in their arguments, which is how IBM's script tells queue managers apart.
type ProcFS struct{ Root string } // Root defaults to /proc

func (p ProcFS) root() string {
	if p.Root == "" {
		return "/proc"
	}
	return p.Root
}

// Find implements ProcTable.
func (p ProcFS) Find(qm string) ([]Proc, error) {
	ents, err := os.ReadDir(p.root())
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.root(), e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a kernel thread
		}
		if name, ok := MatchQMProcess(bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}), qm); ok {
			out = append(out, Proc{PID: pid, Name: name})
		}
	}
	return out, nil
}

// Kill implements ProcTable with SIGKILL; a process already gone is success.
func (ProcFS) Kill(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// MatchQMProcess reports whether argv is one of qm's MQ processes and which.
func MatchQMProcess(argv [][]byte, qm string) (string, bool) {
	if len(argv) == 0 {
		return "", false
	}
	name := filepath.Base(string(argv[0]))
	known := false
	for _, k := range KillOrder {
		if k == name {
			known = true
			break
		}
	}
	if !known {
		return "", false
	}
	for i, a := range argv[1:] {
		s := string(a)
		switch {
		case s == "-m" && i+2 < len(argv) && string(argv[i+2]) == qm:
			return name, true
		case strings.HasPrefix(s, "-m") && s[2:] == qm:
			return name, true
		}
	}
	return "", false
}

// SortKillOrder orders procs as KillOrder says (stable within one program).
func SortKillOrder(procs []Proc) []Proc {
	out := make([]Proc, 0, len(procs))
	for _, k := range KillOrder {
		for _, p := range procs {
			if p.Name == k {
				out = append(out, p)
			}
		}
	}
	return out
}
