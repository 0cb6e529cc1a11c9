package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

// missingTypes returns the types that doc does not name as a word.
func missingTypes(doc string, types []string) []string {
	var miss []string
	for _, ty := range types {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(ty) + `\b`).MatchString(doc) {
			miss = append(miss, ty)
		}
	}
	return miss
}

// The docs that list the resource types name every registered one.
func TestDocsNameEveryResourceType(t *testing.T) {
	types := resource.Types()
	require.NotEmpty(t, types)
	for _, f := range []string{"main.go", "../../resource/doc.go"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.Empty(t, missingTypes(string(b), types), "%s: add the missing types to its doc comment", f)
	}
}

func TestMissingTypesFindsAGap(t *testing.T) {
	assert.Equal(t, []string{"mq"}, missingTypes("vip and script, not mqres", []string{"vip", "script", "mq"}))
}
