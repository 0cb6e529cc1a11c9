package mqclient

import (
	"bufio"
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/e2e/labcheck"
)

// fakeQM answers puts: the first refuse gets ERR 2059, then every third
// put's connection is dropped after storing (an unknown outcome).
func fakeQM(t *testing.T, refuse int) (addr string, stored func() []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 1000)
	go func() {
		n := 0
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				f := strings.Fields(line)
				n++
				if n <= refuse {
					c.Write([]byte("ERR 2059 MQRC_Q_MGR_NOT_AVAILABLE\n"))
					continue
				}
				b, _ := base64.StdEncoding.DecodeString(f[2])
				ch <- string(b)
				if n%3 == 0 {
					break // stored, never acknowledged
				}
				c.Write([]byte("OK\n"))
			}
			c.Close()
		}
	}()
	return ln.Addr().String(), func() []string {
		var out []string
		for {
			select {
			case m := <-ch:
				out = append(out, m)
			default:
				return out
			}
		}
	}
}

func TestClientRecordsEveryAttempt(t *testing.T) {
	addr, stored := fakeQM(t, 2)
	var d net.Dialer
	c := New(Config{Addr: addr, Queue: "Q", Dial: d.DialContext, Interval: 5 * time.Millisecond, Timeout: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, func() bool { return len(c.Puts()) >= 12 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	last := <-done
	puts := c.Puts()
	assert.Equal(t, labcheck.Fail, puts[0].Outcome, "ERR 2059 is a refusal")
	assert.Equal(t, 1, puts[2].Seq, "message 1 is retried until acknowledged")
	var seqs []int
	for _, m := range stored() {
		s, err := ParseMessage(m)
		require.NoError(t, err)
		seqs = append(seqs, s)
	}
	r := labcheck.Check(labcheck.History{Puts: puts, Final: seqs, FsckClean: true})
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.NotEmpty(t, r.Duplicated, "dropped connections made some messages land twice")
	assert.GreaterOrEqual(t, r.Acked, last)
}

func TestMessageRoundTrip(t *testing.T) {
	s, err := ParseMessage(Message(42))
	require.NoError(t, err)
	assert.Equal(t, 42, s)
	_, err = ParseMessage("hello")
	assert.Error(t, err)
}

// A connect is bounded by ConnectTimeout, not the whole attempt's Timeout,
// so a connect stuck while the VIP moves is retried soon.
func TestConnectTimeoutBoundsDial(t *testing.T) {
	var deadline time.Time
	c := New(Config{Addr: "x:1", Queue: "Q", Timeout: time.Hour, ConnectTimeout: time.Minute,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			deadline, _ = ctx.Deadline()
			return nil, context.DeadlineExceeded
		}})
	before := time.Now()
	p := c.attempt(context.Background(), 1)
	assert.Equal(t, labcheck.Fail, p.Outcome, "nothing sent: the put did not happen")
	assert.WithinRange(t, deadline, before.Add(time.Minute), time.Now().Add(time.Minute))
}
