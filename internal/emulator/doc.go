// Package emulator is a local stand-in for Google Sign-In: an HTTP server
// that speaks Google's OAuth 2.0, OpenID Connect, Identity Services and
// People API endpoints with Google's paths, JSON and errors, and refuses
// what Google refuses. Apps and their tests use it instead of Google (no
// network needed); a person can use its account chooser to try an app
// offline.
//
// It deliberately imports none of the app's packages: it stands for Google,
// and sharing code with the app would hide disagreements between them.
//
// # Google's endpoints
//
// One base URL serves every Google host's paths:
//
//	GET  /.well-known/openid-configuration  discovery (issuer https://accounts.google.com, endpoints on the emulator)
//	GET  /.well-known/risc-configuration    Cross-Account Protection: issuer https://accounts.google.com/, jwks_uri
//	GET|POST /o/oauth2/v2/auth, /o/oauth2/auth  account chooser and consent pages
//	POST /token                             authorization_code and refresh_token grants
//	POST /revoke                            revoke an access or refresh token (ends the whole grant)
//	GET  /oauth2/v3/certs                   JWKS, with Cache-Control max-age and Age like Google's
//	GET  /oauth2/v1/certs                   the same keys as {"kid": "-----BEGIN CERTIFICATE-----..."}
//	GET  /tokeninfo, /oauth2/v3/tokeninfo   ?id_token= or ?access_token= (values as strings)
//	GET  /v1/userinfo, /oauth2/v3/userinfo  OpenID Connect userinfo
//	GET  /v1/people/me?personFields=...     People API
//	GET  /gsi/client                        Google Identity Services stand-in script
//	GET  /gsi/style                         its button stylesheet
//	GET|POST /gsi/select                    "Sign in with Google" chooser (ID token flow)
//	POST /gsi/revoke                        google.accounts.id.revoke
//
// Endpoint names for faults, latency and statistics: discovery, auth, token,
// revoke, certs, tokeninfo, people, gsi, userinfo, risc.
//
// # Pages (for browser tests)
//
// Account chooser (body[data-page=chooser]): form#choose-account with one
// button.account[data-email][data-sub] per test user; "Use another account"
// is form#add-account with input[name=email] (#add-email), input[name=name]
// (#add-name) and button#add-account-submit. Consent (body[data-page=consent]):
// #consent-account, ul#scopes li[data-scope] (li#offline-access when offline
// access is asked), button#approve and button#deny. Popup answer
// (body[data-page=result]): div#emu-result[data-target-origin][data-message];
// it posts the message to window.opener at exactly data-target-origin and
// closes (p#emu-no-opener shows when the opener link was cut by COOP).
// GIS redirect mode (body[data-page=form-post]): form#emu-form-post posts
// credential and g_csrf_token to login_uri. Errors (body[data-page=error]):
// main[data-error], #error-code ("Error 400: redirect_uri_mismatch") and
// #error-description. Pages allow scripts and styles from the emulator only.
//
// # Control API
//
// JSON in and out under /emulator/v1/. Errors are
// {"error":"invalid_argument"|"not_found"|"already_exists"|"forbidden","message":"..."}
// with 400, 404, 409 or 403. Durations are Go duration strings ("1.5s") or
// numbers of seconds. It answers only when the Host header is a loopback
// name or address (localhost, *.localhost, 127.0.0.0/8, [::1], the wildcard
// address) or one of Config.ControlHosts, which defeats DNS rebinding, and
// refuses browser requests from any other origin or site (Origin,
// Sec-Fetch-Site).
//
//	POST /emulator/v1/users
//	    {"sub"?, "email", "name"?, "given_name"?, "family_name"?, "picture"?, "hd"?}
//	    -> 201 the user {"sub","email","name","given_name","family_name","picture","hd"?}
//	    (sub: 21 random digits when absent; any printable ASCII up to 255 accepted)
//	GET  /emulator/v1/users -> {"users":[user...]}
//	POST /emulator/v1/users/{sub}/revoke -> {"sub","revoked_grants":n}
//	    as if the user removed the apps' access in their Google Account
//	POST /emulator/v1/codes
//	    {"client_id", "sub" | "email", "scope"? ("openid email profile"),
//	     "access_type"? ("online"|"offline"), "prompt"? ("consent"...),
//	     "redirect_uri"? ("postmessage"), "nonce"?, "code_challenge"?,
//	     "code_challenge_method"?, "include_granted_scopes"?}
//	    -> {"code":"4/0A..."}  exactly as the consent popup would issue it
//	POST /emulator/v1/id-tokens {"client_id", "sub" | "email", "nonce"?}
//	    -> {"credential":"eyJ..."}  as the GIS button would
//	POST /emulator/v1/keys/rotate {"immediate"?: false}
//	    -> {"kid","published","signs_from","signing","in_key_set"}
//	    Google's rotation: the new key is published now and signs from
//	    Config.KeySigningDelay (default: the key set's max-age, 6h) later by
//	    the emulator's clock; the replaced key stays published
//	    Config.KeyRetireAfter (default 1h + max-age) after that.
//	    "immediate": true makes it sign at once (a kid no cache holds yet).
//	GET  /emulator/v1/keys -> {"keys":[{"kid","published","signs_from","retires"?,"signing","in_key_set"}...]}
//	POST /emulator/v1/faults
//	    {"endpoint", "count"? (1; <0 = until reset), "status"?, "body"?,
//	     "delay"?, "drop"?, "malformed"?, "retry_after"?} -> {}
//	POST /emulator/v1/latency {"endpoint", "delay"} -> {}  (0 removes)
//	GET|POST /emulator/v1/clock {"shift"} -> {"shift","now"}  (cumulative)
//	POST /emulator/v1/access-token-ttl {"ttl"} -> {"ttl"}
//	POST /emulator/v1/reset -> {}
//	GET  /emulator/v1/stats
//	    -> {"endpoints":{"token":{"requests":3,"status":{"200":2,"400":1}}},
//	        "grants":{"authorization_code":1,"refresh_token":1},"revocations":1,
//	        "risc":{"delivered":1,"failed":0,"attempts":2,"pending":0,"status":{"202":1,"503":1}}}
//	POST /emulator/v1/risc/receivers {"client_id", "url", "events_requested"?}
//	    -> the receiver (one per client; replaces the previous one)
//	GET  /emulator/v1/risc/receivers -> {"receivers":[...]}
//	DELETE /emulator/v1/risc/receivers/{client_id} -> {}
//	POST /emulator/v1/risc/events
//	    {"type", "client_id"?, "sub"|"email", "reason"?, "token"?, "token_alg"?, "state"?}
//	    -> {"deliveries":[{"jti","client_id","url","event","set","delivered",
//	        "attempts":[{"at","status","error"?}]}]}  once delivered or given up
//	GET  /emulator/v1/risc/deliveries -> {"deliveries":[...],"pending":n}  (the last 200)
//
// The same operations exist in-process (AddUser, MintCode, MintIDToken,
// RevokeUser, RotateKey, RotateKeyNow, Keys, InjectFault, SetLatency,
// ShiftClock, SetAccessTokenTTL, Reset, Stats, RegisterRISCReceiver,
// RemoveRISCReceiver, RISCReceivers, SendRISCEvent, RISCDeliveries,
// WaitRISC) for Go tests.
//
// # Cross-Account Protection (RISC)
//
// A client may register one receiver URL. The emulator then pushes
// Security Event Tokens to it as Google does: an HTTP POST whose body is
// the JWT (Content-Type application/secevent+jwt), 202 meaning accepted.
// No answer, 408, 429 or a 5xx is retried, Config.RISCMaxAttempts times in
// all (default 5) after a backoff of Config.RISCRetryBackoff (default
// 500ms) doubling each time; any other answer is final (400: the receiver
// rejected the token). A SET is signed (RS256, typ secevent+jwt) by the
// key that signs ID tokens, so it verifies against the jwks_uri of the RISC
// configuration; its claims are iss https://accounts.google.com/ (with the
// slash), aud the client id, iat, jti and events, with no exp:
//
//	{"iss":"https://accounts.google.com/","aud":"<client id>","iat":1700000000,"jti":"<32 hex>",
//	 "events":{"https://schemas.openid.net/secevent/risc/event-type/account-disabled":
//	   {"subject":{"subject_type":"iss-sub","iss":"https://accounts.google.com/","sub":"<sub>"},
//	    "reason":"hijacking"}}}
//
// Event types: sessions-revoked, account-disabled (reason hijacking,
// bulk-account or none), account-enabled,
// account-credential-change-required and verification (state) under
// https://schemas.openid.net/secevent/risc/event-type/; tokens-revoked and
// token-revoked under https://schemas.openid.net/secevent/oauth/event-type/.
// token-revoked names a refresh token by subject {"subject_type":
// "oauth_token", "token_type": "refresh_token", "token_identifier_alg":
// "prefix" (its first 16 characters) or "hash_base64_sha512_sha512"
// (RISCTokenHash), "token"}. Events about a user go to the clients the user
// granted email or profile, unless client_id names one. Removing a user's
// access (POST /emulator/v1/users/{sub}/revoke, RevokeUser) sends
// tokens-revoked to each such client with a receiver, in the background.
// Sending an event changes nothing else: to end a grant, revoke it.
//
// # Where it differs from Google on purpose
//
// A client without JavaScript origins accepts any http origin on a loopback
// host, and one without redirect URIs accepts any loopback redirect URI, so
// the demo client works on any local port. Default pictures are avatars the
// emulator serves (/emulator/avatars/{sub}.svg), so pages load no outside
// image. One Tap (prompt) is never displayed. RISC receivers are registered
// by the control API rather than risc.googleapis.com's stream:update, may
// be http, and are not kept in the state file.
package emulator
