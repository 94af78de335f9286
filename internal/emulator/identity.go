package emulator

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// identity is the emulator's account and grant state. Every method expects
// the caller to hold Emulator.mu (read lock for lookups, write lock for
// changes); none of them sleeps or does I/O, so the lock is held briefly.
type identity struct {
	users   map[string]*User  // by sub
	order   []string          // subs in the order added, for the chooser
	byEmail map[string]string // lower-cased email -> sub

	grants  map[grantKey]*grant
	nextGen uint64
	codes   map[string]*authCode
	access  map[string]*accessToken
	refresh map[string]*refreshToken

	issuedSinceSweep int
}

func newIdentity() *identity {
	return &identity{
		users:   make(map[string]*User),
		byEmail: make(map[string]string),
		grants:  make(map[grantKey]*grant),
		codes:   make(map[string]*authCode),
		access:  make(map[string]*accessToken),
		refresh: make(map[string]*refreshToken),
	}
}

// grantKey names the grant of one user to one client. Google keeps one grant
// per pair: consenting again widens it, revoking any of its tokens ends it.
type grantKey struct{ client, sub string }

// grant is what a user has allowed a client.
type grant struct {
	gen     uint64              // distinguishes a re-created grant from a revoked one
	scopes  map[string]bool     // normalised scopes consented to
	offline bool                // offline access consented to (a refresh token was promised)
	refresh []string            // live refresh tokens, oldest first
	access  map[string]struct{} // live access tokens
}

// family is every token issued from one authorization code, so that a
// replayed code can take them all back (RFC 6749 section 4.1.2).
type family struct {
	access  []string
	refresh []string
}

type authCode struct {
	key             grantKey
	gen             uint64
	scopes          []string // normalised, as granted
	redirectURI     string
	nonce           string
	offline         bool // access_type=offline
	giveRefresh     bool // first offline consent, or prompt=consent
	challenge       string
	challengeMethod string
	issued          time.Time
	used            bool
	fam             *family
}

type accessToken struct {
	key     grantKey
	scopes  []string
	expiry  time.Time
	offline bool
	fam     *family
}

type refreshToken struct {
	key     grantKey
	scopes  []string
	created time.Time
	fam     *family
}

// errUserExists is returned when adding a user whose sub or email is taken.
var errUserExists = errors.New("a user with that sub or email already exists")

// addUser validates u, fills in what is missing and adds it.
func (id *identity) addUser(u User) (User, error) {
	u.Email = strings.TrimSpace(u.Email)
	u.Name = strings.TrimSpace(u.Name)
	if err := checkEmail(u.Email); err != nil {
		return User{}, err
	}
	if u.Sub == "" {
		for {
			u.Sub = newSub()
			if _, taken := id.users[u.Sub]; !taken {
				break
			}
		}
	} else if err := checkSub(u.Sub); err != nil {
		return User{}, err
	}
	if u.Name == "" {
		u.Name = nameFromEmail(u.Email)
	}
	if u.GivenName == "" && u.FamilyName == "" {
		u.GivenName, u.FamilyName = splitName(u.Name)
	}
	for _, s := range []string{u.Name, u.GivenName, u.FamilyName, u.Picture, u.HostedDomain} {
		if len(s) > 200 || strings.ContainsFunc(s, isControl) {
			return User{}, errors.New("name, picture and hd must be short printable text")
		}
	}
	if u.Picture != "" && !strings.HasPrefix(u.Picture, "https://") && !strings.HasPrefix(u.Picture, "http://") {
		return User{}, errors.New("picture must be an http(s) URL")
	}
	if _, taken := id.users[u.Sub]; taken {
		return User{}, errUserExists
	}
	if _, taken := id.byEmail[strings.ToLower(u.Email)]; taken {
		return User{}, errUserExists
	}
	stored := u
	id.users[u.Sub] = &stored
	id.order = append(id.order, u.Sub)
	id.byEmail[strings.ToLower(u.Email)] = u.Sub
	return u, nil
}

