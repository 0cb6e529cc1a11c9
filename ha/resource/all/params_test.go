package all

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

// TestUnknownParamsRefused: every type refuses a key outside its table,
// and a misspelt key gets the nearest known one as a hint.
func TestUnknownParamsRefused(t *testing.T) {
	typos := map[string]struct{ typo, want string }{
		"fence":      {"secretfile", "secret_file"},
		"filesystem": {"directroy", "directory"},
		"iscsi":      {"portl", "portal"},
		"lsb":        {"pth", "path"},
		"mq":         {"sharedmount", "shared_mount"},
		"script":     {"agrs", "args"},
		"vip":        {"adress", "address"},
	}
	for _, typ := range resource.Types() {
		t.Run(typ, func(t *testing.T) {
			table := resource.ParamTable(typ)
			require.NotEmpty(t, table, "every type has a parameter table")
			tc, ok := typos[typ]
			require.True(t, ok, "add a typo case for type %s", typ)
			s := resource.Spec{Type: typ, Name: "r", Params: map[string]string{tc.typo: "x"}}
			err := s.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "params."+tc.typo+" is not a "+typ+" parameter")
			assert.Contains(t, err.Error(), "did you mean "+tc.want+"?")
			// Negative control: the right spelling is not refused as unknown
			// (it may still fail on its value or on a missing required key).
			s.Params = map[string]string{tc.want: "x"}
			if err := s.Validate(); err != nil {
				assert.NotContains(t, err.Error(), "is not a "+typ+" parameter")
			}
		})
	}
}

// TestTablesDocumented: every row says what it is for and shows a value,
// since tandem-agent params prints them.
func TestTablesDocumented(t *testing.T) {
	for _, typ := range resource.Types() {
		for _, p := range resource.ParamTable(typ) {
			assert.NotEmpty(t, p.Doc, "%s.%s", typ, p.Key)
			assert.NotEmpty(t, p.Example, "%s.%s", typ, p.Key)
		}
	}
}
