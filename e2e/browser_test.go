package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"example.com/signin/internal/browsertest"
)

// scenarioTimeout bounds each scenario, so that a flow stuck on a selector
// that never appears fails with a screenshot instead of hanging the run.
const scenarioTimeout = 60 * time.Second

// browser is one headless Chromium with a fresh profile, and its first tab.
type browser struct {
	t *testing.T
	// tab is the first tab's chromedp context. It lives as long as the
	// test; scenarios derive their timeout contexts from it.
	tab     context.Context
	console *consoleLog
	output  *syncBuffer // Chromium's own stdout and stderr

	emuURL string // the emulator's base URL: its popups are found by it
	appURL string // the app's base URL

	mu     sync.Mutex
	popups int // popup windows opened by the tab so far
}

// newBrowser starts Chromium for the test, or skips the test (loudly) when
// there is none, unless SIGNIN_REQUIRE_BROWSER=1 says it must run.
func newBrowser(t *testing.T, s *stack) *browser {
	t.Helper()
	path := browsertest.Chromium(t)

	b := &browser{t: t, console: &consoleLog{}, output: &syncBuffer{}, emuURL: s.EmuURL, appURL: s.AppURL}
	// A fresh profile, removed by closeBrowser rather than t.TempDir: its
	// removal must wait until Chromium's helper processes are gone.
	profile, err := os.MkdirTemp("", "signin-e2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := browsertest.Options(path, profile,
		// No --disable-popup-blocking: the tests click with real input
		// events, so Chromium's popup blocker lets GIS's popups through
		// exactly when a person's browser would, and a page that opens its
		// popup without a user gesture fails here as it would for users.
		// A desktop-sized window, for screenshots a person would see.
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(b.output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	b.tab = tab
	b.listen(tab, "tab")
	chromedp.ListenTarget(tab, func(ev any) {
		if ev, ok := ev.(*target.EventTargetCreated); ok && ev.TargetInfo.Type == "page" && ev.TargetInfo.OpenerID != "" {
			b.mu.Lock()
			b.popups++
			b.mu.Unlock()
		}
	})
	// The first Run starts the browser; it must not carry a timeout, since
	// the browser lives as long as the context of its first Run.
	closeBrowser := func() {
		// A graceful close lets Chromium end its helper processes and
		// stop writing to the profile; the cancels then make sure.
		ctx, cancel := context.WithTimeout(tab, 10*time.Second)
		_ = chromedp.Cancel(ctx)
		cancel()
		cancelTab()
		cancelAlloc()
		removeProfile(t, profile)
	}
	if err := chromedp.Run(tab); err != nil {
		closeBrowser()
		t.Fatalf("start chromium: %v\n%s", err, b.output.String())
	}
	t.Cleanup(closeBrowser)
	// Registered after the cancel, so it runs first, while the tab is
	// still there to be photographed.
	t.Cleanup(func() { b.saveArtefacts() })
	return b
}

// removeProfile removes Chromium's profile directory. A helper process
// that outlived the browser by a moment may still write a file into it
// while it is being removed, so a failed removal is tried again for a
// little while.
func removeProfile(t *testing.T, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.RemoveAll(dir)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("cannot remove Chromium's profile %s: %v", dir, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// popupCount is the number of popup windows the tab has opened.
func (b *browser) popupCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.popups
}

// scenario returns a context for one scenario's browser actions, bounded
// by scenarioTimeout.
func (b *browser) scenario() context.Context {
	ctx, cancel := context.WithTimeout(b.tab, scenarioTimeout)
	b.t.Cleanup(cancel)
	return ctx
}

// listen records the console messages, uncaught exceptions and log entries
// (where Chromium reports CSP violations and failed loads) of a target.
func (b *browser) listen(ctx context.Context, name string) {
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, remoteString(a))
			}
			url := ""
			if ev.StackTrace != nil && len(ev.StackTrace.CallFrames) > 0 {
				url = ev.StackTrace.CallFrames[0].URL
			}
			level := string(ev.Type)
			if ev.Type == runtime.APITypeAssert {
				level = "error"
			}
			b.console.add(consoleEntry{Target: name, Kind: "console", Level: level, URL: url, Text: strings.Join(args, " ")})
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.console.add(consoleEntry{Target: name, Kind: "exception", Level: "error", URL: d.URL, Text: text})
		case *log.EventEntryAdded:
			e := ev.Entry
			b.console.add(consoleEntry{Target: name, Kind: "log/" + string(e.Source), Level: string(e.Level), URL: e.URL, Text: e.Text})
		}
	})
}

