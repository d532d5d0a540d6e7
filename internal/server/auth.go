package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/peer"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/secret"
)

// Auth is a listener's auth: block: who may send (authentication) and what (authorisation).
// Every request must carry credentials one of its entries accepts: "Authorization: Bearer
// <token>", "Authorization: Basic …" checked against a bcrypt hash, or (with tls.client_ca_file)
// a client certificate whose names an entry lists. Each entry may limit the signals its holder
// sends and name the tenant stamped on its data.
type Auth struct {
	// BearerToken is one token with every right (the shorthand of a single tokens entry).
	BearerToken secret.String `yaml:"bearer_token"`
	Tokens      []TokenAuth   `yaml:"tokens"`
	Basic       []BasicAuth   `yaml:"basic"`
	ClientCerts []CertAuth    `yaml:"client_certs"`
	// TenantAttribute is the resource attribute a grant's tenant is written to (tenant.id).
	TenantAttribute string `yaml:"tenant_attribute"`
}

// DefaultTenantAttribute is where a tenant goes when tenant_attribute is not set.
const DefaultTenantAttribute = "tenant.id"

// Grant is what a credential allows: the signals (all when empty) and the tenant written on
// every resource its requests carry (replacing what the sender put there; none when empty).
type Grant struct {
	Signals []string `yaml:"signals"`
	Tenant  string   `yaml:"tenant"`
}

// TokenAuth is a bearer token with its grant.
type TokenAuth struct {
	Name  string        `yaml:"name"` // in logs and metrics instead of the token
	Token secret.String `yaml:"token"`
	Grant `yaml:",inline"`
}

// BasicAuth is a user of HTTP basic auth (and gRPC's authorization metadata), with the bcrypt
// hash of its password (htpasswd -nbB, or `vigil hash-password`).
type BasicAuth struct {
	Username     string        `yaml:"username"`
	PasswordHash secret.String `yaml:"password_hash"`
	Grant        `yaml:",inline"`
}

// CertAuth is a client certificate identity: the names it must hold (every one set must match).
type CertAuth struct {
	CommonName string `yaml:"common_name"`
	DNSName    string `yaml:"dns_name"`
	URI        string `yaml:"uri"` // a SPIFFE ID, for instance
	Grant      `yaml:",inline"`
}

