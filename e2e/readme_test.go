//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.com/signin/internal/pgtest"
)

// TestREADMEPostgresScript runs the README's PostgreSQL script as a user
// would paste it, in a fresh copy of this repository: it builds the
// commands into ./bin, imports, starts a Google emulator and two replicas,
// and runs offline-fetch. Only the database URL (a throwaway database) and
// the ports (free ones) are changed. Then the deployment it leaves running
// must work: a session made on one replica is good on the other, offline
// access granted through the second is used by offline-fetch with the
// script's environment.
func TestREADMEPostgresScript(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the commands again in a copy of the repository")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := readmeScript(t, filepath.Join(root, "README.md"), "### PostgreSQL: several replicas", "go build -o bin/")

	db := pgtest.URL(t)
	emuAddr, app1, app2 := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port1, _ := net.SplitHostPort(app1)
	_, port2, _ := net.SplitHostPort(app2)
	for _, r := range []struct{ old, new string }{
		{"postgres://signin:signin@127.0.0.1:5432/signin?sslmode=disable", db},
		{"127.0.0.1:9022", emuAddr},
		{"localhost:9021", "localhost:" + port1},
		{"localhost:9031", "localhost:" + port2},
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("the README's PostgreSQL script no longer says %q: update this test with it\n%s", r.old, script)
		}
		script = strings.ReplaceAll(script, r.old, r.new)
	}

	work := copyRepository(t, root)
	envFile := filepath.Join(t.TempDir(), "script.env")
	out, err := os.Create(filepath.Join(t.TempDir(), "script.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()

	// -e: a line that fails stops the script, as it would stop a user.
	// The last line, the test's, keeps the script's environment.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script+"\nenv -0 > "+shellQuote(envFile)+"\n")
	cmd.Dir = work
	cmd.Env = scriptEnv()
	// The script leaves its servers running in the background, in its
	// process group: the group is stopped when the test ends (or the
	// script hangs).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output goes to a file, not a pipe: the background servers keep
	// their copy of it open after the script ends.
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopGroup(t, cmd.Process.Pid) })
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			t.Logf("---- the script and what it left running printed ----\n%s---- end ----", b)
		}
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the README's PostgreSQL script failed: %v\n%s", err, script)
	}
	printed, _ := os.ReadFile(out.Name())
	for _, want := range []string{"imported=0 kept=0 failed=0", "ok=0 revoked=0 failed=0"} {
		if !bytes.Contains(printed, []byte(want)) {
			t.Errorf("the script printed no %q", want)
		}
	}

	// What the script left running is a working deployment.
	env := readEnv(t, envFile)
	emu := newEmulatorClient("http://" + emuAddr)
	r := &replicas{emu: emu}
	a, b := "http://localhost:"+port1, "http://localhost:"+port2
	grace := r.addUser(ctx, t, "grace.readme@example.com")
	c := newClient()
	if st, _, err := c.post(ctx, a, "/tokensignin", url.Values{"credential": {emu.mintIDToken(ctx, t, grace.Sub)}}); err != nil || st != 200 {
		t.Fatalf("sign-in on replica 1: %d %v", st, err)
	}
	if st, me, err := c.get(ctx, b, "/api/me"); err != nil || st != 200 || me["user"].(map[string]any)["sub"] != grace.Sub {
		t.Fatalf("replica 1's session on replica 2: %d %v %v", st, me, err)
	}
	if st, me, err := c.post(ctx, b, "/connect", url.Values{"code": {r.code(ctx, t, grace.Sub)}}); err != nil || st != 200 || me["offline"] != true {
		t.Fatalf("offline access through replica 2: %d %v %v", st, me, err)
	}
	fetch := exec.CommandContext(ctx, filepath.Join(work, "bin", "offline-fetch"))
	fetch.Dir, fetch.Env = work, env
	stdout, err := fetch.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("offline-fetch with the script's environment: %v\n%s%s", err, stdout, exit.Stderr)
		}
		t.Fatal(err)
	}
	if !strings.Contains(string(stdout), grace.Sub+"\t") || !strings.Contains(string(stdout), grace.Email) {
		t.Errorf("offline-fetch with the script's environment printed %q, want a line for %s", stdout, grace.Email)
	}
}

// readmeScript returns the fenced sh block of the README section under
// heading that contains marker.
func readmeScript(t *testing.T, path, heading, marker string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", heading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	for rest := section; ; {
		_, block, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			break
		}
		block, rest, _ = strings.Cut(block, "```\n")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("README.md's section %q has no sh block with %q", heading, marker)
	return ""
}

// copyRepository copies the files git knows in root (tracked, and new ones
// not ignored: a fresh clone of the work under test) to a temporary
// directory.
func copyRepository(t *testing.T, root string) string {
	t.Helper()
	list := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	list.Dir = root
	files, err := list.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s (the test copies the repository as a clone would have it): %v", root, err)
	}
	dst := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		src := filepath.Join(root, filepath.FromSlash(name))
		fi, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// scriptEnv is the environment a user's shell would have: the test's,
// without the variables the script sets or that would change it.
func scriptEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GOOGLE_EMULATOR_HOST", "SESSION_KEYS", "SIGNIN_ENCRYPTION_KEYS", "DATABASE_URL", "GOFLAGS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// readEnv reads the NUL-separated output of env -0.
func readEnv(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		env = append(env, sc.Text())
	}
	return env
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stopGroup stops every process of the group pgid: SIGTERM, then SIGKILL if
// some are still there after a while.
func stopGroup(t *testing.T, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for liveInGroup(pgid) {
		if time.Now().After(deadline) {
			t.Logf("processes of the script still there 15s after SIGTERM: killing them")
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// liveInGroup reports whether a process of group pgid is still running
// (zombies, which exited and wait for whoever adopted them, do not count).
func liveInGroup(pgid int) bool {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}
