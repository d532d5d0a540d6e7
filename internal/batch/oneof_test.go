package batch

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/testdata"
)

func TestScanMetricOneofLastWins(t *testing.T) {
	md := testdata.Metrics(1, 1, 0)
	m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	// Build a metric body: name + gauge(2 points) + sum(3 points), and gauge twice.
	pt := func(n int) []byte {
		var dps []byte
		for i := 0; i < n; i++ {
			dps = protowire.AppendTag(dps, 1, protowire.BytesType)
			dps = protowire.AppendBytes(dps, []byte{0x31, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}) // as_double=1
		}
		return dps
	}
	cases := map[string][]byte{}
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendBytes(body, []byte(m.Name()))
	gs := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), pt(2))
	sm := protowire.AppendBytes(protowire.AppendTag(nil, 7, protowire.BytesType), pt(3))
	cases["gauge then sum"] = append(append(append([]byte{}, body...), gs...), sm...)
	cases["sum then gauge"] = append(append(append([]byte{}, body...), sm...), gs...)
	cases["gauge twice"] = append(append(append([]byte{}, body...), gs...), gs...)
	for name, metric := range cases {
		scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), metric)
		res := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), scope)
		req := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), res)
		n, err := Scan(Metrics, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(req)
		if err != nil {
			t.Fatal(err)
		}
		if n != got.DataPointCount() {
			t.Errorf("%s: Scan counts %d, pdata decodes %d", name, n, got.DataPointCount())
		}
	}
}
