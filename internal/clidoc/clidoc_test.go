package clidoc

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{Use: "demo", Short: "demo daemon", RunE: func(*cobra.Command, []string) error { return nil }}
	root.Flags().String("config", "/etc/tandem/demo.yaml", "configuration file")
	root.AddCommand(&cobra.Command{Use: "status", Short: "show status", RunE: func(*cobra.Command, []string) error { return nil }})
	Attach(root)
	return root
}

func TestVersionFlag(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	require.NoError(t, root.Execute())
	assert.Regexp(t, `^demo \S+\ncommit \S+.*\ngo go1\.\S+ \w+/\w+\n$`, out.String())
}

func TestGenDocs(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	root := newRoot()
	root.SetArgs([]string{GenDocs, dir})
	require.NoError(t, root.Execute())

	page, err := os.ReadFile(filepath.Join(dir, "man", "demo.1"))
	require.NoError(t, err)
	assert.Contains(t, string(page), "--config")
	assert.Contains(t, string(page), "Nov 2023", "the date comes from SOURCE_DATE_EPOCH")
	assert.FileExists(t, filepath.Join(dir, "man", "demo-status.1"))
	assert.NoFileExists(t, filepath.Join(dir, "man", "demo-gen-docs.1"), "the hidden command is not documented")
	for _, ext := range []string{"bash", "zsh", "fish"} {
		assert.FileExists(t, filepath.Join(dir, "completion", "demo."+ext))
	}

	// Same input, same bytes: the packages are reproducible.
	again := t.TempDir()
	root = newRoot()
	root.SetArgs([]string{GenDocs, again})
	require.NoError(t, root.Execute())
	page2, err := os.ReadFile(filepath.Join(again, "man", "demo.1"))
	require.NoError(t, err)
	assert.Equal(t, page, page2)
}
