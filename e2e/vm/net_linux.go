package vm

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// Bridge is a host bridge the lab owns, with the host's address on it.
// Guests' taps are attached to it; the host reaches guests (and they it)
// only through it.
type Bridge struct {
	Name string
	// Host is the host's address and the subnet, e.g. 10.213.7.1/24.
	Host netip.Prefix
}

// CreateBridge creates the bridge, gives it the host address and brings
// it up. A leftover bridge of the same name (from a killed run) is
// replaced.
func CreateBridge(ctx context.Context, name string, host netip.Prefix) (*Bridge, error) {
	if len(name) > 15 {
		return nil, fmt.Errorf("vm: bridge name %q is longer than 15 bytes", name)
	}
	if linkExists(name) {
		_, _ = run(ctx, "", "ip", "link", "del", name)
	}
	b := &Bridge{Name: name, Host: host}
	steps := [][]string{
		{"link", "add", name, "type", "bridge"},
		{"addr", "add", host.String(), "dev", name},
		{"link", "set", name, "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, "", "ip", s...); err != nil {
			_ = b.Delete(context.Background())
			return nil, fmt.Errorf("vm: create bridge %s (is the subnet %s already in use?): %w", name, host.Masked(), err)
		}
	}
	return b, nil
}

// Attach puts a tap (created by qemu) on the bridge and brings it up,
// waiting up to timeout for the tap to appear.
func (b *Bridge) Attach(ctx context.Context, tap string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !linkExists(tap) {
		if time.Now().After(deadline) {
			return fmt.Errorf("vm: tap %s did not appear within %s (did qemu start?)", tap, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := run(ctx, "", "ip", "link", "set", tap, "master", b.Name, "up"); err != nil {
		return fmt.Errorf("vm: attach tap %s to %s: %w", tap, b.Name, err)
	}
	return nil
}

// Delete removes the bridge; deleting one that is gone is not an error.
func (b *Bridge) Delete(ctx context.Context) error {
	if !linkExists(b.Name) {
		return nil
	}
	if _, err := run(ctx, "", "ip", "link", "del", b.Name); err != nil {
		return fmt.Errorf("vm: delete bridge %s: %w", b.Name, err)
	}
	return nil
}

// DeleteLink removes a network interface if it exists (a tap qemu left
// behind).
func DeleteLink(ctx context.Context, name string) error {
	if !linkExists(name) {
		return nil
	}
	_, err := run(ctx, "", "ip", "link", "del", name)
	return err
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