// remoteString renders a console argument for the log.
func remoteString(o *runtime.RemoteObject) string {
	switch {
	case o == nil:
		return ""
	case len(o.Value) > 0:
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	case o.Description != "":
		return o.Description
	default:
		return string(o.Type)
	}
}

// consoleEntry is one message from a page.
type consoleEntry struct {
	Target string // "tab" or "popup N"
	Kind   string // console, exception, log/<source>
	Level  string // error, warning, info, log, debug, verbose
	URL    string
	Text   string
}

func (e consoleEntry) String() string {
	return fmt.Sprintf("[%s] %s %s: %s (%s)", e.Target, e.Kind, e.Level, e.Text, e.URL)
}

// consoleLog collects every target's entries; listeners run on chromedp's
// goroutines.
type consoleLog struct {
	mu      sync.Mutex
	entries []consoleEntry
}

func (c *consoleLog) add(e consoleEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, e)
}

func (c *consoleLog) all() []consoleEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]consoleEntry(nil), c.entries...)
}

// assertNoConsoleErrors fails the test for each error-level console
// message, uncaught exception or log entry (CSP violations, failed loads)
// seen so far on any page of the test, the app's and the emulator's popups
// alike, and logs the warnings.
func (b *browser) assertNoConsoleErrors() {
	b.t.Helper()
	for _, e := range b.console.all() {
		switch e.Level {
		case "error":
			b.t.Errorf("browser console error: %s", e)
		case "warning":
			b.t.Logf("browser console warning: %s", e)
		}
	}
}

// saveArtefacts saves, for a failed test, a full-page screenshot of the tab
// and everything the pages logged, under testdata-out/browser/<test>/.
func (b *browser) saveArtefacts() {
	if !b.t.Failed() {
		return
	}
	dir, err := artefactDir(b.t.Name())
	if err != nil {
		b.t.Logf("cannot save browser artefacts: %v", err)
		return
	}
	var lines []string
	for _, e := range b.console.all() {
		lines = append(lines, e.String())
	}
	consolePath := filepath.Join(dir, "console.log")
	if err := os.WriteFile(consolePath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.t.Logf("cannot save the console log: %v", err)
	} else {
		b.t.Logf("browser console log saved to %s", consolePath)
	}
	if out := b.output.String(); out != "" {
		_ = os.WriteFile(filepath.Join(dir, "chromium.log"), []byte(out), 0o644)
	}
	// The scenario's context may have timed out: use a fresh one.
	ctx, cancel := context.WithTimeout(b.tab, 10*time.Second)
	defer cancel()
	var url string
	_ = chromedp.Run(ctx, chromedp.Location(&url))
	shot := filepath.Join(dir, "screenshot.png")
	if err := b.screenshotTo(ctx, shot); err != nil {
		b.t.Logf("cannot save a screenshot: %v", err)
		return
	}
	b.t.Logf("browser screenshot of %s saved to %s", url, shot)
}

