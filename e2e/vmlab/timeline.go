package vmlab

import (
	"bytes"
	"fmt"
	"image/color"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/tandem-ha/tandem/e2e/labcheck"
)

// Mark kinds of the timeline, in the legend's order.
const (
	MarkHeartbeat = "heartbeat"
	MarkFence     = "fence"
	MarkLogin     = "iscsi"
	MarkMount     = "fsck+mount"
	MarkMQ        = "mq"
	MarkVIP       = "vip"
	MarkLab       = "lab step"
	MarkPutOK     = "put ok"
	MarkPutFailed = "put failed"
)

// marks maps the agents' log messages to a mark kind.
var marks = map[string]string{
	"peer dead": MarkHeartbeat, "peer alive": MarkHeartbeat, "link down": MarkHeartbeat, "link up": MarkHeartbeat,
	"preempted the other node's key":                            MarkFence,
	"storage taken: our key holds the reservation on every LUN": MarkFence,
	"iscsi device attached":                                     MarkLogin, "session already logged in": MarkLogin, "iscsi session logged out": MarkLogin,
	"filesystem mounted": MarkMount, "filesystem unmounted": MarkMount,
	"running": MarkMQ, "stopped": MarkMQ, "strmqm": MarkMQ, "endmqm": MarkMQ,
	"vip added": MarkVIP, "vip removed": MarkVIP,
}

// MarkOf is ev's mark kind; false for a line the timeline leaves out.
func MarkOf(ev Event) (string, bool) {
	if ev.Node == "lab" {
		return MarkLab, true
	}
	k, ok := marks[ev.Msg]
	return k, ok
}

// lanes, bottom to top.
var lanes = []string{"lab", NodeNames[Slave], NodeNames[Master], "client"}

var markStyle = map[string]struct {
	c     color.RGBA
	shape draw.GlyphDrawer
	dy    float64 // offset inside the lane, so kinds do not hide each other
}{
	MarkHeartbeat: {color.RGBA{R: 120, G: 120, B: 120, A: 255}, draw.CircleGlyph{}, 0.3},
	MarkFence:     {color.RGBA{R: 200, A: 255}, draw.PyramidGlyph{}, 0.2},
	MarkLogin:     {color.RGBA{B: 200, A: 255}, draw.BoxGlyph{}, 0.1},
	MarkMount:     {color.RGBA{R: 150, B: 150, A: 255}, draw.SquareGlyph{}, 0},
	MarkMQ:        {color.RGBA{R: 220, G: 140, A: 255}, draw.RingGlyph{}, -0.1},
	MarkVIP:       {color.RGBA{G: 150, B: 150, A: 255}, draw.CrossGlyph{}, -0.2},
	MarkLab:       {color.RGBA{A: 255}, draw.PlusGlyph{}, 0},
	MarkPutOK:     {color.RGBA{G: 160, A: 255}, draw.CircleGlyph{}, 0.1},
	MarkPutFailed: {color.RGBA{R: 220, A: 255}, draw.CrossGlyph{}, -0.1},
}

// Timeline draws o as SVG: a lane per node with the agents' steps by kind
// (heartbeat, fence, iscsi, fsck+mount, mq, vip), the lab's own steps
// (the fault among them) and the client's puts as ok / failed points, on
// one axis of seconds from the fault (from the lab's start when there was
// none). Times are host times: guest lines are stamped on arrival.
func Timeline(o Outcome) ([]byte, error) { return TimelineAs(o, "svg") }

// TimelineAs draws the timeline in format: svg, png, pdf or eps.
func TimelineAs(o Outcome, format string) ([]byte, error) {
	// The picture starts shortly before the fault: the boot and set-up
	// before it would squeeze the takeover into a sliver.
	t0, from := o.Fault, o.Fault.Add(-timelineLead)
	if t0.IsZero() {
		t0, from = o.Start, o.Start
	}
	pts := map[string]plotter.XYs{}
	lane := func(name string) float64 {
		for i, l := range lanes {
			if l == name {
				return float64(i)
			}
		}
		return -1
	}
	for _, ev := range o.Events {
		k, ok := MarkOf(ev)
		y := lane(ev.Node)
		if !ok || y < 0 || ev.At.Before(from) {
			continue
		}
		pts[k] = append(pts[k], plotter.XY{X: ev.At.Sub(t0).Seconds(), Y: y + markStyle[k].dy})
	}
	for _, p := range o.Puts {
		if p.End.Before(from) {
			continue
		}
		k := MarkPutOK
		if p.Outcome != labcheck.OK {
			k = MarkPutFailed
		}
		pts[k] = append(pts[k], plotter.XY{X: p.End.Sub(t0).Seconds(), Y: lane("client") + markStyle[k].dy})
	}
	p := plot.New()
	p.Title.Text = o.Scenario
	p.X.Label.Text = "seconds from the fault"
	if o.Fault.IsZero() {
		p.X.Label.Text = "seconds from the lab's start"
	}
	var ticks []plot.Tick
	for i, l := range lanes {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: l})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = -0.5, float64(len(lanes))-0.5
	p.X.Min = from.Sub(t0).Seconds()
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	for _, k := range []string{MarkHeartbeat, MarkFence, MarkLogin, MarkMount, MarkMQ, MarkVIP, MarkLab, MarkPutOK, MarkPutFailed} {
		if len(pts[k]) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts[k])
		if err != nil {
			return nil, fmt.Errorf("vmlab: timeline %s: %w", k, err)
		}
		st := markStyle[k]
		s.GlyphStyle.Color, s.GlyphStyle.Shape, s.GlyphStyle.Radius = st.c, st.shape, vg.Points(2.5)
		p.Add(s)
		p.Legend.Add(k, s)
	}
	wt, err := p.WriterTo(11*vg.Inch, 4*vg.Inch, format)
	if err != nil {
		return nil, fmt.Errorf("vmlab: timeline: %w", err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("vmlab: timeline: %w", err)
	}
	return b.Bytes(), nil
}

// timelineLead is how much of the run before the fault the timeline shows.
const timelineLead = 5 * time.Second

// timelineName is the report's file of scenario row i.
func timelineName(i int, scenario string) string {
	return fmt.Sprintf("%02d-%s.svg", i+1, strings.ReplaceAll(scenario, "/", "-"))
}
