package bufpool

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBufferComesBackAfterCallerAndTransport(t *testing.T) {
	p := New(2, 1<<20)
	b := p.Get()
	*b = append(*b, "hello"...)
	body := p.Body(b)
	req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
	body.Set(req)
	if req.ContentLength != 5 {
		t.Fatalf("ContentLength = %d, want 5", req.ContentLength)
	}
	again, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	body.Release()
	if len(p.list.free) != 0 {
		t.Fatal("the buffer went back while readers were open")
	}
	if got, _ := io.ReadAll(req.Body); string(got) != "hello" {
		t.Fatalf("body read %q", got)
	}
	req.Body.Close()
	req.Body.Close() // a second close counts once
	if len(p.list.free) != 0 {
		t.Fatal("the buffer went back while the reopened body was open")
	}
	if got, _ := io.ReadAll(again); string(got) != "hello" {
		t.Fatalf("reopened body read %q", got)
	}
	again.Close()
	if len(p.list.free) != 1 {
		t.Fatalf("free buffers = %d after all let go, want 1", len(p.list.free))
	}
	if n, err := again.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read after close = %d, %v; want an error", n, err)
	}
	if r := p.Get(); r != b || len(*r) != 0 || cap(*r) < 5 {
		t.Fatalf("Get after Put: %p len %d cap %d, want the kept buffer emptied", r, len(*r), cap(*r))
	}
}

func TestPoolBounds(t *testing.T) {
	p := New(1, 8)
	big := make([]byte, 0, 9)
	p.Put(&big)
	if len(p.list.free) != 0 {
		t.Fatal("kept a buffer over maxCap")
	}
	a, b := make([]byte, 0, 8), make([]byte, 0, 8)
	p.Put(&a)
	p.Put(&b)
	if len(p.list.free) != 1 {
		t.Fatalf("kept %d buffers, want at most 1", len(p.list.free))
	}
	p.Put(nil)
}

// Through a real client and server, requests built one after another in the same pooled
// buffers arrive each with its own bytes.
func TestRequestsThroughHTTP(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
	}))
	defer srv.Close()
	p := New(2, 1<<20)
	var want []string
	for i := range 20 {
		buf := p.Get()
		*buf = append(*buf, bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))...)
		want = append(want, string(*buf))
		body := p.Body(buf)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
		body.Set(req)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		body.Release()
	}
	if len(got) != len(want) {
		t.Fatalf("server got %d bodies, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("body %d: %d bytes starting %q, want %d of %q", i, len(got[i]), got[i][:1], len(want[i]), want[i][:1])
		}
	}
	if len(p.list.free) == 0 {
		t.Fatal("no buffer came back to the pool")
	}
}
