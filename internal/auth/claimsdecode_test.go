package auth

import (
	"reflect"
	"strings"
	"testing"
)

// googlePayload is the payload of an ID token as Google issues them.
const googlePayload = `{"iss":"https://accounts.google.com","azp":"1234567890-abc.apps.googleusercontent.com",` +
	`"aud":"1234567890-abc.apps.googleusercontent.com","sub":"110169484474386276334","hd":"example.com",` +
	`"email":"ada@example.com","email_verified":true,"nbf":1733500000,"name":"Ada Lovelace",` +
	`"picture":"https://lh3.googleusercontent.com/a/ACg8oc=s96-c","given_name":"Ada","family_name":"Lovelace",` +
	`"iat":1733500300,"exp":1733503900,"jti":"abcdef0123456789"}`

func TestClaimNamesMatchFields(t *testing.T) {
	typ := reflect.TypeFor[tokenClaims]()
	if typ.NumField() != len(claimNames) {
		t.Fatalf("tokenClaims has %d fields, claimNames %d names", typ.NumField(), len(claimNames))
	}
	var tc tokenClaims
	fields := tc.fields()
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("json"); tag != claimNames[i] {
			t.Errorf("field %d is %q in JSON, claimNames says %q", i, tag, claimNames[i])
		}
		if got, want := reflect.ValueOf(fields[i]).Pointer(), reflect.ValueOf(&tc).Elem().Field(i).Addr().Pointer(); got != want {
			t.Errorf("fields()[%d] is not field %s", i, typ.Field(i).Name)
		}
	}
}

// TestPlainClaimNames: the fast way is taken for Google's payloads and
// refused for every name encoding/json would match other than exactly.
func TestPlainClaimNames(t *testing.T) {
	for _, tc := range []struct {
		payload string
		plain   bool
	}{
		{googlePayload, true},
		{`{}`, true},
		{`{"JTI":"x","Custom":{"EXP":1,"exp":[1,"EXP"]}}`, true}, // other names, and nested ones, are not claims
		{`{"sub":"1","note":"\"EXP\": 1, \"exp"}`, true},         // names inside a value are not names
		{`{"exp":1,"EXP":9999999999}`, false},
		{`{"Exp":1}`, false},
		{`{"exp":1,"exp":2}`, false},                   // a claim twice
		{`{"\u0065xp":1}`, false},                      // an escape
		{`{"ſub":"1"}`, false},                         // folds into "sub"
		{`{"sub":"1","x":[{"a":1}],"SUB":"2"}`, false}, // after a nested value
		{`["exp"]`, false},
		{``, false},
		{`{"exp`, false},
	} {
		if got := plainClaimNames([]byte(tc.payload)); got != tc.plain {
			t.Errorf("plainClaimNames(%s) = %v, want %v", tc.payload, got, tc.plain)
		}
	}
}

// TestDecodeClaimsExactNames: a claim is read under its exact name only,
// whichever the way.
func TestDecodeClaimsExactNames(t *testing.T) {
	for _, payload := range []string{
		`{"exp":1,"EXP":9999999999}`,
		`{"EXP":9999999999,"exp":1}`,
		`{"exp":1,"Exp":9999999999,"sub":"1"}`,
	} {
		var tc tokenClaims
		err := decodeClaims([]byte(payload), &tc)
		if err != nil || tc.Exp.v != 1 || !tc.Exp.ok {
			t.Errorf("%s: exp %d (present %v), %v; want 1", payload, tc.Exp.v, tc.Exp.ok, err)
		}
	}
	var tc tokenClaims
	err := decodeClaims([]byte(`{"EXP":9999999999,"ſub":"1"}`), &tc)
	if err != nil || tc.Exp.ok || tc.Sub != "" {
		t.Errorf("EXP and ſub read as exp %v and sub %q (%v)", tc.Exp.ok, tc.Sub, err)
	}
}

// FuzzDecodeClaims: wherever decodeClaims takes the fast way, it gives what
// the exact way gives.
func FuzzDecodeClaims(f *testing.F) {
	for _, seed := range []string{
		googlePayload,
		`{"exp":1.5,"iat":1e3,"nbf":null,"sub":5}`,
		`{"email_verified":"true","aud":["a"],"x":1e400}`,
		`{"exp":"1","iat":-0,"nbf":9223372036854775807}`,
		`{"sub":"1","sub":null}`,
		`{"name":"\ud800","picture":{"a":[1,{"b":"}"}]}}`,
		`{"exp":1}{"exp":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if !plainClaimNames(payload) {
			return
		}
		var fast, exact tokenClaims
		errFast := decodeClaimsFast(payload, &fast)
		errExact := decodeClaimsExact(payload, &exact)
		if (errFast == nil) != (errExact == nil) {
			t.Fatalf("%q: fast way %v, exact way %v", payload, errFast, errExact)
		}
		if errFast == nil && !reflect.DeepEqual(fast, exact) {
			t.Fatalf("%q: fast way %+v, exact way %+v", payload, fast, exact)
		}
		if errFast != nil && strings.Contains(errFast.Error(), "is not a") != strings.Contains(errExact.Error(), "is not a") {
			t.Fatalf("%q: fast way %v, exact way %v", payload, errFast, errExact)
		}
	})
}
