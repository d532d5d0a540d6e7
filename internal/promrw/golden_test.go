package promrw

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden keeps a few request bodies in testdata/ (for other packages' tests, fuzz seeds and
// tools like protoc --decode_raw) together with what the scanners read from them. A change to the
// encoders or the scanners shows up as a diff here.
func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		v2   bool
	}{
		{"v1_basic", reqV1(fixtureSeries()...), false},
		{"v2_basic", reqV2(fixtureSeries()...), true},
		{"v1_pods", reqV1(bigSeries(5, 2)...), false},
		{"v2_pods", reqV2(bigSeries(5, 2)...), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bin := filepath.Join("testdata", c.name+".bin")
			txt := filepath.Join("testdata", c.name+".txt")
			dump := dumpRequest(t, c.body, c.v2)
			if *update {
				if err := os.WriteFile(bin, c.body, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(txt, []byte(dump), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			body, err := os.ReadFile(bin)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(body, c.body) {
				t.Errorf("%s: the fixture encoders changed their output (run with -update if intended)", bin)
			}
			want, err := os.ReadFile(txt)
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpRequest(t, body, c.v2); got != string(want) {
				t.Errorf("%s:\n got:\n%s\nwant:\n%s", txt, got, want)
			}
		})
	}
}

func dumpRequest(t *testing.T, body []byte, v2 bool) string {
	t.Helper()
	var b strings.Builder
	line := func(it LabelIter, samples, hists, exemplars int, hash uint64) {
		ls, err := collect(it)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, l := range ls[1:] {
			parts = append(parts, fmt.Sprintf("%s=%q", l.name, l.value))
		}
		fmt.Fprintf(&b, "%s{%s} samples=%d histograms=%d exemplars=%d hash=%016x\n",
			ls[0].value, strings.Join(parts, ","), samples, hists, exemplars, hash)
	}
	var err error
	if v2 {
		err = ScanV2(body, func(s SeriesV2) error {
			line(s.Labels(), s.Samples, s.Histograms, s.Exemplars, s.Hash())
			return nil
		})
	} else {
		err = ScanV1(body, func(s SeriesV1) error {
			line(s.Labels(), s.Samples, s.Histograms, s.Exemplars, s.Hash())
			return nil
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
