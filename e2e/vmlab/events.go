package vmlab

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/e2e/labcheck"
)

// Event is one line from a node's agent, or a step of the lab itself
// (Node "lab"), stamped on arrival at the host.
type Event struct {
	At   time.Time
	Node string
	// Msg is the slog message; Line the whole line.
	Msg, Line string
}

// Events collects the agents' lines and the lab's steps, writes them to a
// file and shows them on the terminal as they come.
type Events struct {
	mu    sync.Mutex
	evs   []Event
	f     *os.File
	out   io.Writer
	start time.Time
	quiet bool
}

func newEvents(path string, out io.Writer, start time.Time) *Events {
	f, _ := os.Create(path)
	return &Events{f: f, out: out, start: start}
}

// Quiet stops (true) or resumes showing events on the terminal.
func (e *Events) Quiet(q bool) {
	e.mu.Lock()
	e.quiet = q
	e.mu.Unlock()
}

func (e *Events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	line := fmt.Sprintf("%8.3fs %-8s %s", ev.At.Sub(e.start).Seconds(), ev.Node, ev.Line)
	if e.f != nil {
		fmt.Fprintln(e.f, ev.At.Format(time.RFC3339Nano), line)
	}
	if !e.quiet {
		fmt.Fprintln(e.out, line)
	}
}

// Lab records a step of the lab (a fault, a phase).
func (e *Events) Lab(msg string, kv ...string) {
	line := msg
	for i := 0; i+1 < len(kv); i += 2 {
		line += " " + kv[i] + "=" + kv[i+1]
	}
	e.add(Event{At: time.Now(), Node: "lab", Msg: msg, Line: line})
}

// Read stamps every line from r as node's until r ends.
func (e *Events) Read(node string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		e.add(Event{At: time.Now(), Node: node, Msg: SlogMsg(line), Line: Shorten(line)})
	}
}

// All returns the events so far.
func (e *Events) All() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.evs...)
}

// Close closes the events file.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.f != nil {
		e.f.Close()
		e.f = nil
	}
}

// SlogMsg is the msg value of a log/slog text line ("" if none).
func SlogMsg(line string) string {
	_, rest, ok := strings.Cut(line, " msg=")
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, `"`) {
		rest = rest[1:]
		if i := strings.Index(rest, `"`); i >= 0 {
			return rest[:i]
		}
		return rest
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

// Shorten drops the time= and level=INFO fields of a slog line: the host
// stamps it anyway.
func Shorten(line string) string {
	f := line
	if strings.HasPrefix(f, "time=") {
		if _, rest, ok := strings.Cut(f, " "); ok {
			f = rest
		}
	}
	return strings.TrimPrefix(f, "level=INFO ")
}

// FSEvents turns the agents' filesystem lines (and lab power-offs) into
// the checker's mount events.
func FSEvents(evs []Event) []labcheck.Event {
	var out []labcheck.Event
	for _, ev := range evs {
		switch {
		case ev.Msg == "filesystem mounted":
			out = append(out, labcheck.Event{At: ev.At, Node: ev.Node, Kind: labcheck.Mounted})
		case ev.Msg == "filesystem unmounted":
			out = append(out, labcheck.Event{At: ev.At, Node: ev.Node, Kind: labcheck.Unmounted})
		case ev.Node == "lab" && ev.Msg == "power off":
			out = append(out, labcheck.Event{At: ev.At, Node: nodeAttr(ev.Line), Kind: labcheck.PoweredOff})
		}
	}
	return out
}

func nodeAttr(line string) string {
	_, rest, ok := strings.Cut(line, "node=")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}
