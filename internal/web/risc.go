package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/metrics"
)

// RISCVerifier validates Google's Security Event Tokens (Cross-Account
// Protection): issuer and keys from Google's RISC configuration, RS256, our
// audience, no expiry check. Errors are EINVALID "invalid_set" for a token
// to refuse, EUPSTREAM when Google's configuration or keys cannot be had.
type RISCVerifier interface {
	Verify(ctx context.Context, raw []byte) (*auth.SecurityEvent, error)
}

// handleRISC receives a Security Event Token that Google pushes (the body
// is the JWT) and acts on it: 202 when it was valid (a replayed jti too,
// which is acknowledged and ignored), 400 otherwise. What each event does:
//
//   - sessions-revoked: every session of the user ends;
//   - tokens-revoked: every session ends and the stored grant is marked
//     revoked (the page offers Reconnect);
//   - token-revoked: the grant whose refresh token matches (prefix or
//     double SHA-512 hash) is marked revoked;
//   - account-disabled: sign-in is refused until account-enabled; with
//     reason hijacking every session ends too;
//   - account-enabled: sign-in is allowed again;
//   - the others (credential change required, verification) are logged.
//
// Events about users the app does not know change nothing and are 202.
func (s *Server) handleRISC(w http.ResponseWriter, r *http.Request) error {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	ev, err := s.cfg.RISC.Verify(r.Context(), bytes.TrimSpace(raw))
	if err != nil {
		s.cfg.Metrics.RISCEvent("", metrics.Outcome(err)) // its type is unknown: "other"
		return err
	}
	if s.jtis.Seen(ev.JTI) {
		for _, e := range ev.Events {
			s.cfg.Metrics.RISCEvent(e.Type, "duplicate")
		}
		s.audit(r.Context(), "risc", "", slog.String("jti", ev.JTI), slog.String("outcome", "duplicate"))
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	for _, e := range ev.Events {
		outcome, err := s.riscAct(r.Context(), e)
		if err != nil {
			s.cfg.Metrics.RISCEvent(e.Type, metrics.Outcome(err))
			s.jtis.Forget(ev.JTI) // not acted on: Google's retry must be
			return err
		}
		s.cfg.Metrics.RISCEvent(e.Type, outcome)
		s.audit(r.Context(), "risc", e.Subject.Sub, slog.String("type", eventType(e)), slog.String("reason", e.Reason),
			slog.String("jti", ev.JTI), slog.String("outcome", outcome))
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func eventType(e auth.Event) string {
	if e.Type == "" {
		return "unknown"
	}
	return e.Type
}

// riscAct does what event e asks, and says what it did.
func (s *Server) riscAct(ctx context.Context, e auth.Event) (string, error) {
	sub := e.Subject.Sub
	switch e.Type {
	case auth.EventSessionsRevoked:
		return s.riscEndSessions(ctx, sub)
	case auth.EventTokensRevoked:
		if _, err := s.riscEndSessions(ctx, sub); err != nil {
			return "", err
		}
		marked, err := s.cfg.Grants.MarkRevoked(ctx, sub, "Google: the user's tokens were revoked (Cross-Account Protection)")
		if err != nil || !marked {
			return "sessions_ended", err
		}
		s.profiles.forget(sub)
		return "grant_revoked", nil
	case auth.EventTokenRevoked:
		found, err := s.cfg.Grants.MarkRevokedByToken(ctx, func(rt string) bool { return auth.TokenMatches(e.Subject, rt) },
			"Google: the refresh token was revoked (Cross-Account Protection)")
		if err != nil {
			return "", err
		}
		if found == "" {
			return "no_match", nil
		}
		s.profiles.forget(found)
		return "grant_revoked", nil
	case auth.EventAccountDisabled:
		hijacked := e.Reason == "hijacking"
		if hijacked {
			if err := s.endUserSessions(ctx, sub, metrics.CauseRISC); err != nil {
				return "", err
			}
		}
		// Only a user the app knows is remembered as disabled: one with a
		// stored record, or one whose sessions were just ended (the
		// server cannot tell whether a user holds sessions: signing in
		// writes nothing).
		rec, _, err := s.cfg.Grants.Lookup(ctx, sub)
		if err != nil {
			return "", err
		}
		if rec == nil && !hijacked {
			return "unknown_user", nil
		}
		return "disabled", s.cfg.Grants.SetDisabled(ctx, sub, true, e.Reason)
	case auth.EventAccountEnabled:
		return "enabled", s.cfg.Grants.SetDisabled(ctx, sub, false, "")
	}
	return "logged", nil
}

func (s *Server) riscEndSessions(ctx context.Context, sub string) (string, error) {
	if sub == "" {
		return "no_subject", nil
	}
	if err := s.endUserSessions(ctx, sub, metrics.CauseRISC); err != nil {
		return "", err
	}
	return "sessions_ended", nil
}
