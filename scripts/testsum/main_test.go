package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A stream with every kind of outcome: a package whose tests pass, fail
// and skip (a subtest included), one that does not build, one that fails
// with no failing test (a panic in TestMain, say), and a benchmark.
const stream = `{"Action":"start","Package":"a"}
{"Action":"run","Package":"a","Test":"TestOK"}
{"Action":"output","Package":"a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"a","Test":"TestOK"}
{"Action":"run","Package":"a","Test":"TestBad"}
{"Action":"run","Package":"a","Test":"TestBad/sub"}
{"Action":"output","Package":"a","Test":"TestBad/sub","Output":"    a_test.go:9: boom\n"}
{"Action":"fail","Package":"a","Test":"TestBad/sub"}
{"Action":"fail","Package":"a","Test":"TestBad"}
{"Action":"skip","Package":"a","Test":"TestChromium"}
{"Action":"output","Package":"a","Output":"FAIL\ta\t0.1s\n"}
{"Action":"fail","Package":"a"}
{"ImportPath":"b","Action":"build-output","Output":"b/b.go:3:1: syntax error\n"}
{"ImportPath":"b","Action":"build-fail"}
{"Action":"output","Package":"c","Output":"panic: in TestMain\n"}
{"Action":"fail","Package":"c"}
{"Action":"run","Package":"d","Test":"BenchmarkD"}
{"Action":"output","Package":"d","Test":"BenchmarkD","Output":"BenchmarkD-8 \t1\t100 ns/op\n"}
{"Action":"output","Package":"d","Output":"ok  \td\t0.2s\n"}
{"Action":"pass","Package":"d"}
`

func TestCount(t *testing.T) {
	var out strings.Builder
	c, err := count(strings.NewReader(stream+"not json\n"), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (counts{Passed: 2, Failed: 4, Skipped: 1}); c != want {
		t.Errorf("counts %v, want %v", c, want)
	}
	// What go test prints without -v: failures whole, a line per package
	// that passed, and nothing of the tests that passed.
	for _, s := range []string{"boom", "syntax error", "panic: in TestMain", "FAIL\ta\t", "ok  \td", "not json\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	for _, s := range []string{"=== RUN   TestOK", "BenchmarkD"} {
		if strings.Contains(out.String(), s) {
			t.Errorf("output has %q, which go test shows only with -v:\n%s", s, out.String())
		}
	}

	out.Reset()
	if _, err := count(strings.NewReader(stream), &out, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "=== RUN   TestOK") || strings.Contains(out.String(), "ok  \td") || strings.Contains(out.String(), "BenchmarkD") ||
		!strings.Contains(out.String(), "boom") || !strings.Contains(out.String(), "syntax error") {
		t.Errorf("-quiet output:\n%s", out.String())
	}
}

// Steps add up in the tally file; -summary prints the line; a failure in
// the stream is exit status 1, as with go test.
func TestTally(t *testing.T) {
	tally := filepath.Join(t.TempDir(), "tally")
	var out, errb strings.Builder
	if code := run([]string{"-tally", tally}, strings.NewReader(stream), &out, &errb); code != 1 {
		t.Errorf("a stream with failures: exit %d, want 1 (%s)", code, errb.String())
	}
	ok := `{"Action":"pass","Package":"e","Test":"FuzzX"}` + "\n"
	if code := run([]string{"-tally", tally, "-quiet"}, strings.NewReader(ok), &out, &errb); code != 0 {
		t.Errorf("a passing stream: exit %d, want 0 (%s)", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"-tally", tally, "-summary"}, nil, &out, &errb); code != 0 || out.String() != "3 passed, 4 failed, 1 skipped\n" {
		t.Errorf("summary: exit %d, %q", code, out.String())
	}
}

// The real thing: go test -json of a tiny module, through testsum.
func TestRealGoTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module m\n\ngo 1.22\n")
	write(t, filepath.Join(dir, "m_test.go"), `package m
import "testing"
func TestA(t *testing.T) {}
func TestB(t *testing.T) { t.Run("x", func(t *testing.T) { t.Skip("no") }) }
func TestC(t *testing.T) { t.Fatal("no") }
`)
	write(t, filepath.Join(dir, "b", "b_test.go"), `package b
import "testing"
func BenchmarkB(b *testing.B) { for b.Loop() {} }
`)
	cmd := exec.Command(gobin, "test", "-json", "-bench", ".", "-benchtime", "1x", "./...")
	cmd.Dir = dir
	data, _ := cmd.Output() // exit 1: TestC fails
	var out strings.Builder
	c, err := count(strings.NewReader(string(data)), &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := (counts{Passed: 3, Failed: 1, Skipped: 1}); c != want {
		t.Errorf("counts %v, want %v\n%s", c, want, out.String())
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
