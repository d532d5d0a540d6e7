package main

import (
	"fmt"
	"html"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vigilhq/vigil/bench/internal/benchutil"
)

// report turns the runs into the Markdown report, the SVG chart and the benchstat file.
type report struct {
	opts    options
	agents  []agent
	started time.Time
	results []result
}

func (rep *report) write() error {
	md := rep.markdown()
	fmt.Print(md)
	if rep.opts.out == "" || len(rep.results) == 0 {
		return nil
	}
	base := strings.TrimSuffix(rep.opts.out, filepath.Ext(rep.opts.out))
	if err := os.MkdirAll(filepath.Dir(rep.opts.out), 0o755); err != nil {
		return err
	}
	files := map[string]string{
		rep.opts.out:        md,
		base + ".svg":       rep.svg(),
		base + ".bench.txt": rep.benchstat(),
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", path)
	}
	return nil
}

// metric reads one figure of a run.
type metric func(result) float64

var (
	sinkRate metric = result.sinkRate
	perCPU   metric = result.perCPU
	cpuPerM  metric = result.cpuPerM
	rss      metric = func(r result) float64 { return r.rssMiB }
	p99      metric = func(r result) float64 { return r.load.P99 }
)

// runs returns the results of one agent in one case, in round order.
func (rep *report) runs(c testCase, agent string) []result {
	var out []result
	for _, r := range rep.results {
		if r.c == c && r.agent == agent {
			out = append(out, r)
		}
	}
	return out
}

// casesRun lists the cases that have results, in the order they ran.
func (rep *report) casesRun() []testCase {
	var cs []testCase
	for _, c := range rep.opts.cases() {
		for _, r := range rep.results {
			if r.c == c {
				cs = append(cs, c)
				break
			}
		}
	}
	return cs
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func values(rs []result, m metric) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = m(r)
	}
	return out
}

// ratios are vigil's figure over the peer's, one per round in which both ran the case: the two
// runs of a ratio were back to back on the same host.
func (rep *report) ratios(c testCase, m metric) []float64 {
	if len(rep.agents) < 2 {
		return nil
	}
	mine, theirs := rep.runs(c, rep.agents[0].name), rep.runs(c, rep.agents[1].name)
	var out []float64
	for _, a := range mine {
		for _, b := range theirs {
			if a.round == b.round && m(b) != 0 {
				out = append(out, m(a)/m(b))
			}
		}
	}
	return out
}

// ratioText is the median ratio and, over several rounds, its range.
func ratioText(rs []float64) string {
	if len(rs) == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.2f×", median(rs))
	if len(rs) > 1 {
		s += fmt.Sprintf(" (%.2f–%.2f)", slices.Min(rs), slices.Max(rs))
	}
	return s
}

func (rep *report) peer() string {
	if len(rep.agents) < 2 {
		return ""
	}
	return rep.agents[1].name
}

