package exitcode

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

// marked is an error of a package that does not import exitcode, marking
// itself as a configuration error.
type marked struct{ usage bool }

func (m marked) Error() string    { return "marked" }
func (m marked) UsageError() bool { return m.usage }

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"done", nil, OK},
		{"help", flag.ErrHelp, OK},
		{"help wrapped", fmt.Errorf("x: %w", flag.ErrHelp), OK},
		{"usage", Usagef("-addr %q: no port", "nonsense"), Usage},
		{"usage wrapped", fmt.Errorf("starting: %w", AsUsage(errors.New("bad"))), Usage},
		{"printed by flag", Printed(errors.New("flag provided but not defined: -x")), Usage},
		{"marked by another package", fmt.Errorf("open: %w", marked{true}), Usage},
		{"marked false", marked{false}, Failure},
		{"run-time", errors.New("the database did not answer"), Failure},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("%s: Of(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
	if AsUsage(nil) != nil {
		t.Error("AsUsage(nil) is not nil")
	}
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err        error
		want       int
		wantStderr string
	}{
		{nil, OK, ""},
		{flag.ErrHelp, OK, ""},
		{Printed(errors.New("flag provided but not defined: -x")), Usage, ""},
		{Usagef("-client-secrets %s: no such file", "/missing.json"), Usage, "cmd: -client-secrets /missing.json: no such file\n"},
		{errors.New("boom"), Failure, "cmd: boom\n"},
	} {
		var stderr strings.Builder
		if got := Report(&stderr, "cmd", tc.err); got != tc.want || stderr.String() != tc.wantStderr {
			t.Errorf("Report(%v) = %d, %q; want %d, %q", tc.err, got, stderr.String(), tc.want, tc.wantStderr)
		}
	}
}
