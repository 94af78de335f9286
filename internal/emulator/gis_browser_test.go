package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"example.com/signin/internal/browsertest"

	"example.com/signin/internal/emulator"
)

// The GIS stand-in is JavaScript: only a browser shows that its popups,
// postMessage, origin checks, cookies and redirects work under a strict CSP
// and COOP same-origin-allow-popups, as an app page serves them. This test
// drives headless Chromium through each flow against a minimal app page.

// appJS is the test app's script: it wires each GIS flow to a button and
// writes what GIS handed it into #out.
const appJS = `'use strict';
const cid = document.body.dataset.clientId;
const out = document.getElementById('out');
function show(kind, value) {
  out.textContent = JSON.stringify(value);
  out.setAttribute('data-kind', kind);
}
if (document.body.dataset.mode === 'redirect') {
  google.accounts.id.initialize({client_id: cid, ux_mode: 'redirect', login_uri: location.origin + '/login'});
} else {
  google.accounts.id.initialize({client_id: cid, callback: (r) => show('id', r), nonce: 'page-nonce'});
}
google.accounts.id.renderButton(document.getElementById('gsi'), {text: 'continue_with', width: 260});
google.accounts.id.prompt((n) => { if (n.isNotDisplayed()) { document.body.setAttribute('data-prompt', n.getNotDisplayedReason()); } });
const codeClient = google.accounts.oauth2.initCodeClient({
  client_id: cid, scope: 'openid email profile', ux_mode: 'popup', state: 'st-1',
  callback: (r) => show('code', r), error_callback: (e) => show('error', e),
});
document.getElementById('code').addEventListener('click', () => codeClient.requestCode());
const tokenClient = google.accounts.oauth2.initTokenClient({
  client_id: cid, scope: 'openid email profile',
  callback: (r) => show('token', {r: r, all: google.accounts.oauth2.hasGrantedAllScopes(r, 'email', 'profile'),
    any: google.accounts.oauth2.hasGrantedAnyScope(r, 'https://www.googleapis.com/auth/drive')}),
  error_callback: (e) => show('error', e),
});
document.getElementById('token').addEventListener('click', () => tokenClient.requestAccessToken());
document.getElementById('revoke').addEventListener('click', () => {
  google.accounts.oauth2.revoke(document.body.dataset.token, (r) => show('revoke', r));
});
`

