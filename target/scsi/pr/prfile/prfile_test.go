package prfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/scsi/pr"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	b, err := Load(dir, "lun0.pr")
	require.NoError(t, err)
	assert.Nil(t, b, "a missing file is an empty state")

	s := pr.New()
	state, err := s.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, Save(dir, "lun0.pr", state))
	require.NoError(t, Save(dir, "lun0.pr", append(state, 1))) // replaces
	b, err = Load(dir, "lun0.pr")
	require.NoError(t, err)
	assert.Equal(t, append(state, 1), b)
	require.ErrorIs(t, pr.New().UnmarshalBinary(b), pr.ErrCorrupt)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")
}

func TestSaveErrors(t *testing.T) {
	err := Save(filepath.Join(t.TempDir(), "missing"), "lun0.pr", []byte{1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable")

	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "lun0.pr"), 0o755))
	require.Error(t, Save(dir, "lun0.pr", []byte{1}), "cannot rename over a directory")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the temporary file is removed on failure")
	_, err = Load(dir, "lun0.pr")
	require.Error(t, err)
}
