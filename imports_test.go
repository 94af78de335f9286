package signin_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The architecture's arrows, from the top down. Each app package may import
// only the app packages listed for it (its own subpackages aside); standard
// library and third-party imports are not restricted here. Commands sit on
// top (signin-admin's logic in admin), building their parts with wiring;
// web and offline over grant and auth; the store backends under grant;
// googlenet and metrics at the bottom (metrics imports only the error
// vocabulary; anything may count); the emulator stands for Google and
// imports no app package at all, so that the app's tests cannot share code
// with it that would hide a disagreement.
var allowedImports = map[string][]string{
	"cmd/signin":           {"internal/web", "internal/offline", "internal/wiring", "internal/auth", "internal/config", "internal/googlenet", "internal/httpserve", "internal/emulator", "internal/metrics", "internal/version", "internal/exitcode"},
	"cmd/offline-fetch":    {"internal/offline", "internal/rounds", "internal/wiring", "internal/httpserve", "internal/config", "internal/googlenet", "internal/metrics", "internal/version", "internal/exitcode"},
	"cmd/google-emulator":  {"internal/emulator", "internal/httpserve", "internal/version", "internal/exitcode"},
	"cmd/signin-admin":     {"internal/admin"},
	"internal/admin":       {"", "internal/wiring", "internal/grant", "internal/store", "internal/store/postgres", "internal/config", "internal/googlenet", "internal/seal", "internal/version", "internal/exitcode"},
	"internal/wiring":      {"", "internal/store", "internal/store/postgres", "internal/grant", "internal/auth", "internal/config", "internal/seal", "internal/metrics", "internal/exitcode"},
	"internal/web":         {"", "internal/offline", "internal/grant", "internal/auth", "internal/googlenet", "internal/metrics", "internal/seal"},
	"internal/offline":     {"", "internal/grant", "internal/auth"},
	"internal/grant":       {"", "internal/auth", "internal/seal"},
	"internal/rounds":      {"", "internal/offline", "internal/grant", "internal/store/postgres", "internal/metrics", "internal/googlenet"},
	"internal/store":       {"", "internal/grant"},
	"internal/auth":        {"", "internal/googlenet", "internal/metrics"},
	"internal/config":      {"internal/auth", "internal/googlenet", "internal/seal", "internal/exitcode"},
	"internal/googlenet":   {},
	"internal/metrics":     {""},
	"internal/httpserve":   {},
	"internal/seal":        {},
	"internal/pgtest":      {},
	"internal/version":     {},
	"internal/exitcode":    {},
	"internal/emulator":    {},
	"internal/browsertest": {},
	"scripts":              {}, // tools for CI, on their own
	"":                     {},
}

const module = "example.com/signin"

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel is p relative to the module ("" for the module root), and whether p
// is in the module.
func rel(p string) (string, bool) {
	if p == module {
		return "", true
	}
	r, ok := strings.CutPrefix(p, module+"/")
	return r, ok
}

// ruleFor returns the rule of the package at r: its own, or its nearest
// parent's (internal/store covers internal/store/file).
func ruleFor(r string) (string, bool) {
	for p := r; ; {
		if _, ok := allowedImports[p]; ok {
			return p, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			return "", false
		}
		p = p[:i]
	}
}

func TestImportRules(t *testing.T) {
	for _, p := range goList(t, "./...") {
		r, _ := rel(p.ImportPath)
		if strings.HasPrefix(r, "e2e") || strings.HasPrefix(r, "bench") {
			continue // tests of the whole, free to use any part
		}
		rule, ok := ruleFor(r)
		if !ok {
			t.Errorf("package %q has no import rule: add it to allowedImports", r)
			continue
		}
		for _, imp := range p.Imports {
			ir, in := rel(imp)
			if !in || ir == rule || strings.HasPrefix(ir, rule+"/") {
				continue
			}
			if !slices.Contains(allowedImports[rule], ir) {
				t.Errorf("%s imports %s, which the architecture does not allow", r, ir)
			}
		}
	}
}

// TestEmulatorImportsNoAppPackage: not even indirectly.
func TestEmulatorImportsNoAppPackage(t *testing.T) {
	for _, p := range goList(t, "./internal/emulator/...") {
		for _, d := range p.Deps {
			if _, in := rel(d); in && !strings.HasPrefix(d, module+"/internal/emulator") {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
}

// TestOfflineFetchDoesNotLinkTheEmulator: offline-fetch only talks to an
// emulator that signin or cmd/google-emulator runs; it never starts one.
func TestOfflineFetchDoesNotLinkTheEmulator(t *testing.T) {
	for _, p := range goList(t, "./cmd/offline-fetch") {
		for _, d := range p.Deps {
			if strings.HasPrefix(d, module+"/internal/emulator") {
				t.Errorf("offline-fetch links %s", d)
			}
		}
	}
}
