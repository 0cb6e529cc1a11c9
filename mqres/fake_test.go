package mqres

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runFunc is a Runner from a plain function.
type runFunc func(ctx context.Context, name string, args ...string) (Result, error)

func (f runFunc) Run(ctx context.Context, name string, args ...string) (Result, error) {
	return f(ctx, name, args...)
}

// fakeProcs is a ProcTable over a slice; Kill removes and records.
type fakeProcs struct {
	procs  []Proc
	killed []string
}

func (f *fakeProcs) Find(string) ([]Proc, error) { return append([]Proc(nil), f.procs...), nil }
func (f *fakeProcs) Kill(pid int) error {
	for i, p := range f.procs {
		if p.PID == pid {
			f.killed = append(f.killed, p.Name)
			f.procs = append(f.procs[:i], f.procs[i+1:]...)
			return nil
		}
	}
	return nil
}

// TestStopEscalation: endmqm -i hangs, endmqm -p fails, and the sweep kills
// in IBM's order whatever order the process table lists.
func TestStopEscalation(t *testing.T) {
	var calls []string
	run := runFunc(func(ctx context.Context, name string, args ...string) (Result, error) {
		calls = append(calls, name+" "+args[0])
		switch {
		case name == "dspmq":
			return Result{Stdout: []byte("QMNAME(QM1) STATUS(RUNNING)\n")}, nil
		case name == "endmqm" && args[0] == "-i":
			<-ctx.Done()
			return Result{Code: -1}, ctx.Err()
		}
		return Result{Code: 71, Stdout: []byte("AMQ6119S: An internal IBM MQ error has occurred.")}, nil
	})
	procs := &fakeProcs{procs: []Proc{{1, "runmqlsr"}, {2, "amqzxma0"}, {3, "amqpcsea"}, {4, "amqzmuc0"}, {5, "amqzlaa0"}}}
	r, err := New(Config{QMgr: "QM1", Runner: run, Procs: procs, EndTimeout: 20 * time.Millisecond, PollInterval: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, r.Stop(context.Background()))
	assert.Equal(t, []string{"dspmq -n", "endmqm -i", "endmqm -p"}, calls)
	assert.Equal(t, []string{"amqzmuc0", "amqzxma0", "amqpcsea", "amqzlaa0", "runmqlsr"}, procs.killed)
}

func TestStopAlreadyStopped(t *testing.T) {
	var calls []string
	run := runFunc(func(ctx context.Context, name string, args ...string) (Result, error) {
		calls = append(calls, name)
		return Result{Stdout: []byte("QMNAME(QM1) STATUS(ENDED NORMALLY)\n")}, nil
	})
	r, err := New(Config{QMgr: "QM1", Runner: run, Procs: &fakeProcs{}})
	require.NoError(t, err)
	require.NoError(t, r.Stop(context.Background()))
	assert.Equal(t, []string{"dspmq"}, calls)
}

func TestStartExitCodes(t *testing.T) {
	for _, tt := range []struct {
		code int
		want string
	}{
		{43, "active on another node"},
		{16, "unknown queue manager"},
		{71, "exited 71"},
	} {
		run := runFunc(func(ctx context.Context, name string, args ...string) (Result, error) {
			if name == "dspmq" {
				return Result{Stdout: []byte("QMNAME(QM1) STATUS(ENDED NORMALLY)\n")}, nil
			}
			return Result{Code: tt.code}, nil
		})
		r, err := New(Config{QMgr: "QM1", Runner: run, Procs: &fakeProcs{}})
		require.NoError(t, err)
		err = r.Start(context.Background())
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "qmgr is empty"},
		{Config{QMgr: "QM 1"}, "not a valid queue manager name"},
		{Config{QMgr: "QM1", BinDir: "opt/mqm"}, "mqbin"},
		{Config{QMgr: "QM1", SharedMount: "MQHA"}, "shared_mount"},
	} {
		err := tt.cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
	require.NoError(t, Config{QMgr: "QM1.A_b/%"}.Validate())
}

func TestConfigFromParams(t *testing.T) {
	c, err := ConfigFromParams(map[string]string{"qmgr": "QM1"})
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig("QM1"), c)

	c, err = ConfigFromParams(map[string]string{"qmgr": "QM1", "user": "", "mqbin": "/usr/mqm/bin",
		"shared_mount": "/MQHA", "start_timeout": "90", "stop_timeout": "2m", "end_timeout": "5s", "monitor_timeout": "3"})
	require.NoError(t, err)
	assert.Equal(t, "", c.User)
	assert.Equal(t, "/usr/mqm/bin", c.BinDir)
	assert.Equal(t, "/MQHA", c.SharedMount)
	assert.Equal(t, 90*time.Second, c.StartTimeout)
	assert.Equal(t, 2*time.Minute, c.StopTimeout)
	assert.Equal(t, 5*time.Second, c.EndTimeout)
	assert.Equal(t, 3*time.Second, c.MonitorTimeout)

	_, err = ConfigFromParams(map[string]string{"qmgr": "QM1", "stop_timeout": "-1"})
	assert.ErrorContains(t, err, "stop_timeout")
}

