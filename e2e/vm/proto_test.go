package vm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProtocolRoundTrip(t *testing.T) {
	req := Request{ID: 7, Argv: []string{"sh", "-c", "echo hi"}, Env: []string{"A=1"}, Stdin: []byte{0, 1, '\n'}, Timeout: time.Second}
	b, err := AppendLine(nil, req)
	require.NoError(t, err)
	require.Equal(t, byte('\n'), b[len(b)-1])
	require.Equal(t, 1, bytes.Count(b, []byte("\n")), "binary stdin must not break the line")
	got, err := DecodeRequest(b[:len(b)-1])
	require.NoError(t, err)
	assert.Equal(t, req, got)

	resp := Response{ID: 7, Exit: 2, Stdout: []byte("out\n"), Stderr: []byte("err"), Took: time.Millisecond}
	b, err = AppendLine(nil, resp)
	require.NoError(t, err)
	gotResp, err := DecodeResponse(b[:len(b)-1])
	require.NoError(t, err)
	assert.Equal(t, resp, gotResp)
}

func TestDecodeRequestRejects(t *testing.T) {
	for _, tc := range []struct{ desc, line string }{
		{"not json", "hello"},
		{"empty argv", `{"id":1,"argv":[]}`},
		{"no argv", `{"id":1}`},
		{"wrong type", `{"id":"x","argv":["a"]}`},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tc.line))
			assert.Error(t, err)
		})
	}
}

func TestLineReader(t *testing.T) {
	lr := NewLineReader(strings.NewReader("\n  \n{\"id\":1}\n\r\n{\"id\":2}"))
	l, err := lr.Next()
	require.NoError(t, err)
	assert.Equal(t, `{"id":1}`, string(l))
	l, err = lr.Next()
	require.NoError(t, err)
	assert.Equal(t, `{"id":2}`, string(l))
	_, err = lr.Next()
	assert.ErrorIs(t, err, io.EOF)
}

func TestResponseErr(t *testing.T) {
	assert.NoError(t, Response{Exit: 0}.Err([]string{"true"}))
	err := Response{Exit: 24, Stderr: []byte("iscsiadm: auth failed\n")}.Err([]string{"iscsiadm", "--login"})
	var ee *ExitError
	require.True(t, errors.As(err, &ee))
	assert.Equal(t, 24, ee.Exit)
	assert.Equal(t, `guest command "iscsiadm --login" exited 24: iscsiadm: auth failed`, err.Error())
	err = Response{Exit: -1, Error: "killed after 1s timeout"}.Err([]string{"sleep", "9"})
	assert.ErrorContains(t, err, "exited -1: killed after 1s timeout")
	long := Response{Exit: 1, Stderr: bytes.Repeat([]byte("x"), 5000)}.Err([]string{"x"})
	assert.Less(t, len(long.Error()), 2100, "stderr is cut to its end")
}

// FuzzDecodeRequest: decoding never panics, and what decodes re-encodes to
// an equal request.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"id":1,"argv":["true"]}`))
	f.Add([]byte(`{"id":2,"argv":["sh","-c","x"],"stdin":"AAE=","timeout":1000}`))
	f.Add([]byte(`{"argv":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{0xff, '{'})
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeRequest(line)
		if err != nil {
			return
		}
		b, err := AppendLine(nil, r)
		require.NoError(t, err)
		r2, err := DecodeRequest(b[:len(b)-1])
		require.NoError(t, err)
		assert.Equal(t, r.ID, r2.ID)
		assert.Equal(t, r.Argv, r2.Argv)
	})
}

// FuzzDecodeResponse: decoding never panics.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"id":1,"exit":0,"stdout":"aGk="}`))
	f.Add([]byte(`{"id":1,"exit":-1,"error":"x"}`))
	f.Add([]byte(`{"stdout":"!!"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeResponse(line)
		if err == nil {
			_ = r.Err(nil)
		}
	})
}
