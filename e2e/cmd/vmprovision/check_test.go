package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/wire/scsi"
)

func TestParseProvision(t *testing.T) {
	tests := []struct {
		desc  string
		out   string
		first bool
		err   string
	}{
		{desc: "first run made everything", first: true,
			out: `{"changed":true,"message":"done: created volume vg0/mq","secret":"s3cret-s3cret"}`},
		{desc: "second run changed nothing",
			out: `{"changed":false,"message":"nothing to change: iqn already serves vg0/mq as provisioned"}`},
		{desc: "first run changed nothing", first: true, err: "changed nothing",
			out: `{"changed":false,"message":"nothing to change"}`},
		{desc: "first run without a secret", first: true, err: "no CHAP secret",
			out: `{"changed":true,"message":"done"}`},
		{desc: "second run changed something", err: "changed something",
			out: `{"changed":true,"message":"done: set CHAP for user mq","secret":"x"}`},
		{desc: "second run printed a secret", err: "new CHAP secret",
			out: `{"changed":false,"message":"nothing to change","secret":"x"}`},
		{desc: "second run silent about it", err: "did not say",
			out: `{"changed":false,"message":"ok"}`},
		{desc: "not JSON", err: "no result", out: "done: created volume"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := parseProvision([]byte(tc.out), tc.first)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestIsCapacityChanged(t *testing.T) {
	ua := func(asc, ascq byte) error {
		return fmt.Errorf("tur: %w", &initiator.SenseError{Key: scsi.SenseUnitAttention, ASC: asc, ASCQ: ascq})
	}
	assert.True(t, isCapacityChanged(ua(0x2a, 0x09)))
	// Negative controls: other unit attentions, other sense keys, no error.
	assert.False(t, isCapacityChanged(ua(0x29, 0x00)), "power on/reset")
	assert.False(t, isCapacityChanged(ua(0x2a, 0x03)), "reservations preempted")
	assert.False(t, isCapacityChanged(&initiator.SenseError{Key: scsi.SenseNotReady, ASC: 0x2a, ASCQ: 0x09}))
	assert.False(t, isCapacityChanged(nil))
}

func TestIsLoginRefused(t *testing.T) {
	auth := fmt.Errorf("dial: %w", &initiator.LoginError{Class: 2, Detail: 1})
	assert.True(t, isLoginRefused(auth, loginAuthentication))
	assert.False(t, isLoginRefused(auth, loginAuthorization))
	assert.False(t, isLoginRefused(&initiator.LoginError{Class: 3, Detail: 1}, loginAuthentication), "target error")
	assert.False(t, isLoginRefused(fmt.Errorf("connection refused"), loginAuthentication))
}

func TestUnmapCommand(t *testing.T) {
	cdb, param := unmapCommand(0x0102030405060708, 2048)
	assert.Equal(t, []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, cdb)
	assert.Equal(t, []byte{
		0, 22, 0, 16, 0, 0, 0, 0, // header: data length, descriptor length
		1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x08, 0, 0, 0, 0, 0, // LBA, blocks, reserved
	}, param)
}
