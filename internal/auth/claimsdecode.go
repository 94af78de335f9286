package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// How a token's payload becomes the claims checkClaims reads.
//
// JWT claim names are case-sensitive (RFC 7519), and a verifier must read
// "exp", never "EXP". encoding/json fills a struct's fields without regard
// to case (and folds "ſ" into "s", "K" into "k"), so a struct alone would
// read {"exp":1,"EXP":9999999999} as 9999999999. A map reads names exactly,
// but a map[string]any costs about 70 allocations per Google token, a third
// of a sign-in's (issue 19). So decodeClaims takes two ways to the same
// result:
//
//   - fast: when every top-level member name of the payload is plain ASCII
//     without escapes, none is another spelling of a claim read here, and no
//     claim read here appears twice (every token Google issues), the payload
//     is decoded straight into tokenClaims. For such names the struct's
//     matching is exact matching: no name other than a claim's own can fold
//     into a field, and a field is set at most once.
//   - exact: anything else is decoded into a map[string]json.RawMessage,
//     and each claim is read from it under its exact name into the same
//     typed fields.
//
// Both ways decode each claim's value with the same types, so they differ
// only in how names are matched; FuzzDecodeClaims checks that they agree.

// tokenClaims are the claims of an ID token that checkClaims reads, as
// the payload spells them. Absent and null are the zero value.
type tokenClaims struct {
	Iss           string      `json:"iss"`
	Aud           string      `json:"aud"`
	Azp           string      `json:"azp"`
	Sub           string      `json:"sub"`
	Email         string      `json:"email"`
	EmailVerified jsonBool    `json:"email_verified"`
	Name          string      `json:"name"`
	GivenName     string      `json:"given_name"`
	FamilyName    string      `json:"family_name"`
	Picture       string      `json:"picture"`
	HD            string      `json:"hd"`
	Nonce         string      `json:"nonce"`
	Exp           numericDate `json:"exp"`
	Iat           numericDate `json:"iat"`
	Nbf           numericDate `json:"nbf"`
}

// claimNames are tokenClaims' JSON names (TestClaimNamesMatchFields keeps
// them so), and where each is in the exact way.
var claimNames = [...]string{"iss", "aud", "azp", "sub", "email", "email_verified", "name",
	"given_name", "family_name", "picture", "hd", "nonce", "exp", "iat", "nbf"}

// fields returns tokenClaims' fields in claimNames' order.
func (t *tokenClaims) fields() [len(claimNames)]any {
	return [...]any{&t.Iss, &t.Aud, &t.Azp, &t.Sub, &t.Email, &t.EmailVerified, &t.Name,
		&t.GivenName, &t.FamilyName, &t.Picture, &t.HD, &t.Nonce, &t.Exp, &t.Iat, &t.Nbf}
}

// decodeClaims decodes payload, a JSON object, into t, the claims checkClaims
// reads. A claim of the wrong JSON type is an error (numbers and booleans
// are judged later, by checkClaims, which names them).
func decodeClaims(payload []byte, t *tokenClaims) error {
	if plainClaimNames(payload) {
		return decodeClaimsFast(payload, t)
	}
	return decodeClaimsExact(payload, t)
}

// decodeClaimsFast is decodeClaims' fast way, for payloads whose names
// plainClaimNames found plain.
func decodeClaimsFast(payload []byte, t *tokenClaims) error {
	err := json.Unmarshal(payload, t)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s is not a %s", te.Field, te.Type.Kind())
	}
	return err
}

// decodeClaimsExact is decodeClaims' exact way, for any payload.
func decodeClaimsExact(payload []byte, t *tokenClaims) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return err
	}
	for i, f := range t.fields() {
		raw, ok := m[claimNames[i]]
		if !ok {
			continue
		}
		err := json.Unmarshal(raw, f)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s is not a %s", claimNames[i], te.Type.Kind())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// plainClaimNames reports whether payload is a JSON object whose top-level
// member names are all plain ASCII without escapes, none another spelling
// of a claim name (equal to one without regard to case, but not equal) and
// no claim name twice: names that encoding/json matches to tokenClaims'
// fields exactly. It reads any input without failing; what is not valid
// JSON is refused by the decoding that follows, whichever way.
func plainClaimNames(p []byte) bool {
	if len(p) == 0 || p[0] != '{' {
		return false
	}
	var seen uint32 // bit i: claimNames[i] was a member name
	depth := 0
	key := false // the next string at depth 1 is a member name
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
			key = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			key = depth == 1
		case '"':
			start := i + 1
			plain := true
			for i++; i < len(p) && p[i] != '"'; i++ {
				switch {
				case p[i] == '\\':
					plain = false
					i++ // the escaped byte cannot end the string
				case p[i] >= 0x80:
					plain = false
				}
			}
			if i >= len(p) {
				return false
			}
			if !key {
				continue
			}
			key = false
			if !plain {
				return false
			}
			name := p[start:i]
			for n, c := range claimNames {
				if len(name) != len(c) || !bytes.EqualFold(name, []byte(c)) {
					continue
				}
				if string(name) != c || seen&(1<<n) != 0 {
					return false
				}
				seen |= 1 << n
			}
		}
	}
	return true
}

// jsonBool is a boolean claim, which Google sometimes spells as the string
// "true" or "false" (email_verified). Anything else is judged by
// checkClaims (bad).
type jsonBool struct {
	v   bool
	bad bool
}

func (b *jsonBool) UnmarshalJSON(raw []byte) error {
	switch string(raw) {
	case "null":
		*b = jsonBool{}
	case "true", `"true"`:
		*b = jsonBool{v: true}
	case "false", `"false"`:
		*b = jsonBool{}
	default:
		*b = jsonBool{bad: true}
	}
	return nil
}

// numericDate is a NumericDate claim (seconds). As encoding/json reads any
// JSON number, it is read as a float64: a fraction, or a number beyond
// int64, is not an integer; any other JSON value is not a number. Those
// are judged by checkClaims (bad), which names the claim.
type numericDate struct {
	v   int64
	ok  bool   // present and an integer
	bad string // why it is not, when present
}

func (d *numericDate) UnmarshalJSON(raw []byte) error {
	*d = numericDate{}
	if string(raw) == "null" {
		return nil
	}
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		d.bad = "is not a number"
		return nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		d.bad = "is not an integer"
		return nil
	}
	d.v, d.ok = int64(f), true
	return nil
}

// check says why b is not a boolean, naming it as name.
func (b jsonBool) check(name string) error {
	if b.bad {
		return fmt.Errorf("%s is not a boolean", name)
	}
	return nil
}

// check says why d is not a NumericDate, naming it as name.
func (d numericDate) check(name string) error {
	if d.bad != "" {
		return fmt.Errorf("%s %s", name, d.bad)
	}
	return nil
}
