package auth

import (
	"encoding/base64"
	"fmt"
	"testing"
)

func TestHeaderCache(t *testing.T) {
	var c headerCache
	seg := func(kid string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + kid + `","typ":"JWT"}`))
	}
	token := func(header string) string { return header + ".e30.c2ln" } // payload {}, signature "sig"

	kid, err := parseToken(token(seg("k1")), &c)
	if err != nil || kid != "k1" {
		t.Fatalf("good header: %q, %v", kid, err)
	}
	if got, ok := c.get(seg("k1")); !ok || got != "k1" {
		t.Fatalf("a header that passed was not remembered")
	}

	// A cached good header lets nothing else through: other headers are
	// other keys, checked in full.
	for _, bad := range []string{
		`{"alg":"ES256","kid":"k1","typ":"JWT"}`,
		`{"alg":"none","kid":"k1","typ":"JWT"}`,
		`{"alg":"RS256","kid":"k1","typ":"JWT","crit":["exp"]}`,
	} {
		h := base64.RawURLEncoding.EncodeToString([]byte(bad))
		if _, err := parseToken(token(h), &c); err == nil {
			t.Errorf("header %s accepted after a good one was cached", bad)
		}
		if _, ok := c.get(h); ok {
			t.Errorf("refused header %s was cached", bad)
		}
	}

	// Bounded: many distinct good headers never grow it past the limit.
	for i := range 10 * maxCachedHeaders {
		if _, err := parseToken(token(seg(fmt.Sprint("kid-", i))), &c); err != nil {
			t.Fatal(err)
		}
		if n := len(c.m); n > maxCachedHeaders {
			t.Fatalf("%d cached headers, limit %d", n, maxCachedHeaders)
		}
	}
}
