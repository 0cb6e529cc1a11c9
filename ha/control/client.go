package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tandem-ha/tandem/internal/unixsock"
)

// DefaultSocket is the agent's default control socket.
const DefaultSocket = "/run/tandem/agent.sock"

// Client talks to an agent's control socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{socket: path, hc: unixsock.HTTPClient(path)}
}

// Status fetches the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// Standby asks the agent to hand the group to its peer.
func (c *Client) Standby(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/standby", nil, nil)
}

// Takeover asks the agent to take the group.
func (c *Client) Takeover(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/takeover", nil, nil)
}

// Rejoin asks a fenced agent to rejoin the cluster (as Standby).
func (c *Client) Rejoin(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/rejoin", nil, nil)
}

// Maintenance turns maintenance mode on or off.
func (c *Client) Maintenance(ctx context.Context, on bool) error {
	return c.do(ctx, http.MethodPost, "/v1/maintenance", map[string]bool{"on": on}, nil)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	err := unixsock.Call(ctx, c.hc, method, "http://agent"+path, body, out)
	var re *unixsock.ReplyError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("agent refused: %s", re.Message)
	case errors.Is(err, unixsock.ErrUnreachable):
		return fmt.Errorf("agent at %s: %w (is tandem-agent running? pass --socket)", c.socket, err)
	case err != nil:
		return fmt.Errorf("agent at %s: %w", c.socket, err)
	}
	return nil
}
