package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCountSeqs: the check that decides "lost or repeated" counts every marker, repeats
// included, in text and in binary framing, and ignores a marker cut off at the end of the file.
func TestCountSeqs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	body := "x seq=000000000 a\n\x00\x12sseq=000000002\xffseq=000000000 seq=00000000x seq=999999999 seq=0000"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, 3)
	got, distinct, err := countSeqs(path, seen)
	if err != nil || got != 3 || distinct != 2 || !seen[0] || seen[1] || !seen[2] {
		t.Fatalf("got %d, distinct %d, seen %v, err %v; want 3, 2, [true false true]", got, distinct, seen, err)
	}
}
