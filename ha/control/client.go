package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent at %s: %w (is tandem-agent running? pass --socket)", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("agent at %s: read reply: %w", c.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("agent refused: %s", e.Error)
		}
		return fmt.Errorf("agent at %s: %s", c.socket, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("agent at %s: decode reply: %w", c.socket, err)
		}
	}
	return nil
}
