package vm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The control protocol between the host (Client) and the guest agent
// (cmd/vmagent) over one virtio-serial port: one JSON object per line in
// each direction. Requests carry an ID that the response repeats, so
// several commands may be in flight and stale answers (to pings sent
// before the agent was up) are recognised and dropped.

// Request asks the agent to run one command.
type Request struct {
	ID   uint64   `json:"id"`
	Argv []string `json:"argv"`
	// Env is added to the agent's environment ("KEY=VALUE").
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; empty = /.
	Dir string `json:"dir,omitempty"`
	// Stdin is fed to the command; empty = /dev/null.
	Stdin []byte `json:"stdin,omitempty"`
	// Timeout kills the command after this long; 0 = no limit.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Response is the outcome of one Request.
type Response struct {
	ID uint64 `json:"id"`
	// Exit is the exit status; -1 when the command did not run or was
	// killed (Error says why).
	Exit   int    `json:"exit"`
	Stdout []byte `json:"stdout,omitempty"`
	Stderr []byte `json:"stderr,omitempty"`
	Error  string `json:"error,omitempty"`
	// Took is the command's run time in the guest.
	Took time.Duration `json:"took,omitempty"`
}

// maxLine bounds one protocol line (64 MiB) so a broken peer cannot make
// the other side buffer without end.
const maxLine = 64 << 20

// ErrLineTooLong is returned for a protocol line over maxLine.
var ErrLineTooLong = errors.New("vm: control line too long")

// AppendLine appends v as one JSON line to b.
func AppendLine(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("vm: encode control message: %w", err)
	}
	b = append(b, j...)
	return append(b, '\n'), nil
}

// DecodeRequest decodes one request line.
func DecodeRequest(line []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(line, &r); err != nil {
		return Request{}, fmt.Errorf("vm: decode request: %w", err)
	}
	if len(r.Argv) == 0 {
		return r, errors.New("vm: request has an empty argv")
	}
	return r, nil
}

// DecodeResponse decodes one response line.
func DecodeResponse(line []byte) (Response, error) {
	var r Response
	if err := json.Unmarshal(line, &r); err != nil {
		return Response{}, fmt.Errorf("vm: decode response: %w", err)
	}
	return r, nil
}

// NewLineReader returns a reader of protocol lines.
func NewLineReader(r io.Reader) *LineReader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &LineReader{s: s}
}

// LineReader reads protocol lines, skipping blank ones (a serial line may
// carry stray newlines).
type LineReader struct{ s *bufio.Scanner }

// Next returns the next non-blank line; it is valid until the next call.
func (l *LineReader) Next() ([]byte, error) {
	for l.s.Scan() {
		if b := l.s.Bytes(); len(strings.TrimSpace(string(b))) > 0 {
			return b, nil
		}
	}
	if err := l.s.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, ErrLineTooLong
		}
		return nil, err
	}
	return nil, io.EOF
}

// Err turns a non-zero exit or an agent error into an error that carries
// the command, its exit code and the end of its stderr; nil on exit 0.
func (r Response) Err(argv []string) error {
	if r.Exit == 0 && r.Error == "" {
		return nil
	}
	msg := strings.TrimSpace(string(r.Stderr))
	if len(msg) > 2000 {
		msg = "..." + msg[len(msg)-2000:]
	}
	if r.Error != "" {
		msg = strings.TrimSpace(r.Error + "; " + msg)
	}
	return &ExitError{Argv: argv, Exit: r.Exit, Msg: msg}
}

// ExitError is a guest command that failed.
type ExitError struct {
	Argv []string
	Exit int
	Msg  string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("guest command %q exited %d: %s", strings.Join(e.Argv, " "), e.Exit, e.Msg)
}
