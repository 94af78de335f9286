// Package config turns flags, files and environment into the settings the
// commands share: the common flags (Common), which Google client the app is
// and where Google is (the real one or the emulator: demo mode), and the
// session keys. Package wiring builds the store and the grant rules from
// them.
package config

import (
	"errors"
	"fmt"
	"io/fs"

	"example.com/signin/internal/auth"
	"example.com/signin/internal/exitcode"
	"example.com/signin/internal/googlenet"
)

// DefaultEmulatorAddr is where demo mode runs (or finds) the Google emulator.
const DefaultEmulatorAddr = "127.0.0.1:9022"

// DefaultClientSecrets is the default path of the Google client file.
const DefaultClientSecrets = "client_secrets.json"

// The demo's client: the one the Google emulator registers when it is given
// no other. They are written here rather than taken from package emulator
// so that commands that only talk to an emulator (offline-fetch) do not link
// one in; a test checks that the two agree.
const (
	DemoClientID     = "000000000000-demo.apps.googleusercontent.com"
	DemoClientSecret = "GOCSPX-demo-client-secret"
)

// Google says which Google client the app is and where Google is.
type Google struct {
	Client *auth.Client
	Net    *googlenet.Net
	// Demo is set when there is no client_secrets.json: the app uses the
	// emulator's built-in demo client, at EmulatorAddr.
	Demo bool
	// EmulatorAddr is the emulator's host:port when Google is emulated.
	EmulatorAddr string
	// EmulatorFromEnv reports whether GOOGLE_EMULATOR_HOST chose the
	// emulator (so demo mode must not start its own).
	EmulatorFromEnv bool
}

// LoadGoogle reads the client from secretsPath and decides where Google is.
//
// With a client_secrets.json the app talks to Google, or to the emulator at
// GOOGLE_EMULATOR_HOST when that is set. Without one, and only when the path
// is the default one (explicit says whether the user chose it), the app runs
// in demo mode: the emulator's demo client, at GOOGLE_EMULATOR_HOST or
// DefaultEmulatorAddr. A path the user named that does not exist is an error.
func LoadGoogle(secretsPath string, explicit bool, getenv func(string) string, opts googlenet.Options) (*Google, error) {
	emuHost := getenv(googlenet.EnvEmulatorHost)
	g := &Google{EmulatorFromEnv: emuHost != ""}

	client, err := auth.LoadClientSecrets(secretsPath)
	switch {
	case err == nil:
		g.Client = client
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		g.Demo = true
		g.Client = &auth.Client{ID: DemoClientID, Secret: DemoClientSecret}
		if emuHost == "" {
			emuHost = DefaultEmulatorAddr
		}
	default:
		return nil, exitcode.Usagef("-client-secrets %s: %w", secretsPath, err)
	}

	g.Net, err = googlenet.New(emuHost, opts)
	if err != nil {
		return nil, exitcode.Usagef("%s: %w", googlenet.EnvEmulatorHost, err)
	}
	g.EmulatorAddr = emuHost
	return g, nil
}

// UseEmulator points the app at the emulator at addr (host:port), as
// GOOGLE_EMULATOR_HOST would have.
func (g *Google) UseEmulator(addr string, opts googlenet.Options) error {
	n, err := googlenet.New(addr, opts)
	if err != nil {
		return err
	}
	g.Net, g.EmulatorAddr = n, addr
	return nil
}

// Describe is a one-line, secret-free description of where Google is, for
// start-up logs.
func (g *Google) Describe() string {
	switch {
	case g.Demo:
		return fmt.Sprintf("DEMO MODE: no %s, using the Google emulator at %s with test accounts (client %s)", DefaultClientSecrets, g.EmulatorAddr, g.Client.ID)
	case g.Net.Emulated():
		return fmt.Sprintf("Google emulated at %s (%s), client %s", g.EmulatorAddr, googlenet.EnvEmulatorHost, g.Client.ID)
	default:
		return "Google (accounts.google.com), client " + g.Client.ID
	}
}
