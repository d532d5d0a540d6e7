//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
)

const rwVigil = `receivers:
  prometheusremotewrite:
    endpoint: %[1]s
processors:
  batch:
    timeout: 100ms
exporters:
  prometheusremotewrite/prom:
    endpoint: http://%[2]s/api/v1/write
    external_labels: {cluster: e2e}
    queue_config: {min_shards: 2, max_shards: 4}
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
  prometheusremotewrite/vm:
    endpoint: http://%[3]s/api/v1/write
    external_labels: {cluster: e2e}
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
service:
  pipelines:
    metrics:
      receivers: [prometheusremotewrite]
      processors: [batch]
      exporters: [prometheusremotewrite/prom, prometheusremotewrite/vm]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[4]s}
`

const emptyPromConfig = `global:
  scrape_interval: 1h
`

// rwSeries is what the test writes, in two requests (a series' samples in order across them).
type rwSeries struct {
	labels  map[string]string
	samples []prompb.Sample
}

var staleNaN = math.Float64frombits(0x7ff0000000000002)

func rwTestData(t0 int64) []rwSeries {
	s := func(ts int64, v float64) prompb.Sample { return prompb.Sample{Timestamp: t0 + ts, Value: v} }
	hist := func(le string, v float64) rwSeries {
		return rwSeries{map[string]string{"__name__": "e2e_latency_seconds_bucket", "job": "api", "le": le}, []prompb.Sample{s(0, v)}}
	}
	return []rwSeries{
		// A counter with a reset between its second and third samples.
		{map[string]string{"__name__": "e2e_requests_total", "job": "api", "instance": "h1:80", "code": "200"},
			[]prompb.Sample{s(0, 10), s(1000, 20), s(2000, 5), s(3000, 8)}},
		// A classic histogram.
		hist("0.1", 1), hist("1", 3), hist("+Inf", 6),
		{map[string]string{"__name__": "e2e_latency_seconds_sum", "job": "api"}, []prompb.Sample{s(0, 4.5)}},
		{map[string]string{"__name__": "e2e_latency_seconds_count", "job": "api"}, []prompb.Sample{s(0, 6)}},
		// A gauge that goes stale.
		{map[string]string{"__name__": "e2e_temperature_celsius", "room": "a"}, []prompb.Sample{s(0, 21.5), s(1000, staleNaN)}},
	}
}

// writeRW posts series as remote write 1.0, each series' samples from..to (exclusive).
func writeRW(t *testing.T, addr string, series []rwSeries, from, to int) {
	t.Helper()
	var req prompb.WriteRequest
	for _, s := range series {
		lo, hi := min(from, len(s.samples)), min(to, len(s.samples))
		if lo >= hi {
			continue
		}
		var ls []prompb.Label
		for _, k := range slices.Sorted(maps.Keys(s.labels)) {
			ls = append(ls, prompb.Label{Name: k, Value: s.labels[k]})
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: s.samples[lo:hi]})
	}
	req.Metadata = []prompb.MetricMetadata{{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "e2e_latency_seconds", Help: "Latency."}}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hreq, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, raw)))
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := httpClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote write to vigil: %s", resp.Status)
	}
}

// postRW sends one remote write 1.0 request as it is.
func postRW(t *testing.T, addr string, req *prompb.WriteRequest) {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post("http://"+addr+"/api/v1/write", "application/x-protobuf", bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote write to vigil: %s", resp.Status)
	}
}

