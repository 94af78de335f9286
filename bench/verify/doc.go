// Package verify holds the ID token benchmarks that need go-oidc, which is
// why they live in the bench module and not in internal/auth: the app's
// full verification (internal/auth), its verified-token cache, bare
// google.golang.org/api/idtoken, github.com/coreos/go-oidc/v3 and the raw
// crypto/rsa floor, all in one test binary on the same key and token so
// their ratios come from the same run; and the key fetch counts of the
// three libraries in the situations that matter (steady state, a cold
// start under load, a certs answer without Cache-Control, tokens with made-up
// key ids). It has no code outside its tests.
package verify
