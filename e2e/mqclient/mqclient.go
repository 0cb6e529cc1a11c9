// Package mqclient is the VM lab's counting client: it puts numbered
// persistent messages through the VIP to the MQ stand-in's TCP listener
// (one line per request: "PUT QUEUE BASE64" answered "OK" or "ERR ..."),
// one at a time at a steady rate, retrying a message until it is
// acknowledged, and records every attempt with host timestamps and its
// outcome (labcheck.Put). At the end Drain reads the queue back.
package mqclient

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/e2e/labcheck"
)

// DialFunc opens a TCP connection (the lab namespace's dialer).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config of a client.
type Config struct {
	// Addr is the listener through the VIP, e.g. 10.213.9.208:1414.
	Addr  string
	Queue string
	Dial  DialFunc
	// Interval between two puts (the steady rate); default 50ms.
	Interval time.Duration
	// Timeout bounds one attempt (connect, send, answer); an answer that
	// does not come in time makes the outcome unknown. Default 1s.
	Timeout time.Duration
	// ConnectTimeout bounds a connect (within Timeout). While the VIP
	// moves, a SYN sent to the old owner or into an unresolved ARP entry
	// is retransmitted only after 1 s: a short connect timeout makes the
	// next try go out soon after the VIP is up. Default 250ms.
	ConnectTimeout time.Duration
	// OnPut, when set, sees every attempt as it ends (the terminal).
	OnPut func(labcheck.Put)
}

// Client puts messages until its context ends.
type Client struct {
	cfg Config

	mu   sync.Mutex
	puts []labcheck.Put
	conn net.Conn
	r    *bufio.Reader
}

// New returns a client; nothing is dialled yet.
func New(cfg Config) *Client {
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 250 * time.Millisecond
	}
	return &Client{cfg: cfg}
}

// Message is the body of message seq.
func Message(seq int) string { return fmt.Sprintf("msg-%07d", seq) }

// ParseMessage is Message's inverse.
func ParseMessage(m string) (int, error) {
	s, ok := strings.CutPrefix(m, "msg-")
	if !ok {
		return 0, fmt.Errorf("mqclient: %q is not a lab message", m)
	}
	return strconv.Atoi(s)
}

// Run puts messages 1, 2, ... until ctx ends; each is retried until
// acknowledged. It returns the number of the last acknowledged message.
func (c *Client) Run(ctx context.Context) int {
	defer c.drop()
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	seq, last := 1, 0
	for {
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
		p := c.attempt(ctx, seq)
		if ctx.Err() != nil && p.Outcome != labcheck.OK {
			// Cut short by the end of the run, not by the system: still
			// recorded, as unknown.
			p.Outcome = labcheck.Info
		}
		c.mu.Lock()
		c.puts = append(c.puts, p)
		c.mu.Unlock()
		if c.cfg.OnPut != nil {
			c.cfg.OnPut(p)
		}
		if p.Outcome == labcheck.OK {
			last = seq
			seq++
		}
	}
}

// Puts returns every attempt so far.
func (c *Client) Puts() []labcheck.Put {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]labcheck.Put(nil), c.puts...)
}

func (c *Client) attempt(ctx context.Context, seq int) labcheck.Put {
	p := labcheck.Put{Seq: seq, Start: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.conn == nil {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		conn, err := c.cfg.Dial(dctx, "tcp", c.cfg.Addr)
		cancel()
		if err != nil {
			// Nothing was sent: the put cannot have taken effect.
			p.End, p.Outcome, p.Err = time.Now(), labcheck.Fail, err.Error()
			return p
		}
		c.conn, c.r = conn, bufio.NewReader(conn)
	}
	dl, _ := ctx.Deadline()
	_ = c.conn.SetDeadline(dl)
	req := "PUT " + c.cfg.Queue + " " + base64.StdEncoding.EncodeToString([]byte(Message(seq))) + "\n"
	_, err := io.WriteString(c.conn, req)
	var line string
	if err == nil {
		line, err = c.r.ReadString('\n')
	}
	p.End = time.Now()
	line = strings.TrimSpace(line)
	switch {
	case err != nil:
		// Sent (perhaps) and no answer: it may have taken effect.
		p.Outcome, p.Err = labcheck.Info, err.Error()
		c.drop()
	case line == "OK":
		p.Outcome = labcheck.OK
	default:
		// The queue manager answered with a reason code: not put.
		p.Outcome, p.Err = labcheck.Fail, line
		c.drop()
	}
	return p
}

func (c *Client) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// Drain gets every message off the queue and returns their numbers in
// queue order.
func Drain(ctx context.Context, dial DialFunc, addr, queue string) ([]int, error) {
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mqclient: read the queue back: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	r := bufio.NewReader(conn)
	var out []int
	for {
		if _, err := io.WriteString(conn, "GET "+queue+"\n"); err != nil {
			return out, fmt.Errorf("mqclient: get: %w", err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return out, fmt.Errorf("mqclient: get: %w", err)
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "ERR 2033") {
			return out, nil
		}
		b64, ok := strings.CutPrefix(line, "MSG ")
		if !ok {
			return out, fmt.Errorf("mqclient: get: %s", line)
		}
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return out, fmt.Errorf("mqclient: get: %w", err)
		}
		seq, err := ParseMessage(string(b))
		if err != nil {
			return out, err
		}
		out = append(out, seq)
	}
}

// ErrNoAck is returned by WaitAck when no put was acknowledged in time.
var ErrNoAck = errors.New("mqclient: no put acknowledged")

// AckedAfter reports whether some put was acknowledged after t.
func (c *Client) AckedAfter(t time.Time) bool {
	return !labcheck.FirstAckAfter(c.Puts(), t).IsZero()
}

// WaitAck waits until a put ends acknowledged after t, or ctx ends.
func (c *Client) WaitAck(ctx context.Context, t time.Time) (time.Time, error) {
	for {
		if a := labcheck.FirstAckAfter(c.Puts(), t); !a.IsZero() {
			return a, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w since %s: %w", ErrNoAck, t.Format("15:04:05.000"), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
