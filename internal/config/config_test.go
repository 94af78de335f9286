package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.com/signin/internal/emulator"
	"example.com/signin/internal/googlenet"
)

const webClient = `{"web":{"client_id":"123-abc.apps.googleusercontent.com","client_secret":"GOCSPX-real","redirect_uris":[],"javascript_origins":["http://localhost:9021"]}}`

func TestLoadGoogle(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "client_secrets.json")
	if err := os.WriteFile(secrets, []byte(webClient), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "absent.json")

	for _, tc := range []struct {
		name         string
		path         string
		explicit     bool
		env          map[string]string
		wantErr      bool
		wantDemo     bool
		wantClient   string
		wantEmulator string // "" = real Google
	}{
		{name: "real client talks to Google", path: secrets, wantClient: "123-abc.apps.googleusercontent.com"},
		{name: "real client on an emulator", path: secrets, env: map[string]string{googlenet.EnvEmulatorHost: "127.0.0.1:7000"}, wantClient: "123-abc.apps.googleusercontent.com", wantEmulator: "127.0.0.1:7000"},
		{name: "no file: demo on the default emulator", path: missing, wantDemo: true, wantClient: emulator.DemoClientID, wantEmulator: DefaultEmulatorAddr},
		{name: "no file: demo on the emulator of the environment", path: missing, env: map[string]string{googlenet.EnvEmulatorHost: "127.0.0.1:7001"}, wantDemo: true, wantClient: emulator.DemoClientID, wantEmulator: "127.0.0.1:7001"},
		{name: "a named file that is missing is an error, not a demo", path: missing, explicit: true, wantErr: true},
		{name: "bad emulator host", path: secrets, env: map[string]string{googlenet.EnvEmulatorHost: "nonsense"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := LoadGoogle(tc.path, tc.explicit, env(tc.env), googlenet.Options{})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("LoadGoogle succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Demo != tc.wantDemo || g.Client.ID != tc.wantClient || g.Net.EmulatorHost() != tc.wantEmulator {
				t.Errorf("got demo=%v client=%q emulator=%q, want demo=%v client=%q emulator=%q",
					g.Demo, g.Client.ID, g.Net.EmulatorHost(), tc.wantDemo, tc.wantClient, tc.wantEmulator)
			}
			if d := g.Describe(); strings.Contains(d, g.Client.Secret) {
				t.Errorf("Describe leaks the client secret: %q", d)
			}
			if tc.wantDemo && !strings.Contains(g.Describe(), "DEMO MODE") {
				t.Errorf("demo mode is not said loudly: %q", g.Describe())
			}
		})
	}
}

// The example file in the repository is what people copy: it must load, and
// as a popup-only client it has no redirect URIs.
func TestExampleClientSecretsLoads(t *testing.T) {
	g, err := LoadGoogle(filepath.Join("..", "..", "client_secrets.json.example"), true, env(nil), googlenet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Demo || !strings.HasSuffix(g.Client.ID, ".apps.googleusercontent.com") || g.Client.Secret == "" {
		t.Errorf("example client: demo=%v id=%q", g.Demo, g.Client.ID)
	}
}

// TestDemoClientIsTheEmulators: demo mode's client is the one the emulator
// registers by default, or nothing in the demo would work.
func TestDemoClientIsTheEmulators(t *testing.T) {
	c := emulator.DemoClient()
	if DemoClientID != c.ID || DemoClientSecret != c.Secret {
		t.Errorf("config's demo client %q differs from the emulator's %q", DemoClientID, c.ID)
	}
}

func TestEmulatorAddrFile(t *testing.T) {
	dir := t.TempDir()
	if got, err := PublishedEmulatorAddr(dir); got != "" || err != nil {
		t.Errorf("no file: %q, %v", got, err)
	}
	remove, err := PublishEmulatorAddr(dir, "127.0.0.1:30422")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, EmulatorAddrFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v", fi, err)
	}
	if got, err := PublishedEmulatorAddr(dir); got != "127.0.0.1:30422" || err != nil {
		t.Errorf("published: %q, %v", got, err)
	}
	remove()
	if _, err := os.Stat(filepath.Join(dir, EmulatorAddrFile)); !os.IsNotExist(err) {
		t.Errorf("file kept after remove: %v", err)
	}
	// Another signin's address is not removed by this one's exit.
	remove, _ = PublishEmulatorAddr(dir, "127.0.0.1:1")
	if _, err := PublishEmulatorAddr(dir, "127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	remove()
	if got, _ := PublishedEmulatorAddr(dir); got != "127.0.0.1:2" {
		t.Errorf("after the first signin exits: %q, want the second's", got)
	}
}

// Demo mode with -database uses the credentials directory only for this
// file: a directory that does not exist yet is made, private.
func TestEmulatorAddrFileMakesTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credentials")
	if _, err := PublishEmulatorAddr(dir, "127.0.0.1:30422"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, %v; want 0700", fi, err)
	}
	if got, err := PublishedEmulatorAddr(dir); got != "127.0.0.1:30422" || err != nil {
		t.Errorf("published: %q, %v", got, err)
	}
}
