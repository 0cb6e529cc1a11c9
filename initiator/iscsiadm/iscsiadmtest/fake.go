// Package iscsiadmtest runs a fake iscsiadm for tests of code that drives
// the kernel initiator (initiator/iscsiadm, ha/resource/iscsi) on a machine
// without one. The fake (internal/fakeiscsiadm) keeps its world in a JSON
// state file: targets with their CHAP accounts and LUNs, node and
// discoverydb records, sessions and the device files it "attaches". Its
// output and exit codes follow open-iscsi 2.1 (usr/iscsiadm.c,
// usr/session_info.c, include/iscsi_err.h), including the habits that
// bite: discovery resets a node record's CHAP settings to None, an
// existing session is exit 15, no session is exit 21 ("No active
// sessions."), a refused CHAP secret exit 24, a refused mutual secret exit
// 19, iscsid down exit 20.
package iscsiadmtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tandem-ha/tandem/internal/testbin"
)

// StateEnv names the environment variable that gives the fake its state file.
const StateEnv = "FAKE_ISCSIADM_STATE"

// Target is a target the fake "network" serves.
type Target struct {
	Portal string // "IP:PORT"
	Tag    string // target portal group tag, "1"
	Name   string // IQN
	// User/Secret: CHAP the target requires of initiators ("" none);
	// MutualUser/MutualSecret: what it answers with in mutual CHAP.
	User, Secret             string
	MutualUser, MutualSecret string
	// DiscoveryUser/DiscoverySecret protect SendTargets when set.
	DiscoveryUser, DiscoverySecret string
	LUNs                           []uint64
}

// Session is a logged-in session.
type Session struct {
	SID    int
	Target string
	Portal string
	Host   int
	// Disks maps LUN number (as a string, for JSON) to the disk name.
	Disks map[string]string
	// State is the session state, "LOGGED_IN" or "FAILED".
	State string
}

// State is the fake's world.
type State struct {
	// DevDir is where the fake creates device files at login ("" none).
	DevDir string
	// DaemonDown makes every operation that needs iscsid fail with exit 20.
	DaemonDown bool
	// NoDisk makes logins attach no disks (sd_mod not loaded).
	NoDisk  bool
	Targets []Target
	// Nodes maps "IQN|IP:PORT" to the record's settings; DiscoveryDB maps
	// "IP:PORT" to the discovery record's.
	Nodes       map[string]map[string]string
	DiscoveryDB map[string]map[string]string
	Sessions    []Session
	NextSID     int
	NextDisk    int
	// Fail scripts a failure by operation ("login", "logout", "discovery",
	// "session", "update", "new", "rescan"): the exit code, or -1 to hang
	// until killed.
	Fail map[string]int
	// Calls records every invocation's arguments (secrets included: the
	// state file is the test's).
	Calls [][]string
}

// Fake is a built fake iscsiadm and its state file.
type Fake struct {
	Bin, StateFile, DevDir string
	mu                     sync.Mutex
}

// New builds the fake (once per test binary; Run removes it) and gives it a fresh state
// in t's temporary folder, with DevDir a folder there.
func New(t testing.TB, st State) *Fake {
	t.Helper()
	bin := testbin.Build(t, "github.com/tandem-ha/tandem/initiator/iscsiadm/internal/fakeiscsiadm", "iscsiadm")
	dir := t.TempDir()
	f := &Fake{Bin: bin, StateFile: filepath.Join(dir, "state.json"), DevDir: filepath.Join(dir, "dev")}
	if err := os.MkdirAll(f.DevDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if st.DevDir == "" {
		st.DevDir = f.DevDir
	}
	f.DevDir = st.DevDir
	if err := Save(f.StateFile, &st); err != nil {
		t.Fatal(err)
	}
	return f
}

// Run runs the tests and removes the built fake; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(iscsiadmtest.Run(m)) }
func Run(m *testing.M) int { return testbin.Run(m) }

// Env is the environment to run the fake with.
func (f *Fake) Env() []string {
	return append(os.Environ(), StateEnv+"="+f.StateFile)
}

// State reads the current state.
func (f *Fake) State(t testing.TB) State {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := Load(f.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	return *st
}

// Update changes the state.
func (f *Fake) Update(t testing.TB, fn func(*State)) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := Load(f.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	fn(st)
	if err := Save(f.StateFile, st); err != nil {
		t.Fatal(err)
	}
}

// Load reads a state file.
func Load(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st := &State{}
	return st, json.Unmarshal(b, st)
}

// Save writes a state file atomically.
func Save(path string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
