//go:build bench

package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"sort"
)

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{30, 30, 30, 255}
	grey   = color.RGBA{215, 215, 215, 255}
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
	// markersOnly draws crosses and no line (targets); dashed draws a dashed line
	// without a legend entry (the comparison run).
	markersOnly, dashed bool
}

// panel is one chart: log-scaled axes (x as log10(1+x), so 0 has a place).
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
	const pw, ph = 540, 470
	img := image.NewRGBA(image.Rect(0, 0, pw*len(panels), ph+56))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	for i, p := range panels {
		p.draw(img, image.Rect(i*pw, 0, (i+1)*pw, ph))
	}
	footer := fmt.Sprintf("solid: %s, commit %s. %s profile, %s, %d cpus; docs/benchmarks.md has the method.",
		orDefault(res.Note, "the operator"), res.Commit, res.Profile, res.Started.UTC().Format("2006-01-02"), res.Machine.CPUs)
	drawText(img, 20, ph+6, footer, 2, black)
	if c != nil {
		drawText(img, 20, ph+30, "dashed: "+compareLabel, 2, black)
	}
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
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

func (p panel) draw(img *image.RGBA, r image.Rectangle) {
	plot := image.Rect(r.Min.X+105, r.Min.Y+50, r.Max.X-40, r.Max.Y-80)
	xmin, xmax := p.xTicks[0], p.xTicks[len(p.xTicks)-1]
	ymin, ymax := p.yTicks[0], p.yTicks[len(p.yTicks)-1]
	xpos := func(x float64) int {
		t := (math.Log10(1+x) - math.Log10(1+xmin)) / (math.Log10(1+xmax) - math.Log10(1+xmin))
		return plot.Min.X + int(t*float64(plot.Dx()))
	}
	ypos := func(y float64) int {
		var t float64
		if p.logY {
			y = math.Max(y, ymin)
			t = (math.Log10(y) - math.Log10(ymin)) / (math.Log10(ymax) - math.Log10(ymin))
		} else {
			t = (y - ymin) / (ymax - ymin)
		}
		t = math.Min(math.Max(t, 0), 1)
		return plot.Max.Y - int(t*float64(plot.Dy()))
	}
	drawText(img, r.Min.X+(r.Dx()-textWidth(p.title, 2))/2, r.Min.Y+14, p.title, 2, black)
	for _, y := range p.yTicks {
		yy := ypos(y)
		line(img, plot.Min.X, yy, plot.Max.X, yy, grey, 1)
		label := fmt.Sprintf("%g", y)
		drawText(img, plot.Min.X-8-textWidth(label, 2), yy-7, label, 2, black)
	}
	for _, x := range p.xTicks {
		xx := xpos(x)
		line(img, xx, plot.Min.Y, xx, plot.Max.Y, grey, 1)
		label := fmt.Sprintf("%g", x)
		drawText(img, xx-textWidth(label, 2)/2, plot.Max.Y+8, label, 2, black)
	}
	line(img, plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y, black, 2)
	line(img, plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, black, 2)
	drawText(img, plot.Min.X+(plot.Dx()-textWidth(p.xLabel, 2))/2, plot.Max.Y+30, p.xLabel, 2, black)
	drawTextUp(img, r.Min.X+6, plot.Min.Y+(plot.Dy()+textWidth(p.yLabel, 2))/2, p.yLabel, 2, black)

	legendY := plot.Max.Y + 52
	legendX := plot.Min.X
	for _, s := range p.series {
		for i, pt := range s.points {
			x, y := xpos(pt[0]), ypos(pt[1])
			if s.markersOnly {
				cross(img, x, y, s.color)
				continue
			}
			if s.dashed {
				ring(img, x, y, s.color)
			} else {
				dot(img, x, y, s.color)
			}
			if i > 0 {
				x0, y0 := xpos(s.points[i-1][0]), ypos(s.points[i-1][1])
				if s.dashed {
					dashedLine(img, x0, y0, x, y, s.color)
				} else {
					line(img, x0, y0, x, y, s.color, 3)
				}
			}
		}
		if len(s.points) == 0 || s.dashed {
			continue
		}
		if s.markersOnly {
			cross(img, legendX+6, legendY+6, s.color)
		} else {
			line(img, legendX, legendY+6, legendX+14, legendY+6, s.color, 3)
		}
		drawText(img, legendX+20, legendY, s.name, 2, black)
		legendX += 20 + textWidth(s.name, 2) + 16
	}
}

// line draws a straight line of the given thickness (Bresenham, with a square pen).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		for i := -width / 2; i <= (width-1)/2; i++ {
			for j := -width / 2; j <= (width-1)/2; j++ {
				img.Set(x0+i, y0+j, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func dot(img *image.RGBA, x, y int, c color.Color) {
	for i := -4; i <= 4; i++ {
		for j := -4; j <= 4; j++ {
			if i*i+j*j <= 16 {
				img.Set(x+i, y+j, c)
			}
		}
	}
}

func ring(img *image.RGBA, x, y int, c color.Color) {
	for i := -5; i <= 5; i++ {
		for j := -5; j <= 5; j++ {
			if d := i*i + j*j; d <= 25 && d >= 9 {
				img.Set(x+i, y+j, c)
			}
		}
	}
}

// dashedLine draws 8-pixel dashes with 6-pixel gaps.
func dashedLine(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	n := int(math.Hypot(float64(x1-x0), float64(y1-y0)))
	for t := 0; t < n; t += 14 {
		end := min(t+8, n)
		ax := x0 + (x1-x0)*t/max(n, 1)
		ay := y0 + (y1-y0)*t/max(n, 1)
		bx := x0 + (x1-x0)*end/max(n, 1)
		by := y0 + (y1-y0)*end/max(n, 1)
		line(img, ax, ay, bx, by, c, 3)
	}
}

func cross(img *image.RGBA, x, y int, c color.Color) {
	line(img, x-6, y-6, x+6, y+6, c, 3)
	line(img, x-6, y+6, x+6, y-6, c, 3)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func readResults(path string) (*results, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res := &results{}
	return res, json.Unmarshal(raw, res)
}
