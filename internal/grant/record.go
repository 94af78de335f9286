package grant

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"example.com/signin"
)

// MaxRecordSize bounds an encoded record. A real one is about 2 KiB (Google's
// access tokens are at most 2048 bytes, refresh tokens 512); the bound keeps a
// damaged or planted record from costing more than a small read.
const MaxRecordSize = 64 << 10

// MaxSubLen is the longest sub a store accepts. Google's subs are at most 255
// ASCII characters (in practice 21 digits).
const MaxSubLen = 255

// CheckSub reports whether sub can key a record: not empty, at most
// MaxSubLen bytes, valid UTF-8 (the record is JSON, which could not hold it
// unchanged otherwise). Backends must still treat sub as hostile: it may
// hold "/", "..", NUL or anything else that UTF-8 allows.
func CheckSub(sub string) error {
	switch {
	case sub == "":
		return signin.Errorf(signin.EINVALID, "invalid_sub", "The user id is empty.")
	case len(sub) > MaxSubLen:
		return signin.Errorf(signin.EINVALID, "invalid_sub", "The user id is longer than %d bytes.", MaxSubLen)
	case !utf8.ValidString(sub):
		return signin.Errorf(signin.EINVALID, "invalid_sub", "The user id is not valid UTF-8.")
	}
	return nil
}

// EncodeRecord returns the stored form of rec: indented JSON (two spaces)
// ending in a newline, so that a person can read the file. It refuses a
// record that DecodeRecord would refuse, so a store never writes what it
// cannot read back.
func EncodeRecord(rec *Record) ([]byte, error) {
	if err := Validate(rec); err != nil {
		return nil, signin.Wrap(err, signin.EINTERNAL, "", "invalid credential record")
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, signin.Wrap(err, signin.EINTERNAL, "", "cannot encode the credential record")
	}
	data = append(data, '\n')
	if len(data) > MaxRecordSize {
		return nil, signin.Errorf(signin.ETOOLARGE, "record_too_large", "The credential record is larger than %d bytes.", MaxRecordSize)
	}
	return data, nil
}

// DecodeRecord parses a stored record. It refuses data larger than
// MaxRecordSize, anything but one JSON object, a version newer than
// RecordVersion (rather than silently dropping what a newer program wrote),
// a missing version or sub, and an unknown status. Fields it does not know
// within a known version are ignored. Errors are EINTERNAL with code
// "corrupt_record": a record the store wrote always decodes.
func DecodeRecord(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, corrupt(fmt.Errorf("record is larger than %d bytes", MaxRecordSize))
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, corrupt(fmt.Errorf("record is not a JSON object"))
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, corrupt(err)
	}
	if err := Validate(&rec); err != nil {
		return nil, corrupt(err)
	}
	return &rec, nil
}

// Validate checks what every backend requires of a record, written or
// read: a version this program knows, a valid sub, a known status. Its
// error is plain; a backend wraps it (as corrupt when reading).
func Validate(rec *Record) error {
	if rec == nil {
		return fmt.Errorf("no record")
	}
	switch {
	case rec.Version < 1:
		return fmt.Errorf("record has no version")
	case rec.Version > RecordVersion:
		return fmt.Errorf("record version %d is newer than this program's %d", rec.Version, RecordVersion)
	}
	if err := CheckSub(rec.Sub); err != nil {
		return fmt.Errorf("record sub: %w", err)
	}
	switch rec.Status {
	case StatusActive, StatusRevoked:
	default:
		return fmt.Errorf("record status %q is unknown", rec.Status)
	}
	return nil
}

// Apply is the core of every backend's Update, run under the user's lock:
// it calls fn with cur, the stored record (nil when there is none), and
// returns the record to write and its encoded form (EncodeRecord), or, when
// fn returned nil, cur and no data: nothing to write, and Update returns
// cur. On an error the record is nil. The record
// to write is a copy of fn's, stamped: the current version, sub, status
// active when unset, CreatedAt as fn set it (a copy from another store
// keeps its history), else cur's, else now, and UpdatedAt now. clock is
// the backend's clock at the precision it stores, read after fn returns
// (fn may wait on Google). A record EncodeRecord refuses is an error, so
// that no backend writes what it cannot read back.
func Apply(sub string, cur *Record, fn func(cur *Record) (*Record, error), clock func() time.Time) (*Record, []byte, error) {
	var created time.Time
	if cur != nil {
		created = cur.CreatedAt // before fn, which may change cur
	}
	next, err := fn(cur)
	switch {
	case err != nil:
		return nil, nil, err
	case next == nil:
		return cur, nil, nil
	}
	rec, now := *next, clock()
	rec.Version, rec.Sub, rec.UpdatedAt = RecordVersion, sub, now
	if rec.Status == "" {
		rec.Status = StatusActive
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = created
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	data, err := EncodeRecord(&rec)
	if err != nil {
		return nil, nil, err
	}
	return &rec, data, nil
}

func corrupt(err error) error {
	return signin.Wrap(err, signin.EINTERNAL, CodeCorruptRecord, "A stored credential record cannot be read.")
}

// RecordError is the cause in a CodeCorruptRecord error from a Store: which
// stored record could not be read, and why.
type RecordError struct {
	// Sub is the user the record belongs to, as far as the backend can
	// tell from where it keeps the record (not from its damaged content);
	// "" when it cannot.
	Sub string
	// Where names the record for an operator (a file name, say).
	Where string
	Err   error
}

func (e *RecordError) Error() string { return e.Where + ": " + e.Err.Error() }

func (e *RecordError) Unwrap() error { return e.Err }

// CorruptRecord is the error a Store returns for a stored record it cannot
// read: EINTERNAL, code CodeCorruptRecord, with a *RecordError cause. sub
// is the user the backend believes the record belongs to, or "".
func CorruptRecord(sub, where string, err error) error {
	var se *signin.Error
	if errors.As(err, &se) && se.Code == CodeCorruptRecord && se.Err != nil {
		err = se.Err // DecodeRecord's cause; the code and message are added again
	}
	return corrupt(&RecordError{Sub: sub, Where: where, Err: err})
}

// DamagedSub returns the user of the unreadable record err is about, when
// the store could tell it, else "".
func DamagedSub(err error) string {
	var re *RecordError
	if errors.As(err, &re) {
		return re.Sub
	}
	return ""
}

// CodeCorruptRecord is the error code of a record that cannot be decoded.
const CodeCorruptRecord = "corrupt_record"
