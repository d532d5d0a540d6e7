package pipeline

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/vigilhq/vigil/internal/selftelemetry"
)

func scrape(t *testing.T, tel *selftelemetry.Telemetry) string {
	t.Helper()
	mfs, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}
