package itest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// The CHAP lab: one target behind CHAP (with mutual CHAP available), one
// behind an initiator ACL, and discovery behind its own credentials.
const (
	chapIQN      = "iqn.2025-01.io.tandem:itest.chap"
	aclIQN       = "iqn.2025-01.io.tandem:itest.acl"
	chapUser     = "alice"
	chapSecret   = "alice-secret-0123"
	mutualUser   = "tandem-target"
	mutualSecret = "target-secret-4567"
	discUser     = "disco"
	discSecret   = "discovery-secret-89"
	allowedIQN   = "iqn.2025-01.io.tandem:itest.allowed"
	initiatorIQN = "iqn.2025-01.io.tandem:itest.initiator"
	lunSize      = 64 << 20
)

type chapLab struct {
	d    *daemon
	addr string
}

func startCHAPLab(t *testing.T) *chapLab {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	cfg.Discovery.CHAP = config.CHAP{User: discUser, SecretFile: secretFile(t, dir, "disc.secret", discSecret, 0o600)}
	cfg.Targets = []config.Target{
		{
			Name: chapIQN,
			CHAP: config.CHAP{
				User: chapUser, SecretFile: secretFile(t, dir, "alice.secret", chapSecret, 0o600),
				MutualUser: mutualUser, MutualSecretFile: secretFile(t, dir, "target.secret", mutualSecret, 0o600),
			},
			LUNs: []config.LUN{sparseLUN(t, dir, "chap", 0, lunSize)},
		},
		{
			Name:       aclIQN,
			Initiators: []string{allowedIQN},
			LUNs:       []config.LUN{sparseLUN(t, dir, "acl", 0, lunSize)},
		},
	}
	return &chapLab{d: start(t, dir, cfg), addr: cfg.Listen[0]}
}

func goodCHAP() *initiator.CHAP {
	return &initiator.CHAP{User: chapUser, Secret: []byte(chapSecret)}
}

func requireLoginStatus(t *testing.T, err error, code uint16) {
	t.Helper()
	var le *initiator.LoginError
	require.ErrorAs(t, err, &le, "want login status %#04x", code)
	assert.Equal(t, code, uint16(le.Class)<<8|uint16(le.Detail), "login status: %v", err)
}

func TestCHAPNative(t *testing.T) {
	lab := startCHAPLab(t)
	dial := func(t *testing.T, target, name string, creds *initiator.CHAP) (*initiator.Session, error) {
		s, err := initiator.Dial(ctx(t), lab.addr, initiator.Options{TargetName: target, InitiatorName: name, CHAP: creds})
		if err == nil {
			t.Cleanup(func() { s.Close(context.Background()) })
		}
		return s, err
	}

	t.Run("good CHAP reads back what it wrote", func(t *testing.T) {
		s, err := dial(t, chapIQN, initiatorIQN, goodCHAP())
		require.NoError(t, err)
		c := ctx(t)
		inq, err := s.Inquiry(c, 0)
		require.NoError(t, err)
		assert.Equal(t, "TANDEM", inq.Vendor)
		capa, err := s.ReadCapacity16(c, 0)
		require.NoError(t, err)
		assert.Equal(t, int64(lunSize), capa.Size())
		for i, size := range []int{512, 64 << 10, 1 << 20} {
			data := pattern(size, byte(i+1))
			lba := uint64(i) * 4096
			require.NoError(t, s.Write16(c, 0, lba, data, i == 0))
			got := make([]byte, size)
			require.NoError(t, s.ReadInto(c, 0, lba, got))
			require.True(t, bytes.Equal(data, got), "%d bytes at lba %d differ", size, lba)
		}
	})

	t.Run("good mutual CHAP", func(t *testing.T) {
		creds := goodCHAP()
		creds.MutualUser, creds.MutualSecret = mutualUser, []byte(mutualSecret)
		s, err := dial(t, chapIQN, initiatorIQN, creds)
		require.NoError(t, err)
		require.NoError(t, s.TestUnitReady(ctx(t), 0))
	})

	for _, tc := range []struct {
		desc  string
		creds *initiator.CHAP
	}{
		{"wrong secret", &initiator.CHAP{User: chapUser, Secret: []byte("not-alice-secret-x")}},
		{"wrong user", &initiator.CHAP{User: "mallory", Secret: []byte(chapSecret)}},
		{"no credentials", nil},
		{"MD5 with a wrong secret", &initiator.CHAP{User: chapUser, Secret: []byte("not-alice-secret-x"), Algorithms: []chap.Algorithm{chap.MD5}}},
	} {
		t.Run(tc.desc+" is an authentication failure", func(t *testing.T) {
			_, err := dial(t, chapIQN, initiatorIQN, tc.creds)
			requireLoginStatus(t, err, pdu.LoginAuthFailed)
		})
	}

	t.Run("mutual CHAP with a wrong target secret fails on the initiator", func(t *testing.T) {
		creds := goodCHAP()
		creds.MutualUser, creds.MutualSecret = mutualUser, []byte("wrong-target-secret")
		_, err := dial(t, chapIQN, initiatorIQN, creds)
		require.ErrorIs(t, err, initiator.ErrMutualCHAP)
	})

	t.Run("reflected challenge", func(t *testing.T) {
		// The control run answers with a fresh challenge and must log in,
		// so the refusal below is about the reflection alone.
		status, err := handLogin(lab.addr, false)
		require.NoError(t, err)
		assert.Equal(t, uint16(0), status, "control login with a fresh mutual challenge")
		status, err = handLogin(lab.addr, true)
		require.NoError(t, err)
		assert.Equal(t, uint16(pdu.LoginAuthFailed), status, "a target must refuse its own challenge sent back (RFC 7143 section 12.1.3)")
	})

	t.Run("discovery has its own credentials", func(t *testing.T) {
		c := ctx(t)
		found, err := initiator.Discover(c, lab.addr, initiator.DiscoveryOptions{InitiatorName: initiatorIQN,
			CHAP: &initiator.CHAP{User: discUser, Secret: []byte(discSecret)}})
		require.NoError(t, err)
		var names []string
		for _, f := range found {
			names = append(names, f.Name)
		}
		assert.Contains(t, names, chapIQN)

		_, err = initiator.Discover(c, lab.addr, initiator.DiscoveryOptions{InitiatorName: initiatorIQN, CHAP: goodCHAP()})
		requireLoginStatus(t, err, pdu.LoginAuthFailed)
		_, err = initiator.Discover(c, lab.addr, initiator.DiscoveryOptions{InitiatorName: initiatorIQN})
		requireLoginStatus(t, err, pdu.LoginAuthFailed)
		// Nor do discovery credentials open the target.
		_, err = dial(t, chapIQN, initiatorIQN, &initiator.CHAP{User: discUser, Secret: []byte(discSecret)})
		requireLoginStatus(t, err, pdu.LoginAuthFailed)
	})

	t.Run("ACL", func(t *testing.T) {
		_, err := dial(t, aclIQN, initiatorIQN, nil)
		requireLoginStatus(t, err, pdu.LoginForbidden)
		s, err := dial(t, aclIQN, allowedIQN, nil)
		require.NoError(t, err)
		require.NoError(t, s.TestUnitReady(ctx(t), 0))
	})
}

