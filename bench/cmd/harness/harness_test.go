package main

import (
	"encoding/xml"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func testOptions() options {
	return options{
		signals: []string{"traces", "logs", "metrics"}, compressions: []string{"zstd", "gzip"},
		scenarios: []string{"saturation", "fixed"}, queues: []string{"memory"},
		batchSize: 8192, batchTimeout: 200 * time.Millisecond, rate: 100_000, items: 1000, rounds: 2,
	}
}

// TestConfigsEquivalent decodes both agents' configs for every case and checks that what the
// comparison depends on is the same: receiver endpoint, processors and their settings, the
// pipeline, the export endpoint and compression.
func TestConfigsEquivalent(t *testing.T) {
	type exporter struct {
		Endpoint    string         `yaml:"endpoint"`
		Compression string         `yaml:"compression"`
		TLS         map[string]any `yaml:"tls"`
	}
	type config struct {
		Receivers struct {
			OTLP struct {
				Protocols map[string]map[string]any `yaml:"protocols"`
			} `yaml:"otlp"`
		} `yaml:"receivers"`
		Processors map[string]map[string]any `yaml:"processors"`
		Exporters  map[string]exporter       `yaml:"exporters"`
		Service    struct {
			Pipelines map[string]struct {
				Receivers  []string `yaml:"receivers"`
				Processors []string `yaml:"processors"`
				Exporters  []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	p := ports{listen: "127.0.0.1:1", sink: "127.0.0.1:2", sinkHTTP: "127.0.0.1:3", telemetry: "127.0.0.1:4"}
	f := func(memLimit int) {
		t.Helper()
		o := testOptions()
		o.memLimitMiB = memLimit
		for _, c := range o.cases() {
			var cfgs [2]config
			for i, a := range []agent{vigilAgent("vigil"), otelcolAgent("otelcol")} {
				text, err := a.config(o, c, p, t.TempDir())
				if err != nil {
					t.Fatalf("%s %s: %v", a.name, c, err)
				}
				if err := yaml.Unmarshal([]byte(text), &cfgs[i]); err != nil {
					t.Fatalf("%s %s: %v\n%s", a.name, c, err, text)
				}
			}
			v, oc := cfgs[0], cfgs[1]
			if !reflect.DeepEqual(v.Receivers, oc.Receivers) {
				t.Errorf("%s: receivers differ: %v vs %v", c, v.Receivers, oc.Receivers)
			}
			if !reflect.DeepEqual(v.Processors, oc.Processors) {
				t.Errorf("%s: processors differ: %v vs %v", c, v.Processors, oc.Processors)
			}
			if (memLimit > 0) != (v.Processors["memory_limiter"] != nil) {
				t.Errorf("%s, memory limit %d: processors %v", c, memLimit, v.Processors)
			}
			vp, op := v.Service.Pipelines[c.signal], oc.Service.Pipelines[c.signal]
			if len(v.Service.Pipelines) != 1 || len(oc.Service.Pipelines) != 1 || !reflect.DeepEqual(vp.Processors, op.Processors) {
				t.Errorf("%s: pipelines differ: %+v vs %+v", c, v.Service.Pipelines, oc.Service.Pipelines)
			}
			ve, oe := v.Exporters[vp.Exporters[0]], oc.Exporters[op.Exporters[0]]
			if ve.Endpoint != p.sink || ve.Compression != c.compression || !reflect.DeepEqual(ve, oe) {
				t.Errorf("%s: exporters differ: %+v vs %+v", c, ve, oe)
			}
		}
	}
	f(0)
	f(512)
}

func TestRatiosPairRounds(t *testing.T) {
	c := testCase{"saturation", "traces", "zstd", "memory"}
	run := func(round int, agent string, items int64, cpu float64) result {
		return result{round: round, c: c, agent: agent, sinkItems: items, cpuSeconds: cpu, seconds: 1}
	}
	rep := &report{opts: testOptions(), agents: []agent{vigilAgent("v"), otelcolAgent("o")}, results: []result{
		run(1, "vigil", 3e6, 1), run(1, "otelcol", 1e6, 1), // 3×
		run(2, "otelcol", 1e6, 2), run(2, "vigil", 2e6, 1), // 4×
		run(3, "vigil", 9e6, 1), // no peer run in round 3: no ratio
	}}
	got := rep.ratios(c, perCPU)
	if want := []float64{3, 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ratios %v, want %v", got, want)
	}
	if got, want := ratioText(got), "3.50× (3.00–4.00)"; got != want {
		t.Errorf("ratioText %q, want %q", got, want)
	}
	if got := rep.pair(c, perCPU, f0); got != "3000000 · 750000" {
		t.Errorf("pair %q", got)
	}
	md := rep.markdown()
	if !strings.Contains(md, "**3.50× (3.00–4.00)**") {
		t.Errorf("summary lacks the per-CPU ratio:\n%s", md)
	}
}

func TestMedian(t *testing.T) {
	f := func(in []float64, want float64) {
		t.Helper()
		if got := median(in); got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("median(%v) = %v, want %v", in, got, want)
		}
	}
	f(nil, math.NaN())
	f([]float64{3}, 3)
	f([]float64{5, 1, 3}, 3)
	f([]float64{4, 1, 3, 2}, 2.5)
}

func TestBenchLine(t *testing.T) {
	r := result{round: 1, c: testCase{"fixed", "logs", "gzip", "memory"}, agent: "vigil",
		sinkItems: 2_000_000, cpuSeconds: 1, seconds: 4, rssMiB: 50.25, ackedTotal: 2_000_010, sinkTotal: 2_000_000}
	r.load.P99 = 3.5
	want := "BenchmarkRelay/scenario=fixed/signal=logs/compression=gzip/agent=vigil 2000000 500.0 cpu-ns/item " +
		"2000000 items/cpu-s 500000 items/s 50.2 peak-RSS-MiB 3.50 p99-ms 10 lost-items\n"
	if got := benchLine(r); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestSVGIsWellFormed(t *testing.T) {
	o := testOptions()
	rep := &report{opts: o, agents: []agent{vigilAgent("v"), otelcolAgent("o")}, started: time.Now()}
	for round := 1; round <= 2; round++ {
		for _, c := range o.cases() {
			for i, a := range []string{"vigil", "otelcol"} {
				rep.results = append(rep.results, result{round: round, c: c, agent: a,
					sinkItems: int64(1e6 * (2 - i)), cpuSeconds: 1, seconds: 1})
			}
		}
	}
	svg := rep.svg()
	dec := xml.NewDecoder(strings.NewReader(svg))
	rects := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// background + legend (2) + one bar per agent, case.
	if want := 1 + 2 + 2*len(o.cases()); rects != want {
		t.Errorf("%d rects, want %d", rects, want)
	}
	if n := strings.Count(svg, ">2.00×<"); n != len(o.cases()) {
		t.Errorf("%d ratio labels 2.00×, want %d", n, len(o.cases()))
	}
}

func TestErrorLines(t *testing.T) {
	logs := []byte(`{"level":"WARN","msg":"a"}
{"level":"ERROR","msg":"vigil"}
{"level":"error","msg":"collector"}
`)
	n, first := errorLines(logs)
	if n != 2 || first != `{"level":"ERROR","msg":"vigil"}` {
		t.Errorf("errorLines = %d, %q", n, first)
	}
}
