//go:build !linux

package pgtest

import (
	"errors"
	"testing"
)

// Server is a throwaway PostgreSQL server; only Linux runs one.
type Server struct{}

// NewServer skips (or fails, when SIGNIN_REQUIRE_POSTGRES=1): throwaway
// servers run on Linux only.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	skipOrFail(tb, "throwaway PostgreSQL servers run on Linux only")
	return nil
}

func (s *Server) URL(db string) string             { return "" }
func (s *Server) NewDatabase(tb testing.TB) string { return "" }
func (s *Server) Start() error                     { return errors.New("pgtest: not supported") }
func (s *Server) Stop() error                      { return nil }
func (s *Server) Freeze() error                    { return errors.New("pgtest: not supported") }
func (s *Server) Thaw() error                      { return errors.New("pgtest: not supported") }
func (s *Server) close()                           {}
func startServer() (*Server, error) {
	return nil, errors.New("throwaway PostgreSQL servers run on Linux only")
}
