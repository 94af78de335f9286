// Package version says which build of a command is running, for every
// command's -version flag: the module version, the VCS revision and time it
// was built from (and whether the tree had uncommitted changes), and the Go
// version, as the Go toolchain recorded them in the binary.
package version

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// String describes the running binary for program, in a few lines:
//
//	signin v1.4.0 (module example.com/signin)
//	revision 7790ff9c3a1e 2026-12-02T10:20:13Z, modified
//	go1.26.8 linux/amd64
//
// The revision line is left out when the build has no VCS information
// (go run, or -buildvcs=false), and "modified" appears only when the
// working tree had uncommitted changes.
func String(program string) string {
	bi, ok := debug.ReadBuildInfo()
	return format(program, bi, ok)
}

// AddFlag defines -version on fs. After fs.Parse, when it is true, the
// command prints String(program) to its standard output and exits with
// status 0 without doing anything else.
func AddFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "print the build's version, revision and Go version, and exit")
}

// revisionLen is how much of a commit hash is shown: enough to be unique in
// any repository this size, short enough to read.
const revisionLen = 12

func format(program string, bi *debug.BuildInfo, ok bool) string {
	var b strings.Builder
	if !ok || bi == nil {
		fmt.Fprintf(&b, "%s (no build information)\n%s %s/%s\n", program, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return b.String()
	}
	v := bi.Main.Version
	if v == "" {
		v = "(unknown version)"
	}
	fmt.Fprintf(&b, "%s %s", program, v)
	if bi.Main.Path != "" {
		fmt.Fprintf(&b, " (module %s)", bi.Main.Path)
	}
	b.WriteByte('\n')

	settings := make(map[string]string, len(bi.Settings))
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "revision %s", rev[:min(len(rev), revisionLen)])
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " %s", t)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString(", modified")
		}
		b.WriteByte('\n')
	}

	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	if goos == "" || goarch == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	fmt.Fprintf(&b, "%s %s/%s\n", goVersion, goos, goarch)
	return b.String()
}