var appPage = template.Must(template.New("app").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>GIS test app</title>
<script src="{{.Emu}}/gsi/client"></script>
<script src="/app.js" defer></script>
</head>
<body data-client-id="{{.ClientID}}" data-mode="{{.Mode}}" data-token="{{.Token}}">
<div id="gsi"></div>
<button id="code" type="button">code</button>
<button id="token" type="button">token</button>
<button id="revoke" type="button">revoke</button>
<pre id="out"></pre>
</body></html>`))

// testApp serves the page with the headers a GIS app needs. The page is
// reached at localhost, the emulator at 127.0.0.1: different sites, as an
// app and Google are.
func testApp(t *testing.T, emuURL string) (appURL string, logins chan url.Values) {
	t.Helper()
	logins = make(chan url.Values, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, appJS)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", fmt.Sprintf("default-src 'self'; script-src 'self' %[1]s; style-src 'self' %[1]s; img-src 'self' %[1]s; connect-src 'self' %[1]s; frame-src %[1]s; form-action 'self'", emuURL))
		h.Set("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
		h.Set("Content-Type", "text/html; charset=utf-8")
		_ = appPage.Execute(w, map[string]string{"Emu": emuURL, "ClientID": demoID, "Mode": r.URL.Query().Get("mode"), "Token": r.URL.Query().Get("token")})
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		v := url.Values{"credential": {r.PostForm.Get("credential")}, "g_csrf_token": {r.PostForm.Get("g_csrf_token")}}
		if c, err := r.Cookie("g_csrf_token"); err == nil {
			v.Set("cookie", c.Value)
		}
		logins <- v
		fmt.Fprint(w, "<!doctype html><title>signed in</title><p id=signed-in>ok</p>")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return "http://localhost:" + u.Port(), logins
}

type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (c *consoleErrors) add(s string) {
	c.mu.Lock()
	c.msgs = append(c.msgs, s)
	c.mu.Unlock()
}

func (c *consoleErrors) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// watch records console errors, exceptions and CSP violations of a target.
func (c *consoleErrors) watch(ctx context.Context, name string) {
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			c.add(name + ": exception: " + ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				c.add(name + ": console.error: " + strings.Join(args, " "))
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				c.add(name + ": " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		}
	})
}

func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := browsertest.Chromium(t)
	// Not t.TempDir: Chromium's helpers may still write into the profile for
	// a moment after the browser is gone, which fails TempDir's cleanup.
	profile, err := os.MkdirTemp("", "emulator-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := browsertest.Options(path, profile, chromedp.Flag("disable-popup-blocking", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	if err := chromedp.Run(tab, chromedp.ActionFunc(func(ctx context.Context) error {
		return runtime.Enable().Do(ctx)
	})); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return tab
}

// inPopup runs actions in the popup that click opens from the tab, then
// waits for the popup to close itself, as it does once it has handed its
// answer to the opener.
func inPopup(t *testing.T, tab context.Context, errs *consoleErrors, click string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	opened := chromedp.WaitNewTarget(ctx, func(i *target.Info) bool { return i.Type == "page" && i.OpenerID != "" })
	if err := chromedp.Run(ctx, chromedp.Click(click, chromedp.ByQuery)); err != nil {
		t.Fatalf("click %s: %v", click, err)
	}
	var id target.ID
	select {
	case id = <-opened:
	case <-ctx.Done():
		t.Fatalf("no popup opened by %s", click)
	}
	closed := make(chan struct{})
	var once sync.Once
	chromedp.ListenTarget(tab, func(ev any) {
		if ev, ok := ev.(*target.EventTargetDestroyed); ok && ev.TargetID == id {
			once.Do(func() { close(closed) })
		}
	})
	// Cancelling this context closes the popup: it is left to close itself.
	popup, cancelPopup := chromedp.NewContext(tab, chromedp.WithTargetID(id))
	t.Cleanup(cancelPopup)
	errs.watch(popup, "popup")
	pctx, cancel2 := context.WithTimeout(popup, 20*time.Second)
	defer cancel2()
	if err := chromedp.Run(pctx, actions...); err != nil {
		t.Fatalf("in the popup: %v", err)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		var body string
		_ = chromedp.Run(pctx, chromedp.Text("body", &body, chromedp.ByQuery))
		t.Fatalf("the popup did not close itself; it shows:\n%s", body)
	}
}

// result waits for the app's #out to show a result of the given kind.
func result(t *testing.T, tab context.Context, kind string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	var text string
	if err := chromedp.Run(ctx,
		chromedp.WaitVisible(`#out[data-kind="`+kind+`"]`, chromedp.ByQuery),
		chromedp.Text("#out", &text, chromedp.ByQuery),
	); err != nil {
		var got string
		_ = chromedp.Run(tab, chromedp.Text("#out", &got, chromedp.ByQuery))
		t.Fatalf("waiting for a %s result: %v (page shows %q)", kind, err, got)
	}
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("%s result %q: %v", kind, text, err)
	}
}

