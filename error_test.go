package signin_test

import (
	"errors"
	"testing"

	signin "example.com/signin"
)

// TestErrorReadsAsOneSentence: a wrapped error prints its message and its
// cause without the message's final period in between (issue 23 showed
// "...(it is not shown: it may hold a password).: invalid keyword/value").
func TestErrorReadsAsOneSentence(t *testing.T) {
	err := signin.Wrap(errors.New("invalid keyword/value"), signin.EINVALID, "invalid_database_url",
		"The database URL cannot be parsed (it is not shown: it may hold a password).")
	want := "invalid_database_url: The database URL cannot be parsed (it is not shown: it may hold a password): invalid keyword/value"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	plain := signin.Errorf(signin.EINVALID, "bad", "A sentence.")
	if got := plain.Error(); got != "bad: A sentence." {
		t.Errorf("without a cause, Error() = %q, want the sentence whole", got)
	}
}
