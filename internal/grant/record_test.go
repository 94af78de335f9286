package grant_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/grant/granttest"
)

// goodRecord is a complete version 1 record as the file backend writes it.
const goodRecord = `{
  "version": 1,
  "sub": "109876543210987654321",
  "email": "ada@example.com",
  "name": "Ada Lovelace",
  "scopes": [
    "openid",
    "email",
    "profile"
  ],
  "token": {
    "access_token": "ya29.a0AfH6",
    "token_type": "Bearer",
    "refresh_token": "1//0gLq",
    "expiry": "2026-01-02T03:04:05Z"
  },
  "status": "active",
  "created_at": "2026-01-01T00:00:00Z",
  "updated_at": "2026-01-02T02:04:05Z"
}
`

func TestEncodeRecordIsDocumentedFormat(t *testing.T) {
	rec, err := grant.DecodeRecord([]byte(goodRecord))
	if err != nil {
		t.Fatal(err)
	}
	data, err := grant.EncodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != goodRecord {
		t.Errorf("EncodeRecord =\n%s\nwant\n%s", data, goodRecord)
	}
}

func TestDecodeRecord(t *testing.T) {
	revoked := strings.Replace(goodRecord, `"status": "active"`,
		`"status": "revoked", "revoked_reason": "Token has been expired or revoked.", "revoked_at": "2026-01-03T00:00:00Z"`, 1)
	tests := []struct {
		name    string
		data    string
		wantErr bool
	}{
		{name: "good", data: goodRecord},
		{name: "revoked", data: revoked},
		{name: "unknown field ignored", data: strings.Replace(goodRecord, `"version": 1,`, `"version": 1, "later": true,`, 1)},
		{name: "newer version", data: strings.Replace(goodRecord, `"version": 1`, `"version": 2`, 1), wantErr: true},
		{name: "no version", data: strings.Replace(goodRecord, `"version": 1,`, ``, 1), wantErr: true},
		{name: "version zero", data: strings.Replace(goodRecord, `"version": 1`, `"version": 0`, 1), wantErr: true},
		{name: "no sub", data: strings.Replace(goodRecord, `"sub": "109876543210987654321",`, ``, 1), wantErr: true},
		{name: "empty sub", data: strings.Replace(goodRecord, `"109876543210987654321"`, `""`, 1), wantErr: true},
		{name: "long sub", data: strings.Replace(goodRecord, `"109876543210987654321"`, `"`+strings.Repeat("1", 256)+`"`, 1), wantErr: true},
		{name: "unknown status", data: strings.Replace(goodRecord, `"active"`, `"paused"`, 1), wantErr: true},
		{name: "no status", data: strings.Replace(goodRecord, `"status": "active",`, ``, 1), wantErr: true},
		{name: "torn", data: goodRecord[:len(goodRecord)/2], wantErr: true},
		{name: "trailing data", data: goodRecord + `{}`, wantErr: true},
		{name: "array", data: `[` + goodRecord + `]`, wantErr: true},
		{name: "null", data: `null`, wantErr: true},
		{name: "empty", data: ``, wantErr: true},
		{name: "wrong type", data: strings.Replace(goodRecord, `"version": 1`, `"version": "1"`, 1), wantErr: true},
		{name: "oversized", data: goodRecord + strings.Repeat(" ", grant.MaxRecordSize), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := grant.DecodeRecord([]byte(tt.data))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DecodeRecord = %+v, want an error", rec)
				}
				if signin.ErrorCode(err) != grant.CodeCorruptRecord {
					t.Errorf("error %v has code %q, want %q", err, signin.ErrorCode(err), grant.CodeCorruptRecord)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if rec.Sub != "109876543210987654321" || rec.Token.RefreshToken != "1//0gLq" ||
				!rec.Token.Expiry.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("DecodeRecord = %+v", rec)
			}
		})
	}
}

func TestEncodeRecordRefusesWhatCannotBeRead(t *testing.T) {
	big := granttest.NewRecord("1", time.Now())
	big.Version = grant.RecordVersion
	big.Token.AccessToken = strings.Repeat("a", grant.MaxRecordSize)
	if _, err := grant.EncodeRecord(big); signin.ErrorKind(err) != signin.ETOOLARGE {
		t.Errorf("EncodeRecord(oversized) = %v, want ETOOLARGE", err)
	}
	noVersion := granttest.NewRecord("1", time.Now())
	if _, err := grant.EncodeRecord(noVersion); err == nil {
		t.Errorf("EncodeRecord(no version) succeeded")
	}
}

// FuzzDecodeRecord: the decoder never panics, accepts only records that
// satisfy the format's rules, and what it accepts encodes and decodes back
// to the same record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(goodRecord))
	f.Add([]byte(strings.Replace(goodRecord, `"status": "active"`, `"status": "revoked", "revoked_at": "2026-01-03T00:00:00Z"`, 1)))
	f.Add([]byte(`{"version":1,"sub":"a\u0000/../b","status":"active","token":{}}`))
	f.Add([]byte(`{"version":2,"sub":"1","status":"active"}`))
	f.Add([]byte(`{"version":1,"sub":"1","status":"active","token":{"expiry":"not a time"}}`))
	f.Add([]byte(`{"version":1e400}`))
	f.Add([]byte(`{"version":1,"sub":"1","sub":"2","status":"active"}`))
	f.Add([]byte(`{"version":1,"sub":"\ud800","status":"active"}`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := grant.DecodeRecord(data)
		if err != nil {
			if signin.ErrorCode(err) != grant.CodeCorruptRecord {
				t.Fatalf("error without the corrupt_record code: %v", err)
			}
			return
		}
		if rec.Version < 1 || rec.Version > grant.RecordVersion || grant.CheckSub(rec.Sub) != nil ||
			(rec.Status != grant.StatusActive && rec.Status != grant.StatusRevoked) {
			t.Fatalf("accepted an invalid record: %+v", rec)
		}
		enc, err := grant.EncodeRecord(rec)
		if signin.ErrorKind(err) == signin.ETOOLARGE {
			return // compact JSON under the limit, indented over it
		}
		if err != nil {
			t.Fatalf("cannot encode a record it decoded: %v", err)
		}
		again, err := grant.DecodeRecord(enc)
		if err != nil {
			t.Fatalf("cannot decode its own encoding: %v\n%s", err, enc)
		}
		if !granttest.Equal(rec, again) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, again)
		}
		enc2, _ := grant.EncodeRecord(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}
