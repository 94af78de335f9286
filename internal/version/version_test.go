package version

import (
	"bytes"
	"flag"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func buildInfo(version string, settings map[string]string) *debug.BuildInfo {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "example.com/signin/cmd/signin",
		Main:      debug.Module{Path: "example.com/signin", Version: version},
	}
	for k, v := range settings {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
	}
	return bi
}

func TestFormat(t *testing.T) {
	vcs := map[string]string{
		"GOOS": "linux", "GOARCH": "arm64",
		"vcs": "git", "vcs.revision": "7790ff9c3a1e55320c2b59e96d8df6e387021",
		"vcs.time": "2026-12-02T10:20:13Z", "vcs.modified": "false",
	}
	dirty := map[string]string{"vcs.revision": "abc", "vcs.modified": "true", "GOOS": "linux", "GOARCH": "amd64"}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{
			name: "release from a clean tree",
			bi:   buildInfo("v1.4.0", vcs),
			ok:   true,
			want: "signin v1.4.0 (module example.com/signin)\n" +
				"revision 7790ff9c3a1e 2026-12-02T10:20:13Z\n" +
				"go1.26.8 linux/arm64\n",
		},
		{
			name: "modified tree, no time, short revision",
			bi:   buildInfo("v0.0.0-20261202102013-7790ff9c3a1e+dirty", dirty),
			ok:   true,
			want: "signin v0.0.0-20261202102013-7790ff9c3a1e+dirty (module example.com/signin)\n" +
				"revision abc, modified\n" +
				"go1.26.8 linux/amd64\n",
		},
		{
			name: "go run: no VCS information",
			bi:   buildInfo("(devel)", map[string]string{"GOOS": "darwin", "GOARCH": "arm64"}),
			ok:   true,
			want: "signin (devel) (module example.com/signin)\ngo1.26.8 darwin/arm64\n",
		},
		{
			name: "no build information",
			ok:   false,
			want: "signin (no build information)\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := format("signin", tt.bi, tt.ok); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestStringDescribesThisBinary(t *testing.T) {
	s := String("version.test")
	if !strings.HasPrefix(s, "version.test ") || !strings.Contains(s, runtime.Version()) {
		t.Errorf("String = %q: want the program name and %s", s, runtime.Version())
	}
}

func TestAddFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-version"}, true},
		{[]string{"--version"}, true},
		{[]string{"-version=false"}, false},
	} {
		fs := flag.NewFlagSet("signin", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		v := AddFlag(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if *v != tt.want {
			t.Errorf("%v: -version = %v, want %v", tt.args, *v, tt.want)
		}
	}
}
