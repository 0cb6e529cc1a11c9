package initiator

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/scsi"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, f *fakeTarget, mod func(*Options)) *Session {
	t.Helper()
	o := Options{TargetName: f.name, InitiatorName: "iqn.2025-01.io.tandem:test"}
	if mod != nil {
		mod(&o)
	}
	s, err := Dial(testCtx(t), f.addr(), o)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestLoginWithoutAuth(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f, nil)
	ctx := testCtx(t)
	p := s.Params()
	assert.Equal(t, uint32(65536), p.TargetMaxRecvDataSegmentLength)
	assert.Equal(t, uint32(262144), p.MaxRecvDataSegmentLength)
	assert.Equal(t, uint32(262144), p.MaxBurstLength)
	assert.Equal(t, uint32(65536), p.FirstBurstLength)
	assert.True(t, p.ImmediateData)
	assert.False(t, p.InitialR2T)
	assert.Equal(t, uint16(0x1234), s.TSIH())

	inq, err := s.Inquiry(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, "TANDEM", inq.Vendor)
	assert.Equal(t, "FAKEDISK", inq.Product)
	require.NoError(t, s.TestUnitReady(ctx, 0))
	luns, err := s.ReportLUNs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []uint64{0, 3}, luns)
	c, err := s.ReadCapacity16(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(2048), c.Blocks)
	assert.True(t, c.ThinProvisioned)
	require.NoError(t, s.SyncCache(ctx, 0))

	require.NoError(t, s.Close(context.Background()))
	f.mu.Lock()
	assert.Equal(t, 1, f.logouts)
	f.mu.Unlock()
	_, err = s.Inquiry(ctx, 0)
	assert.ErrorIs(t, err, ErrSessionClosed)
}

func TestLoginCHAP(t *testing.T) {
	tests := []struct {
		desc      string
		target    func(*fakeTarget)
		chap      *CHAP
		errIs     error
		loginCode uint16
		errText   string
	}{
		{
			desc:   "one-way",
			target: func(f *fakeTarget) { f.chapUser, f.chapSecret = "alice", []byte("initiator-secret") },
			chap:   &CHAP{User: "alice", Secret: []byte("initiator-secret")},
		},
		{
			desc:   "one-way md5 only",
			target: func(f *fakeTarget) { f.chapUser, f.chapSecret = "alice", []byte("initiator-secret") },
			chap:   &CHAP{User: "alice", Secret: []byte("initiator-secret"), Algorithms: []chap.Algorithm{chap.MD5}},
		},
		{
			desc: "mutual",
			target: func(f *fakeTarget) {
				f.chapUser, f.chapSecret = "alice", []byte("initiator-secret")
				f.mutualUser, f.mutualSecret = "tgt", []byte("target-secret-1")
			},
			chap: &CHAP{User: "alice", Secret: []byte("initiator-secret"), MutualUser: "tgt", MutualSecret: []byte("target-secret-1")},
		},
		{
			desc: "mutual, wrong target secret",
			target: func(f *fakeTarget) {
				f.chapUser, f.chapSecret = "alice", []byte("initiator-secret")
				f.mutualUser, f.mutualSecret = "tgt", []byte("not-the-secret")
			},
			chap:  &CHAP{User: "alice", Secret: []byte("initiator-secret"), MutualUser: "tgt", MutualSecret: []byte("target-secret-1")},
			errIs: ErrMutualCHAP,
		},
		{
			desc:      "wrong initiator secret",
			target:    func(f *fakeTarget) { f.chapUser, f.chapSecret = "alice", []byte("initiator-secret") },
			chap:      &CHAP{User: "alice", Secret: []byte("wrong")},
			loginCode: pdu.LoginAuthFailed,
		},
		{
			desc:      "target requires chap, none configured",
			target:    func(f *fakeTarget) { f.chapUser, f.chapSecret = "alice", []byte("initiator-secret") },
			loginCode: pdu.LoginAuthFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFake(t, tt.target)
			s, err := Dial(testCtx(t), f.addr(), Options{TargetName: f.name, CHAP: tt.chap})
			switch {
			case tt.errIs != nil:
				require.ErrorIs(t, err, tt.errIs)
				assert.Contains(t, err.Error(), "mutual secret")
			case tt.loginCode != 0:
				var le *LoginError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, tt.loginCode, uint16(le.Class)<<8|uint16(le.Detail))
				assert.Contains(t, le.Error(), "authentication failure")
			case tt.errText != "":
				require.ErrorContains(t, err, tt.errText)
			default:
				require.NoError(t, err)
				require.NoError(t, s.TestUnitReady(testCtx(t), 0))
				require.NoError(t, s.Close(context.Background()))
			}
		})
	}
}

func TestLoginTargetNotFound(t *testing.T) {
	f := newFake(t, nil)
	_, err := Dial(testCtx(t), f.addr(), Options{TargetName: "iqn.2025-01.io.tandem:nope"})
	var le *LoginError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, byte(2), le.Class)
	assert.Equal(t, byte(3), le.Detail)
	assert.Contains(t, err.Error(), "target not found")
}

