// Package granttest helps test code that uses a grant.Store: Memory is an
// in-memory Store for tests of other packages, and Run is the contract
// every Store backend must pass (the file and PostgreSQL backends, the
// sealed Store and Memory itself run it), so that a fake and the real
// thing cannot drift apart.
package granttest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"example.com/signin"
	"example.com/signin/internal/grant"
)

// Memory is a grant.Store in memory, for tests. Records are stored encoded,
// as a real backend would, so that callers cannot change a stored record
// through a pointer they hold. One mutex serialises everything. The zero
// value is ready to use.
type Memory struct {
	// Now is the clock for CreatedAt and UpdatedAt; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	recs  map[string][]byte
	aside map[string][]byte // damaged records set aside, by sub
}

var _ grant.Store = (*Memory)(nil)

// Get implements grant.Store.
func (m *Memory) Get(ctx context.Context, sub string) (*grant.Record, error) {
	if err := grant.CheckSub(sub); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.get(sub)
}

func (m *Memory) get(sub string) (*grant.Record, error) {
	data, ok := m.recs[sub]
	if !ok {
		return nil, signin.Errorf(signin.ENOTFOUND, "", "No offline access is stored for this user.")
	}
	rec, err := grant.DecodeRecord(data)
	if err != nil {
		return nil, grant.CorruptRecord(sub, "memory record of "+sub, err)
	}
	return rec, nil
}

// Damage replaces sub's stored record by data that cannot be decoded, as a
// torn write would leave it, for tests of what happens next.
func (m *Memory) Damage(sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string][]byte{}
	}
	m.recs[sub] = []byte(`{"version":1,"sub":"` + sub + `","status":"act`)
}

// SetAside implements grant.Store.
func (m *Memory) SetAside(ctx context.Context, sub string) (string, error) {
	if err := grant.CheckSub(sub); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(sub); signin.ErrorCode(err) != grant.CodeCorruptRecord {
		return "", nil
	}
	if m.aside == nil {
		m.aside = map[string][]byte{}
	}
	m.aside[sub] = m.recs[sub]
	delete(m.recs, sub)
	return "memory, set aside: " + sub, nil
}

// Update implements grant.Store.
func (m *Memory) Update(ctx context.Context, sub string, fn func(cur *grant.Record) (*grant.Record, error)) (*grant.Record, error) {
	if err := grant.CheckSub(sub); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.get(sub)
	if signin.ErrorKind(err) == signin.ENOTFOUND {
		cur, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	next, data, err := grant.Apply(sub, cur, fn, func() time.Time { return now().UTC().Round(0) })
	if err != nil || data == nil {
		return next, err // nil on an error; cur when there is nothing to write
	}
	if m.recs == nil {
		m.recs = map[string][]byte{}
	}
	m.recs[sub] = data
	return next, nil
}

// Delete implements grant.Store.
func (m *Memory) Delete(ctx context.Context, sub string) error {
	if err := grant.CheckSub(sub); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[sub]; !ok {
		return signin.Errorf(signin.ENOTFOUND, "", "No offline access is stored for this user.")
	}
	delete(m.recs, sub)
	return nil
}

// List implements grant.Store. It copies the keys first (memory grows with
// users, which is fine for a test fake), then reads each record without
// holding the lock while fn runs, so fn may call the store.
func (m *Memory) List(ctx context.Context, fn func(rec *grant.Record, err error) error) error {
	m.mu.Lock()
	subs := slices.Sorted(maps.Keys(m.recs))
	m.mu.Unlock()
	for _, sub := range subs {
		if err := ctx.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		rec, err := m.get(sub)
		m.mu.Unlock()
		if signin.ErrorKind(err) == signin.ENOTFOUND {
			continue
		}
		if err := fn(rec, err); err != nil {
			return err
		}
	}
	return nil
}