// TestRemoteWrite relays remote write through vigil to a real Prometheus and a real
// VictoriaMetrics at once and reads every sample back: a counter with a reset, a classic
// histogram, a gauge that goes stale, the external label on all of them.
func TestRemoteWrite(t *testing.T) {
	rwAddr, telemetry := freeAddr(t), freeAddr(t)
	promAddr := startPrometheusRW(t, "--enable-feature=native-histograms")
	vmAddr := startVictoriaMetrics(t)

	v := startVigil(t, "vigil-rw", fmt.Sprintf(rwVigil, rwAddr, promAddr, vmAddr, telemetry), telemetry)

	t0 := time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()
	data := rwTestData(t0)
	writeRW(t, rwAddr, data, 0, 2)
	writeRW(t, rwAddr, data, 2, 4)
	// A native histogram, sent on as it came (Prometheus stores it with native histograms on).
	nh := &histogram.Histogram{
		Schema: 0, Count: 5, Sum: 12.5, ZeroThreshold: 0.001, ZeroCount: 1,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
		PositiveBuckets: []int64{1, 2}, // absolute counts 1, 3
	}
	postRW(t, rwAddr, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:     []prompb.Label{{Name: "__name__", Value: "e2e_native_seconds"}, {Name: "job", Value: "api"}},
		Histograms: []prompb.Histogram{prompb.FromIntHistogram(t0, nh)},
	}}})
	const total = 4 + 3 + 2 + 2 + 1 // samples and histogram samples written

	// Prometheus: the raw samples of each series, exactly.
	at := strconv.FormatFloat(float64(t0+10_000)/1000, 'f', 3, 64)
	for _, s := range data {
		want := maps.Clone(s.labels)
		want["cluster"] = "e2e"
		var wantVals []string
		for _, smp := range s.samples {
			if math.Float64bits(smp.Value) == math.Float64bits(staleNaN) {
				continue // a staleness marker is not a sample a query returns
			}
			wantVals = append(wantVals, fmt.Sprintf("%d:%g", smp.Timestamp, smp.Value))
		}
		sel := promSelector(s.labels)
		eventually(t, 30*time.Second, func() error {
			got, err := promRange(promAddr, sel+"[10m]", at)
			if err != nil {
				return err
			}
			if len(got) != 1 {
				return fmt.Errorf("%s: %d series, want 1", sel, len(got))
			}
			if !maps.Equal(got[0].labels, want) || !slices.Equal(got[0].values, wantVals) {
				return fmt.Errorf("%s = %v %v, want %v %v", sel, got[0].labels, got[0].values, want, wantVals)
			}
			return nil
		})
	}
	// The reset is seen as one, and the stale gauge is gone right after its marker.
	eventually(t, 10*time.Second, func() error {
		got, err := promQueryAt(promAddr, `resets(e2e_requests_total[10m])`, at)
		if err != nil || len(got) != 1 || got[0].value != 1 {
			return fmt.Errorf("resets = %+v (%v), want 1", got, err)
		}
		return nil
	})
	before := strconv.FormatFloat(float64(t0+500)/1000, 'f', 3, 64)
	after := strconv.FormatFloat(float64(t0+1500)/1000, 'f', 3, 64)
	if got, err := promQueryAt(promAddr, `e2e_temperature_celsius`, before); err != nil || len(got) != 1 || got[0].value != 21.5 {
		t.Errorf("gauge before its staleness marker = %+v (%v), want 21.5", got, err)
	}
	if got, err := promQueryAt(promAddr, `e2e_temperature_celsius`, after); err != nil || len(got) != 0 {
		t.Errorf("gauge after its staleness marker = %+v (%v), want no series", got, err)
	}

	eventually(t, 10*time.Second, func() error {
		for q, want := range map[string]float64{`histogram_count(e2e_native_seconds)`: 5, `histogram_sum(e2e_native_seconds)`: 12.5} {
			got, err := promQueryAt(promAddr, q, at)
			if err != nil || len(got) != 1 || got[0].value != want {
				return fmt.Errorf("%s = %+v (%v), want %g", q, got, err, want)
			}
		}
		return nil
	})

	// VictoriaMetrics: the same series and values through its export API.
	eventually(t, 30*time.Second, func() error {
		got, err := vmExport(vmAddr, `{cluster="e2e"}`)
		if err != nil {
			return err
		}
		for _, s := range data {
			want := maps.Clone(s.labels)
			want["cluster"] = "e2e"
			key := fmt.Sprint(want)
			vals, ok := got[key]
			if !ok {
				return fmt.Errorf("VictoriaMetrics has no series %s (has %d series)", key, len(got))
			}
			for _, smp := range s.samples {
				if math.IsNaN(smp.Value) {
					continue // VictoriaMetrics keeps staleness markers its own way
				}
				if !slices.Contains(vals, fmt.Sprintf("%d:%g", smp.Timestamp, smp.Value)) {
					return fmt.Errorf("VictoriaMetrics %s = %v, missing %d:%g", key, vals, smp.Timestamp, smp.Value)
				}
			}
		}
		return nil
	})

	// A sample older than what Prometheus already holds for its series: vigil takes it (it cannot
	// know), Prometheus answers 400 "out of order", and vigil drops and counts it rather than
	// retrying forever; VictoriaMetrics takes it.
	postRW(t, rwAddr, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_requests_total"}, {Name: "code", Value: "200"}, {Name: "instance", Value: "h1:80"}, {Name: "job", Value: "api"}},
		Samples: []prompb.Sample{{Timestamp: t0 + 500, Value: 15}},
	}}})
	eventually(t, 20*time.Second, func() error {
		samples := scrape(t, v.telemetry)
		m := map[string]string{"kind": "exporter", "component": "prometheusremotewrite/prom"}
		if d := sum(samples, "vigil_component_dropped_items_total", m); d != 1 {
			return fmt.Errorf("prom exporter dropped %g, want the 1 out-of-order sample", d)
		}
		return nil
	})

	// Vigil's own counters agree: everything received was sent to both, nothing else dropped.
	eventually(t, 10*time.Second, func() error {
		samples := scrape(t, v.telemetry)
		rcv := sum(samples, "vigil_component_received_items_total", map[string]string{"kind": "receiver", "component": "prometheusremotewrite"})
		if rcv != total+1 {
			return fmt.Errorf("received %g, want %d", rcv, total+1)
		}
		for exp, want := range map[string][2]float64{"prometheusremotewrite/prom": {total, 1}, "prometheusremotewrite/vm": {total + 1, 0}} {
			m := map[string]string{"kind": "exporter", "component": exp}
			if s := sum(samples, "vigil_component_sent_items_total", m); s != want[0] {
				return fmt.Errorf("%s sent %g, want %g", exp, s, want[0])
			}
			if d := sum(samples, "vigil_component_dropped_items_total", m); d != want[1] {
				return fmt.Errorf("%s dropped %g, want %g", exp, d, want[1])
			}
		}
		return nil
	})
	v.stopClean(t)
}