// screenshotTo saves a full-page PNG screenshot of the tab.
func (b *browser) screenshotTo(ctx context.Context, path string) error {
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// saveScreenshot saves a screenshot the README shows, under
// testdata-out/browser/screenshots/, and logs where.
func (b *browser) saveScreenshot(ctx context.Context, name string) {
	b.t.Helper()
	dir, err := artefactDir("screenshots")
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := b.screenshotTo(ctx, path); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot saved to %s", path)
}

// unsafePathChars are those a test name may hold that a directory name
// should not.
var unsafePathChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// artefactDir returns testdata-out/browser/<name> at the module root,
// created; name is made safe for a path.
func artefactDir(name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	safe := unsafePathChars.ReplaceAllString(name, "_")
	dir := filepath.Join(root, "testdata-out", "browser", safe)
	return dir, os.MkdirAll(dir, 0o755)
}

// run runs actions in the tab, failing the test with what was being done.
func (b *browser) run(ctx context.Context, what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v%s", what, err, b.pageSummary())
	}
}

// pageSummary describes the tab's current state for a failure message.
func (b *browser) pageSummary() string {
	ctx, cancel := context.WithTimeout(b.tab, 5*time.Second)
	defer cancel()
	var s struct {
		URL, State, Error string
	}
	err := chromedp.Run(ctx, chromedp.Evaluate(`({
		URL: location.href,
		State: (document.body && document.body.dataset.state) || "",
		Error: ((document.querySelector("#error") || {}).textContent || "").trim(),
	})`, &s))
	if err != nil {
		return fmt.Sprintf("\n(page state unavailable: %v)", err)
	}
	return fmt.Sprintf("\npage %s: body[data-state=%q], #error %q", s.URL, s.State, s.Error)
}

// navigate loads url in the tab and waits for the page's JavaScript to
// settle in state want.
func (b *browser) navigate(ctx context.Context, url, want string) {
	b.t.Helper()
	b.run(ctx, "navigate to "+url, chromedp.Navigate(url))
	b.waitState(ctx, want)
}

// waitState waits until the page's body[data-state] is want, failing fast
// if the page shows its error state instead.
func (b *browser) waitState(ctx context.Context, want string) {
	b.t.Helper()
	b.waitJS(ctx, b.tab, fmt.Sprintf("body[data-state=%q]", want), fmt.Sprintf(`(() => {
		const s = document.body && document.body.dataset.state;
		if (s === %[1]q) return "ok";
		if (s === "error" && %[1]q !== "error") return "the page is in its error state: " + ((document.querySelector("#error") || {}).textContent || "").trim();
		return "";
	})()`, want))
}

// waitJS evaluates the expression in the target of tctx until it returns
// a non-empty string: "ok" when the awaited condition holds, anything else
// is a failure to report. Evaluation errors (a navigation destroying the
// page's JavaScript context mid-wait) are retried. It polls, as chromedp's
// own WaitVisible does: there is no event for "the page's state changed".
func (b *browser) waitJS(ctx, tctx context.Context, what, expr string) {
	b.t.Helper()
	if err := pollJS(ctx, tctx, expr); err != nil {
		b.t.Fatalf("waiting for %s: %v%s", what, err, b.pageSummary())
	}
}

