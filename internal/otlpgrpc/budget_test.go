package otlpgrpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// testBudget is a SharedBudget that records its high-water mark.
type testBudget struct {
	limit      int64
	used, peak atomic.Int64
}

func (b *testBudget) TryAcquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.peak.Store(max(b.peak.Load(), u+n))
			return true
		}
	}
}
func (b *testBudget) Release(n int64)   { b.used.Add(-n) }
func (b *testBudget) Unreserve(n int64) { b.used.Add(-n) }
func (b *testBudget) Available() int64  { return b.limit - b.used.Load() }

// TestDecompressionIsCharged: a real gRPC server decompressing a message charges it to the
// registered budget while it reads and gives it all back after; a message whose decompression
// does not fit arrives as a Raw marked Refused, without an error (which gRPC would answer with
// INTERNAL before the handler could say otherwise).
func TestDecompressionIsCharged(t *testing.T) {
	b := &testBudget{limit: 64 << 20}
	t.Cleanup(ChargeDecompression(b))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan Raw, 10)
	srv := grpc.NewServer(grpc.ForceServerCodecV2(Codec{}), grpc.MaxRecvMsgSize(32<<20),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var m Raw
			if err := stream.RecvMsg(&m); err != nil {
				received <- Raw{Bytes: []byte(err.Error())}
				return err
			}
			received <- m
			return stream.SendMsg(&Raw{})
		}))
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, comp := range []string{GzipName, ZstdName} {
		msg := &Raw{Bytes: bytes.Repeat([]byte("decompressed "), (8<<20)/13)}
		send := func() Raw {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = conn.Invoke(ctx, TracesMethod, msg, &Raw{}, grpc.ForceCodecV2(Codec{}), grpc.UseCompressor(comp))
			return <-received
		}
		b.peak.Store(0)
		if got := send(); got.Refused || !bytes.Equal(got.Bytes, msg.Bytes) {
			t.Fatalf("%s: received %d bytes (refused %v: %q), want the %d sent", comp, len(got.Bytes), got.Refused, got.Bytes[:min(len(got.Bytes), 200)], len(msg.Bytes))
		}
		if p := b.peak.Load(); p < 8<<20 || b.used.Load() != 0 {
			t.Errorf("%s: charged at most %d bytes for an 8 MiB message, %d still held", comp, p, b.used.Load())
		}
		b.limit = 4 << 20 // less than the message decompresses to
		got := send()
		b.limit = 64 << 20
		if !got.Refused || got.Bytes != nil {
			t.Errorf("%s: decompression over the budget: refused %v with %d bytes (%q), want refused", comp, got.Refused, len(got.Bytes), got.Bytes[:min(len(got.Bytes), 200)])
		}
		b.limit = 1 // not even the compressed message fits
		got = send()
		b.limit = 64 << 20
		if !got.Refused {
			t.Errorf("%s: no room for the compressed message: %q, want refused", comp, got.Bytes[:min(len(got.Bytes), 200)])
		}
		if b.used.Load() != 0 {
			t.Errorf("%s: %d bytes still held after the refusal", comp, b.used.Load())
		}
	}
}

// TestRefusedMarker: the refusal marker is found at the end of a message however gRPC's buffers
// cut it, and nowhere else.
func TestRefusedMarker(t *testing.T) {
	msg := append([]byte("some bytes decompressed before the budget ran out"), refusalMarker[:]...)
	for cut := range len(msg) + 1 {
		data := mem.BufferSlice{mem.SliceBuffer(msg[:cut]), mem.SliceBuffer(nil), mem.SliceBuffer(msg[cut:])}
		if !refused(data) {
			t.Fatalf("cut at %d: marker not found", cut)
		}
		var m Raw
		if err := (Codec{}).Unmarshal(data, &m); err != nil || !m.Refused || m.Bytes != nil {
			t.Fatalf("cut at %d: %+v %v", cut, m, err)
		}
	}
	for _, data := range []mem.BufferSlice{
		nil,
		{mem.SliceBuffer(refusalMarker[1:])},
		{mem.SliceBuffer(refusalMarker[:]), mem.SliceBuffer([]byte{0})},
		{mem.SliceBuffer(msg[:len(msg)-1]), mem.SliceBuffer([]byte{refusalMarker[31] ^ 1})},
	} {
		if refused(data) {
			t.Errorf("%q taken for a refusal", data.Materialize())
		}
	}
	var other struct{ Raw } // not a *Raw: the proto codec's messages get an error
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(refusalMarker[:])}, &other); !errors.Is(err, ErrInFlightLimit) {
		t.Errorf("a refused message for the proto codec: %v, want ErrInFlightLimit", err)
	}
}

// TestZstdWindowIsCharged: a zstd decoder's memory is charged from the frame's window before it
// is allocated, and released on Close.
func TestZstdWindowIsCharged(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 1<<20)
	enc, _ := zstd.NewWriter(nil, zstd.WithWindowSize(8<<20))
	frame := enc.EncodeAll(payload, nil)
	enc.Close()

	small := &testBudget{limit: 1 << 20}
	if _, err := NewZstdReader(bytes.NewReader(frame), small); !errors.Is(err, ErrInFlightLimit) {
		t.Fatalf("a window over 1 MiB in a 1 MiB budget: %v, want ErrInFlightLimit", err)
	}
	if small.used.Load() != 0 {
		t.Errorf("%d bytes held after the refusal", small.used.Load())
	}
	b := &testBudget{limit: 16 << 20}
	z, err := NewZstdReader(bytes.NewReader(frame), b)
	if err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		t.Fatal(err)
	}
	if got := b.used.Load(); got < int64(h.WindowSize) {
		t.Errorf("charged %d bytes for a %d-byte window", got, h.WindowSize)
	}
	got, err := io.ReadAll(z)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	z.Close()
	z.Close()
	if b.used.Load() != 0 {
		t.Errorf("%d bytes held after Close", b.used.Load())
	}
	if encoding.GetCompressor(ZstdName) == nil {
		t.Fatal("zstd is not registered")
	}
}
