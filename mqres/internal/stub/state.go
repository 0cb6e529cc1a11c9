package stub

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// record is the qmstatus file on the data path.
type record struct {
	Status string // untranslated dspmq word
	Host   string
	PID    int
}

func statusFile(data string) string { return filepath.Join(data, "qmstatus") }
func lockFile(data string) string   { return filepath.Join(data, "qmstatus.lock") }

func readRecord(data string) (record, bool) {
	b, err := os.ReadFile(statusFile(data))
	if err != nil {
		return record{}, false
	}
	var r record
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "status":
			r.Status = v
		case "host":
			r.Host = v
		case "pid":
			r.PID, _ = strconv.Atoi(v)
		}
	}
	return r, r.Status != ""
}

// writeRecord replaces the record atomically and durably: a second node
// must never read half a status.
func writeRecord(data string, r record) error {
	tmp := statusFile(data) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "status=%s\nhost=%s\npid=%d\n", r.Status, r.Host, r.PID)
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, statusFile(data))
}

// lockHeld reports whether a live queue manager holds the data path's lock.
func lockHeld(data string) bool {
	f, err := os.OpenFile(lockFile(data), os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

var active = map[string]bool{
	"RUNNING": true, "STARTING": true, "QUIESCING": true,
	"ENDING IMMEDIATELY": true, "ENDING PREEMPTIVELY": true,
}

// status is what dspmq on this node says about the queue manager at data.
func (e env) status(data string) string {
	r, ok := readRecord(data)
	if !ok {
		return "ENDED NORMALLY"
	}
	if !lockHeld(data) {
		if active[r.Status] {
			return "ENDED UNEXPECTEDLY" // nobody holds the lock: it died
		}
		return r.Status
	}
	if r.Host != e.host {
		return "RUNNING ELSEWHERE"
	}
	return r.Status
}

var translated = map[string]string{
	"RUNNING": "Running", "RUNNING AS STANDBY": "Running as standby",
	"RUNNING ELSEWHERE": "Running elsewhere", "STARTING": "Starting",
	"QUIESCING": "Quiescing", "ENDING IMMEDIATELY": "Ending immediately",
	"ENDING PREEMPTIVELY": "Ending preemptively", "ENDED NORMALLY": "Ended normally",
	"ENDED IMMEDIATELY": "Ended immediately", "ENDED UNEXPECTEDLY": "Ended unexpectedly",
	"ENDED PREEMPTIVELY": "Ended preemptively", "STATUS NOT AVAILABLE": "Status not available",
	"REPLICA": "Replica",
}
