package config

import (
	"fmt"
	"testing"
)

// FuzzParse: no YAML may panic the loader; whatever it accepts is resolved
// for this node (peer set, every link with a port).
func FuzzParse(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(good, "/nonexistent")))
	f.Add([]byte("nodes: [a, b]\nnode: a\nlinks: [{mode: unicast, addresses: {a: 1.2.3.4, b: 1.2.3.5}}]\n"))
	f.Add([]byte("links: [{mode: multicast, interface: x, group: 1.2.3.4}]"))
	f.Add([]byte("timing: {keepalive: -1s}"))
	f.Add([]byte(":\n\t-"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, Options{Node: "a"})
		if err != nil {
			return
		}
		if c.Peer == "" || c.Peer == c.Node {
			t.Fatalf("bad peer %q", c.Peer)
		}
		for _, l := range c.Links {
			if l.Port == 0 || !l.Peer.IsValid() {
				t.Fatalf("unresolved link %+v", l)
			}
		}
	})
}
