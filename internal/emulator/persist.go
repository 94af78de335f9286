package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The state file keeps a demo alive across restarts: users, grants with
// their live tokens, and the signing keys (so ID tokens and key sets cached
// by the app stay valid). Codes and counters are not kept. It is written by
// one goroutine, at most a few times a second, from a snapshot taken under
// the lock, so request paths never wait for the disk.

const stateVersion = 1

type stateFile struct {
	Version int          `json:"version"`
	Users   []User       `json:"users"`
	Grants  []savedGrant `json:"grants"`
	Keys    []savedKey   `json:"keys"`
}

type savedGrant struct {
	ClientID string         `json:"client_id"`
	Sub      string         `json:"sub"`
	Scopes   []string       `json:"scopes"`
	Offline  bool           `json:"offline"`
	Refresh  []savedRefresh `json:"refresh_tokens,omitempty"`
	Access   []savedAccess  `json:"access_tokens,omitempty"`
}

type savedRefresh struct {
	Token   string    `json:"token"`
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
}

type savedAccess struct {
	Token   string    `json:"token"`
	Scopes  []string  `json:"scopes"`
	Expiry  time.Time `json:"expiry"`
	Offline bool      `json:"offline,omitempty"`
}

type savedKey struct {
	Kid       string    `json:"kid"`
	PKCS8     []byte    `json:"pkcs8"`
	Created   time.Time `json:"created"`
	SignsFrom time.Time `json:"signs_from,omitzero"` // zero: from Created
}

const maxStateFile = 256 << 20

// readStateFile returns nil, nil when the file does not exist yet.
func readStateFile(path string) (*stateFile, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("emulator: state file: %w", err)
	}
	defer f.Close()
	var s stateFile
	if err := json.NewDecoder(io.LimitReader(f, maxStateFile)).Decode(&s); err != nil {
		return nil, fmt.Errorf("emulator: state file %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("emulator: state file %s: version %d, want %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

// restore replaces the configured users with the saved ones and brings back
// the grants of known clients.
func (id *identity) restore(s *stateFile, clients map[string]Client) error {
	if len(s.Users) > 0 {
		*id = *newIdentity()
		for _, u := range s.Users {
			if _, err := id.addUser(u); err != nil {
				return fmt.Errorf("user %q: %w", u.Email, err)
			}
		}
	}
	for _, sg := range s.Grants {
		if _, ok := clients[sg.ClientID]; !ok || id.users[sg.Sub] == nil {
			continue // a client no longer registered, or a user gone
		}
		k := grantKey{sg.ClientID, sg.Sub}
		g, _ := id.consent(k, sg.Scopes, sg.Offline, false)
		for _, r := range sg.Refresh {
			id.refresh[r.Token] = &refreshToken{key: k, scopes: r.Scopes, created: r.Created}
			g.refresh = append(g.refresh, r.Token)
		}
		for _, a := range sg.Access {
			id.access[a.Token] = &accessToken{key: k, scopes: a.Scopes, expiry: a.Expiry, offline: a.Offline}
			g.access[a.Token] = struct{}{}
		}
	}
	return nil
}

// snapshot copies what the state file keeps. Caller holds Emulator.mu.
func (id *identity) snapshot(now time.Time) stateFile {
	s := stateFile{Version: stateVersion, Users: id.listUsers()}
	for k, g := range id.grants {
		sg := savedGrant{ClientID: k.client, Sub: k.sub, Scopes: g.grantedScopes(), Offline: g.offline}
		for _, tok := range g.refresh {
			if r := id.refresh[tok]; r != nil {
				sg.Refresh = append(sg.Refresh, savedRefresh{Token: tok, Scopes: r.scopes, Created: r.created})
			}
		}
		for tok := range g.access {
			if a := id.access[tok]; a != nil && a.expiry.After(now) {
				sg.Access = append(sg.Access, savedAccess{Token: tok, Scopes: a.scopes, Expiry: a.expiry, Offline: a.offline})
			}
		}
		s.Grants = append(s.Grants, sg)
	}
	return s
}

// saver writes the state file in the background.
type saver struct {
	e     *Emulator
	dirty chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	mu    sync.Mutex // serialises writes (the goroutine's and Close's)
	err   error
}

const saveCoalesce = 200 * time.Millisecond

func startSaver(e *Emulator) *saver {
	s := &saver{e: e, dirty: make(chan struct{}, 1), done: make(chan struct{})}
	s.wg.Add(1)
	go s.loop()
	return s
}

func (s *saver) markDirty() {
	select {
	case s.dirty <- struct{}{}:
	default: // a save is already due
	}
}

func (s *saver) loop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.dirty:
		}
		// Let a burst of changes land in one write.
		t := time.NewTimer(saveCoalesce)
		select {
		case <-s.done:
			t.Stop()
			return // close writes the final state
		case <-t.C:
		}
		s.save()
	}
}

func (s *saver) save() {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.e
	now := e.now()
	e.mu.RLock()
	st := e.id.snapshot(now)
	e.mu.RUnlock()
	st.Keys = e.keys.snapshot()
	if err := writeFileAtomic(e.cfg.StateFile, st); err != nil {
		s.err = err
		e.log.Error("emulator: writing state file", "path", e.cfg.StateFile, "err", err)
	}
}

func (s *saver) close() error {
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		s.save()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// writeFileAtomic writes v as JSON to path with mode 0600 through a
// temporary file and a rename, so a crash leaves the old file or the new
// one.
func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".emulator-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
