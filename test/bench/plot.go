//go:build bench

package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{230, 120, 20, 255}
	green  = color.RGBA{44, 160, 44, 255}
	red    = color.RGBA{214, 39, 40, 255}
)

// series is one line of a panel.
type series struct {
	name   string
	color  color.RGBA
	points [][2]float64
	// markersOnly draws crosses and no line (targets); dashed draws a dashed line with
	// rings and no legend entry (the comparison run).
	markersOnly, dashed bool
}

// panel is one chart, its x axis scaled as log10(1+x) so that 0 has a place.
type panel struct {
	title, xLabel, yLabel string
	series                []series
	xTicks, yTicks        []float64
	logY                  bool
}

// plotData is what the panels show of one run.
type plotData struct {
	atOnceP50, atOnceP99, presentP50, presentP99, rss, withUnrelated [][2]float64
}

func dataOf(res *results) plotData {
	var d plotData
	for _, g := range res.groups() {
		if g.Context != "" {
			continue
		}
		flip := g.pooled(flipLatency)
		if g.Kind == "burst" {
			d.atOnceP50 = append(d.atOnceP50, [2]float64{float64(g.AtOnce), flip.P50})
			d.atOnceP99 = append(d.atOnceP99, [2]float64{float64(g.AtOnce), flip.P99})
		} else {
			d.presentP50 = append(d.presentP50, [2]float64{float64(g.Releases), flip.P50})
			d.presentP99 = append(d.presentP99, [2]float64{float64(g.Releases), flip.P99})
		}
	}
	// One at a time is "1 at once": the sequential run with the fewest releases present.
	if len(d.presentP50) > 0 {
		sort.Slice(d.presentP50, func(i, j int) bool { return d.presentP50[i][0] < d.presentP50[j][0] })
		sort.Slice(d.presentP99, func(i, j int) bool { return d.presentP99[i][0] < d.presentP99[j][0] })
		d.atOnceP50 = append([][2]float64{{1, d.presentP50[0][1]}}, d.atOnceP50...)
		d.atOnceP99 = append([][2]float64{{1, d.presentP99[0][1]}}, d.atOnceP99...)
	}
	// RSS: the highest reading at each release count without unrelated objects, and the
	// readings with them.
	rssBy := map[int]float64{}
	for _, m := range res.Memory {
		if containsUnrelated(m.Label) {
			d.withUnrelated = append(d.withUnrelated, [2]float64{float64(m.Releases), m.RSSMiB})
			continue
		}
		rssBy[m.Releases] = math.Max(rssBy[m.Releases], m.RSSMiB)
	}
	for n, v := range rssBy {
		d.rss = append(d.rss, [2]float64{float64(n), v})
	}
	sort.Slice(d.rss, func(i, j int) bool { return d.rss[i][0] < d.rss[j][0] })
	return d
}

