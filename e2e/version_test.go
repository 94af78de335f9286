package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// Every command answers -version as an operator runs it: the build on
// stdout, exit status 0, nothing else done (no server started, no file
// read).
func TestVersionFlag(t *testing.T) {
	for name, bin := range map[string]string{
		"signin":          binaries.signin,
		"offline-fetch":   binaries.offlineFetch,
		"google-emulator": binaries.emulator,
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "-version")
			cmd.Dir = t.TempDir() // no client_secrets.json, no credentials: nothing to read
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s -version: %v\n%s", name, err, stderr.String())
			}
			out := stdout.String()
			if !strings.HasPrefix(out, name+" ") || !strings.Contains(out, "module example.com/signin") || !strings.Contains(out, "go1.") {
				t.Errorf("%s -version printed %q", name, out)
			}
			if stderr.Len() != 0 {
				t.Errorf("%s -version wrote to stderr: %q", name, stderr.String())
			}
		})
	}
}