// handLogin runs a CHAP login to chapIQN with hand-built PDUs. The
// initiator answers the target's challenge correctly and asks for mutual
// CHAP; with reflect it sends the target's own CHAP_I and CHAP_C back as
// its challenge. It returns the final login status (class<<8|detail).
func handLogin(addr string, reflect bool) (uint16, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := pdu.NewReader(conn), pdu.NewWriter(conn)
	isid := [6]byte{0x80, 0, 0, 0x12, 0x34, 0x56}
	cmdSN, expStatSN := uint32(1), uint32(0)
	exchange := func(transit bool, nsg int, kvs ...text.KV) ([]text.KV, uint16, error) {
		var req, resp pdu.PDU
		req.BHS.SetOpcode(pdu.OpLoginReq)
		req.BHS.SetImmediate(true)
		req.BHS.SetLoginStages(transit, false, pdu.StageSecurity, nsg)
		req.BHS.SetISID(isid)
		req.BHS.SetITT(1)
		req.BHS.SetCmdSN(cmdSN)
		req.BHS.SetExpStatSN(expStatSN)
		req.Data = text.Append(nil, kvs...)
		if err := w.Write(&req); err != nil {
			return nil, 0, err
		}
		if err := r.Read(&resp); err != nil {
			return nil, 0, err
		}
		if resp.BHS.Opcode() != pdu.OpLoginResp {
			return nil, 0, errors.New("not a login response: " + resp.BHS.Opcode().String())
		}
		expStatSN = resp.BHS.StatSN() + 1
		class, detail := resp.BHS.LoginStatus()
		got, _, err := text.Parse(resp.Data, false)
		return got, uint16(class)<<8 | uint16(detail), err
	}
	get := func(kvs []text.KV, k string) string { v, _ := text.Get(kvs, k); return v }

	kvs, status, err := exchange(false, pdu.StageSecurity,
		text.KV{Key: "InitiatorName", Value: initiatorIQN}, text.KV{Key: "SessionType", Value: "Normal"},
		text.KV{Key: "TargetName", Value: chapIQN}, text.KV{Key: "AuthMethod", Value: "CHAP"})
	if err != nil || status != 0 {
		return status, err
	}
	if get(kvs, "AuthMethod") != "CHAP" {
		return 0, errors.New("target did not choose CHAP: " + get(kvs, "AuthMethod"))
	}
	kvs, status, err = exchange(false, pdu.StageSecurity, text.KV{Key: "CHAP_A", Value: "5"})
	if err != nil || status != 0 {
		return status, err
	}
	id, err := strconv.Atoi(get(kvs, "CHAP_I"))
	if err != nil {
		return 0, errors.New("bad CHAP_I from the target: " + get(kvs, "CHAP_I"))
	}
	ch, err := chap.Decode(get(kvs, "CHAP_C"))
	if err != nil {
		return 0, err
	}
	resp, err := chap.Response(chap.MD5, byte(id), []byte(chapSecret), ch)
	if err != nil {
		return 0, err
	}
	myID, myC := byte(id+1), chap.EncodeHex(bytes.Repeat([]byte{0x5a}, 16))
	if reflect {
		myID, myC = byte(id), get(kvs, "CHAP_C")
	}
	kvs, status, err = exchange(true, pdu.StageOperational,
		text.KV{Key: "CHAP_N", Value: chapUser}, text.KV{Key: "CHAP_R", Value: chap.EncodeHex(resp)},
		text.KV{Key: "CHAP_I", Value: strconv.Itoa(int(myID))}, text.KV{Key: "CHAP_C", Value: myC})
	if err != nil {
		return status, err
	}
	if status == 0 && get(kvs, "CHAP_R") == "" {
		return status, errors.New("target accepted mutual CHAP without answering the challenge")
	}
	return status, nil
}

