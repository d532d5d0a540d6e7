package loki

import (
	"net/http"
	"testing"

	"github.com/klauspost/compress/snappy"

	"github.com/vigilhq/vigil/internal/componenttest"
	"github.com/vigilhq/vigil/internal/loki"
)

// FuzzPush posts arbitrary bodies through the receiver's HTTP handler as each format it takes
// (JSON, gzip JSON, snappy protobuf, gzip over protobuf): every answer is 204 or a 4xx (429 and
// 503 are for a busy pipeline, which this one is not), and what the pipeline gets holds as many
// records as its batch says.
func FuzzPush(f *testing.F) {
	proto := loki.AppendProto(nil, []loki.Stream{{Labels: []loki.Label{{Name: "job", Value: "a"}}, Entries: []loki.Entry{{Line: "x"}}}})
	f.Add([]byte(jsonBody), uint8(0))
	f.Add(gz([]byte(jsonBody)), uint8(1))
	f.Add(snappy.Encode(nil, proto), uint8(2))
	f.Add(gz(snappy.Encode(nil, proto)), uint8(3))
	f.Add([]byte{0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'}, uint8(2)) // snappy's stream format
	f.Fuzz(func(t *testing.T, body []byte, format uint8) {
		sink := &componenttest.Sink{}
		r := newTestReceiver(t, sink, nil)
		ct, enc := "application/json", ""
		switch format % 4 {
		case 1:
			enc = "gzip"
		case 2:
			ct = "application/x-protobuf"
		case 3:
			ct, enc = "application/x-protobuf", "gzip"
		}
		w := r.post(http.MethodPost, ct, enc, body, nil)
		switch {
		case w.Code == http.StatusNoContent:
			for _, b := range sink.Batches() {
				ld, err := b.Logs()
				if err != nil {
					t.Fatalf("the pipeline got a batch it cannot read: %v", err)
				}
				if ld.LogRecordCount() != b.Items() {
					t.Fatalf("batch claims %d items, holds %d records", b.Items(), ld.LogRecordCount())
				}
			}
		case w.Code >= 400 && w.Code < 500 && w.Code != http.StatusTooManyRequests:
			if len(sink.Batches()) != 0 {
				t.Fatalf("refused request (%d %s) reached the pipeline", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
