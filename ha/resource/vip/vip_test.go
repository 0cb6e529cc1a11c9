package vip

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

func TestNewFromSpec(t *testing.T) {
	r, err := resource.Build(resource.Spec{Type: Type, Name: "v", Params: map[string]string{
		"address": "192.0.2.10/24", "interface": "eth0", "arp_count": "2", "arp_interval": "1s"}}, nil)
	require.NoError(t, err)
	v := r.(*VIP)
	assert.Equal(t, 2, v.cfg.ARPCount)
	assert.Equal(t, time.Second, v.cfg.ARPInterval)

	r, err = New(resource.Spec{Type: Type, Name: "v", Params: map[string]string{"address": "192.0.2.10/24", "interface": "eth0"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultARPCount, r.(*VIP).cfg.ARPCount)
	assert.Equal(t, DefaultARPInterval, r.(*VIP).cfg.ARPInterval)

	for _, tc := range []struct {
		desc   string
		params map[string]string
		want   string
	}{
		{"no address", map[string]string{"interface": "eth0"}, "params.address is missing"},
		{"no prefix", map[string]string{"address": "192.0.2.10", "interface": "eth0"}, "CIDR"},
		{"ipv6", map[string]string{"address": "2001:db8::1/64", "interface": "eth0"}, "not IPv4"},
		{"no interface", map[string]string{"address": "192.0.2.10/24"}, "params.interface is missing"},
		{"bad count", map[string]string{"address": "192.0.2.10/24", "interface": "eth0", "arp_count": "-1"}, "params.arp_count"},
		{"bad interval", map[string]string{"address": "192.0.2.10/24", "interface": "eth0", "arp_interval": "200"}, "params.arp_interval"},
		{"typo", map[string]string{"address": "192.0.2.10/24", "interface": "eth0", "arpcount": "1"}, "params.arpcount is not a vip parameter"},
	} {
		err := resource.Spec{Type: Type, Name: "v", Params: tc.params}.Validate()
		assert.ErrorContains(t, err, tc.want, tc.desc)
	}
}
