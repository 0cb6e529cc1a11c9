package iscsi

import (
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/login"
	tscsi "github.com/tandem-ha/tandem/target/scsi"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// pipeListener hands the server the far end of in-memory connections, so
// a round trip costs no socket and allocation counts see only tandem.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial returns the client end of a new in-memory connection.
func (l *pipeListener) dial() net.Conn {
	cli, srv := net.Pipe()
	l.conns <- srv
	return cli
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// pipeClient starts a server whose target is a real scsi.Target over a
// file LU and returns a logged-in client on an in-memory connection.
func pipeClient(t testing.TB, wrap func(Executor) Executor) *client {
	t.Helper()
	be, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: 1 << 20})
	require.NoError(t, err)
	lu, err := tscsi.NewLU(tscsi.LUConfig{Serial: "ALLOCS01", WriteCache: true}, be)
	require.NoError(t, err)
	t.Cleanup(func() { lu.Close() })
	tgt := tscsi.NewTarget(testIQN, nil)
	require.NoError(t, tgt.AddLU(0, lu))

	params := defaultParams()
	s := NewServer(Config{NopInterval: -1, NewLogin: func(c *login.Config, _ string) Negotiator {
		return &fakeLogin{cfg: c, params: params}
	}})
	var exec Executor = tgt
	if wrap != nil {
		exec = wrap(tgt)
	}
	require.NoError(t, s.AddTarget(login.TargetInfo{Name: testIQN}, exec))
	l := newPipeListener()
	go func() { _ = s.Serve(l) }()
	nc := l.dial()
	t.Cleanup(func() {
		_ = nc.Close()
		_ = l.Close()
	})
	c := &client{t: t, nc: nc, r: pdu.NewReader(nc), w: pdu.NewWriter(nc), cmdSN: 1}
	c.loginNormal(isid1)
	_ = nc.SetReadDeadline(time.Time{})
	return c
}

// roundTrip sends cmd with the next CmdSN and ITT and reads until the
// status arrives, reusing in.
func (c *client) roundTrip(cmd, in *pdu.PDU) error {
	cmd.BHS.SetCmdSN(c.cmdSN)
	c.cmdSN++
	c.itt++
	cmd.BHS.SetITT(c.itt)
	if err := c.w.Write(cmd); err != nil {
		return err
	}
	for {
		if err := c.r.Read(in); err != nil {
			return err
		}
		if in.BHS.Opcode() == pdu.OpSCSIResp || in.BHS.Flags()&pdu.FlagStatus != 0 {
			return nil
		}
	}
}

// TestRoundTripAllocs holds the whole connection path to zero
// allocations per I/O: a READ(10) and a WRITE(10) with immediate data go
// in as PDUs, through CmdSN ordering, a worker, scsi.Target.Execute on a
// file LU, and come back as Data-In or SCSI Response.
func TestRoundTripAllocs(t *testing.T) {
	c := pipeClient(t, nil)
	var in pdu.PDU
	sn := c.cmdSN // scsiCmd consumes CmdSNs; roundTrip numbers the commands
	cases := []struct {
		desc string
		cmd  *pdu.PDU
	}{
		{"read 4 KiB", c.scsiCmd(read10(8, 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil)},
		{"write 4 KiB immediate", c.scsiCmd(write10(16, 8), pdu.FlagWrite|pdu.FlagFinal, 4096, make([]byte, 4096))},
	}
	c.cmdSN = sn
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			var err error
			// Warm the pools and start the worker first.
			for range 10 {
				err = c.roundTrip(tc.cmd, &in)
			}
			require.NoError(t, err)
			require.Equal(t, byte(scsi.StatusGood), in.BHS.Status())
			allocs := testing.AllocsPerRun(200, func() {
				if e := c.roundTrip(tc.cmd, &in); e != nil {
					err = e
				}
			})
			require.NoError(t, err)
			require.Equal(t, byte(scsi.StatusGood), in.BHS.Status())
			require.Zero(t, allocs, "allocations per I/O round trip")
		})
	}
}

// allocExec allocates one buffer per command: the negative control.
type allocExec struct {
	Executor
	sink [][]byte
}

func (e *allocExec) Execute(t *tscsi.Task) tscsi.Result {
	e.sink = append(e.sink[:0], make([]byte, 64+len(t.CDB)))
	return e.Executor.Execute(t)
}

// TestRoundTripAllocsNegative is the checker's negative control: the
// same round trip through an executor that allocates per command must be
// counted, so the counter sees the server's goroutines.
func TestRoundTripAllocsNegative(t *testing.T) {
	c := pipeClient(t, func(e Executor) Executor { return &allocExec{Executor: e} })
	cmd := c.scsiCmd(read10(8, 8), pdu.FlagRead|pdu.FlagFinal, 4096, nil)
	c.cmdSN--
	var in pdu.PDU
	var err error
	for range 10 {
		err = c.roundTrip(cmd, &in)
	}
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() { _ = c.roundTrip(cmd, &in) })
	require.GreaterOrEqual(t, allocs, 1.0)
}
