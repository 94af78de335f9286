// Package e2e holds the end-to-end tests: the real signin, offline-fetch and
// google-emulator binaries, started as a user starts them, and Debian's
// headless Chromium (driven with chromedp) clicking through every sign-in
// flow, including the emulator's popups.
//
// The package has no code of its own beyond this comment; everything is in
// its _test.go files. Run it with
//
//	go test -race ./e2e/ -v -count=1
//
// Without a chromium binary on PATH the browser tests skip with a loud
// message, unless SIGNIN_REQUIRE_BROWSER=1 (CI) turns that into a failure.
// Screenshots and console logs go to testdata-out/browser/ at the module root.
package e2e
