package offline

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// maxErrorText bounds an error's text in the output.
const maxErrorText = 300

// output writes the run's lines. Workers write concurrently; each line is
// one Write under mu, so lines never interleave, and the progress line is
// wiped before any other line, stdout's included: on a terminal both go to
// the same screen.
type output struct {
	json           bool
	stdout, stderr io.Writer

	mu       sync.Mutex
	progress bool // a progress line is on stderr
}

// line is a JSON output line. Error is a machine-readable code (such as
// "offline_access_revoked"), Message a human-readable explanation; neither
// ever holds a token. Refreshed says that the user's access token was
// refreshed (and the new one saved) for this call.
type line struct {
	Sub       string `json:"sub"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	Status    string `json:"status"` // ok, revoked, failed, skipped or scope_missing
	Refreshed bool   `json:"refreshed,omitempty"`
	// Contacts is how many contacts the user has, when the work lists
	// them (-scopes contacts.readonly).
	Contacts      *int     `json:"contacts,omitempty"`
	Error         string   `json:"error,omitempty"`
	Message       string   `json:"message,omitempty"`
	MissingScopes []string `json:"missing_scopes,omitempty"`
}

// who is the user a line is about: their sub, and the name and email
// their record holds (when it could be read) for the person reading.
type who struct{ sub, name, email string }

func whoOf(rec *grant.Record) who { return who{sub: rec.Sub, name: rec.Name, email: rec.Email} }

// ok prints a user done: "sub<TAB>name<TAB>email", then
// "<TAB>contacts=N" when the work counted their contacts.
func (o *output) ok(sub, name, email string, refreshed bool, contacts *int) {
	if o.json {
		o.writeJSON(line{Sub: sub, Name: name, Email: email, Status: "ok", Refreshed: refreshed, Contacts: contacts})
		return
	}
	s := clean(sub) + "\t" + clean(name) + "\t" + clean(email)
	if contacts != nil {
		s += "\tcontacts=" + strconv.Itoa(*contacts)
	}
	o.write(o.stdout, s+"\n")
}

// scopeMissing reports a user whose grant lacks scopes the work needs.
func (o *output) scopeMissing(u who, missing []string, msg string) {
	o.problem(u, line{Status: grant.CodeScopeMissing, Error: grant.CodeScopeMissing, Message: msg, MissingScopes: missing})
}

func (o *output) revoked(u who, msg string) {
	o.problem(u, line{Status: "revoked", Error: grant.CodeOfflineAccessRevoked, Message: msg})
}

func (o *output) failed(u who, code, msg string) {
	o.problem(u, line{Status: "failed", Error: code, Message: msg})
}

func (o *output) skipped(rec *grant.Record) {
	o.problem(whoOf(rec), line{Status: "skipped", Error: grant.CodeOfflineAccessRevoked, Message: revokedBefore(rec)})
}

// revokedBefore says when and why Google refused rec's grant, in a run
// before this one.
func revokedBefore(rec *grant.Record) string {
	msg := "offline access was revoked"
	if rec.RevokedAt != nil {
		msg += " on " + rec.RevokedAt.UTC().Format("2006-01-02 15:04:05Z")
	}
	if rec.RevokedReason != "" {
		msg += " (" + rec.RevokedReason + ")"
	}
	return msg + "; the user must connect again"
}

// problem reports a user that did not succeed: "sub (name <email>):
// status: code: message" on stderr and, with JSON, a line on stdout too, so
// that a consumer of the JSON sees every user.
func (o *output) problem(u who, l line) {
	l.Sub, l.Name, l.Email = u.sub, u.name, u.email
	label := clean(u.sub)
	switch {
	case label == "" && u.email != "":
		label = clean(u.email) // a user named by email, with no record
	case label == "":
		label = "store"
	case u.name != "" && u.email != "":
		label += " (" + clean(u.name) + " <" + clean(u.email) + ">)"
	case u.name != "" || u.email != "":
		label += " (" + clean(u.name+u.email) + ")"
	}
	o.stderrLine(label + ": " + l.Status + ": " + l.Error + ": " + clean(l.Message))
	if o.json {
		o.writeJSON(l)
	}
}

func (o *output) stderrLine(s string) { o.write(o.stderr, s+"\n") }

func (o *output) writeJSON(l line) {
	b, err := json.Marshal(l)
	if err != nil {
		return // a struct of strings always marshals
	}
	o.write(o.stdout, string(append(b, '\n')))
}

func (o *output) write(w io.Writer, s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.progress {
		io.WriteString(o.stderr, "\r\x1b[K")
		o.progress = false
	}
	io.WriteString(w, s)
}

func (o *output) drawProgress(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	io.WriteString(o.stderr, "\r\x1b[K"+s)
	o.progress = true
}

func (o *output) clearProgress() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.progress {
		io.WriteString(o.stderr, "\r\x1b[K")
		o.progress = false
	}
}

// clean makes s safe for one field of a text line: control characters
// (tabs and newlines, which would break the line format, and escape
// sequences, which a terminal would obey) and bidirectional overrides (which
// make a terminal show text in another order) become spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return ' '
		}
		return r
	}, s)
}

// describe is an error for the operator, as one bounded line: its message
// and its cause (which never holds a token: the token endpoint's errors are
// described without their body, and the People API's quote Google's message
// only), without the code, which is printed on its own.
func describe(err error) string {
	var se *signin.Error
	if !errors.As(err, &se) {
		return oneLine(err.Error())
	}
	s := se.Message
	if se.Err != nil {
		s += " (" + se.Err.Error() + ")"
	}
	return oneLine(s)
}

// revokedReason says why Google refused a grant, in its words when it gave
// them ("Token has been expired or revoked."), as the record keeps them.
func revokedReason(err error) string {
	s := "Google refused the stored grant; the user must connect again"
	if d := grant.RevokedReason(err); d != "" {
		s += " (" + d + ")"
	}
	return oneLine(s)
}

// oneLine is an error's text as one bounded line.
func oneLine(s string) string {
	s = clean(s)
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "") + "..."
	}
	return s
}
