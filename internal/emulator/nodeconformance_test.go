package emulator_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.com/signin/internal/emulator"
)

// TestNodeClientLibraries runs conformance/node/conformance.mjs: Google's
// own Node libraries (google-auth-library, @googleapis/people, pinned by
// the folder's package-lock.json) against this emulator, configured with
// their documented options only. It needs node and npm; without them it
// skips, unless SIGNIN_REQUIRE_NODE=1 (as in CI), which makes it fail.
// npm ci installs from the registry or, offline, from npm's cache.
func TestNodeClientLibraries(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		msg := "node and npm are needed to run Google's Node libraries against the emulator (conformance/node)"
		if os.Getenv("SIGNIN_REQUIRE_NODE") == "1" {
			t.Fatalf("%s; SIGNIN_REQUIRE_NODE=1 makes that a failure: %v %v", msg, errNode, errNpm)
		}
		t.Skip(msg)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "conformance", "node"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}

	// A short max-age: the rotation case waits one max-age for the new key
	// to start signing, as a verifier honouring max-age would have to.
	e := newEnv(t, emulator.Config{KeyMaxAge: 3 * time.Second})
	run := exec.CommandContext(ctx, node, "conformance.mjs")
	run.Dir = dir
	run.Env = append(os.Environ(), "EMULATOR_URL="+e.srv.URL)
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	err = run.Run()
	t.Logf("node conformance.mjs against %s:\n%s", e.srv.URL, out.String())
	if err != nil {
		t.Fatalf("Google's Node libraries disagree with the emulator: %v", err)
	}
	for _, c := range []string{"ok - verifyIdToken keeps working across a key rotation", "ok - a partial grant: scope lists only what was granted"} {
		if !strings.Contains(out.String(), c) {
			t.Errorf("the script did not run every case: no %q", c)
		}
	}
	st := e.emu.Stats()
	if st.Grants["authorization_code"] < 2 || st.Grants["refresh_token"] < 1 || st.Revocations < 1 || st.Endpoints[emulator.EndpointPeople].Requests < 2 {
		t.Errorf("the libraries did not reach the emulator as expected: %+v", st)
	}
}