// pollJS is waitJS returning an error.
func pollJS(ctx, tctx context.Context, expr string) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		var res string
		// Each evaluation is bounded: one stuck on a page being torn down
		// must not eat the scenario's whole budget.
		ectx, cancel := context.WithTimeout(tctx, 5*time.Second)
		stop := context.AfterFunc(ctx, cancel)
		err := chromedp.Run(ectx, chromedp.Evaluate(expr, &res))
		stop()
		cancel()
		switch {
		case err != nil:
			lastErr = err
		case res == "ok":
			return nil
		case res != "":
			return errors.New(res)
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%w (last evaluation error: %v)", ctx.Err(), lastErr)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// text returns the trimmed text content of the element sel in the tab.
func (b *browser) text(ctx context.Context, sel string) string {
	b.t.Helper()
	var s string
	b.run(ctx, "read "+sel, chromedp.WaitReady(sel, chromedp.ByQuery), chromedp.TextContent(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// attr returns an attribute of the element sel in the tab ("" if absent).
func (b *browser) attr(ctx context.Context, sel, name string) string {
	b.t.Helper()
	var v string
	var ok bool
	b.run(ctx, "read "+sel+"["+name+"]", chromedp.WaitReady(sel, chromedp.ByQuery), chromedp.AttributeValue(sel, name, &v, &ok, chromedp.ByQuery))
	return v
}

// click clicks the element sel in the tab with a real mouse event, once it
// is visible.
func (b *browser) click(ctx context.Context, sel string) {
	b.t.Helper()
	b.run(ctx, "click "+sel, chromedp.Click(sel, chromedp.ByQuery))
}

// popupResult says what the emulator's popup asked for.
type popupResult struct {
	// Chose is set when the account chooser was shown and an account
	// picked (or added).
	Chose bool
	// Consented is set when a consent page was shown and approved.
	Consented bool
}

// account is a test account to pick in the emulator's chooser; a Name
// means "add it with the add-account form if it is not listed".
type account struct {
	Email, Name string
	// Untick are the scopes whose box the user unticks on the consent
	// page (Google's granular consent) before approving.
	Untick []string
}

// popup clicks sel in the tab, which must open the emulator's popup (the
// account chooser and consent of GIS), then plays the user in it: picks
// acct, adds it first if it is not listed and has a Name, and approves the
// consent page if one is shown, until the popup closes itself.
func (b *browser) popup(ctx context.Context, sel string, acct account) popupResult {
	b.t.Helper()
	// WaitNewTarget must be listening before the click opens the window.
	newTarget := chromedp.WaitNewTarget(ctx, func(i *target.Info) bool {
		return strings.HasPrefix(i.URL, b.emuURL+"/")
	})
	b.click(ctx, sel)
	var id target.ID
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for id == "" {
		select {
		case id = <-newTarget:
		case <-ctx.Done():
			b.t.Fatalf("clicking %s opened no emulator popup: %v%s", sel, ctx.Err(), b.pageSummary())
		case <-tick.C:
			// A popup that could not open (blocked, say) puts the page in
			// its error state: fail now rather than at the timeout.
			var state string
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := chromedp.Run(ectx, chromedp.Evaluate(`(document.body && document.body.dataset.state) || ""`, &state))
			cancel()
			if err == nil && state == "error" {
				b.t.Fatalf("clicking %s opened no emulator popup%s", sel, b.pageSummary())
			}
		}
	}

	gone := make(chan struct{})
	var once sync.Once
	lctx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	chromedp.ListenTarget(lctx, func(ev any) {
		if ev, ok := ev.(*target.EventTargetDestroyed); ok && ev.TargetID == id {
			once.Do(func() { close(gone) })
		}
	})
	pctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(id))
	defer cancel()
	b.mu.Lock()
	name := fmt.Sprintf("popup %d", b.popups)
	b.mu.Unlock()
	b.listen(pctx, name)
	// Attach with the popup's own context: chromedp ties the target's event
	// loop to the context of the first Run, so it must not be a short one.
	if err := chromedp.Run(pctx); err != nil {
		b.t.Fatalf("attach to the emulator popup: %v", err)
	}

	res, err := driveEmulator(ctx, pctx, gone, "", acct)
	if err != nil {
		var url string
		uctx, ucancel := context.WithTimeout(pctx, 2*time.Second)
		_ = chromedp.Run(uctx, chromedp.Location(&url))
		ucancel()
		b.t.Fatalf("emulator popup (%s, at %s): %v%s", name, url, err, b.pageSummary())
	}
	return res
}

// unfoldAddAccount opens the chooser's "Use another account" <details>,
// which folds the add-account form, by clicking its summary as a person
// would; a click on an open one would fold it again.
func unfoldAddAccount() chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var open bool
		if err := chromedp.Evaluate(`!!document.querySelector("details:has(#add-account)[open]")`, &open).Do(ctx); err != nil {
			return err
		}
		if open {
			return nil
		}
		return chromedp.Click(`details:has(#add-account) > summary`, chromedp.ByQuery).Do(ctx)
	})
}