func TestDiscover(t *testing.T) {
	f := newFake(t, func(f *fakeTarget) {
		f.sendTargets = "TargetName=iqn.2025-01.io.tandem:a\x00TargetAddress=127.0.0.1:3260,1\x00" +
			"TargetAddress=[::1]:3261,2\x00TargetName=iqn.2025-01.io.tandem:b\x00TargetAddress=10.0.0.1:3260,1\x00"
		f.chunk = 17 // splits keys across PDUs: exercises the C bit
	})
	got, err := Discover(testCtx(t), f.addr(), DiscoveryOptions{})
	require.NoError(t, err)
	assert.Equal(t, []DiscoveredTarget{
		{Name: "iqn.2025-01.io.tandem:a", Portals: []Portal{{"127.0.0.1:3260", 1}, {"[::1]:3261", 2}}},
		{Name: "iqn.2025-01.io.tandem:b", Portals: []Portal{{"10.0.0.1:3260", 1}}},
	}, got)
	f.mu.Lock()
	assert.Equal(t, 1, f.logouts)
	f.mu.Unlock()
}

func TestReadMultiPDUDataIn(t *testing.T) {
	f := newFake(t, nil)
	for i := range f.disk {
		f.disk[i] = byte(i * 7)
	}
	s := dial(t, f, func(o *Options) { o.MaxRecvDataSegmentLength = 4096 })
	ctx := testCtx(t)
	buf := make([]byte, 64<<10)
	require.NoError(t, s.ReadInto(ctx, 0, 8, buf))
	assert.True(t, bytes.Equal(f.disk[8*512:8*512+len(buf)], buf))

	// A short EDTL: the target reports overflow.
	resp, err := s.Do(ctx, &Command{CDB: []byte{scsi.OpInquiry, 0, 0, 0, 96, 0}, ReadLen: 36})
	require.NoError(t, err)
	assert.Len(t, resp.Data, 36)
	assert.True(t, resp.Overflow)
	assert.Equal(t, uint32(60), resp.Residual)
}

func TestWrite(t *testing.T) {
	tests := []struct {
		desc                     string
		immediate, initialR2T    bool
		wantImm, wantUnsol, r2ts int
	}{
		// FirstBurst 16 KiB, target MRDSL 8 KiB, MaxBurst 32 KiB, 128 KiB:
		// 8 KiB immediate, one 8 KiB unsolicited Data-Out, 112 KiB in 4 R2Ts.
		{desc: "immediate and unsolicited", immediate: true, wantImm: 8192, wantUnsol: 1, r2ts: 4},
		{desc: "immediate only", immediate: true, initialR2T: true, wantImm: 8192, r2ts: 4},
		{desc: "r2t only", initialR2T: true, r2ts: 4},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			f := newFake(t, func(f *fakeTarget) {
				f.mrdsl, f.firstBurst, f.maxBurst = 8192, 16384, 32768
				f.immediateData, f.initialR2T = tt.immediate, tt.initialR2T
			})
			s := dial(t, f, nil)
			ctx := testCtx(t)
			data := make([]byte, 128<<10)
			for i := range data {
				data[i] = byte(i*13 + 1)
			}
			require.NoError(t, s.Write16(ctx, 0, 16, data, true))
			f.mu.Lock()
			defer f.mu.Unlock()
			assert.True(t, bytes.Equal(data, f.disk[16*512:16*512+len(data)]))
			assert.Equal(t, tt.wantImm, f.immBytes)
			assert.Equal(t, tt.wantUnsol, f.unsolicit)
			if tt.r2ts != 4 || tt.initialR2T {
				// Without unsolicited Data-Out, R2Ts cover 120 or 128 KiB.
				assert.Equal(t, 4, f.r2ts)
			} else {
				assert.Equal(t, tt.r2ts, f.r2ts)
			}
		})
	}
}

func TestCmdSNWindowBlocks(t *testing.T) {
	hold := make(chan struct{})
	f := newFake(t, func(f *fakeTarget) { f.window, f.hold = 2, hold })
	s := dial(t, f, nil)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- s.TestUnitReady(ctx, 0) })
	}
	// Two commands fill the window; the third waits for MaxCmdSN.
	require.Eventually(t, func() bool {
		s.snMu.Lock()
		waiters := s.windowWaiters
		s.snMu.Unlock()
		f.mu.Lock()
		defer f.mu.Unlock()
		return waiters == 1 && f.cmds == 2
	}, 5*time.Second, time.Millisecond)
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	f.mu.Lock()
	assert.Equal(t, 3, f.cmds)
	f.mu.Unlock()
}

func TestQueueDepthConcurrent(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f, func(o *Options) { o.QueueDepth = 4 })
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for j := range buf {
				buf[j] = byte(i)
			}
			lba := uint64(i * 8)
			assert.NoError(t, s.Write16(ctx, 0, lba, buf, false))
			got := make([]byte, 4096)
			assert.NoError(t, s.ReadInto(ctx, 0, lba, got))
			assert.Equal(t, buf, got)
		})
	}
	wg.Wait()
}

