package otlpgrpc

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/encoding"
)

// TestCompressorsRoundTrip checks both registered compressors (ours must have replaced grpc's
// gzip) under concurrent use, which exercises the pooling.
func TestCompressorsRoundTrip(t *testing.T) {
	if _, ok := encoding.GetCompressor(GzipName).(*gzipCompressor); !ok {
		t.Fatal("klauspost gzip did not replace grpc's gzip compressor")
	}
	payload := []byte(strings.Repeat("span-payload-", 5000))
	for _, name := range []string{GzipName, ZstdName} {
		c := encoding.GetCompressor(name)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					var buf bytes.Buffer
					w, err := c.Compress(&buf)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = w.Write(payload)
					if err := w.Close(); err != nil {
						t.Error(err)
						return
					}
					r, err := c.Decompress(&buf)
					if err != nil {
						t.Error(err)
						return
					}
					got, err := io.ReadAll(r)
					if err != nil || !bytes.Equal(got, payload) {
						t.Errorf("%s: round trip failed: %v", name, err)
						return
					}
					// A late read after the end must not touch a pooled decoder.
					if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
						t.Errorf("%s: read after EOF = %d, %v", name, n, err)
					}
				}
			}()
		}
		wg.Wait()
	}
}

func TestCorruptInputIsAnError(t *testing.T) {
	for _, name := range []string{GzipName, ZstdName} {
		c := encoding.GetCompressor(name)
		r, err := c.Decompress(bytes.NewReader([]byte("definitely not compressed data")))
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if err == nil {
			t.Errorf("%s: corrupt input accepted", name)
		}
	}
}
