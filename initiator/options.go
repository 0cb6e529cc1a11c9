package initiator

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/tandem-ha/tandem/initiator/negotiate"
)

// CHAP holds CHAP credentials (RFC 7143 section 12.1.3).
type CHAP = negotiate.CHAP

// Params are the negotiated session and connection parameters
// (RFC 7143 section 13).
type Params = negotiate.Params

// Options configure a normal session.
type Options struct {
	// InitiatorName is the iSCSI name of this initiator; default
	// DefaultInitiatorName.
	InitiatorName  string
	InitiatorAlias string
	// TargetName is the iSCSI name of the target; required.
	TargetName string
	// ISID is the initiator session id; zero picks a random ISID of the
	// "random" type (T=10b, RFC 7143 section 11.12.5) with a random
	// qualifier.
	ISID [6]byte
	// CHAP credentials; nil offers AuthMethod=None only.
	CHAP *CHAP
	// HeaderDigest and DataDigest offer CRC32C (preferred) or None.
	HeaderDigest, DataDigest bool
	// MaxRecvDataSegmentLength is the largest data segment this
	// initiator accepts, in bytes; default 262144.
	MaxRecvDataSegmentLength uint32
	// MaxBurstLength is the most bytes of one Data-In or solicited
	// Data-Out sequence we propose; default 1048576 (the result is the
	// minimum of both sides).
	MaxBurstLength uint32
	// FirstBurstLength is the most unsolicited bytes (immediate plus
	// unsolicited Data-Out) per write; default 262144.
	FirstBurstLength uint32
	// ImmediateData and InitialR2T: nil offers ImmediateData=Yes and
	// InitialR2T=No, which lets a write travel without an R2T round trip.
	ImmediateData, InitialR2T *bool
	// QueueDepth is the most commands in flight at once; default 32.
	// The target's CmdSN window can hold them back further.
	QueueDepth int
	// KeepAliveInterval, when positive, sends a NOP-Out ping that often;
	// the session fails when a ping goes unanswered for
	// KeepAliveTimeout (default 3 x interval).
	KeepAliveInterval, KeepAliveTimeout time.Duration
	// Dialer opens the TCP connection; nil uses net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives session events; nil discards them.
	Logger *slog.Logger
}

// DiscoveryOptions configure a discovery session.
type DiscoveryOptions struct {
	InitiatorName string
	ISID          [6]byte
	CHAP          *CHAP
	// HeaderDigest and DataDigest offer CRC32C.
	HeaderDigest, DataDigest bool
	Dialer                   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger                   *slog.Logger
}

// DefaultInitiatorName is used when Options.InitiatorName is empty.
const DefaultInitiatorName = "iqn.2025-01.io.tandem:initiator"

// Defaults.
const (
	defaultMRDSL      = 262144
	defaultMaxBurst   = 1048576
	defaultFirstBurst = 262144
	defaultQueueDepth = 32
	// maxQueueDepth keeps a task slot index in the low 16 bits of an ITT.
	maxQueueDepth = 4096
)

// Bool returns a pointer to v, for Options.ImmediateData and InitialR2T.
func Bool(v bool) *bool { return &v }

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if c.TargetName == "" {
		return c, errors.New("initiator: TargetName is required; pick one from Discover")
	}
	if c.InitiatorName == "" {
		c.InitiatorName = DefaultInitiatorName
	}
	if c.MaxRecvDataSegmentLength == 0 {
		c.MaxRecvDataSegmentLength = defaultMRDSL
	}
	if c.MaxRecvDataSegmentLength < 512 || c.MaxRecvDataSegmentLength > 1<<24-1 {
		return c, errors.New("initiator: MaxRecvDataSegmentLength must be within 512..16777215")
	}
	if c.MaxBurstLength == 0 {
		c.MaxBurstLength = defaultMaxBurst
	}
	if c.FirstBurstLength == 0 {
		c.FirstBurstLength = defaultFirstBurst
	}
	if c.FirstBurstLength > c.MaxBurstLength {
		c.FirstBurstLength = c.MaxBurstLength
	}
	if c.MaxBurstLength < 512 || c.MaxBurstLength > 1<<24-1 {
		return c, errors.New("initiator: MaxBurstLength must be within 512..16777215")
	}
	if c.FirstBurstLength < 512 {
		return c, errors.New("initiator: FirstBurstLength must be at least 512")
	}
	if c.QueueDepth <= 0 {
		c.QueueDepth = defaultQueueDepth
	}
	if c.QueueDepth > maxQueueDepth {
		return c, errors.New("initiator: QueueDepth above 4096; lower it")
	}
	if c.KeepAliveInterval > 0 && c.KeepAliveTimeout <= 0 {
		c.KeepAliveTimeout = 3 * c.KeepAliveInterval
	}
	if c.ISID == ([6]byte{}) {
		c.ISID = randomISID()
	}
	if err := checkCHAP(c.CHAP); err != nil {
		return c, err
	}
	return c, nil
}

func checkCHAP(c *CHAP) error {
	if c == nil {
		return nil
	}
	if c.User == "" || len(c.Secret) == 0 {
		return errors.New("initiator: CHAP needs both User and Secret")
	}
	if len(c.MutualSecret) > 0 && string(c.MutualSecret) == string(c.Secret) {
		// RFC 7143 section 12.1.3 forbids one secret for both directions.
		return errors.New("initiator: CHAP MutualSecret must differ from Secret")
	}
	for _, a := range c.Algorithms {
		if a.Size() == 0 {
			return errors.New("initiator: unknown CHAP algorithm " + a.String())
		}
	}
	return nil
}

// randomISID returns a random-type ISID (T=10b) with a random qualifier.
func randomISID() [6]byte {
	var s [6]byte
	_, _ = rand.Read(s[1:])
	s[0] = 0x80
	return s
}

func dialer(f func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if f != nil {
		return f
	}
	var d net.Dialer
	return d.DialContext
}

func discard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