func (g Grant) validate() error {
	var errs []error
	for _, s := range g.Signals {
		if _, err := batch.ParseSignal(s); err != nil {
			errs = append(errs, fmt.Errorf("signals: %q is not traces, metrics or logs", s))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the block.
func (a *Auth) Validate() error {
	var errs []error
	if a.BearerToken == "" && len(a.Tokens) == 0 && len(a.Basic) == 0 && len(a.ClientCerts) == 0 {
		errs = append(errs, errors.New("bearer_token, tokens, basic or client_certs: one at least is required when auth is set"))
	}
	seen := map[string]bool{}
	for i, t := range a.Tokens {
		if t.Token == "" {
			errs = append(errs, fmt.Errorf("tokens[%d].token: required", i))
		}
		if seen[t.Token.Value()] && t.Token != "" {
			errs = append(errs, fmt.Errorf("tokens[%d].token: the same token is listed twice", i))
		}
		seen[t.Token.Value()] = true
		errs = append(errs, Prefix(fmt.Sprintf("tokens[%d]", i), t.Grant.validate()))
	}
	users := map[string]bool{}
	for i, b := range a.Basic {
		if b.Username == "" || strings.Contains(b.Username, ":") {
			errs = append(errs, fmt.Errorf("basic[%d].username: required, without a colon", i))
		}
		if users[b.Username] {
			errs = append(errs, fmt.Errorf("basic[%d].username: %q is listed twice", i, b.Username))
		}
		users[b.Username] = true
		if _, err := bcrypt.Cost([]byte(b.PasswordHash.Value())); err != nil {
			errs = append(errs, fmt.Errorf("basic[%d].password_hash: not a bcrypt hash (make one with htpasswd -nbB or vigil hash-password)", i))
		}
		errs = append(errs, Prefix(fmt.Sprintf("basic[%d]", i), b.Grant.validate()))
	}
	for i, c := range a.ClientCerts {
		if c.CommonName == "" && c.DNSName == "" && c.URI == "" {
			errs = append(errs, fmt.Errorf("client_certs[%d]: common_name, dns_name or uri: one at least is required", i))
		}
		errs = append(errs, Prefix(fmt.Sprintf("client_certs[%d]", i), c.Grant.validate()))
	}
	return errors.Join(errs...)
}

// validateWithTLS checks what needs the listener's tls block too: certificate identities need
// client certificates, which only tls.client_ca_file asks for.
func (a *Auth) validateWithTLS(hasClientCA bool) error {
	if a != nil && len(a.ClientCerts) > 0 && !hasClientCA {
		return errors.New("auth.client_certs: needs tls.client_ca_file, so that clients present certificates")
	}
	return nil
}

// ValidateCertsOnly checks the auth block of a listener whose only credential is the client
// certificate of its TLS connection (syslog over TLS): no tokens or passwords, and client
// certificates asked for, whatever else the block holds.
func (a *Auth) ValidateCertsOnly(hasClientCA bool) error {
	err := a.Validate()
	const only = ": not on this listener, whose only credential is the client certificate (client_certs)"
	if a.BearerToken != "" {
		err = errors.Join(err, errors.New("bearer_token"+only))
	}
	if len(a.Tokens) > 0 {
		err = errors.Join(err, errors.New("tokens"+only))
	}
	if len(a.Basic) > 0 {
		err = errors.Join(err, errors.New("basic"+only))
	}
	if !hasClientCA {
		err = errors.Join(err, errors.New("client_certs: needs tls.client_ca_file, so that clients present certificates"))
	}
	return err
}

// CertIdentities finds identities by client certificate alone.
type CertIdentities struct{ au *authenticator }

// CertIdentities is the block's client-certificate check.
func (a *Auth) CertIdentities() *CertIdentities { return &CertIdentities{a.authenticator()} }

// Identify returns the identity of the first client_certs entry the verified chain's leaf
// matches.
func (c *CertIdentities) Identify(peer []*x509.Certificate) (*Identity, bool) {
	return c.au.authenticate("", peer)
}

// Identity is who a request was authenticated as, and what it may do.
type Identity struct {
	Name            string // the token's name, the user, or the certificate's matched name
	Tenant          string
	TenantAttribute string
	signals         []batch.Signal // nil: all
}

// Allows reports whether the identity may send sig.
func (id *Identity) Allows(sig batch.Signal) bool {
	return id.signals == nil || slices.Contains(id.signals, sig)
}

func newIdentity(name string, g Grant, attr string) *Identity {
	id := &Identity{Name: name, Tenant: g.Tenant, TenantAttribute: attr}
	for _, s := range g.Signals {
		sig, _ := batch.ParseSignal(s)
		id.signals = append(id.signals, sig)
	}
	return id
}

type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity a listener with auth put on the request's context.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// Authorize reports whether the request of ctx may send sig: always, on a listener without
// auth; else if its identity's grant holds sig.
func Authorize(ctx context.Context, sig batch.Signal) bool {
	id, ok := IdentityFrom(ctx)
	return !ok || id.Allows(sig)
}

// StampTenant writes the tenant of the request's identity, if it has one, on every resource of
// b, replacing what the sender wrote there: a client cannot send as another tenant.
func StampTenant(ctx context.Context, b *batch.Batch) error {
	id, ok := IdentityFrom(ctx)
	if !ok || id.Tenant == "" {
		return nil
	}
	switch b.Signal() {
	case batch.Traces:
		td, err := b.MutableTraces()
		if err != nil {
			return err
		}
		for _, r := range td.ResourceSpans().All() {
			r.Resource().Attributes().PutStr(id.TenantAttribute, id.Tenant)
		}
	case batch.Metrics:
		md, err := b.MutableMetrics()
		if err != nil {
			return err
		}
		for _, r := range md.ResourceMetrics().All() {
			r.Resource().Attributes().PutStr(id.TenantAttribute, id.Tenant)
		}
	case batch.Logs:
		ld, err := b.MutableLogs()
		if err != nil {
			return err
		}
		for _, r := range ld.ResourceLogs().All() {
			r.Resource().Attributes().PutStr(id.TenantAttribute, id.Tenant)
		}
	}
	return nil
}

// authenticator checks credentials against an Auth block.
type authenticator struct {
	tokens []tokenEntry
	basic  map[string]basicEntry
	certs  []certEntry
	// verified caches digests of user:password pairs bcrypt accepted, so that a client sending
	// the same credentials costs one bcrypt, not one per request. Bounded.
	mu       sync.Mutex
	verified map[[32]byte]*Identity
	bcrypts  chan struct{} // at most this many bcrypt checks at once: they cost milliseconds each
	schemes  []string      // for WWW-Authenticate
}

type tokenEntry struct {
	digest [32]byte
	id     *Identity
}

type basicEntry struct {
	hash []byte
	id   *Identity
}

type certEntry struct {
	c  CertAuth
	id *Identity
}

const maxVerified = 1024

// authenticator returns the checker for a, or nil when a is nil (no auth). An auth block with
// nothing in it refuses everything: a config that skipped Validate fails closed.
func (a *Auth) authenticator() *authenticator {
	if a == nil {
		return nil
	}
	attr := a.TenantAttribute
	if attr == "" {
		attr = DefaultTenantAttribute
	}
	au := &authenticator{basic: map[string]basicEntry{}, verified: map[[32]byte]*Identity{}, bcrypts: make(chan struct{}, 2)}
	if a.BearerToken != "" {
		au.tokens = append(au.tokens, tokenEntry{sha256.Sum256([]byte(a.BearerToken.Value())), newIdentity("bearer_token", Grant{}, attr)})
	}
	for i, t := range a.Tokens {
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("tokens[%d]", i)
		}
		au.tokens = append(au.tokens, tokenEntry{sha256.Sum256([]byte(t.Token.Value())), newIdentity(name, t.Grant, attr)})
	}
	if len(au.tokens) > 0 || len(a.ClientCerts) > 0 {
		au.schemes = append(au.schemes, `Bearer realm="vigil"`)
	}
	for _, b := range a.Basic {
		au.basic[b.Username] = basicEntry{[]byte(b.PasswordHash.Value()), newIdentity(b.Username, b.Grant, attr)}
	}
	if len(a.Basic) > 0 {
		au.schemes = append(au.schemes, `Basic realm="vigil", charset="UTF-8"`)
	}
	for _, c := range a.ClientCerts {
		name := c.URI
		if name == "" {
			name = c.DNSName
		}
		if name == "" {
			name = c.CommonName
		}
		au.certs = append(au.certs, certEntry{c, newIdentity(name, c.Grant, attr)})
	}
	return au
}

// authenticate finds the identity of a request by its Authorization value (when it has one)
// or else its verified client certificate chain.
func (au *authenticator) authenticate(authorization string, peer []*x509.Certificate) (*Identity, bool) {
	if authorization != "" {
		scheme, cred, _ := strings.Cut(strings.TrimSpace(authorization), " ")
		cred = strings.TrimSpace(cred)
		switch {
		case strings.EqualFold(scheme, "bearer") && cred != "":
			return au.bearer(cred)
		case strings.EqualFold(scheme, "basic") && cred != "":
			return au.basicAuth(cred)
		}
		return nil, false
	}
	if len(peer) > 0 {
		for _, e := range au.certs {
			if certMatches(e.c, peer[0]) {
				return e.id, true
			}
		}
	}
	return nil, false
}

func (au *authenticator) bearer(token string) (*Identity, bool) {
	// Comparing digests keeps the comparison constant-time in the token's length as well; every
	// entry is compared, so the time does not tell which one matched.
	got := sha256.Sum256([]byte(token))
	var id *Identity
	for _, e := range au.tokens {
		if subtle.ConstantTimeCompare(got[:], e.digest[:]) == 1 {
			id = e.id
		}
	}
	return id, id != nil
}

func (au *authenticator) basicAuth(cred string) (*Identity, bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return nil, false
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, false
	}
	e, known := au.basic[user]
	key := sha256.Sum256(raw)
	au.mu.Lock()
	id, cached := au.verified[key]
	au.mu.Unlock()
	if cached {
		return id, true
	}
	au.bcrypts <- struct{}{}
	defer func() { <-au.bcrypts }()
	if !known {
		// The same work as for a known user, so that the time does not tell which users exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return nil, false
	}
	if bcrypt.CompareHashAndPassword(e.hash, []byte(password)) != nil {
		return nil, false
	}
	au.mu.Lock()
	if len(au.verified) >= maxVerified {
		clear(au.verified)
	}
	au.verified[key] = e.id
	au.mu.Unlock()
	return e.id, true
}

// dummyHash is a bcrypt hash of nothing anyone sends, at the default cost, made on first use.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("vigil: no such user"), bcrypt.DefaultCost)
	return h
})

