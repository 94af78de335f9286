package offline

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Backoff bounds. A wait is drawn uniformly from [0, min(maxDelay,
// baseDelay*2^retry)) ("full jitter"), so that workers that failed together
// do not come back together; a Retry-After from the server replaces it.
const (
	baseDelay = 500 * time.Millisecond
	maxDelay  = 30 * time.Second
	// maxDrain bounds how much of a failed answer is read before retrying,
	// so that its connection can be reused.
	maxDrain = 64 << 10
)

// retryTransport retries requests that Google answered with 429 or a 5xx,
// or that failed in the network or timed out, up to max times, waiting as
// described above, and gives each attempt its own timeout. It is hand-written
// because x/oauth2 does not retry token calls at all, and the generated API
// clients retry only some calls, without honouring Retry-After and without a
// per-attempt timeout; one transport under both gives one policy.
//
// Retrying is safe for what offline-fetch sends: People API reads, and
// refresh grants, which Google may answer any number of times (a refresh
// token is not used up by a refresh).
type retryTransport struct {
	base    http.RoundTripper
	max     int           // retries after the first attempt
	timeout time.Duration // per attempt, up to the end of the body
	sleep   func(ctx context.Context, d time.Duration) error
	now     func() time.Time
	log     *slog.Logger
	retries atomic.Int64 // retries made, for the summary log
	pacer   Pacer        // nil: no shared budget
}

// Pacer is a budget of calls to Google shared with other processes
// (package rounds): the retry transport waits for it before each attempt,
// outside the attempt's timeout, and reports each 429 to it. A 429 is then
// not one of the request's retries: the request waits for the budget again,
// and is sent again, until its context ends.
type Pacer interface {
	// Wait returns once req may be sent, or ctx's error.
	Wait(ctx context.Context, req *http.Request) error
	// Refused reports that Google answered req 429, with its Retry-After
	// (0 when it gave none), and whether the pacer takes it (req has a
	// budget: it waits for it again); false leaves the 429 to the
	// ordinary retries.
	Refused(ctx context.Context, req *http.Request, retryAfter time.Duration) bool
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		if t.pacer != nil {
			if err := t.pacer.Wait(req.Context(), req); err != nil {
				return nil, err
			}
		}
		r := req
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
		resp, err := t.base.RoundTrip(r.WithContext(ctx))

		if t.pacer != nil && err == nil && resp.StatusCode == http.StatusTooManyRequests && t.retryable(req, resp, err) {
			ra, _ := retryAfter(resp.Header.Get("Retry-After"), t.now())
			if t.pacer.Refused(req.Context(), req, ra) {
				io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
				resp.Body.Close()
				cancel()
				t.log.Info("Google's quota: waiting for the shared budget", "host", req.URL.Host, "path", req.URL.Path, "retry_after", ra)
				attempt--
				continue
			}
		}
		retry := attempt < t.max && req.Context().Err() == nil && t.retryable(req, resp, err)
		if !retry {
			if err != nil {
				cancel()
				return nil, err
			}
			// The attempt's context must live until the body is read.
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		wait := fullJitter(attempt)
		status := 0
		if resp != nil {
			status = resp.StatusCode
			if d, ok := retryAfter(resp.Header.Get("Retry-After"), t.now()); ok {
				if d > maxDelay {
					// Waiting less than the server asked would be
					// refused again; give up instead and report it.
					resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
					return resp, nil
				}
				wait = d
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
			resp.Body.Close()
		}
		cancel()
		t.retries.Add(1)
		t.log.Info("retrying a Google request", "host", req.URL.Host, "path", req.URL.Path,
			"status", status, "err", errString(err), "attempt", attempt+1, "wait", wait)
		if err := t.sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

// retryable: 429 and 5xx answers, and failures to get an answer (including
// an attempt's timeout), for requests whose body can be sent again.
func (t *retryTransport) retryable(req *http.Request, resp *http.Response, err error) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	if err != nil {
		return true
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// fullJitter is the wait before retry number attempt+1.
func fullJitter(attempt int) time.Duration {
	ceil := maxDelay
	if attempt < 16 {
		ceil = min(maxDelay, baseDelay<<attempt)
	}
	return rand.N(ceil)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110, section 10.2.3). A date in the past means now.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || time.Duration(n)*time.Second > maxDelay {
			return maxDelay + time.Second, true // longer than we wait, without overflowing
		}
		return time.Duration(n) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// cancelOnClose ends an attempt's context when the caller is done with the
// body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Sleep waits for d or until ctx ends: the wait of a retry, and of a
// call for its slot in the fleet's budget (rounds).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
