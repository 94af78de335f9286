package scale

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// watchPeakRSS samples the process's VmHWM (its peak resident set size)
// from /proc/<pid>/status every few milliseconds until stop is closed, and
// then sends the largest value seen, in bytes.
//
// getrusage's ru_maxrss for the child would be simpler and is wrong here:
// Linux folds the high-water mark of the memory image a process had before
// exec into it, and a child forked by Go starts out sharing its parent's,
// so the child's ru_maxrss is at least the parent's peak RSS (this
// process's, which hosts the emulator with every user). VmHWM belongs to
// the image exec created. A sample can miss growth in the last few
// milliseconds before exit, when offline-fetch only prints its summary.
func watchPeakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	go func() {
		var peak int64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, vmHWM(path))
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// vmHWM returns the VmHWM line of a /proc status file in bytes, or 0.
func vmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v) // "12345", "kB"
			if len(f) == 2 && string(f[1]) == "kB" {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
