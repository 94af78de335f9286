package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/pgtest"
)

// TestExitStatusRule runs the four commands as an operator would and holds
// them to one rule (internal/exitcode, issue 23 item 9): usage and
// configuration errors exit 2 and name the flag or variable to change
// (never echoing a database URL: it may hold a password), before starting
// anything; run-time failures exit 1; one-shot commands give up on a
// database that does not answer after -database-wait (item 2).
func TestExitStatusRule(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "credentials"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A client file (the example's shape): no demo mode, so no command
	// needs an emulator before it gets to the database.
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(root, "client_secrets.json.example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client_secrets.json"), example, 0o600); err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	keys := []string{"SESSION_KEYS=" + key, "SIGNIN_ENCRYPTION_KEYS=" + key}
	const password = "Secr3t-pw"
	mysql := "DATABASE_URL=mysql://signin:" + password + "@127.0.0.1/signin"
	closed := "postgres://signin:" + password + "@127.0.0.1:" + pgtest.ClosedPort(t) + "/signin?sslmode=disable"
	noSuchDB, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	noSuchDB.Path = "/no_such_database_here"

	type row struct {
		name    string
		bin     string
		args    []string
		env     []string
		code    int
		want    []string // each in stderr
		wantNot []string // none in stderr
	}
	rows := []row{
		{"signin -addr nonsense", binaries.signin, []string{"-addr", "nonsense"}, nil, 2,
			[]string{"-addr \"nonsense\""}, []string{"level=", "emulator"}},
		{"google-emulator -addr nonsense", binaries.emulator, []string{"-addr", "nonsense"}, nil, 2,
			[]string{"-addr \"nonsense\""}, nil},
		{"signin-admin users list, database does not answer", binaries.admin,
			[]string{"users", "list", "-database", closed, "-database-wait", "1s"}, keys, 1,
			[]string{"did not answer within 1s"}, []string{password}},
		{"offline-fetch one-off, database does not answer", binaries.offlineFetch,
			[]string{"-database", closed, "-database-wait", "1s"}, keys, 1,
			[]string{"did not answer within 1s"}, []string{password}},
	}
	for _, c := range []struct{ name, bin string }{{"signin", binaries.signin}, {"offline-fetch", binaries.offlineFetch}, {"signin-admin", binaries.admin}} {
		var sub []string
		switch c.name {
		case "signin-admin":
			sub = []string{"users", "list"}
		case "signin": // never the default port: other servers may run here
			sub = []string{"-addr", "127.0.0.1:0"}
		}
		rows = append(rows,
			row{c.name + " -client-secrets /missing.json", c.bin, append(sub, "-client-secrets", "/missing.json"), nil, 2,
				[]string{"-client-secrets /missing.json"}, []string{"level="}},
			row{c.name + " DATABASE_URL=mysql://...", c.bin, sub, append([]string{mysql}, keys...), 2,
				[]string{"DATABASE_URL"}, []string{password, "internal"}},
			row{c.name + " -database mysql://...", c.bin, append(sub, "-database", strings.TrimPrefix(mysql, "DATABASE_URL=")), keys, 2,
				[]string{"-database"}, []string{password, "internal"}},
			row{c.name + " no such database", c.bin, append(sub, "-database", noSuchDB.String()), keys, 2,
				[]string{"-database", "does not exist"}, []string{"internal"}},
			row{c.name + " unknown flag", c.bin, append(sub, "-nope"), nil, 2,
				[]string{"-nope"}, nil},
		)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, r.bin, r.args...)
			cmd.Dir = dir
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, r.env...)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			t.Logf("exit %d, stderr:\n%s", code, out)
			if code != r.code {
				t.Errorf("exit status %d, want %d\n%s", code, r.code, out)
			}
			for _, w := range r.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr does not say %q:\n%s", w, out)
				}
			}
			for _, w := range r.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("stderr says %q:\n%s", w, out)
				}
			}
		})
	}
}