func TestGISStandInInBrowser(t *testing.T) {
	tab := startChromium(t)
	e := newEnv(t, emulator.Config{})
	appURL, logins := testApp(t, e.srv.URL)
	errs := &consoleErrors{}
	errs.watch(tab, "app")
	open := func(query string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		if err := chromedp.Run(ctx, chromedp.Navigate(appURL+"/"+query), chromedp.WaitVisible("button.gsi-emu-button", chromedp.ByQuery)); err != nil {
			t.Fatalf("loading the app: %v", err)
		}
	}
	chooseAda := chromedp.Tasks{
		chromedp.WaitVisible(`button.account[data-email="ada@example.com"]`, chromedp.ByQuery),
		chromedp.Click(`button.account[data-email="ada@example.com"]`, chromedp.ByQuery),
	}
	approve := chromedp.Tasks{
		chromedp.WaitVisible("#approve", chromedp.ByQuery),
		chromedp.Click("#approve", chromedp.ByQuery),
	}

	t.Run("button renders", func(t *testing.T) {
		open("")
		var label, prompt string
		if err := chromedp.Run(tab,
			chromedp.Text("button.gsi-emu-button", &label, chromedp.ByQuery),
			chromedp.WaitVisible(`body[data-prompt]`, chromedp.ByQuery),
			chromedp.AttributeValue("body", "data-prompt", &prompt, nil, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(label) != "Continue with Google" || prompt != "opt_out_or_no_session" {
			t.Errorf("button %q, prompt %q", label, prompt)
		}
	})

	t.Run("code client popup", func(t *testing.T) {
		open("")
		inPopup(t, tab, errs, "#code", chooseAda, approve)
		var r map[string]string
		result(t, tab, "code", &r)
		if r["state"] != "st-1" || r["prompt"] != "consent" || !strings.Contains(r["scope"], "email") {
			t.Errorf("code response %v", r)
		}
		if tok := e.exchange(t, r["code"], "postmessage"); tok.status != 200 || tok.str("refresh_token") == "" {
			t.Errorf("exchanging the browser's code: %d %s", tok.status, tok.raw)
		}
	})

	t.Run("sign in with google popup", func(t *testing.T) {
		open("")
		// Ada consented to openid email profile above: no consent page now.
		inPopup(t, tab, errs, "button.gsi-emu-button", chooseAda)
		var r map[string]string
		result(t, tab, "id", &r)
		if r["select_by"] != "btn" {
			t.Errorf("select_by %q", r["select_by"])
		}
		c := claims(t, r["credential"])
		if c["sub"] != adaSub || c["nonce"] != "page-nonce" || c["aud"] != demoID {
			t.Errorf("credential claims %v", c)
		}
	})

	var accessToken string
	t.Run("token client popup", func(t *testing.T) {
		open("")
		inPopup(t, tab, errs, "#token", chooseAda)
		var r struct {
			R        map[string]any
			All, Any bool
		}
		result(t, tab, "token", &r)
		accessToken, _ = r.R["access_token"].(string)
		if !r.All || r.Any || r.R["token_type"] != "Bearer" || r.R["expires_in"] != float64(3599) {
			t.Errorf("token response %+v", r)
		}
		if p := e.people(t, accessToken); p.status != 200 {
			t.Errorf("people with the browser's token: %d", p.status)
		}
	})

	t.Run("revoke from the browser", func(t *testing.T) {
		open("?token=" + url.QueryEscape(accessToken))
		if err := chromedp.Run(tab, chromedp.Click("#revoke", chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		result(t, tab, "revoke", &r)
		if r["successful"] != true {
			t.Errorf("revoke: %v", r)
		}
		if p := e.people(t, accessToken); p.status != 401 {
			t.Errorf("people after revoke: %d", p.status)
		}
	})

	t.Run("popup closed", func(t *testing.T) {
		open("")
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		opened := chromedp.WaitNewTarget(ctx, func(i *target.Info) bool { return i.Type == "page" && i.OpenerID != "" })
		if err := chromedp.Run(ctx, chromedp.Click("#code", chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		popup, closePopup := chromedp.NewContext(tab, chromedp.WithTargetID(<-opened))
		if err := chromedp.Run(popup, chromedp.WaitVisible("button.account", chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		closePopup() // closes the window, as a user would
		var r map[string]string
		result(t, tab, "error", &r)
		if r["type"] != "popup_closed" {
			t.Errorf("error_callback got %v", r)
		}
	})

	t.Run("redirect mode", func(t *testing.T) {
		open("?mode=redirect")
		ctx, cancel := context.WithTimeout(tab, 20*time.Second)
		defer cancel()
		// Grace has never signed in: chooser, consent, then the form post.
		if err := chromedp.Run(ctx,
			chromedp.Click("button.gsi-emu-button", chromedp.ByQuery),
			chromedp.WaitVisible(`button.account[data-email="grace@example.com"]`, chromedp.ByQuery),
			chromedp.Click(`button.account[data-email="grace@example.com"]`, chromedp.ByQuery),
			approve,
			chromedp.WaitVisible("#signed-in", chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		v := <-logins
		if c := claims(t, v.Get("credential")); c["sub"] != graceSub {
			t.Errorf("credential for %v, want Grace", c["sub"])
		}
		if v.Get("credential") == "" || v.Get("g_csrf_token") == "" || v.Get("cookie") != v.Get("g_csrf_token") {
			t.Errorf("login_uri got credential %t, g_csrf_token %q, cookie %q", v.Get("credential") != "", v.Get("g_csrf_token"), v.Get("cookie"))
		}
	})

	if got := errs.list(); len(got) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(got, "\n"))
	}
}
