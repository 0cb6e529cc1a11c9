package mqres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func line(qm, status string) string {
	return fmt.Sprintf("%-58sSTATUS(%s)\n", "QMNAME("+qm+")", status)
}

// TestParseDspmqDocumented covers every documented STATUS, in both the
// untranslated (-n) and translated spellings.
func TestParseDspmqDocumented(t *testing.T) {
	tests := []struct {
		raw, translated string
		want            QMStatus
		state           State
	}{
		{"RUNNING", "Running", QMRunning, StateRunning},
		{"RUNNING AS STANDBY", "Running as standby", QMRunningAsStandby, StateStopped},
		{"RUNNING ELSEWHERE", "Running elsewhere", QMRunningElsewhere, StateStopped},
		{"STARTING", "Starting", QMStarting, StateRunning},
		{"QUIESCING", "Quiescing", QMQuiescing, StateFailed},
		{"ENDING IMMEDIATELY", "Ending immediately", QMEndingImmediately, StateFailed},
		{"ENDING PREEMPTIVELY", "Ending preemptively", QMEndingPreemptively, StateFailed},
		{"ENDING PRE-EMPTIVELY", "Ending pre-emptively", QMEndingPreemptively, StateFailed},
		{"ENDED NORMALLY", "Ended normally", QMEndedNormally, StateStopped},
		{"ENDED IMMEDIATELY", "Ended immediately", QMEndedImmediately, StateStopped},
		{"ENDED UNEXPECTEDLY", "Ended unexpectedly", QMEndedUnexpectedly, StateFailed},
		{"ENDED PREEMPTIVELY", "Ended preemptively", QMEndedPreemptively, StateStopped},
		{"ENDED PRE-EMPTIVELY", "Ended pre-emptively", QMEndedPreemptively, StateStopped},
		{"STATUS NOT AVAILABLE", "Status not available", QMStatusNotAvailable, StateFailed},
		{"REPLICA", "Replica", QMReplica, StateStopped},
	}
	seen := map[QMStatus]bool{}
	for _, tt := range tests {
		for _, word := range []string{tt.raw, tt.translated} {
			t.Run(word, func(t *testing.T) {
				got, err := ParseDspmq([]byte(line("QM1", word)), "QM1")
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				assert.Equal(t, tt.state, got.State())
			})
		}
		seen[tt.want] = true
	}
	// The table above must cover every documented value.
	for _, i := range statusInfo[1:] {
		assert.True(t, seen[i.status], "no test for %s", i.raw)
		back, ok := LookupStatus(i.translated)
		assert.True(t, ok)
		assert.Equal(t, i.status, back)
	}
}

func TestParseDspmqShapes(t *testing.T) {
	tests := []struct {
		desc string
		out  string
		want QMStatus
	}{
		{"instance lines of -x", line("QM1", "RUNNING") + "    INSTANCE(node1) MODE(Active)\n", QMRunning},
		{"several queue managers", line("QM10", "RUNNING") + line("QM1", "ENDED NORMALLY"), QMEndedNormally},
		{"extra fields", "QMNAME(QM1)  STATUS(Running) DEFAULT(yes) STANDBY(Not permitted)\n", QMRunning},
		{"no padding", "QMNAME(QM1) STATUS(STARTING)", QMStarting},
		{"spacing inside", "QMNAME(QM1) STATUS( running  as   standby )", QMRunningAsStandby},
		{"crlf", "QMNAME(QM1) STATUS(RUNNING)\r\n", QMRunning},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := ParseDspmq([]byte(tt.out), "QM1")
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseDspmqGarbage(t *testing.T) {
	for _, tt := range []struct{ desc, out string }{
		{"empty", ""},
		{"unknown queue manager", "AMQ7048E: The queue manager name is either not valid or not known.\n"},
		{"other queue manager only", line("QM2", "RUNNING")},
		{"prefix name only", line("QM10", "RUNNING")},
		{"undocumented status", line("QM1", "DANCING")},
		{"no status", "QMNAME(QM1)\n"},
		{"unterminated", "QMNAME(QM1) STATUS(RUNNING"},
		{"binary", "\x00\xff\xfeQMNAME(\x00)"},
		{"status before name only", "STATUS(RUNNING)"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := ParseDspmq([]byte(tt.out), "QM1")
			require.ErrorIs(t, err, ErrUnparsable)
			assert.Equal(t, QMUnknown, got)
			assert.Equal(t, StateFailed, got.State())
		})
	}
}

func TestMonitorState(t *testing.T) {
	assert.Equal(t, StateStopped, MonitorState(QMEndedUnexpectedly, 0))
	assert.Equal(t, StateFailed, MonitorState(QMEndedUnexpectedly, 2))
	assert.Equal(t, StateRunning, MonitorState(QMRunning, 3))
	assert.Equal(t, StateFailed, MonitorState(QMUnknown, 0))
	assert.Equal(t, "running", StateRunning.String())
	assert.Equal(t, "stopped", StateStopped.String())
	assert.Equal(t, "failed", StateFailed.String())
}

func FuzzParseDspmq(f *testing.F) {
	f.Add([]byte(line("QM1", "RUNNING")), "QM1")
	f.Add([]byte(line("QM1", "Ended pre-emptively")+"    INSTANCE(a) MODE(Active)\n"), "QM1")
	f.Add([]byte("QMNAME(QM1) STATUS("), "QM1")
	f.Add([]byte("QMNAME(QM1))STATUS(()"), "QM1")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, out []byte, qm string) {
		st, err := ParseDspmq(out, qm)
		if err != nil {
			if st != QMUnknown {
				t.Fatalf("error with status %v", st)
			}
			return
		}
		// A parsed status must round-trip through its own output line.
		again, err := ParseDspmq([]byte(line(qm, st.String())), qm)
		if qm != "" && qm == strings.TrimSpace(qm) && !containsParen(qm) && (err != nil || again != st) {
			t.Fatalf("round trip %v -> %v, %v", st, again, err)
		}
	})
}

func containsParen(s string) bool {
	for _, r := range s {
		if r == '(' || r == ')' || r == '\n' || r == '\r' {
			return true
		}
	}
	return false
}
