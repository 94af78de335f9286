// Package browsertest starts Debian's headless Chromium for the project's
// browser tests, with the flags this machine needs: it has no network, and
// without them Chromium keeps trying to reach Google (QUIC, component
// updates, sync, background fetches). One list, so the e2e tests and the
// emulator's GIS tests run the same browser.
package browsertest

import (
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// EnvRequire names the variable that turns a missing browser from a skip
// into a failure (CI sets it to 1).
const EnvRequire = "SIGNIN_REQUIRE_BROWSER"

// Chromium returns the path of the chromium binary. Without one it skips
// tb, saying loudly that the browser tests did not run, or fails it when
// SIGNIN_REQUIRE_BROWSER=1.
func Chromium(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium not found on PATH: the real-browser tests cannot run. Install it (sudo apt-get install chromium) to run them."
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg + " " + EnvRequire + "=1, so this is a failure.")
		}
		tb.Skip("SKIPPED, NOT PASSED: " + msg)
	}
	return path
}

// Options are the allocator options for Chromium at path with a fresh
// profile directory, followed by extra. The flags are listed rather than
// taken from chromedp.DefaultExecAllocatorOptions so that each one is
// deliberate.
func Options(path, profile string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	return append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
	}, extra...)
}