func certMatches(c CertAuth, cert *x509.Certificate) bool {
	if c.CommonName != "" && cert.Subject.CommonName != c.CommonName {
		return false
	}
	if c.DNSName != "" && !slices.Contains(cert.DNSNames, c.DNSName) {
		return false
	}
	if c.URI != "" && !slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == c.URI }) {
		return false
	}
	return true
}

// Require puts next behind the auth block: a request without credentials it accepts gets 401
// (with WWW-Authenticate, naming no credential), except on the paths in open (health probes).
// With a nil a, next is returned as it is.
func (a *Auth) Require(next http.Handler, open ...string) http.Handler {
	au := a.authenticator()
	if au == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(open, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		var peer []*x509.Certificate
		if r.TLS != nil {
			peer = r.TLS.PeerCertificates
		}
		id, ok := au.authenticate(r.Header.Get("Authorization"), peer)
		if !ok {
			for _, s := range au.schemes {
				w.Header().Add("WWW-Authenticate", s)
			}
			http.Error(w, errUnauthenticatedText, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

type clientAddrKey struct{}

// ClientAddr is the address of the client that sent the request of ctx (HTTP or gRPC), as a
// processor placed before any batching sees it (the k8s_attributes processor finds pods by it).
func ClientAddr(ctx context.Context) (netip.Addr, bool) {
	if a, ok := ctx.Value(clientAddrKey{}).(netip.Addr); ok {
		return a, true
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			return ap.Addr().Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func withClientAddr(ctx context.Context, remote string) context.Context {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, clientAddrKey{}, ap.Addr().Unmap())
}