func promSelector(ls map[string]string) string {
	var b bytes.Buffer
	b.WriteString("{")
	for i, k := range slices.Sorted(maps.Keys(ls)) {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, ls[k])
	}
	b.WriteString("}")
	return b.String()
}

type rangeSeries struct {
	labels map[string]string
	values []string // "ts_ms:value"
}

// promRange evaluates a range-vector selector at time at and returns the raw samples.
func promRange(addr, query, at string) ([]rangeSeries, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON("http://"+addr+"/api/v1/query?query="+url.QueryEscape(query)+"&time="+at, &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, body.Error)
	}
	var out []rangeSeries
	for _, r := range body.Data.Result {
		s := rangeSeries{labels: r.Metric}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			val, _ := v[1].(string)
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return nil, err
			}
			s.values = append(s.values, fmt.Sprintf("%d:%g", int64(math.Round(ts*1000)), f))
		}
		out = append(out, s)
	}
	return out, nil
}

func getJSON(u string, v any) error {
	resp, err := httpClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %s: %w", u, resp.Status, err)
	}
	return nil
}

// vmExport reads series from VictoriaMetrics's export API (after a flush, so that fresh data is
// searchable), keyed by fmt.Sprint of the label map, values as "ts_ms:value".
func vmExport(addr, match string) (map[string][]string, error) {
	if resp, err := httpClient.Get("http://" + addr + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	resp, err := httpClient.Get("http://" + addr + "/api/v1/export?match[]=" + url.QueryEscape(match))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []*float64        `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		// A staleness marker is exported as a bare NaN, which JSON has no word for.
		if err := json.Unmarshal(bytes.ReplaceAll(sc.Bytes(), []byte("NaN"), []byte("null")), &line); err != nil {
			return nil, fmt.Errorf("export line %q: %w", sc.Text(), err)
		}
		key := fmt.Sprint(line.Metric)
		for i, v := range line.Values {
			if v != nil && i < len(line.Timestamps) {
				out[key] = append(out[key], fmt.Sprintf("%d:%g", line.Timestamps[i], *v))
			}
		}
	}
	return out, sc.Err()
}

const rwFromPromVigil = `receivers:
  prometheusremotewrite:
    endpoint: %[1]s
exporters:
  prometheusremotewrite:
    endpoint: http://%[2]s/api/v1/write
    retry_on_failure: {initial_interval: 100ms, max_interval: 1s}
service:
  pipelines:
    metrics:
      receivers: [prometheusremotewrite]
      exporters: [prometheusremotewrite]
  telemetry:
    logs: {level: info, encoding: json}
    metrics: {address: %[3]s}
`

const promSenderConfig = `global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ['%[1]s']
remote_write:
  - url: http://%[2]s/api/v1/write
    queue_config: {batch_send_deadline: 200ms}
    metadata_config: {send_interval: 1s}
`

// TestPrometheusRemoteWritesToVigil points a real Prometheus's remote_write at vigil, which
// forwards to VictoriaMetrics: Prometheus scrapes vigil's own /metrics, so vigil's counters
// travel Prometheus → vigil → VictoriaMetrics.
func TestPrometheusRemoteWritesToVigil(t *testing.T) {
	promBin := binary(t, "PROMETHEUS_BIN")
	vmBin := binary(t, "VICTORIAMETRICS_BIN")
	rwAddr, promAddr, vmAddr, telemetry := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	vm := startProcess(t, "victoria-metrics", vmBin, "-httpListenAddr="+vmAddr,
		"-storageDataPath="+filepath.Join(dir, "vm"), "-retentionPeriod=1d")
	waitHTTP(t, vm, "http://"+vmAddr+"/health", 60*time.Second)
	v := startVigil(t, "vigil-rw-in", fmt.Sprintf(rwFromPromVigil, rwAddr, vmAddr, telemetry), telemetry)

	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, promSenderConfig, telemetry, rwAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := startProcess(t, "prometheus", promBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "prom"), "--web.listen-address="+promAddr)
	waitHTTP(t, prom, "http://"+promAddr+"/-/ready", 60*time.Second)

	eventually(t, 60*time.Second, func() error {
		got, err := vmExport(vmAddr, `up{job="vigil"}`)
		if err != nil {
			return err
		}
		want := fmt.Sprint(map[string]string{"__name__": "up", "job": "vigil", "instance": telemetry})
		if vals := got[want]; len(vals) < 2 || !strings.HasSuffix(vals[len(vals)-1], ":1") {
			return fmt.Errorf("VictoriaMetrics up series: %v", got)
		}
		return nil
	})
	// Vigil's own counter of what its receiver took in came back through the loop.
	eventually(t, 30*time.Second, func() error {
		got, err := vmExport(vmAddr, `vigil_component_received_items_total{component="prometheusremotewrite"}`)
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return fmt.Errorf("no vigil_component_received_items_total series in VictoriaMetrics")
		}
		return nil
	})
	// Nothing Prometheus sent was refused.
	samples := scrape(t, v.telemetry)
	if n := sum(samples, "vigil_receiver_prometheusremotewrite_rejected_requests_total", nil); n != 0 {
		t.Errorf("vigil refused %g of Prometheus's requests", n)
	}
	prom.stop(10 * time.Second)
	v.stopClean(t)
}

// startPrometheusRW starts a Prometheus that scrapes nothing and takes remote write (with extra
// flags), and returns its address once it is ready; it is stopped when the test ends.
func startPrometheusRW(t *testing.T, extra ...string) string {
	t.Helper()
	addr, dir := freeAddr(t), t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(emptyPromConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--web.enable-remote-write-receiver"}, extra...)
	p := startProcess(t, "prometheus", binary(t, "PROMETHEUS_BIN"), args...)
	waitHTTP(t, p, "http://"+addr+"/-/ready", 60*time.Second)
	return addr
}

// startVictoriaMetrics starts a single-node VictoriaMetrics and returns its address once it is
// healthy; it is stopped when the test ends.
func startVictoriaMetrics(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	p := startProcess(t, "victoria-metrics", binary(t, "VICTORIAMETRICS_BIN"), "-httpListenAddr="+addr,
		"-storageDataPath="+filepath.Join(t.TempDir(), "vm"), "-retentionPeriod=1d")
	waitHTTP(t, p, "http://"+addr+"/health", 60*time.Second)
	return addr
}
