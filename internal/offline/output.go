package offline

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"unicode"

	"example.com/signin"
	"example.com/signin/internal/auth"
	"example.com/signin/internal/grant"
)

// maxErrorText bounds an error's text in the output.
const maxErrorText = 300

// output writes the run's lines. Workers write concurrently; each line is
// one Write under mu, so lines never interleave, and the progress line is
// wiped before anything else goes to stderr.
type output struct {
	json           bool
	stdout, stderr io.Writer

	mu       sync.Mutex
	progress bool // a progress line is on stderr
}

// line is a JSON output line. Error is a machine-readable code (such as
// "offline_access_revoked"), Message a human-readable explanation; neither
// ever holds a token.
type line struct {
	Sub     string `json:"sub"`
	Name    string `json:"name,omitempty"`
	Email   string `json:"email,omitempty"`
	Status  string `json:"status"` // ok, revoked, failed or skipped
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

func (o *output) ok(sub, name, email string) {
	if o.json {
		o.writeJSON(line{Sub: sub, Name: name, Email: email, Status: "ok"})
		return
	}
	o.write(o.stdout, clean(sub)+"\t"+clean(name)+"\t"+clean(email)+"\n")
}

func (o *output) revoked(sub, msg string) {
	o.problem(line{Sub: sub, Status: "revoked", Error: grant.CodeOfflineAccessRevoked, Message: msg})
}

func (o *output) failed(sub, code, msg string) {
	o.problem(line{Sub: sub, Status: "failed", Error: code, Message: msg})
}

func (o *output) skipped(rec *grant.Record) {
	msg := "offline access was revoked"
	if rec.RevokedAt != nil {
		msg += " on " + rec.RevokedAt.UTC().Format("2006-01-02 15:04:05Z")
	}
	if rec.RevokedReason != "" {
		msg += " (" + rec.RevokedReason + ")"
	}
	msg += "; the user must connect again"
	o.problem(line{Sub: rec.Sub, Status: "skipped", Error: grant.CodeOfflineAccessRevoked, Message: msg})
}

// problem reports a user that did not succeed: "sub: status: code: message"
// on stderr and, with JSON, a line on stdout too, so that a consumer of the
// JSON sees every user.
func (o *output) problem(l line) {
	who := l.Sub
	if who == "" {
		who = "store"
	}
	o.stderrLine(clean(who) + ": " + l.Status + ": " + l.Error + ": " + clean(l.Message))
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
	if o.progress && w == o.stderr {
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
// them ("Token has been expired or revoked.").
func revokedReason(err error) string {
	s := "Google refused the stored grant; the user must connect again"
	if ge, ok := auth.InvalidGrant(err); ok {
		if d := cmp.Or(ge.Description, ge.Code); d != "" {
			s += " (" + d + ")"
		}
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
