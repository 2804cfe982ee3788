package loadtest

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// The chart: three panels stacked (throughput, p99 round trip on a log
// scale, proxy RSS) against seconds since the first dial, one line per
// proxy run, plain SVG with no scripts, fonts or other external assets.
const (
	chartWidth   = 960
	panelHeight  = 200
	marginLeft   = 80
	marginRight  = 150 // legend
	marginTop    = 72
	panelGap     = 60
	chartPlotW   = chartWidth - marginLeft - marginRight
	chartHeight  = marginTop + 3*panelHeight + 3*panelGap
	chartFont    = `font-family="sans-serif"`
	chartAxisCol = "#444"
	chartGridCol = "#ddd"
)

// kindColor gives each proxy kind the same colour in every chart.
var kindColor = map[string]string{
	KindWsgate: "#1f77b4", KindGoroutine: "#d62728", KindNginx: "#2ca02c", KindDirect: "#7f7f7f", KindURL: "#9467bd",
}

type panel struct {
	title string
	log   bool                          // log10 y axis
	value func(p Point) (float64, bool) // y of a point; false = no value
}

// WriteChart writes the SVG chart of results to path.
func WriteChart(path string, results []*Result) error {
	var b strings.Builder
	renderChart(&b, results)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func renderChart(w io.Writer, results []*Result) {
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title, detail := "loadtest", ""
	if len(results) > 0 {
		title, detail, _ = strings.Cut(describeResults(results), ": ")
	}
	fmt.Fprintf(w, `<text x="%d" y="18" font-size="14" font-weight="bold" %s>%s</text>`+"\n", marginLeft, chartFont, html.EscapeString(title))
	fmt.Fprintf(w, `<text x="%d" y="34" font-size="11" %s>%s</text>`+"\n", marginLeft, chartFont, html.EscapeString(detail))

	panels := []panel{
		{title: "throughput, echoes/s", value: func(p Point) (float64, bool) { return p.MsgPerSec, true }},
		{title: "p99 round trip, ms (log scale)", log: true, value: func(p Point) (float64, bool) {
			return float64(p.P99) / 1000, p.P99 > 0
		}},
		{title: "proxy RSS, MB", value: func(p Point) (float64, bool) { return float64(p.ProxyRSS) / 1e6, p.ProxyRSS > 0 }},
	}
	tMax := 1.0
	for _, r := range results {
		for _, p := range r.Series {
			tMax = math.Max(tMax, p.T)
		}
	}
	for i, pn := range panels {
		top := marginTop + i*(panelHeight+panelGap)
		renderPanel(w, pn, results, top, tMax)
	}
	// Legend.
	for i, r := range results {
		y := marginTop + 10 + i*22
		x := chartWidth - marginRight + 20
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", x, y, x+24, y, colorOf(r.Name))
		label := r.Name
		if r.Failed != "" {
			label += " (failed)"
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="12" %s>%s</text>`+"\n", x+30, y+4, chartFont, html.EscapeString(label))
	}
	fmt.Fprintln(w, `</svg>`)
}

func colorOf(kind string) string {
	if c, ok := kindColor[kind]; ok {
		return c
	}
	return "#000"
}

func renderPanel(w io.Writer, pn panel, results []*Result, top int, tMax float64) {
	lo, hi := math.Inf(1), 0.0
	for _, r := range results {
		for _, p := range r.Series {
			if v, ok := pn.value(p); ok {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	var yTicks []float64
	var yOf func(v float64) float64
	bottom := float64(top + panelHeight)
	if pn.log {
		if math.IsInf(lo, 1) {
			lo, hi = 0.1, 1
		}
		d0 := math.Floor(math.Log10(math.Max(lo, 0.001)))
		d1 := math.Ceil(math.Log10(math.Max(hi, 0.001)))
		if d1 <= d0 {
			d1 = d0 + 1
		}
		for d := d0; d <= d1; d++ {
			yTicks = append(yTicks, math.Pow(10, d))
		}
		yOf = func(v float64) float64 {
			return bottom - (math.Log10(v)-d0)/(d1-d0)*panelHeight
		}
	} else {
		step := niceStep(math.Max(hi, 1) / 4)
		yMax := step * math.Ceil(math.Max(hi, 1)/step)
		for v := 0.0; v <= yMax+step/2; v += step {
			yTicks = append(yTicks, v)
		}
		yOf = func(v float64) float64 { return bottom - v/yMax*panelHeight }
	}
	xOf := func(t float64) float64 { return marginLeft + t/tMax*chartPlotW }

	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="12" font-weight="bold" %s>%s</text>`+"\n",
		marginLeft, top-8, chartFont, html.EscapeString(pn.title))
	for _, v := range yTicks {
		y := yOf(v)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", marginLeft, y, marginLeft+chartPlotW, y, chartGridCol)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="%s" %s>%s</text>`+"\n",
			marginLeft-6, y+3, chartAxisCol, chartFont, tickLabel(v))
	}
	xStep := niceStep(tMax / 8)
	for t := 0.0; t <= tMax+xStep/100; t += xStep {
		x := xOf(t)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, top, x, bottom, chartGridCol)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="%s" %s>%ss</text>`+"\n",
			x, bottom+14, chartAxisCol, chartFont, tickLabel(t))
	}
	// Where the first run's measured window starts.
	if len(results) > 0 {
		for _, p := range results[0].Series {
			if p.Phase == "measure" {
				x := xOf(p.T - 1)
				fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`+"\n",
					x, top, x, bottom, chartAxisCol)
				fmt.Fprintf(w, `<text x="%.1f" y="%d" font-size="10" fill="%s" %s>measured →</text>`+"\n",
					x+4, top+12, chartAxisCol, chartFont)
				break
			}
		}
	}
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n",
		marginLeft, top, chartPlotW, panelHeight, chartAxisCol)
	for _, r := range results {
		var pts []string
		flush := func() {
			switch {
			case len(pts) == 1: // a lone second between gaps: a dot, or it would not show
				x, y, _ := strings.Cut(pts[0], ",")
				fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", x, y, colorOf(r.Name))
			case len(pts) > 1:
				fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colorOf(r.Name), strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for _, p := range r.Series {
			v, ok := pn.value(p)
			if !ok {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(p.T), yOf(v)))
		}
		flush()
	}
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%gk", v/1e3)
	default:
		return fmt.Sprintf("%g", math.Round(v*1000)/1000)
	}
}
