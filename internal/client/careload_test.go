package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigilhq/vigil/internal/tlsconfig"
	"github.com/vigilhq/vigil/internal/tlsconfig/tlstest"
)

// caSwap is a server certificate for 127.0.0.1 signed by CA "new", and a ca_file that holds
// CA "old" until swap writes "new" into it.
type caSwap struct {
	server tls.Certificate
	caFile string
	swap   func()
}

func newCASwap(t *testing.T) caSwap {
	t.Helper()
	oldCA, _, _, _ := tlstest.Issue(t, 1, true, nil, nil)
	newCA, _, newCert, newKey := tlstest.Issue(t, 2, true, nil, nil)
	crt, key, _, _ := tlstest.Issue(t, 3, false, newCert, newKey)
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	tlstest.Replace(t, caFile, oldCA)
	return caSwap{server: pair, caFile: caFile, swap: func() { tlstest.Replace(t, caFile, newCA) }}
}

// eventually calls try until it succeeds, for up to three times the CA check interval.
func eventually(t *testing.T, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(3*tlsconfig.ReloadCheck + time.Second)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after the CA file changed: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHTTPClientFollowsCAFile: a renewed ca_file is used by the next connection, with no
// restart, and the connection still speaks HTTP/2.
func TestHTTPClientFollowsCAFile(t *testing.T) {
	ca := newCASwap(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.server}}
	srv.StartTLS()
	defer srv.Close()
	h := HTTP{Endpoint: srv.URL, TLS: tlsconfig.Client{Common: tlsconfig.Common{CAFile: ca.caFile}}}
	hc, err := h.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	get := func() error {
		resp, err := hc.Get(srv.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			return errors.New("not HTTP/2: " + resp.Proto)
		}
		return nil
	}
	if err := get(); err == nil {
		t.Fatal("a server of a CA not in ca_file was trusted")
	} else if !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("error %q does not say the certificate was not trusted", err)
	}
	ca.swap()
	eventually(t, "HTTP", get)
}

// TestGRPCClientFollowsCAFile: the same for a gRPC connection, which re-dials on its own.
func TestGRPCClientFollowsCAFile(t *testing.T) {
	ca := newCASwap(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.server}})))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	g := GRPC{Endpoint: "https://" + ln.Addr().String(), TLS: tlsconfig.Client{Common: tlsconfig.Common{CAFile: ca.caFile}}}
	conn, err := g.NewConn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(); err == nil {
		t.Fatal("a server of a CA not in ca_file was trusted")
	}
	ca.swap()
	eventually(t, "gRPC", check)
}
