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
	// markersOnly draws crosses and no line (targets).
	markersOnly bool
}

// panel is one chart: log-scaled axes (x as log10(1+x), so 0 has a place).
type panel struct {
	title, xLabel, yLabel string
	series                []series
	xTicks, yTicks        []float64
	logY                  bool
}

// plotFile draws docs/benchmarks.png from a results.json: flip latency against the
// number of releases updated at once, single-release flip latency against the number of
// releases present, and RSS against the number of releases.
func plotFile(from, to string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}

	var atOnceP50, atOnceP99, presentP50, presentP99 [][2]float64
	for _, g := range res.groups() {
		if g.Context != "" {
			continue
		}
		flip := g.pooled(func(s flipSample) float64 { return s.FlipMs })
		if g.Kind == "burst" {
			atOnceP50 = append(atOnceP50, [2]float64{float64(g.AtOnce), flip.P50})
			atOnceP99 = append(atOnceP99, [2]float64{float64(g.AtOnce), flip.P99})
		} else {
			presentP50 = append(presentP50, [2]float64{float64(g.Releases), flip.P50})
			presentP99 = append(presentP99, [2]float64{float64(g.Releases), flip.P99})
		}
	}
	// One at a time is "1 at once": the sequential run with the fewest releases present.
	if len(presentP50) > 0 {
		sort.Slice(presentP50, func(i, j int) bool { return presentP50[i][0] < presentP50[j][0] })
		sort.Slice(presentP99, func(i, j int) bool { return presentP99[i][0] < presentP99[j][0] })
		atOnceP50 = append([][2]float64{{1, presentP50[0][1]}}, atOnceP50...)
		atOnceP99 = append([][2]float64{{1, presentP99[0][1]}}, atOnceP99...)
	}
	// RSS: the highest reading at each release count among the runs without unrelated
	// objects, and the readings with them.
	rssBy := map[int]float64{}
	var withUnrelated [][2]float64
	for _, m := range res.Memory {
		if res.Unrelated != nil && m.OperatorStart >= 1 && containsUnrelated(m.Label) {
			withUnrelated = append(withUnrelated, [2]float64{float64(m.Releases), m.RSSMiB})
			continue
		}
		rssBy[m.Releases] = math.Max(rssBy[m.Releases], m.RSSMiB)
	}
	var rss [][2]float64
	for n, v := range rssBy {
		rss = append(rss, [2]float64{float64(n), v})
	}
	sort.Slice(rss, func(i, j int) bool { return rss[i][0] < rss[j][0] })

	latencyTicks := []float64{1, 10, 100, 1000, 10000}
	panels := []panel{
		{
			title: "Flip latency, releases updated at once", xLabel: "releases updated at once", yLabel: "ms (log)",
			xTicks: []float64{1, 10, 100, 1000}, yTicks: latencyTicks, logY: true,
			series: []series{
				{name: "p50", color: blue, points: atOnceP50},
				{name: "p99", color: orange, points: atOnceP99},
				{name: "target p50 5, p99 60", color: red, points: [][2]float64{{1, 5}, {100, 60}}, markersOnly: true},
			},
		},
		{
			title: "Flip latency, one at a time", xLabel: "releases in the cluster", yLabel: "ms (log)",
			xTicks: []float64{10, 100, 1000}, yTicks: latencyTicks, logY: true,
			series: []series{
				{name: "p50", color: blue, points: presentP50},
				{name: "p99", color: orange, points: presentP99},
				{name: "target p50 5", color: red, points: [][2]float64{{20, 5}}, markersOnly: true},
			},
		},
		{
			title: "Operator RSS", xLabel: "releases in the cluster", yLabel: "MiB",
			xTicks: []float64{0, 10, 100, 1000}, yTicks: []float64{0, 50, 100, 150, 200},
			series: []series{
				{name: "RSS", color: green, points: rss},
				{name: "with unrelated objects", color: blue, points: withUnrelated, markersOnly: true},
				{name: "target", color: red, points: [][2]float64{{100, 60}, {1000, 150}}, markersOnly: true},
			},
		},
	}
	const pw, ph = 520, 460
	img := image.NewRGBA(image.Rect(0, 0, pw*len(panels), ph+30))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	for i, p := range panels {
		p.draw(img, image.Rect(i*pw, 0, (i+1)*pw, ph))
	}
	drawText(img, 20, ph+8, fmt.Sprintf("%s profile, %s, %d cpus. docs/benchmarks.md has the method.", res.Profile, res.Started.UTC().Format("2006-01-02"), res.Machine.CPUs), 2, black)
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

func containsUnrelated(label string) bool {
	return len(label) >= 9 && (label[:9] == "unrelated" || label[:9] == "with unre")
}

func (p panel) draw(img *image.RGBA, r image.Rectangle) {
	plot := image.Rect(r.Min.X+70, r.Min.Y+50, r.Max.X-40, r.Max.Y-80)
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
			dot(img, x, y, s.color)
			if i > 0 {
				line(img, xpos(s.points[i-1][0]), ypos(s.points[i-1][1]), x, y, s.color, 3)
			}
		}
		if len(s.points) == 0 {
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
