package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"example.com/signin"
)

func TestPing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credentials")
	s := mustOpen(t, dir)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); signin.ErrorKind(err) != signin.EUNAVAILABLE {
		t.Errorf("Ping with the directory gone = %v, want EUNAVAILABLE", err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); signin.ErrorKind(err) != signin.EUNAVAILABLE {
		t.Errorf("Ping with a file in its place = %v, want EUNAVAILABLE", err)
	}
}