func checkEmail(email string) error {
	if email == "" {
		return errors.New("email is required")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || len(email) > 254 {
		return fmt.Errorf("email %q is not a plain address", email)
	}
	return nil
}

// checkSub accepts what Google promises for sub (ASCII, at most 255
// characters) rather than only its digits, so tests can use hostile subs.
func checkSub(sub string) error {
	if len(sub) > 255 {
		return errors.New("sub is longer than 255 characters")
	}
	for _, c := range []byte(sub) {
		if c <= ' ' || c > '~' {
			return errors.New("sub must be printable ASCII without spaces")
		}
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

func nameFromEmail(email string) string {
	local, _, _ := strings.Cut(email, "@")
	parts := strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	if len(parts) == 0 {
		return local
	}
	return strings.Join(parts, " ")
}

func splitName(name string) (given, family string) {
	i := strings.LastIndexByte(name, ' ')
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}

// userByHint finds a user by sub or email (login_hint accepts both).
func (id *identity) userByHint(hint string) *User {
	if hint == "" {
		return nil
	}
	if u := id.users[hint]; u != nil {
		return u
	}
	if sub, ok := id.byEmail[strings.ToLower(hint)]; ok {
		return id.users[sub]
	}
	return nil
}

func (id *identity) listUsers() []User {
	out := make([]User, 0, len(id.order))
	for _, sub := range id.order {
		out = append(out, *id.users[sub])
	}
	return out
}

// covers reports whether the user already granted the client every scope
// (and offline access, when asked), so no consent page is needed.
func (id *identity) covers(k grantKey, scopes []string, offline bool) bool {
	g := id.grants[k]
	if g == nil || (offline && !g.offline) {
		return false
	}
	for _, s := range scopes {
		if !g.scopes[s] {
			return false
		}
	}
	return true
}

// consent records the user's consent to scopes (what they granted, not
// what was asked) and reports whether a refresh token is due: Google gives
// one on the first offline consent of a client/user pair, again when
// prompt=consent forced the consent screen, and with an offline consent
// that widened the grant (incremental authorization: the new refresh token
// covers the new scopes).
func (id *identity) consent(k grantKey, scopes []string, offline, forced bool) (g *grant, giveRefresh bool) {
	g = id.grants[k]
	if g == nil {
		id.nextGen++
		g = &grant{gen: id.nextGen, scopes: make(map[string]bool), access: make(map[string]struct{})}
		id.grants[k] = g
	}
	widened := false
	for _, s := range scopes {
		widened = widened || !g.scopes[s]
		g.scopes[s] = true
	}
	if offline {
		giveRefresh = !g.offline || forced || widened
		g.offline = true
	}
	return g, giveRefresh
}

// grantedScopes is the grant's scopes in a stable order (for
// include_granted_scopes).
func (g *grant) grantedScopes() []string {
	out := make([]string, 0, len(g.scopes))
	for s := range g.scopes {
		out = append(out, s)
	}
	slices.SortFunc(out, compareScopes)
	return out
}

// issueAccess creates an access token in grant g's name.
func (id *identity) issueAccess(k grantKey, g *grant, scopes []string, offline bool, now, expiry time.Time, fam *family) string {
	tok := newAccessToken()
	id.access[tok] = &accessToken{key: k, scopes: scopes, expiry: expiry, offline: offline, fam: fam}
	g.access[tok] = struct{}{}
	if fam != nil {
		fam.access = append(fam.access, tok)
	}
	id.issuedSinceSweep++
	if id.issuedSinceSweep >= 4096 {
		id.sweep(now)
	}
	return tok
}

// issueRefresh creates a refresh token for grant g. Past 100 live refresh
// tokens for the pair, the oldest stops working, as at Google.
func (id *identity) issueRefresh(k grantKey, g *grant, scopes []string, now time.Time, fam *family) string {
	tok := newRefreshToken()
	id.refresh[tok] = &refreshToken{key: k, scopes: scopes, created: now, fam: fam}
	g.refresh = append(g.refresh, tok)
	if fam != nil {
		fam.refresh = append(fam.refresh, tok)
	}
	for len(g.refresh) > maxRefreshPerGrant {
		delete(id.refresh, g.refresh[0])
		g.refresh = g.refresh[1:]
	}
	return tok
}

// sweep forgets access tokens that expired more than an hour ago and codes
// well past their lifetime, so memory stays bounded under load. (Within the
// hour an expired token is still recognised as expired rather than unknown.)
// It runs once every few thousand issued tokens, keeping its cost amortised.
func (id *identity) sweep(now time.Time) {
	id.issuedSinceSweep = 0
	cutoff := now.Add(-time.Hour)
	for tok, a := range id.access {
		if a.expiry.Before(cutoff) {
			delete(id.access, tok)
			if g := id.grants[a.key]; g != nil {
				delete(g.access, tok)
			}
		}
	}
	for c, ac := range id.codes {
		if ac.issued.Add(codeLifetime).Before(cutoff) {
			delete(id.codes, c)
		}
	}
}

// revokeGrant ends the grant of k: every token and pending code of it.
func (id *identity) revokeGrant(k grantKey) bool {
	g := id.grants[k]
	if g == nil {
		return false
	}
	for tok := range g.access {
		delete(id.access, tok)
	}
	for _, tok := range g.refresh {
		delete(id.refresh, tok)
	}
	delete(id.grants, k)
	// Pending codes die with the grant: they carry its generation.
	return true
}

// revokeFamily takes back every token issued from one code.
func (id *identity) revokeFamily(fam *family) {
	for _, tok := range fam.access {
		if a := id.access[tok]; a != nil {
			delete(id.access, tok)
			if g := id.grants[a.key]; g != nil {
				delete(g.access, tok)
			}
		}
	}
	for _, tok := range fam.refresh {
		if r := id.refresh[tok]; r != nil {
			delete(id.refresh, tok)
			if g := id.grants[r.key]; g != nil {
				g.refresh = slices.DeleteFunc(g.refresh, func(t string) bool { return t == tok })
			}
		}
	}
}

// revokeUser ends every grant of sub, for all clients.
func (id *identity) revokeUser(sub string) int {
	n := 0
	for k := range id.grants {
		if k.sub == sub && id.revokeGrant(k) {
			n++
		}
	}
	return n
}

// liveGrant returns the grant a code, refresh or access token belongs to,
// provided it was not revoked (or revoked and re-created) since.
func (id *identity) liveGrant(k grantKey, gen uint64) *grant {
	g := id.grants[k]
	if g == nil || (gen != 0 && g.gen != gen) {
		return nil
	}
	return g
}