func TestAnswersTargetPing(t *testing.T) {
	f := newFake(t, func(f *fakeTarget) { f.pingAfterLogin = true })
	dial(t, f, nil)
	select {
	case p := <-f.nopReply:
		assert.Equal(t, pdu.OpNOPOut, p.BHS.Opcode())
		assert.Equal(t, uint32(0x77), p.BHS.TTT())
		assert.True(t, p.BHS.Immediate())
		assert.Equal(t, "ping", string(p.Data))
	case <-testCtx(t).Done():
		t.Fatal("no NOP-Out answer")
	}
}

func TestPingAndLUNReset(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f, nil)
	require.NoError(t, s.Ping(testCtx(t)))
	code, err := s.LUNReset(testCtx(t), 0)
	require.NoError(t, err)
	assert.Equal(t, byte(0), code)
}

func TestCheckCondition(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f, nil)
	resp, err := s.Do(testCtx(t), &Command{CDB: []byte{0xee, 0, 0, 0, 0, 0}})
	require.NoError(t, err)
	var se *SenseError
	require.ErrorAs(t, resp.Err(), &se)
	assert.Equal(t, byte(scsi.SenseIllegalRequest), se.Key)
	assert.Equal(t, byte(0x20), se.ASC)
	assert.Contains(t, se.Error(), "ILLEGAL REQUEST")

	_, err = s.Read16(testCtx(t), 0, 1<<20, 1)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, byte(0x21), se.ASC)
}

func TestDigests(t *testing.T) {
	f := newFake(t, func(f *fakeTarget) { f.digests = true })
	s := dial(t, f, func(o *Options) { o.HeaderDigest, o.DataDigest = true, true })
	assert.True(t, s.Params().HeaderDigest)
	assert.True(t, s.Params().DataDigest)
	ctx := testCtx(t)
	data := bytes.Repeat([]byte{1, 2, 3}, 1024) // 3072: not a multiple of 4 bytes... of 512? yes
	require.NoError(t, s.Write16(ctx, 0, 0, data, false))
	got, err := s.Read16(ctx, 0, 0, 6)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

func TestCancelAbortsTask(t *testing.T) {
	hold := make(chan struct{})
	f := newFake(t, func(f *fakeTarget) { f.hold = hold })
	s := dial(t, f, func(o *Options) { o.QueueDepth = 1 })
	ctx, cancel := context.WithCancel(testCtx(t))
	buf := make([]byte, 512)
	done := make(chan error, 1)
	go func() {
		_, err := s.Do(ctx, &Command{CDB: []byte{scsi.OpRead16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, ReadBuf: buf})
		done <- err
	}()
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.cmds == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	// ABORT TASK frees the only slot, so the next command can run.
	close(hold)
	require.NoError(t, s.TestUnitReady(testCtx(t), 0))
}

func TestTargetDropFailsCommands(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	f := newFake(t, func(f *fakeTarget) { f.hold = hold })
	s := dial(t, f, nil)
	done := make(chan error, 1)
	go func() { done <- s.TestUnitReady(testCtx(t), 0) }()
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.cmds == 1 }, 5*time.Second, time.Millisecond)
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := <-done
	require.ErrorIs(t, err, ErrSessionClosed)
	<-s.Done()
	assert.True(t, errors.Is(s.Err(), ErrSessionClosed))
}

func BenchmarkReadInto4K(b *testing.B) {
	f := newFake(b, nil)
	s, err := Dial(context.Background(), f.addr(), Options{TargetName: f.name})
	require.NoError(b, err)
	defer s.Close(context.Background())
	ctx := context.Background()
	buf := make([]byte, 4096)
	require.NoError(b, s.ReadInto(ctx, 0, 0, buf))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.ReadInto(ctx, 0, 0, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReadIntoAllocs(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f, nil)
	ctx := context.Background()
	buf := make([]byte, 4096)
	require.NoError(t, s.ReadInto(ctx, 0, 0, buf))
	allocs := testing.AllocsPerRun(200, func() {
		if err := s.ReadInto(ctx, 0, 0, buf); err != nil {
			t.Fatal(err)
		}
	})
	// The count includes the fake target's own allocation (one Data-In
	// PDU header); the initiator's hot path adds none.
	assert.LessOrEqual(t, allocs, 1.0)
}

func TestKeepAlive(t *testing.T) {
	f := newFake(t, nil)
	s := dial(t, f, func(o *Options) { o.KeepAliveInterval = 2 * time.Millisecond })
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.nopOuts >= 3 }, 5*time.Second, time.Millisecond)
	assert.NoError(t, s.Err())

	f2 := newFake(t, func(f *fakeTarget) { f.ignoreNOP = true })
	s2 := dial(t, f2, func(o *Options) { o.KeepAliveInterval, o.KeepAliveTimeout = 2*time.Millisecond, 5*time.Millisecond })
	select {
	case <-s2.Done():
		require.ErrorIs(t, s2.Err(), ErrSessionClosed)
		assert.Contains(t, s2.Err().Error(), "keep-alive")
	case <-testCtx(t).Done():
		t.Fatal("session survived unanswered keep-alives")
	}
}
