package main

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
)

// key names one benchmark result: the benchmark's full name without the
// GOMAXPROCS suffix, and that GOMAXPROCS.
type key struct {
	name string
	cpu  int
}

// results collects the samples of every metric of every benchmark over
// the rounds of a run.
type results struct {
	samples map[key]map[string][]float64 // by benchmark, by unit ("ns/op", "allocs/op", "fetches", ...)
}

func newResults() *results {
	return &results{samples: make(map[key]map[string][]float64)}
}

// add records one sample.
func (rs *results) add(k key, unit string, v float64) {
	m := rs.samples[k]
	if m == nil {
		m = make(map[string][]float64)
		rs.samples[k] = m
	}
	m[unit] = append(m[unit], v)
}

// median returns the median of the samples of unit for k, and whether
// there are any.
func (rs *results) median(k key, unit string) (float64, bool) {
	s := rs.samples[k][unit]
	if len(s) == 0 {
		return 0, false
	}
	return median(s), true
}

func median(s []float64) float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// parseBench reads `go test -bench` output and adds every result line to
// rs. cpus are the -cpu values of the run, so that the "-N" suffix the
// testing package appends for GOMAXPROCS N can be told from a name that
// happens to end in a dash and digits. It returns the lines that are not
// results (for the log).
func (rs *results) parseBench(r io.Reader, cpus []int) (other []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		// Name, iterations, then value-unit pairs.
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			other = append(other, line)
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			other = append(other, line)
			continue
		}
		k := splitCPU(f[0], cpus)
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			rs.add(k, f[i+1], v)
		}
	}
	return other, sc.Err()
}

// splitCPU splits "BenchmarkX/y-2" into its name and GOMAXPROCS. Without a
// suffix (GOMAXPROCS 1 gets none) the CPU count is 1.
func splitCPU(name string, cpus []int) key {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil && n > 1 && slices.Contains(cpus, n) {
			return key{name[:i], n}
		}
	}
	return key{name, 1}
}
