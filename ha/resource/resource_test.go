package resource

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fake struct{ name string }

func (f fake) Name() string                          { return f.name }
func (fake) Start(context.Context) error             { return nil }
func (fake) Stop(context.Context) error              { return nil }
func (fake) Monitor(context.Context) (Status, error) { return StatusRunning, nil }

func init() {
	Register("fake", []Param{{Key: "must", Required: true, Example: "x"}, {Key: "n"}, {Key: "d"}, {Key: "opt"}, {Key: "shared_mount"}}, func(s Spec, _ *slog.Logger) (Resource, error) {
		p := NewParams(s)
		p.Required("must")
		p.String("shared_mount", "")
		p.Int("n", 3)
		p.Duration("d", time.Second)
		p.String("opt", "")
		if err := p.Err(); err != nil {
			return nil, err
		}
		return fake{s.Name}, nil
	})
}

func TestStatusString(t *testing.T) {
	assert.Equal(t, "running", StatusRunning.String())
	assert.Equal(t, "stopped", StatusStopped.String())
	assert.Equal(t, "failed", StatusFailed.String())
	assert.Equal(t, "status(9)", Status(9).String())
}

func TestBuildAndValidate(t *testing.T) {
	ok := Spec{Type: "fake", Name: "a", Params: map[string]string{"must": "1"}}
	r, err := Build(ok, nil)
	require.NoError(t, err)
	assert.Equal(t, "a", r.Name())
	require.NoError(t, ok.Validate())

	for _, tc := range []struct {
		desc string
		spec Spec
		want string
	}{
		{"no name", Spec{Type: "fake"}, "resource (fake): name is empty"},
		{"space in name", Spec{Type: "fake", Name: "a b"}, `resource "a b" (fake): name "a b" contains a space`},
		{"no type", Spec{Name: "a"}, `resource "a": type is empty; set type to one of fake`},
		{"unknown type", Spec{Name: "a", Type: "nope"}, `type "nope" is not a known resource type`},
		{"negative", Spec{Name: "a", Type: "fake", MaxRestarts: -1}, "max_restarts is negative"},
		{"negative timeout", Spec{Name: "a", Type: "fake", StopTimeout: -time.Second}, "stop_timeout is negative"},
		{"missing param", Spec{Name: "a", Type: "fake"}, "params.must is missing; set it, e.g. must: x"},
		{"bad int", Spec{Name: "a", Type: "fake", Params: map[string]string{"must": "1", "n": "x"}}, `params.n "x" is not a non-negative integer`},
		{"bad duration", Spec{Name: "a", Type: "fake", Params: map[string]string{"must": "1", "d": "5"}}, `params.d "5" is not a positive duration; write it with a unit, e.g. 1s`},
		{"unknown param", Spec{Name: "a", Type: "fake", Params: map[string]string{"must": "1", "mustt": "1"}}, "params.mustt is not a fake parameter; did you mean must? (remove it or fix its spelling); fake takes: must, n, d, opt, shared_mount"},
		{"misspelt param", Spec{Name: "a", Type: "fake", Params: map[string]string{"must": "1", "sharedmount": "/x"}}, "params.sharedmount is not a fake parameter; did you mean shared_mount?"},
		{"unlike any param", Spec{Name: "a", Type: "fake", Params: map[string]string{"must": "1", "colour": "red"}}, "params.colour is not a fake parameter; remove it or fix its spelling; fake takes:"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.spec.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var se *SpecError
			assert.True(t, errors.As(err, &se))
			_, err = Build(tc.spec, nil)
			assert.Error(t, err)
		})
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	assert.Panics(t, func() { Register("fake", nil, nil) })
}

func TestWithDefaults(t *testing.T) {
	s := Spec{}.WithDefaults()
	assert.Equal(t, DefaultMonitorInterval, s.Monitor.Interval)
	assert.Equal(t, DefaultMonitorTimeout, s.Monitor.Timeout)
	assert.Equal(t, DefaultStartTimeout, s.StartTimeout)
	assert.Equal(t, DefaultStopTimeout, s.StopTimeout)
	var custom Spec
	custom.Monitor.Interval = time.Second
	assert.Equal(t, time.Second, custom.WithDefaults().Monitor.Interval)
}

// TestReadingAKeyOutsideTheTablePanics: the table is the one list; a
// factory cannot quietly accept a key the table does not name.
func TestReadingAKeyOutsideTheTablePanics(t *testing.T) {
	p := NewParams(Spec{Type: "fake", Name: "a"})
	assert.NotPanics(t, func() { p.String("opt", "") })
	assert.Panics(t, func() { p.String("nope", "") })
}

func TestNearest(t *testing.T) {
	known := []string{"address", "interface", "arp_count", "arp_interval"}
	for _, tc := range []struct{ desc, in, want string }{
		{"missing underscore", "arpcount", "arp_count"},
		{"one letter", "adress", "address"},
		{"swapped letters", "arp_cuont", "arp_count"},
		{"case", "Interface", "interface"},
		{"unrelated", "colour", ""},
		{"too far for a short key", "abc", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) { assert.Equal(t, tc.want, nearest(tc.in, known)) })
	}
}
