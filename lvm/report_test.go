package lvm_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
)

// Reports as lvm2 2.03.16 prints them (captured on this host).
const (
	vgsOut = `  {
      "report": [
          {
              "vg": [
                  {"vg_name":"vgexp", "vg_size":"1069547520", "vg_free":"922746880", "vg_extent_size":"4194304", "pv_count":"1", "lv_count":"2", "vg_attr":"wz--n-"}
              ]
          }
      ]
  }
`
	lvsOut = `  {
      "report": [
          {
              "lv": [
                  {"lv_name":"lv2", "vg_name":"vgexp", "lv_size":"138412032", "pool_lv":"", "lv_path":"/dev/vgexp/lv2", "lv_attr":"-wi-XX----"},
                  {"lv_name":"pool0", "vg_name":"vgexp", "lv_size":"209715200", "pool_lv":"", "lv_path":"", "lv_attr":"twi-aotz--"},
                  {"lv_name":"thin1", "vg_name":"vgexp", "lv_size":"1073741824", "pool_lv":"pool0", "lv_path":"/dev/vgexp/thin1", "lv_attr":"Vwi-a-tz--"}
              ]
          }
      ]
  }
`
	pvsOut = `  {
      "report": [
          {
              "pv": [
                  {"pv_name":"/dev/loop0", "vg_name":"vgexp", "pv_size":"1069547520", "pv_free":"922746880", "pv_attr":"a--"}
              ]
          }
      ]
  }
`
)

func TestParseReports(t *testing.T) {
	vgs, err := lvm.ParseVGs([]byte(vgsOut))
	require.NoError(t, err)
	assert.Equal(t, []lvm.VG{{Name: "vgexp", Size: 1069547520, Free: 922746880, ExtentSize: 4 << 20, PVCount: 1, LVCount: 2, Attr: "wz--n-"}}, vgs)

	pvs, err := lvm.ParsePVs([]byte(pvsOut))
	require.NoError(t, err)
	assert.Equal(t, []lvm.PV{{Name: "/dev/loop0", VG: "vgexp", Size: 1069547520, Free: 922746880, Attr: "a--"}}, pvs)

	lvs, err := lvm.ParseLVs([]byte(lvsOut))
	require.NoError(t, err)
	require.Len(t, lvs, 3)
	assert.Equal(t, lvm.LV{Name: "lv2", VG: "vgexp", Size: 138412032, Path: "/dev/vgexp/lv2", Attr: lvm.Attr{
		Raw: "-wi-XX----", Type: '-', ActiveUnknown: true, OpenUnknown: true}}, lvs[0])
	assert.True(t, lvs[1].Attr.ThinPool())
	assert.True(t, lvs[1].Attr.Active)
	assert.True(t, lvs[1].Attr.Open)
	assert.False(t, lvs[1].Attr.Thin())
	assert.True(t, lvs[2].Attr.Thin())
	assert.False(t, lvs[2].Attr.Open)
	assert.Equal(t, "pool0", lvs[2].Pool)
}

func TestParseAttr(t *testing.T) {
	for _, tc := range []struct {
		desc, raw string
		want      lvm.Attr
	}{
		{"inactive linear", "-wi-------", lvm.Attr{Raw: "-wi-------", Type: '-'}},
		{"open linear", "-wi-ao----", lvm.Attr{Raw: "-wi-ao----", Type: '-', Active: true, Open: true}},
		{"partial", "-wi-a---p-", lvm.Attr{Raw: "-wi-a---p-", Type: '-', Active: true, Partial: true}},
		{"short (old lvm)", "-wi-a", lvm.Attr{Raw: "-wi-a", Type: '-', Active: true}},
		{"empty", "", lvm.Attr{Type: '-'}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			assert.Equal(t, tc.want, lvm.ParseAttr(tc.raw))
		})
	}
}

func TestParseGarbage(t *testing.T) {
	for _, tc := range []struct{ desc, out, says string }{
		{"not JSON", "  Volume group vg0 ok\n", "unreadable"},
		{"truncated", vgsOut[:60], "unreadable"},
		{"no report", `{"x": []}`, `no "report" array`},
		{"wrong section", `{"report":[{"lv":[]}]}`, `no "vg" section`},
		{"field missing", `{"report":[{"vg":[{"vg_name":"a"}]}]}`, "field vg_size missing"},
		{"size with suffix", `{"report":[{"vg":[{"vg_name":"a","vg_size":"1.00g","vg_free":"0","vg_extent_size":"4194304","pv_count":"1","lv_count":"0","vg_attr":""}]}]}`, "--units b --nosuffix"},
		{"negative", `{"report":[{"vg":[{"vg_name":"a","vg_size":"-1","vg_free":"0","vg_extent_size":"4194304","pv_count":"1","lv_count":"0","vg_attr":""}]}]}`, "not a byte count"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := lvm.ParseVGs([]byte(tc.out))
			assert.ErrorIs(t, err, lvm.ErrBadOutput)
			assert.ErrorContains(t, err, tc.says)
		})
	}
	empty, err := lvm.ParseLVs([]byte(`{"report":[{"lv":[]}]}`))
	assert.NoError(t, err, "no LVs is not garbage")
	assert.Empty(t, empty)
}

func FuzzParseLVs(f *testing.F) {
	f.Add([]byte(lvsOut))
	f.Add([]byte(`{"report":[{"lv":[{}]}]}`))
	f.Add([]byte(`{"report":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lvs, err := lvm.ParseLVs(b)
		if err != nil {
			assert.ErrorIs(t, err, lvm.ErrBadOutput)
			assert.Nil(t, lvs)
		}
	})
}
