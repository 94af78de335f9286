package grant_test

import (
	"slices"
	"strings"
	"testing"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

func TestParseScopes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: "contacts.readonly", want: []string{grant.ScopeContactsReadOnly}},
		{in: "contacts.readonly, https://www.googleapis.com/auth/contacts.readonly calendar.readonly",
			want: []string{grant.ScopeContactsReadOnly, "https://www.googleapis.com/auth/calendar.readonly"}},
		{in: "https://www.googleapis.com/auth/drive.file", want: []string{"https://www.googleapis.com/auth/drive.file"}},
		{in: "email", bad: true},
		{in: "contacts.readonly,openid", bad: true},
		{in: "https://www.googleapis.com/auth/userinfo.profile", bad: true},
		{in: "contacts\x00", bad: true},
		{in: "a\"b", bad: true},
	} {
		got, err := grant.ParseScopes(c.in)
		switch {
		case c.bad && signin.ErrorKind(err) != signin.EINVALID:
			t.Errorf("ParseScopes(%q) = %v, %v; want an EINVALID error", c.in, got, err)
		case !c.bad && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("ParseScopes(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// The scopes a record misses are the needed ones its grant does not hold,
// whichever spelling Google's answer used.
func TestMissingScopes(t *testing.T) {
	needed := []string{grant.ScopeContactsReadOnly, "https://www.googleapis.com/auth/calendar.readonly"}
	rec := &grant.Record{Scopes: []string{"openid", "email", "https://www.googleapis.com/auth/userinfo.profile", grant.ScopeContactsReadOnly}}
	if got := rec.MissingScopes(needed); !slices.Equal(got, needed[1:]) {
		t.Errorf("missing %v, want %v", got, needed[1:])
	}
	if got := rec.GrantedScopes(); strings.Join(got, " ") != "openid "+grant.ScopeEmail+" "+grant.ScopeProfile+" "+grant.ScopeContactsReadOnly {
		t.Errorf("granted %v", got)
	}
	var none *grant.Record
	if got := none.MissingScopes(needed); !slices.Equal(got, needed) {
		t.Errorf("a nil record misses %v, want all of %v", got, needed)
	}
	if got := rec.MissingScopes(nil); got != nil {
		t.Errorf("nothing needed, yet missing %v", got)
	}
}