func TestParseStanza(t *testing.T) {
	out := []byte("QueueManager:\n   Name=QM1\n   Directory=QM1\n   Prefix=/var/mqm\n   DataPath=/MQHA/qmgrs/QM1\n")
	assert.Equal(t, map[string]string{"Name": "QM1", "Directory": "QM1", "Prefix": "/var/mqm", "DataPath": "/MQHA/qmgrs/QM1"}, ParseStanza(out, "QueueManager"))
	ini := []byte("#* comment\nExitPath:\n   ExitsDefaultPath=/var/mqm/exits/\nLog:\n   LogPrimaryFiles=3\n   LogPath=/MQHA/log/QM1/\nService:\n   Name=AuthorizationService\n")
	assert.Equal(t, "/MQHA/log/QM1/", ParseStanza(ini, "Log")["LogPath"])
	assert.Empty(t, ParseStanza(ini, "Log")["Name"])
}

func TestWithinAndMounts(t *testing.T) {
	assert.True(t, Within("/MQHA/qmgrs/QM1", "/MQHA"))
	assert.True(t, Within("/MQHA/", "/MQHA"))
	assert.False(t, Within("/MQHA2/qmgrs", "/MQHA"))
	assert.False(t, Within("/var/mqm/qmgrs/QM1", "/MQHA"))
	assert.False(t, Within("/MQHA/../var/mqm", "/MQHA"))
	mi := []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n95 22 8:17 / /MQHA rw - ext4 /dev/sdb1 rw\n96 22 0:5 / /mnt/with\\040space rw - tmpfs t rw\n")
	assert.True(t, MountinfoHas(mi, "/MQHA/"))
	assert.True(t, MountinfoHas(mi, "/mnt/with space"))
	assert.False(t, MountinfoHas(mi, "/MQHA/qmgrs"))
}

func TestMatchQMProcess(t *testing.T) {
	argv := func(s ...string) [][]byte {
		var out [][]byte
		for _, a := range s {
			out = append(out, []byte(a))
		}
		return out
	}
	for _, tt := range []struct {
		argv [][]byte
		name string
		ok   bool
	}{
		{argv("/opt/mqm/bin/amqzxma0", "-m", "QM1", "-u", "mqm"), "amqzxma0", true},
		{argv("amqzlaa0", "-mQM1", "-fip0"), "amqzlaa0", true},
		{argv("runmqlsr", "-r", "-m", "QM1", "-t", "TCP"), "runmqlsr", true},
		{argv("amqzxma0", "-m", "QM10"), "", false},
		{argv("amqzxma0", "-m"), "", false},
		{argv("bash", "-m", "QM1"), "", false},
		{argv(), "", false},
	} {
		name, ok := MatchQMProcess(tt.argv, "QM1")
		assert.Equal(t, tt.ok, ok, "%q", tt.argv)
		assert.Equal(t, tt.name, name)
	}
}
