// Command testsum reads `go test -json` on stdin, prints what `go test`
// would have printed without -json and -v (a line per package, the output
// of failures), and counts what passed, failed and was skipped,
// so that CI can end its log with one line for the whole run:
//
//	go test -race -json ./... | go run ./scripts/testsum -tally out/tally
//	...
//	go run ./scripts/testsum -tally out/tally -summary
//	1234 passed, 0 failed, 12 skipped
//
// With -tally FILE the counts are added to those already in FILE, so that
// several steps (tests, fuzz runs, benchmarks) make one total. It exits 1
// when the stream reports a failure, as go test does, and 2 on a usage or
// I/O error.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("testsum", flag.ContinueOnError)
	fl.SetOutput(stderr)
	tally := fl.String("tally", "", "file the counts are added to (created if missing)")
	summary := fl.Bool("summary", false, "print the counts in -tally's file as one line, and read nothing")
	quiet := fl.Bool("quiet", false, "print failures only, not the line of each package that passed")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 || (*summary && *tally == "") {
		fmt.Fprintln(stderr, "usage: testsum [-tally FILE] [-quiet] < go-test-json | testsum -tally FILE -summary")
		return 2
	}
	if *summary {
		c, err := load(*tally)
		if err != nil {
			fmt.Fprintln(stderr, "testsum:", err)
			return 2
		}
		fmt.Fprintln(stdout, c)
		return 0
	}
	c, err := count(stdin, stdout, *quiet)
	if err != nil {
		fmt.Fprintln(stderr, "testsum:", err)
		return 2
	}
	if *tally != "" {
		before, err := load(*tally)
		if err == nil {
			err = before.add(c).save(*tally)
		}
		if err != nil {
			fmt.Fprintln(stderr, "testsum:", err)
			return 2
		}
	}
	if c.Failed > 0 {
		return 1
	}
	return 0
}

// counts are the tallied results.
type counts struct {
	Passed, Failed, Skipped int
}

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

func (c counts) add(d counts) counts {
	return counts{c.Passed + d.Passed, c.Failed + d.Failed, c.Skipped + d.Skipped}
}

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail events
}

// count reads events until EOF and prints what go test prints without -v:
// a line per package ("ok ..." or "? ... [no test files]") and the whole
// output of whatever failed; with quiet, only the failures. go test -json
// runs tests verbosely, so output is held until its test's (or package's)
// outcome is known. A line that is not JSON is printed as it is (go test
// writes some errors that way).
//
// Each test (and subtest) that passes, fails or is skipped counts once; a
// benchmark, which go test reports as run but never as passed, counts as
// passed when its package passes. A package that fails with no failing
// test of its own (it did not build, its TestMain failed, it panicked or
// timed out between tests) counts as one failure, so that no failure is
// lost from the total.
func count(r io.Reader, w io.Writer, quiet bool) (counts, error) {
	var c counts
	failedTests := map[string]int{}         // package -> failed tests
	running := map[string]map[string]bool{} // package -> tests run, with no outcome yet
	held := map[string][]string{}           // output by package and test, until the outcome
	// settle prints or drops what is held for key, now that its outcome
	// is known.
	settle := func(key string, failed bool) {
		if failed {
			io.WriteString(w, strings.Join(held[key], ""))
		}
		delete(held, key)
	}
	// settlePackage settles what is held for a package and its tests
	// (benchmarks have no outcome of their own) when the package ends.
	settlePackage := func(pkg string, failed bool) {
		own := held[pkg+"\x00"]
		for key := range held {
			if strings.HasPrefix(key, pkg+"\x00") && key != pkg+"\x00" {
				settle(key, failed)
			}
		}
		delete(held, pkg+"\x00")
		for _, l := range own {
			if failed || (!quiet && (strings.HasPrefix(l, "ok") || strings.HasPrefix(l, "?"))) {
				io.WriteString(w, l)
			}
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := e.Package + "\x00" + e.Test
		if e.Action == "build-output" || e.Action == "build-fail" {
			key = "build\x00" + e.ImportPath
		}
		if e.Output != "" {
			held[key] = append(held[key], e.Output)
		}
		if e.Test != "" {
			switch e.Action {
			case "run":
				if running[e.Package] == nil {
					running[e.Package] = map[string]bool{}
				}
				running[e.Package][e.Test] = true
			case "pass", "fail", "skip":
				delete(running[e.Package], e.Test)
			}
		}
		switch {
		case e.Action == "build-fail":
			c.Failed++
			settle(key, true)
		case e.Test != "" && e.Action == "pass":
			c.Passed++
			settle(key, false)
		case e.Test != "" && e.Action == "skip":
			c.Skipped++
			settle(key, false)
		case e.Test != "" && e.Action == "fail":
			c.Failed++
			failedTests[e.Package]++
			settle(key, true)
		case e.Test == "" && e.Action == "fail":
			if failedTests[e.Package] == 0 {
				c.Failed++
			}
			delete(running, e.Package)
			settlePackage(e.Package, true)
		case e.Test == "" && e.Action == "pass":
			c.Passed += len(running[e.Package]) // benchmarks
			delete(running, e.Package)
			settlePackage(e.Package, false)
		case e.Test == "" && e.Action == "skip":
			settlePackage(e.Package, false)
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("reading go test -json: %w", err)
	}
	// Whatever never finished (a stream cut short) is shown.
	for key := range held {
		settle(key, true)
	}
	return c, nil
}

// load reads the counts in path; a missing file is all zeros.
func load(path string) (counts, error) {
	var c counts
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (c counts) save(path string) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
