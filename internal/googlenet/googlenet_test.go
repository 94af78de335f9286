package googlenet

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestEmulatorRoutesEveryGoogleURL(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	n, err := New(u.Host, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{TokenURL, RevokeURL, CertsURL, PeopleURL + "v1/people/me?personFields=names", AuthURL + "?a=b"} {
		resp, err := n.HTTPClient().Get(target)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		resp.Body.Close()
	}
	want := []string{"GET /token", "GET /revoke", "GET /oauth2/v3/certs", "GET /v1/people/me?personFields=names", "GET /o/oauth2/v2/auth?a=b"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("emulator saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEmulatorLeavesOtherHostsAlone(t *testing.T) {
	hit := false
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer other.Close()
	n, err := New("127.0.0.1:1", Options{}) // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	resp, err := n.HTTPClient().Get(other.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !hit {
		t.Error("request to a non-Google host was not sent to that host")
	}
}

func TestBrowserURLs(t *testing.T) {
	g, _ := New("", Options{})
	if g.GISScriptURL() != GISURL || g.Emulated() {
		t.Errorf("Google: GIS %q emulated %v", g.GISScriptURL(), g.Emulated())
	}
	e, _ := New("127.0.0.1:9022", Options{})
	if got := e.GISScriptURL(); got != "http://127.0.0.1:9022/gsi/client" {
		t.Errorf("emulator GIS URL = %q", got)
	}
	if got := e.PeopleAPIBase(); got != "http://127.0.0.1:9022/" {
		t.Errorf("emulator People base = %q", got)
	}
}

func TestBadEmulatorHost(t *testing.T) {
	for _, h := range []string{"localhost", "http://x:1", ":9022", "x:0", "x:99999", "x:y"} {
		if _, err := New(h, Options{}); err == nil {
			t.Errorf("New(%q) accepted a malformed host", h)
		}
	}
}
