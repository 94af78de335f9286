package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// EmulatorAddrFile is the file, in the credentials directory, where signin
// in demo mode writes the host:port of the Google emulator it runs (or
// uses), and removes at exit, so that offline-fetch finds that emulator
// wherever -emulator-addr put it.
const EmulatorAddrFile = ".emulator-addr"

// PublishEmulatorAddr writes addr to EmulatorAddrFile in dir (0600, written
// whole and renamed into place, never through a link) and returns a
// function that removes it, if it still holds addr. A missing dir is made
// (0700), as the file store makes it: with -database nothing else does,
// and demo mode on PostgreSQL in a fresh checkout would fail for it.
func PublishEmulatorAddr(dir, addr string) (remove func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("writing the emulator's address: %w", err)
	}
	path := filepath.Join(dir, EmulatorAddrFile)
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("writing the emulator's address: %w", err)
	}
	_, werr := f.WriteString(addr + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("writing the emulator's address: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("writing the emulator's address: %w", err)
	}
	return func() {
		if got, err := PublishedEmulatorAddr(dir); err == nil && got == addr {
			os.Remove(path)
		}
	}, nil
}

// PublishedEmulatorAddr returns the address signin wrote in dir, or "" when
// there is none. It does not follow a link nor wait on a special file.
func PublishedEmulatorAddr(dir string) (string, error) {
	path := filepath.Join(dir, EmulatorAddrFile)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("reading %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 512))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	addr := string(bytes.TrimSpace(b))
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("reading %s: %q is not a host:port", path, addr)
	}
	return addr, nil
}