// emulatorStateJS says which step of the emulator's flow a page shows (see
// the emulator's package doc for its pages): consent, the chooser with the
// account, the chooser without it, (in redirect mode) the app again, or
// "error: ..." for the emulator's error page and a popup that lost its
// opener.
const emulatorStateJS = `(() => {
	if (%[1]q !== "" && location.origin === %[1]q) return "home";
	if (document.readyState !== "complete" || !document.body) return "";
	const text = (sel) => ((document.querySelector(sel) || {}).textContent || "").trim();
	const page = document.body.dataset.page;
	if (page === "error") return "error: the emulator says " + text("#error-code") + ": " + text("#error-description");
	const noOpener = document.querySelector("#emu-no-opener");
	if (noOpener && !noOpener.hidden) return "error: " + text("#emu-no-opener");
	if (document.querySelector("#approve")) return "consent";
	if (document.querySelector(%[2]q)) return "account";
	if (document.querySelector("#add-account")) return "add";
	return "";
})()`

// driveEmulator plays the user on the emulator's pages in the target of tctx: in a
// popup until it closes (gone), or, in redirect mode (gone nil), until the
// target is back at the home origin. It picks acct, adds it first if it is
// not listed and has a Name, and approves consent if asked. Each step is
// done at most once, so that a click racing the navigation it causes is not
// repeated on the next page.
func driveEmulator(ctx, tctx context.Context, gone <-chan struct{}, home string, acct account) (popupResult, error) {
	var res popupResult
	// A command sent to a popup that closes meanwhile is never answered:
	// end those waits when the popup goes.
	tctx, cancel := context.WithCancel(tctx)
	defer cancel()
	if gone != nil {
		go func() {
			select {
			case <-gone:
				cancel()
			case <-tctx.Done():
			}
		}()
	}
	accountSel := fmt.Sprintf("button.account[data-email=%q]", acct.Email)
	stateJS := fmt.Sprintf(emulatorStateJS, home, accountSel)
	added := false
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-gone:
			return res, nil
		case <-ctx.Done():
			return res, fmt.Errorf("the emulator's flow did not finish: %w (chose account: %v, consented: %v)", ctx.Err(), res.Chose, res.Consented)
		case <-tick.C:
		}
		var state string
		ectx, cancel := context.WithTimeout(tctx, 5*time.Second)
		err := chromedp.Run(ectx, chromedp.Evaluate(stateJS, &state))
		cancel()
		if err != nil {
			continue // navigating, or closing: look again
		}
		var action chromedp.Action
		switch {
		case state == "home" && (res.Chose || added):
			return res, nil
		case state == "consent" && !res.Consented:
			res.Consented = true
			var steps chromedp.Tasks
			for _, s := range acct.Untick {
				steps = append(steps, chromedp.Click(fmt.Sprintf(`input[name="emu_scope"][value=%q]:checked`, s), chromedp.ByQuery))
			}
			action = append(steps, chromedp.Click("#approve", chromedp.ByQuery))
		case state == "account" && !res.Chose:
			res.Chose = true
			action = chromedp.Click(accountSel, chromedp.ByQuery)
		case state == "add" && !res.Chose && !added:
			if acct.Name == "" {
				return res, fmt.Errorf("account %s is not in the chooser", acct.Email)
			}
			added = true
			action = chromedp.Tasks{
				unfoldAddAccount(),
				chromedp.SendKeys(`#add-account input[name="email"]`, acct.Email, chromedp.ByQuery),
				chromedp.SendKeys(`#add-account input[name="name"]`, acct.Name, chromedp.ByQuery),
				chromedp.Click(`#add-account button[type="submit"]`, chromedp.ByQuery),
			}
		case strings.HasPrefix(state, "error: "):
			return res, errors.New(strings.TrimPrefix(state, "error: "))
		default:
			continue
		}
		actx, cancel := context.WithTimeout(tctx, 10*time.Second)
		err = chromedp.Run(actx, action)
		cancel()
		if err != nil {
			select {
			case <-gone:
				return res, nil // the click closed the popup before chromedp heard back
			default:
			}
			return res, fmt.Errorf("%s step: %w", state, err)
		}
	}
}