// pair formats one figure of every agent: "1.2 M · 600 k".
func (rep *report) pair(c testCase, m metric, format func(float64) string) string {
	var parts []string
	for _, a := range rep.agents {
		rs := rep.runs(c, a.name)
		if len(rs) == 0 {
			parts = append(parts, "–")
			continue
		}
		parts = append(parts, format(median(values(rs, m))))
	}
	return strings.Join(parts, " · ")
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func scenarioText(o options, scenario string) string {
	if scenario == "fixed" {
		return fmt.Sprintf("fixed %s/s", benchutil.Human(o.rate))
	}
	return "saturation"
}

func (rep *report) markdown() string {
	o := rep.opts
	var b strings.Builder
	names := make([]string, len(rep.agents))
	for i, a := range rep.agents {
		names[i] = a.name
	}
	fmt.Fprintf(&b, "# OTLP relay benchmark: %s\n\n", strings.Join(names, " vs "))
	fmt.Fprintf(&b, "%s · %s · %d CPUs · harness %s · %s/%s\n\n", rep.started.UTC().Format(time.RFC3339), benchutil.CPUModel(),
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, a := range rep.agents {
		fmt.Fprintf(&b, "- %s: `%s`\n", a.name, strings.ReplaceAll(a.version(), "\n", " "))
	}
	fmt.Fprintf(&b, "\nloadgen → agent (otlp gRPC → batch %d / %s → otlp gRPC, the compression on both hops) → sink, all on this host. "+
		"%d items per request, %d streams over %d connections; %s warm-up, %s measured per run; %d round(s), "+
		"agents back to back within a round, taking turns to go first. saturation: loadgen sends as fast as the agent acknowledges; "+
		"fixed: %s items/s for every agent.",
		o.batchSize, o.batchTimeout, o.items, o.concurrency, o.conns, o.warmup, o.duration, o.rounds, benchutil.Human(o.rate))
	if o.memLimitMiB > 0 {
		fmt.Fprintf(&b, " memory_limiter at %d MiB before the batch processor.", o.memLimitMiB)
	} else {
		b.WriteString(" No memory limiter.")
	}
	b.WriteString("\n\n")

	peer := rep.peer()
	if peer != "" {
		fmt.Fprintf(&b, "## Summary: %s / %s\n\n", names[0], peer)
		fmt.Fprintf(&b, "Figures are medians over the rounds, written `%s`. A ratio is vigil's figure over %s's "+
			"within one round (median, and range over rounds): above 1 is better for items per CPU-s and items/s, "+
			"below 1 is better for CPU-s per M items, RSS and p99.\n\n", strings.Join(names, " · "), peer)
		b.WriteString("| scenario | signal | compr. | sink items/s | items/s ratio | CPU-s per M items | items per CPU-s | **per-CPU ratio** | peak RSS MiB | RSS ratio | p99 ms | p99 ratio | loss |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range rep.casesRun() {
			if len(rep.ratios(c, perCPU)) == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n",
				scenarioText(o, c.scenario), c.signal, c.compression,
				rep.pair(c, sinkRate, benchutil.Human), ratioText(rep.ratios(c, sinkRate)),
				rep.pair(c, cpuPerM, f2), rep.pair(c, perCPU, benchutil.Human), ratioText(rep.ratios(c, perCPU)),
				rep.pair(c, rss, f0), ratioText(rep.ratios(c, rss)),
				rep.pair(c, p99, f1), ratioText(rep.ratios(c, p99)), rep.lossText(c))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Every run\n\n")
	b.WriteString("| round | scenario | signal | compr. | agent | sink items/s | acked items/s | p50 / p99 ms | CPU-s per M items | items per CPU-s | peak RSS MiB | loss (acked − received) | loadgen errors | exit / error logs |\n")
	b.WriteString("|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.results {
		sc := scenarioText(o, r.c.scenario)
		if r.c.queue != "memory" {
			sc += ", " + r.c.queue
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %.1f / %.1f | %.2f | %s | %.0f | %d of %s (%.4f%%) | %d | %d / %d |\n",
			r.round, sc, r.c.signal, r.c.compression, r.agent, benchutil.Human(r.sinkRate()), benchutil.Human(r.load.ItemsPerS),
			r.load.P50, r.load.P99, r.cpuPerM(), benchutil.Human(r.perCPU()), r.rssMiB,
			r.loss(), benchutil.Human(float64(r.ackedTotal)), benchutil.Pct(r.loss(), r.ackedTotal), r.load.Errors, r.exit, r.errLogs)
	}
	b.WriteString("\nsink items/s: items (spans, log records, data points) that reached the sink during the measured run " +
		"divided by the time from its start until the sink caught up. acked items/s: what loadgen had acknowledged. " +
		"CPU: the agent's utime+stime (/proc/PID/stat) over that window; loadgen and the sink share the host and are not counted. " +
		"Peak RSS: VmHWM, warm-up included. p50 / p99: loadgen's request latency (send to acknowledgement). " +
		"Loss: items acknowledged to loadgen (warm-up and measured) minus items the sink received by the time the agent " +
		"exited; negative would mean duplicates. Error logs: the agent's log lines at level error.\n")

	if o.rate > 0 && contains(o.scenarios, "fixed") {
		for _, r := range rep.results {
			if r.c.scenario == "fixed" && r.load.ItemsPerS < 0.95*o.rate {
				fmt.Fprintf(&b, "\nround %d %s %s: fell short of the fixed rate (%s of %s items/s acknowledged).\n",
					r.round, r.c, r.agent, benchutil.Human(r.load.ItemsPerS), benchutil.Human(o.rate))
			}
		}
	}
	for _, r := range rep.results {
		if r.load.FirstError != "" {
			fmt.Fprintf(&b, "\nround %d %s %s: loadgen errors %v, first: %s\n", r.round, r.c, r.agent, r.load.ErrorCodes, r.load.FirstError)
		}
		if r.firstErr != "" {
			fmt.Fprintf(&b, "\nround %d %s %s: %d error log lines, first: `%s`\n", r.round, r.c, r.agent, r.errLogs, r.firstErr)
		}
	}

	if peer != "" && o.rounds > 1 {
		fmt.Fprintf(&b, "\n## Ratios per round (%s / %s)\n\n", names[0], peer)
		b.WriteString("| round | scenario | signal | compr. | sink items/s | items per CPU-s | peak RSS | p99 |\n")
		b.WriteString("|---:|---|---|---|---:|---:|---:|---:|\n")
		for round := 1; round <= o.rounds; round++ {
			for _, c := range rep.casesRun() {
				one := func(m metric) string {
					a, bb := rep.runs(c, names[0]), rep.runs(c, peer)
					for _, x := range a {
						for _, y := range bb {
							if x.round == round && y.round == round && m(y) != 0 {
								return fmt.Sprintf("%.2f", m(x)/m(y))
							}
						}
					}
					return ""
				}
				if one(perCPU) == "" {
					continue
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", round, scenarioText(o, c.scenario), c.signal,
					c.compression, one(sinkRate), one(perCPU), one(rss), one(p99))
			}
		}
	}

	b.WriteString("\n## Configs\n\nAs generated for traces with zstd (other cases differ only in the pipeline's signal and the compression).\n")
	c := testCase{scenario: "saturation", signal: "traces", compression: "zstd", queue: "memory"}
	p := ports{listen: "127.0.0.1:AGENT", sink: "127.0.0.1:SINK", telemetry: "127.0.0.1:9999"}
	for _, a := range rep.agents {
		cfg, err := a.config(o, c, p, "DIR")
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n\n```yaml\n%s```\n", a.name, cfg)
	}
	return b.String()
}

func (rep *report) lossText(c testCase) string {
	var parts []string
	for _, a := range rep.agents {
		var loss, of int64
		for _, r := range rep.runs(c, a.name) {
			loss += r.loss()
			of += r.ackedTotal
		}
		if loss == 0 {
			parts = append(parts, "0")
		} else {
			parts = append(parts, fmt.Sprintf("%d (%.3f%%)", loss, benchutil.Pct(loss, of)))
		}
	}
	return strings.Join(parts, " · ")
}

// benchstat writes one line per run in the format of `go test -bench`, so that
// `benchstat -col /agent FILE` puts the agents side by side with confidence intervals over the
// rounds. The iteration count is the items measured.
func (rep *report) benchstat() string {
	var b strings.Builder
	fmt.Fprintf(&b, "goos: %s\ngoarch: %s\npkg: github.com/vigilhq/vigil/bench\ncpu: %s\n", runtime.GOOS, runtime.GOARCH, benchutil.CPUModel())
	for _, r := range rep.results {
		b.WriteString(benchLine(r))
	}
	return b.String()
}

func benchLine(r result) string {
	name := fmt.Sprintf("BenchmarkRelay/scenario=%s/signal=%s/compression=%s", r.c.scenario, r.c.signal, r.c.compression)
	if r.c.queue != "memory" {
		name += "/queue=" + r.c.queue
	}
	name += "/agent=" + r.agent
	return fmt.Sprintf("%s %d %.1f cpu-ns/item %.0f items/cpu-s %.0f items/s %.1f peak-RSS-MiB %.2f p99-ms %d lost-items\n",
		name, max(r.sinkItems, 1), r.cpuPerM()*1000, r.perCPU(), r.sinkRate(), r.rssMiB, r.load.P99, r.loss())
}

// svg draws items per CPU-second (median over rounds) per agent, one group of bars per signal and
// compression, one panel per scenario, with the ratio over each group.
func (rep *report) svg() string {
	colors := []string{"#2563eb", "#ea580c", "#16a34a", "#9333ea"}
	o := rep.opts
	type group struct {
		label string
		vals  []float64 // per agent; NaN: not run
		ratio string
	}
	type panel struct {
		title  string
		groups []group
	}
	var panels []panel
	top := 0.0
	for _, sc := range o.scenarios {
		pn := panel{title: scenarioText(o, sc)}
		for _, q := range o.queues {
			for _, sig := range o.signals {
				for _, comp := range o.compressions {
					c := testCase{sc, sig, comp, q}
					g := group{label: sig + " " + comp}
					if q != "memory" {
						g.label += " " + q
					}
					ran := false
					for _, a := range rep.agents {
						v := median(values(rep.runs(c, a.name), perCPU))
						g.vals = append(g.vals, v)
						if !math.IsNaN(v) {
							ran = true
							top = max(top, v)
						}
					}
					if rs := rep.ratios(c, perCPU); len(rs) > 0 {
						g.ratio = fmt.Sprintf("%.2f×", median(rs))
					}
					if ran {
						pn.groups = append(pn.groups, g)
					}
				}
			}
		}
		if len(pn.groups) > 0 {
			panels = append(panels, pn)
		}
	}
	step := niceStep(top / 5)
	axisTop := math.Ceil(top/step) * step
	if axisTop <= 0 {
		axisTop, step = 1, 1
	}

	const (
		left, right, panelH, plotH, topPad = 80.0, 20.0, 300.0, 220.0, 70.0
		barW, barGap, groupGap             = 26.0, 4.0, 30.0
	)
	maxGroups := 0
	for _, p := range panels {
		maxGroups = max(maxGroups, len(p.groups))
	}
	groupW := float64(len(rep.agents))*(barW+barGap) - barGap
	width := left + right + float64(maxGroups)*(groupW+groupGap) + groupGap
	width = max(width, 760)
	// Groups spread over the width a narrow matrix leaves.
	groupGapN := (width - left - right - float64(maxGroups)*groupW) / float64(maxGroups+1)
	height := topPad + float64(len(panels))*panelH + 10

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="16" font-weight="bold">OTLP relay: items per CPU-second (median of %d round(s); higher is better)</text>`+"\n", left-60, o.rounds)
	fmt.Fprintf(&b, `<text x="%.0f" y="40" fill="#555">%s · %d CPUs · %d items/request · batch %d · %s</text>`+"\n",
		left-60, html.EscapeString(benchutil.CPUModel()), runtime.NumCPU(), o.items, o.batchSize, rep.started.UTC().Format("2006-01-02"))
	lx := left - 60
	for i, a := range rep.agents {
		fmt.Fprintf(&b, `<rect x="%.0f" y="50" width="12" height="12" fill="%s"/><text x="%.0f" y="60">%s</text>`+"\n",
			lx, colors[i%len(colors)], lx+16, html.EscapeString(a.name))
		lx += 30 + 8*float64(len(a.name))
	}
	if rep.peer() != "" {
		fmt.Fprintf(&b, `<text x="%.0f" y="60" fill="#555">× = %s / %s</text>`+"\n", lx+10, rep.agents[0].name, rep.peer())
	}
	for pi, p := range panels {
		y0 := topPad + float64(pi)*panelH + 30 // top of the plot area
		base := y0 + plotH
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-12, html.EscapeString(p.title))
		for v := 0.0; v <= axisTop+step/2; v += step {
			y := base - v/axisTop*plotH
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y+4, benchutil.Human(v))
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#333"/>`+"\n", left, base, width-right, base)
		for gi, g := range p.groups {
			gx := left + groupGapN + float64(gi)*(groupW+groupGapN)
			for ai, v := range g.vals {
				if math.IsNaN(v) {
					continue
				}
				h := v / axisTop * plotH
				x := gx + float64(ai)*(barW+barGap)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.0f" height="%.1f" fill="%s"><title>%s %s: %s items per CPU-s</title></rect>`+"\n",
					x, base-h, barW, h, colors[ai%len(colors)], html.EscapeString(rep.agents[ai].name), html.EscapeString(g.label), benchutil.Human(v))
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9" fill="#333">%s</text>`+"\n",
					x+barW/2, base-h-3, strings.ReplaceAll(benchutil.Human(v), " ", ""))
			}
			if g.ratio != "" {
				hmax := 0.0
				for _, v := range g.vals {
					if !math.IsNaN(v) {
						hmax = max(hmax, v/axisTop*plotH)
					}
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", gx+groupW/2, base-hmax-16, g.ratio)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", gx+groupW/2, base+16, html.EscapeString(g.label))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