// libiscsi tool runs; `make test` installs libiscsi-bin.
func requireTool(t *testing.T, name string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install libiscsi-bin; `make test` does it): %v", name, err)
	}
	return path
}

func runTool(t *testing.T, name string, args ...string) (string, error) {
	c, cancel := ctxCancel(20 * time.Second)
	defer cancel()
	out, err := exec.CommandContext(c, requireTool(t, name), args...).CombinedOutput()
	t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	return string(out), err
}

func TestCHAPLibiscsi(t *testing.T) {
	for _, tool := range []string{"iscsi-inq", "iscsi-ls", "iscsi-readcapacity16"} {
		requireTool(t, tool)
	}
	lab := startCHAPLab(t)
	url := func(user, secret, target string, lun int) string {
		u := "iscsi://"
		if user != "" {
			u += user + "%" + secret + "@"
		}
		u += lab.addr
		if target != "" {
			u += "/" + target + "/" + strconv.Itoa(lun)
		}
		return u
	}

	out, err := runTool(t, "iscsi-inq", "-i", initiatorIQN, url(chapUser, chapSecret, chapIQN, 0))
	require.NoError(t, err, out)
	assert.Contains(t, out, "Vendor:TANDEM")
	assert.Contains(t, out, "Product:VDISK")

	out, err = runTool(t, "iscsi-readcapacity16", "-i", initiatorIQN, url(chapUser, chapSecret, chapIQN, 0))
	require.NoError(t, err, out)
	assert.Contains(t, out, "RETURNED LOGICAL BLOCK ADDRESS:"+strconv.Itoa(lunSize/512-1)+"\n")
	assert.Contains(t, out, "LOGICAL BLOCK LENGTH IN BYTES:512\n")
	assert.Contains(t, out, "Total size:"+strconv.Itoa(lunSize)+"\n")

	out, err = runTool(t, "iscsi-ls", "-i", initiatorIQN, url(discUser, discSecret, "", 0))
	require.NoError(t, err, out)
	assert.Contains(t, out, chapIQN)

	out, err = runTool(t, "iscsi-inq", "-i", initiatorIQN, url(chapUser, "not-alice-secret-x", chapIQN, 0))
	require.Error(t, err, "wrong secret must fail; output:\n%s", out)
	assert.Contains(t, out, "Authentication failure")
	assert.NotContains(t, out, "TANDEM")
	out, err = runTool(t, "iscsi-readcapacity16", "-i", initiatorIQN, url(chapUser, "not-alice-secret-x", chapIQN, 0))
	require.Error(t, err, "wrong secret must fail; output:\n%s", out)
	assert.Contains(t, out, "Authentication failure")
	out, err = runTool(t, "iscsi-ls", "-i", initiatorIQN, url(chapUser, chapSecret, "", 0))
	require.Error(t, err, "discovery with the target's credentials must fail; output:\n%s", out)
	assert.NotContains(t, out, chapIQN)
}

func TestSecretFileMode(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	loose := secretFile(t, dir, "loose.secret", chapSecret, 0o644)
	cfg.Targets = []config.Target{{
		Name: chapIQN,
		CHAP: config.CHAP{User: chapUser, SecretFile: loose},
		LUNs: []config.LUN{sparseLUN(t, dir, "chap", 0, lunSize)},
	}}
	d := startDaemon(t, writeConfig(t, dir, cfg), cfg.Listen[0])
	code, exited := d.wait(10 * time.Second)
	require.True(t, exited, "tandem-target kept running with a 0644 secret file; log:\n%s", d.log())
	assert.NotZero(t, code, "exit code")
	log := d.log()
	assert.Contains(t, log, "chmod 600", "the error tells the fix")
	assert.Contains(t, log, loose, "the error names the file")
}