// plotFile draws the benchmark's plot from a results.json: flip latency against the
// number of releases updated at once, single-release flip latency against the number of
// releases present, and RSS against the number of releases. A second results.json
// (compare), if given, is drawn dashed beside it, named compareLabel.
func plotFile(from, compare, compareLabel, to string) error {
	res, err := readResults(from)
	if err != nil {
		return err
	}
	d := dataOf(res)
	var c *plotData
	if compare != "" {
		cres, err := readResults(compare)
		if err != nil {
			return err
		}
		cd := dataOf(cres)
		c = &cd
	}
	latencyTicks := []float64{1, 10, 100, 1000, 10000, 100000}
	panels := []panel{
		{
			title: "Flip latency, releases updated at once", xLabel: "releases updated at once", yLabel: "ms (log)",
			xTicks: []float64{1, 10, 100, 1000}, yTicks: latencyTicks, logY: true,
			series: []series{
				{name: "p50", color: blue, points: d.atOnceP50},
				{name: "p99", color: orange, points: d.atOnceP99},
				{name: "target", color: red, points: [][2]float64{{1, 5}, {100, 60}}, markersOnly: true},
			},
		},
		{
			title: "Flip latency, one at a time", xLabel: "releases in the cluster", yLabel: "ms (log)",
			xTicks: []float64{10, 100, 1000}, yTicks: latencyTicks, logY: true,
			series: []series{
				{name: "p50", color: blue, points: d.presentP50},
				{name: "p99", color: orange, points: d.presentP99},
				{name: "target", color: red, points: [][2]float64{{20, 5}}, markersOnly: true},
			},
		},
		{
			title: "Operator RSS", xLabel: "releases in the cluster", yLabel: "MiB",
			xTicks: []float64{0, 10, 100, 1000}, yTicks: []float64{0, 50, 100, 150, 200, 250},
			series: []series{
				{name: "RSS", color: green, points: d.rss},
				{name: "+unrelated", color: blue, points: d.withUnrelated, markersOnly: true},
				{name: "target", color: red, points: [][2]float64{{100, 60}, {1000, 150}}, markersOnly: true},
			},
		},
	}
	if c != nil {
		panels[0].series = append(panels[0].series,
			series{name: "p50", color: blue, points: c.atOnceP50, dashed: true},
			series{name: "p99", color: orange, points: c.atOnceP99, dashed: true})
		panels[1].series = append(panels[1].series,
			series{name: "p50", color: blue, points: c.presentP50, dashed: true},
			series{name: "p99", color: orange, points: c.presentP99, dashed: true})
		panels[2].series = append(panels[2].series,
			series{name: "RSS", color: green, points: c.rss, dashed: true})
	}
	// Three panels side by side, 540×470 px each, over two lines of footer.
	const dpi, pw, ph, footer = 96, 540, 470, 56
	px := func(n float64) vg.Length { return vg.Length(n) * vg.Inch / dpi }
	img := vgimg.NewWith(vgimg.UseWH(px(pw*float64(len(panels))), px(ph+footer)), vgimg.UseDPI(dpi),
		vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	plots := make([]*plot.Plot, len(panels))
	for i, p := range panels {
		if plots[i], err = p.plot(); err != nil {
			return err
		}
	}
	area := dc
	area.Min.Y += px(footer)
	for i, c := range plot.Align([][]*plot.Plot{plots}, draw.Tiles{Rows: 1, Cols: len(plots), PadTop: px(10), PadLeft: px(8), PadRight: px(24), PadX: px(40)}, area)[0] {
		plots[i].Draw(c)
	}
	caption := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 11), Handler: plot.DefaultTextHandler}
	dc.FillText(caption, vg.Point{X: px(20), Y: px(34)},
		fmt.Sprintf("solid: %s, commit %s. %s profile, %s, %d cpus; docs/benchmarks.md has the method.",
			orDefault(res.Note, "the operator"), res.Commit, res.Profile, res.Started.UTC().Format("2006-01-02"), res.Machine.CPUs))
	if c != nil {
		dc.FillText(caption, vg.Point{X: px(20), Y: px(12)}, "dashed: "+compareLabel)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func containsUnrelated(label string) bool {
	return len(label) >= 9 && (label[:9] == "unrelated" || label[:9] == "with unre")
}

// plot is the panel as a gonum plot: fixed axes at the first and last tick, a grid at
// the ticks, solid lines with dots, dashed lines with rings, crosses for targets, and a
// legend of the solid series and targets.
func (p panel) plot() (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.title
	pl.X.Label.Text, pl.Y.Label.Text = p.xLabel, p.yLabel
	pl.X.Min, pl.X.Max = p.xTicks[0], p.xTicks[len(p.xTicks)-1]
	pl.Y.Min, pl.Y.Max = p.yTicks[0], p.yTicks[len(p.yTicks)-1]
	pl.X.Scale, pl.X.Tick.Marker = logOnePlusScale{}, ticksAt(p.xTicks)
	pl.Y.Tick.Marker = ticksAt(p.yTicks)
	if p.logY {
		pl.Y.Scale = plot.LogScale{}
	}
	pl.Add(plotter.NewGrid())
	pl.Legend.Top, pl.Legend.Left = true, true
	for _, s := range p.series {
		if len(s.points) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(s.points))
		for i, pt := range s.points {
			// A log axis has no place for what is below its first tick: draw it there.
			xys[i].X, xys[i].Y = pt[0], pt[1]
			if p.logY {
				xys[i].Y = math.Max(pt[1], pl.Y.Min)
			}
		}
		if s.markersOnly {
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: s.color, Radius: vg.Points(5), Shape: draw.CrossGlyph{}}
			pl.Add(sc)
			pl.Legend.Add(s.name, sc)
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = s.color, vg.Points(2)
		pts.GlyphStyle = draw.GlyphStyle{Color: s.color, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			pts.Shape = draw.RingGlyph{}
		}
		pl.Add(l, pts)
		if !s.dashed {
			pl.Legend.Add(s.name, l, pts)
		}
	}
	return pl, nil
}

// logOnePlusScale places x at log10(1+x), so that 0 has a place on a log axis.
type logOnePlusScale struct{}

func (logOnePlusScale) Normalize(min, max, x float64) float64 {
	return (math.Log10(1+x) - math.Log10(1+min)) / (math.Log10(1+max) - math.Log10(1+min))
}

// ticksAt labels exactly the given values.
func ticksAt(values []float64) plot.ConstantTicks {
	ticks := make(plot.ConstantTicks, len(values))
	for i, v := range values {
		ticks[i] = plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)}
	}
	return ticks
}

func readResults(path string) (*results, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res := &results{}
	return res, json.Unmarshal(raw, res)
}
