package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashPassword(t *testing.T) {
	t.Cleanup(func() { stdin = os.Stdin })
	var out, errOut bytes.Buffer
	stdin = strings.NewReader("wonderland\n")
	if code := run([]string{"hash-password"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	h := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("wonderland")) != nil || strings.Contains(h, "wonderland") {
		t.Errorf("hash %q does not match the password", h)
	}
	for _, c := range []struct {
		args  []string
		input string
		code  int
	}{{[]string{"hash-password", "secret"}, "", 2}, {[]string{"hash-password"}, "\n", 1}, {[]string{"hash-password"}, strings.Repeat("x", 80), 1}} {
		stdin = strings.NewReader(c.input)
		out.Reset()
		if code := run(c.args, &out, &errOut); code != c.code || out.Len() != 0 {
			t.Errorf("%v with %q: exit %d, output %q", c.args, c.input, code, out.String())
		}
	}
}
