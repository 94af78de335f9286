package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strconv"

	"google.golang.org/api/googleapi"

	"example.com/signin"
	"example.com/signin/internal/auth"
)

// handlerFunc is a route handler. It writes the response itself on success
// and returns an error otherwise; it must not write anything before
// returning an error, so that the adapter can render it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// errorFormat is how an error is rendered: JSON for the API, an HTML page
// for pages.
type errorFormat int

const (
	formatJSON errorFormat = iota
	formatHTML
)

// api adapts a JSON API handler.
func (s *Server) api(h handlerFunc) http.Handler {
	return s.adapt(h, func(*http.Request) errorFormat { return formatJSON })
}

// page adapts a page handler.
func (s *Server) page(h handlerFunc) http.Handler {
	return s.adapt(h, func(*http.Request) errorFormat { return formatHTML })
}

// adapt turns a handlerFunc into an http.Handler that renders its error in
// the format the request calls for.
func (s *Server) adapt(h handlerFunc, format func(*http.Request) errorFormat) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.renderError(w, r, err, format(r))
		}
	})
}

// statusOf is the one mapping from error kinds to HTTP statuses.
func statusOf(kind string) int {
	switch kind {
	case signin.EINVALID:
		return http.StatusBadRequest
	case signin.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case signin.EFORBIDDEN:
		return http.StatusForbidden
	case signin.ENOTFOUND:
		return http.StatusNotFound
	case signin.ECONFLICT:
		return http.StatusConflict
	case signin.ETIMEOUT:
		return http.StatusRequestTimeout
	case signin.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case signin.EUPSTREAM:
		return http.StatusBadGateway
	case signin.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// statusClientClosedRequest is nginx's status for a client that went away
// before the answer: never sent (no one is listening), but logged and
// counted as such, apart from the server's own failures.
const statusClientClosedRequest = 499

// renderError answers with err: its status from its kind, its code and its
// user-facing message. Only server-side failures (5xx) are logged, with the
// request id, method and path; never the request's body or query, which may
// hold tokens. Google failing is a warning naming the endpoint and Google's
// error code (our own failures are errors), storage being unavailable is
// at debug (the store logs the outage), and a client that went away before
// the answer is no failure at all: 499, at debug.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error, format errorFormat) {
	ctx := r.Context()
	attrs := func(status int) []slog.Attr {
		return []slog.Attr{
			slog.String("request_id", requestID(ctx)),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.String("error", err.Error()),
		}
	}
	kind := signin.ErrorKind(err)
	if ctx.Err() != nil && kind != signin.ETIMEOUT {
		// A body read that timed out also ends the context, but that
		// client is still there, waiting for its 408.
		s.log.LogAttrs(ctx, slog.LevelDebug, "client went away", attrs(statusClientClosedRequest)...)
		w.WriteHeader(statusClientClosedRequest)
		return
	}
	status := statusOf(kind)
	switch {
	case kind == signin.EUPSTREAM:
		endpoint, code := googleFailure(err)
		s.log.LogAttrs(ctx, slog.LevelWarn, "Google failed", append(attrs(status),
			slog.String("endpoint", endpoint), slog.String("google_error", code))...)
	case kind == signin.EUNAVAILABLE:
		// Storage down or busy: the store logs an outage itself, once when
		// it starts and once when it ends (with the count of refused
		// operations); the request line says 503. A line per refused
		// request would grow with traffic, and is no error of ours.
		s.log.LogAttrs(ctx, slog.LevelDebug, "request refused: storage unavailable", attrs(status)...)
	case status >= 500:
		s.log.LogAttrs(ctx, slog.LevelError, "request failed", attrs(status)...)
	}
	s.writeError(w, r, status, signin.ErrorCode(err), signin.ErrorMessage(err), format)
}

// googleFailure names the Google endpoint behind an EUPSTREAM error
// ("token", "revoke", "certs", "people"; "" when unknown) and Google's
// error code when it answered with one.
func googleFailure(err error) (endpoint, code string) {
	endpoint, code = auth.FailedEndpoint(err)
	var ge *googleapi.Error
	if endpoint == "" && errors.As(err, &ge) {
		endpoint = "people"
		if len(ge.Errors) > 0 {
			code = ge.Errors[0].Reason
		}
		if code == "" {
			code = strconv.Itoa(ge.Code)
		}
	}
	return endpoint, code
}

// errorBody is the JSON error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError writes an error answer with an explicit status. Use
// renderError, unless the status does not come from an error kind (405).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, code, message string, format errorFormat) {
	if format == formatHTML {
		if err := s.renderPage(w, r, status, "error.html", s.errorPageData(status, code, message)); err == nil {
			return
		}
		// The error page itself failed (logged by renderPage): fall back to
		// JSON, which cannot fail.
	}
	writeJSON(w, status, errorBody{Error: code, Message: message})
}

// writeJSON encodes v into a buffer first, so that an encoding failure is a
// clean 500 rather than half a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal","message":"internal error"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errTooLarge is the answer to a body over Config.MaxBodyBytes.
func errTooLarge() error {
	return signin.Errorf(signin.ETOOLARGE, "too_large", "The request body is too large.")
}

// parseForm parses a urlencoded request body; errors as bodyError.
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return bodyError(err)
	}
	return nil
}

// bodyError is the answer to a request body that could not be read: a
// body over the limit (http.MaxBytesReader, installed by the middleware)
// is ETOOLARGE; one the client sent too slowly for the server's read
// timeout is ETIMEOUT (408: the client is still connected, waiting, and
// must not get 499, which is for one that left); anything else EINVALID.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errTooLarge()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return signin.Wrap(err, signin.ETIMEOUT, "request_timeout", "The request was not sent in time.")
	}
	return signin.Wrap(err, signin.EINVALID, "invalid_request", "The request body could not be read.")
}
