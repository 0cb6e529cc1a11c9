// Package adminclient is the Go client of tandem-target's admin API
// (package admin) over its unix socket; tandemctl uses it.
package adminclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tandem-ha/tandem/internal/unixsock"
	"github.com/tandem-ha/tandem/target/admin"
)

// DefaultSocket is the admin socket of a default tandem-target config.
const DefaultSocket = "/run/tandem/target.sock"

// Error is an answer other than 2xx: the status and the daemon's message,
// which names the field and the fix.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is lets callers test errors.Is(err, admin.ErrNotFound) and friends.
func (e *Error) Is(target error) bool {
	switch target {
	case admin.ErrNotFound:
		return e.Status == http.StatusNotFound
	case admin.ErrConflict:
		return e.Status == http.StatusConflict
	case admin.ErrInvalid:
		return e.Status == http.StatusBadRequest
	}
	return false
}

// Client talks to one daemon.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client of the admin socket at path.
func New(socket string) *Client {
	return &Client{socket: socket, hc: unixsock.HTTPClient(socket)}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	err := unixsock.Call(ctx, c.hc, method, "http://tandem-target"+path, body, out)
	var re *unixsock.ReplyError
	switch {
	case errors.As(err, &re):
		return &Error{Status: re.Status, Message: re.Message}
	case errors.Is(err, unixsock.ErrUnreachable):
		return fmt.Errorf("tandem-target admin socket %s: %w (is tandem-target running? see admin_socket in its config, or --target-socket)", c.socket, err)
	}
	return err
}

func tpath(name string, rest ...string) string {
	p := "/v1/targets/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func forceQ(force bool) string {
	if force {
		return "?force=1"
	}
	return ""
}

// Targets lists targets with their LUNs, ACL and sessions.
func (c *Client) Targets(ctx context.Context) ([]admin.Target, error) {
	var out []admin.Target
	return out, c.do(ctx, http.MethodGet, "/v1/targets", nil, &out)
}

// Target returns one target, or an error matching admin.ErrNotFound.
func (c *Client) Target(ctx context.Context, name string) (admin.Target, error) {
	ts, err := c.Targets(ctx)
	if err != nil {
		return admin.Target{}, err
	}
	for _, t := range ts {
		if equalFold(t.Name, name) {
			return t, nil
		}
	}
	return admin.Target{}, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("target %q not found", name)}
}

// Discovery returns the discovery CHAP users.
func (c *Client) Discovery(ctx context.Context) (admin.Discovery, error) {
	var out admin.Discovery
	return out, c.do(ctx, http.MethodGet, "/v1/discovery", nil, &out)
}

// CreateTarget creates a target.
func (c *Client) CreateTarget(ctx context.Context, spec admin.TargetSpec) error {
	return c.do(ctx, http.MethodPost, "/v1/targets", spec, nil)
}

// RemoveTarget removes a target; without force it is refused while
// sessions are logged in.
func (c *Client) RemoveTarget(ctx context.Context, name string, force bool) error {
	return c.do(ctx, http.MethodDelete, tpath(name)+forceQ(force), nil, nil)
}

// AddLUN adds a LUN.
func (c *Client) AddLUN(ctx context.Context, target string, l admin.LUN) error {
	return c.do(ctx, http.MethodPost, tpath(target, "luns", strconv.FormatUint(l.ID, 10)), l, nil)
}

// RemoveLUN removes a LUN; without force it is refused while sessions
// use its target.
func (c *Client) RemoveLUN(ctx context.Context, target string, id uint64, force bool) error {
	return c.do(ctx, http.MethodDelete, tpath(target, "luns", strconv.FormatUint(id, 10))+forceQ(force), nil, nil)
}

// ResizeLUN grows a file LUN to size, or with size 0 takes the backing's
// size now (after lvextend).
func (c *Client) ResizeLUN(ctx context.Context, target string, id uint64, size int64) error {
	return c.do(ctx, http.MethodPost, tpath(target, "luns", strconv.FormatUint(id, 10), "resize"), admin.Resize{Size: size}, nil)
}

// SetCHAP replaces a target's CHAP credentials.
func (c *Client) SetCHAP(ctx context.Context, target string, ch admin.CHAP) error {
	return c.do(ctx, http.MethodPut, tpath(target, "chap"), ch, nil)
}

// SetDiscoveryCHAP replaces the discovery CHAP credentials.
func (c *Client) SetDiscoveryCHAP(ctx context.Context, ch admin.CHAP) error {
	return c.do(ctx, http.MethodPut, "/v1/discovery/chap", ch, nil)
}

// AddInitiator allows an initiator name on a target.
func (c *Client) AddInitiator(ctx context.Context, target, initiator string) error {
	return c.do(ctx, http.MethodPut, tpath(target, "acl", url.PathEscape(initiator)), nil, nil)
}

// RemoveInitiator disallows an initiator name.
func (c *Client) RemoveInitiator(ctx context.Context, target, initiator string) error {
	return c.do(ctx, http.MethodDelete, tpath(target, "acl", url.PathEscape(initiator)), nil, nil)
}

// UsedBy says which LUN, if any, serves vg/lv: lvm.Options.InUse.
func (c *Client) UsedBy(ctx context.Context, vg, lv string) (string, bool, error) {
	ts, err := c.Targets(ctx)
	if err != nil {
		return "", false, err
	}
	for _, t := range ts {
		for _, l := range t.LUNs {
			if l.LV == vg+"/"+lv {
				return fmt.Sprintf("lun %d of %s", l.ID, t.Name), true, nil
			}
		}
	}
	return "", false, nil
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }
