package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/vigilhq/vigil/internal/secret"
)

// Auth is a listener's auth: block. When present, every request must carry
// "Authorization: Bearer <token>" (HTTP header or gRPC metadata).
type Auth struct {
	BearerToken secret.String `yaml:"bearer_token"`
}

// Validate checks the block.
func (a *Auth) Validate() error {
	if a.BearerToken == "" {
		return errors.New("bearer_token: required when auth is set")
	}
	return nil
}

// verifier returns a check for Authorization values, or nil when a is nil (no auth). An auth
// block with an empty token refuses everything: a config that skipped Validate fails closed.
func (a *Auth) verifier() func(header string) bool {
	if a == nil {
		return nil
	}
	if a.BearerToken == "" {
		return func(string) bool { return false }
	}
	// Comparing digests keeps the comparison constant-time in the token's length as well.
	want := sha256.Sum256([]byte(a.BearerToken.Value()))
	return func(h string) bool {
		const scheme = "bearer "
		if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
			return false
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(h[len(scheme):])))
		return subtle.ConstantTimeCompare(got[:], want[:]) == 1
	}
}
