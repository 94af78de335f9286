// Package admin is signin-admin: the operator's commands over signin's
// store. "users list" and "users show" describe records (never a token),
// "users delete" forgets a user (revoking at Google first if asked),
// "sessions end" ends a user's sessions, "import" copies a file store into
// PostgreSQL and "reencrypt" reseals tokens with the newest key. The rules
// they apply (which user an email names, which record wins an import) are
// package grant's; this package reads the command line and prints.
//
// Exit status: 0 done, 1 failed (including "no such user"), 2 usage or
// configuration error.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"example.com/signin"
	"example.com/signin/internal/config"
	"example.com/signin/internal/exitcode"
	"example.com/signin/internal/googlenet"
	"example.com/signin/internal/grant"
	"example.com/signin/internal/seal"
	"example.com/signin/internal/store"
	"example.com/signin/internal/version"
	"example.com/signin/internal/wiring"
)

const usage = `Usage: signin-admin <command> [flags]

Commands:
  users list                      every user with a stored record
  users show SUB|EMAIL            one user's record (no token values)
  users delete SUB|EMAIL [-revoke]
                                  forget the user's credentials; -revoke
                                  revokes the grant at Google first and
                                  keeps the record if Google cannot be reached
  sessions end SUB|EMAIL          end every session of the user
  import -from DIR                copy the file store in DIR into -database
                                  (idempotent; the newer record wins)
  reencrypt [-drop KID]           reseal every record with the newest key;
                                  -drop KID refuses while a record still
                                  uses that key
  rounds [-n 10]                  offline-fetch's recent rounds (-database):
                                  users done, failed, waiting; finished or ETA

Every command takes -credentials, -database (or DATABASE_URL) and
-client-secrets like signin and offline-fetch; "list", "show" and
"rounds" take -json. Run "signin-admin <command> -h" for its flags. Nothing printed
contains a token.

Exit status: 0 done, 1 failed, 2 usage or configuration error.
`

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd, err := parse(args, getenv, stdout, stderr)
	if err != nil {
		return exitcode.Report(stderr, "signin-admin", exitcode.AsUsage(err))
	}
	return exitcode.Report(stderr, "signin-admin", cmd.Run(ctx))
}

// usageError is a problem with the command line or the configuration:
// exit status 2 (see exitcode).
func usageError(err error) error { return exitcode.AsUsage(err) }

// command is one parsed subcommand, ready to run.
type command struct {
	name   string // "users list", ...
	common config.Common
	json   bool
	revoke bool
	from   string // import
	drop   string // reencrypt
	limit  int    // rounds
	target string // SUB or EMAIL
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// parse reads the subcommand and its flags.
func parse(args []string, getenv func(string) string, stdout, stderr io.Writer) (*command, error) {
	if len(args) > 0 && (args[0] == "-version" || args[0] == "--version") {
		fmt.Fprint(stdout, version.String("signin-admin"))
		return nil, flag.ErrHelp
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return nil, errors.New("no command given")
		}
		return nil, flag.ErrHelp
	}
	name, rest := args[0], args[1:]
	if name == "users" || name == "sessions" {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%s: which? (see signin-admin -h)", name)
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	c := &command{name: name, getenv: getenv, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("signin-admin "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.common.Register(fs, "warn")
	var wantTarget bool
	switch name {
	case "users list":
		fs.BoolVar(&c.json, "json", false, "JSON lines instead of a table")
	case "users show":
		fs.BoolVar(&c.json, "json", false, "JSON instead of text")
		wantTarget = true
	case "users delete":
		fs.BoolVar(&c.revoke, "revoke", false, "revoke the grant at Google first; if Google cannot be reached, keep the record and fail")
		wantTarget = true
	case "sessions end":
		wantTarget = true
	case "import":
		fs.StringVar(&c.from, "from", "", "credentials directory of the file store to copy (required)")
	case "reencrypt":
		fs.StringVar(&c.drop, "drop", "", "key id about to be removed from "+seal.EnvKeys+": refuse (exit 1) while a record still uses it")
	case "rounds":
		fs.BoolVar(&c.json, "json", false, "JSON lines instead of a table")
		fs.IntVar(&c.limit, "n", 10, "how many of the most recent rounds")
	default:
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("unknown command %q", name)
	}
	// The target may come before the flags ("users show ada@example.com
	// -json"), as people type it.
	if wantTarget && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		c.target, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return nil, err
	}
	if wantTarget && c.target == "" && fs.NArg() > 0 {
		c.target = fs.Arg(0)
		rest = fs.Args()[1:]
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
	}
	if err := c.common.Parsed(fs, getenv); err != nil {
		return nil, err
	}
	switch {
	case wantTarget && c.target == "":
		return nil, fmt.Errorf("%s: give a user's sub or email", name)
	case name == "import" && c.from == "":
		return nil, errors.New("import: -from DIR is required")
	case name == "import" && c.common.Database == "":
		return nil, fmt.Errorf("import: -database (or %s) is required: it copies a file store into PostgreSQL", config.EnvDatabaseURL)
	case name == "rounds" && c.common.Database == "":
		return nil, fmt.Errorf("rounds: -database (or %s) is required: rounds are offline-fetch's with a database", config.EnvDatabaseURL)
	case name == "rounds" && (c.limit < 1 || c.limit > 1000):
		return nil, fmt.Errorf("rounds: -n %d: want 1 to 1000", c.limit)
	}
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.common.LogLevel}))
	return c, nil
}

// open builds what the command works on: the raw backend (records as
// stored, tokens sealed) and the grant rules over it (tokens opened), with
// Google only when the command talks to it.
func (c *command) open(ctx context.Context, withGoogle bool) (*wiring.Parts, error) {
	wc := wiring.Config{Common: c.common, Getenv: c.getenv, Logger: c.log}
	if withGoogle || c.common.SecretsExplicit {
		// A -client-secrets the user named is checked even where Google is
		// not called: a mistyped path must not pass unnoticed.
		g, err := config.LoadGoogle(c.common.ClientSecrets, c.common.SecretsExplicit, c.getenv, googlenet.Options{})
		if err != nil {
			return nil, usageError(err)
		}
		if withGoogle {
			wc.Google = g
		}
	}
	return wiring.Open(ctx, wc) // configuration errors are *wiring.ConfigError: exit 2
}

// Run runs the command.
func (c *command) Run(ctx context.Context) error {
	e, err := c.open(ctx, c.name == "users delete" && c.revoke)
	if err != nil {
		return err
	}
	defer e.Close()
	run, ok := map[string]func(context.Context, *wiring.Parts) error{
		"users list": c.usersList, "users show": c.usersShow, "users delete": c.usersDelete,
		"sessions end": c.sessionsEnd, "import": c.importFiles, "reencrypt": c.reencrypt, "rounds": c.rounds,
	}[c.name]
	if !ok {
		return usageError(fmt.Errorf("unknown command %q", c.name))
	}
	return run(ctx, e)
}

// userJSON is a record as the admin shows it: everything but token values.
type userJSON struct {
	Sub            string     `json:"sub"`
	Email          string     `json:"email,omitempty"`
	Name           string     `json:"name,omitempty"`
	Status         string     `json:"status"`
	Offline        string     `json:"offline"`
	Scopes         []string   `json:"scopes,omitempty"`
	LastRefresh    *time.Time `json:"last_refresh,omitempty"`
	TokenExpiry    *time.Time `json:"token_expiry,omitempty"`
	HasRefresh     bool       `json:"has_refresh_token"`
	SealingKey     string     `json:"sealing_key,omitempty"` // key id, "" when stored in the clear (before sealing)
	RevokedReason  string     `json:"revoked_reason,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// view describes rec as stored (tokens sealed): never a token value.
func view(rec *grant.Record) userJSON {
	v := userJSON{
		Sub: rec.Sub, Email: rec.Email, Name: rec.Name, Status: string(rec.Status), Offline: string(rec.Offline()),
		Scopes: rec.Scopes, LastRefresh: rec.RefreshedAt, HasRefresh: rec.Token.RefreshToken != "",
		SealingKey: seal.KeyID(rec.Token.RefreshToken), RevokedReason: rec.RevokedReason, RevokedAt: rec.RevokedAt,
		DisabledAt: rec.DisabledAt, DisabledReason: rec.DisabledReason, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	if !rec.Token.Expiry.IsZero() {
		exp := rec.Token.Expiry
		v.TokenExpiry = &exp
	}
	return v
}

func (c *command) usersList(ctx context.Context, e *wiring.Parts) error {
	var tw *tabwriter.Writer
	if !c.json {
		tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SUB\tEMAIL\tNAME\tSTATUS\tSCOPES\tLAST REFRESH\tUPDATED")
	}
	enc := json.NewEncoder(c.stdout)
	failed := 0
	err := e.Store.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			failed++
			fmt.Fprintf(c.stderr, "signin-admin: %s\n", signin.ErrorMessage(err))
			return nil
		}
		v := view(rec)
		if c.json {
			return enc.Encode(v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(v.Sub), clean(v.Email), clean(v.Name), v.Offline,
			clean(strings.Join(v.Scopes, " ")), when(v.LastRefresh), v.UpdatedAt.Format(time.RFC3339))
		return nil
	})
	if tw != nil {
		tw.Flush()
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d records could not be read", failed)
	}
	return nil
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// clean keeps a stored string on one line of the table.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// resolve finds the sub the target names (grant.FindUser): a sub, or an
// email exactly one record holds. An unreadable record is named by its sub.
func (c *command) resolve(ctx context.Context, e *wiring.Parts) (string, error) {
	rec, err := grant.FindUser(ctx, e.Store, c.target)
	switch {
	case err == nil:
		return rec.Sub, nil
	case signin.ErrorCode(err) == grant.CodeCorruptRecord:
		return c.target, nil
	case signin.ErrorKind(err) == signin.ENOTFOUND, signin.ErrorKind(err) == signin.EINVALID:
		return "", fmt.Errorf("%s: %s", c.target, signin.ErrorMessage(err))
	}
	return "", err
}

func (c *command) usersShow(ctx context.Context, e *wiring.Parts) error {
	sub, err := c.resolve(ctx, e)
	if err != nil {
		return err
	}
	rec, err := e.Store.Get(ctx, sub)
	if err != nil {
		return err
	}
	v := view(rec)
	if c.json {
		// One JSON line, as users list -json prints them.
		return json.NewEncoder(c.stdout).Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, f := range [][2]string{
		{"sub", v.Sub}, {"email", v.Email}, {"name", v.Name}, {"status", v.Status}, {"offline", v.Offline},
		{"scopes", strings.Join(v.Scopes, " ")}, {"refresh token", map[bool]string{true: "stored", false: "none"}[v.HasRefresh]},
		{"sealing key", map[bool]string{true: v.SealingKey, false: "none (stored before sealing; sealed on its next write)"}[v.SealingKey != ""]},
		{"token expiry", when(v.TokenExpiry)}, {"last refresh", when(v.LastRefresh)},
		{"revoked", when(v.RevokedAt) + " " + v.RevokedReason}, {"disabled by Google", when(v.DisabledAt) + " " + v.DisabledReason},
		{"created", v.CreatedAt.Format(time.RFC3339)}, {"updated", v.UpdatedAt.Format(time.RFC3339)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], clean(strings.TrimSpace(f[1])))
	}
	return tw.Flush()
}

func (c *command) usersDelete(ctx context.Context, e *wiring.Parts) error {
	sub, err := c.resolve(ctx, e)
	if err != nil {
		return err
	}
	if c.revoke {
		revoked, err := e.Grants.Disconnect(ctx, sub)
		if err != nil {
			return fmt.Errorf("the record of %s is kept: %s", sub, signin.ErrorMessage(err))
		}
		fmt.Fprintf(c.stdout, "deleted %s (revoked at Google: %v)\n", sub, revoked)
		return nil
	}
	// What the record said decides what Google still holds.
	rec, getErr := e.Store.Get(ctx, sub)
	if err := e.Store.Delete(ctx, sub); err != nil {
		return err
	}
	switch {
	case getErr == nil && rec.Offline() == grant.OfflineRevoked:
		fmt.Fprintf(c.stdout, "deleted %s (its grant was already revoked at Google)\n", sub)
	case getErr != nil:
		fmt.Fprintf(c.stdout, "deleted %s (its record could not be read; a grant Google still holds stays valid there)\n", sub)
	default:
		fmt.Fprintf(c.stdout, "deleted %s (not revoked at Google: the grant stays valid there; -revoke revokes it)\n", sub)
	}
	return nil
}

func (c *command) sessionsEnd(ctx context.Context, e *wiring.Parts) error {
	sub := c.target
	if strings.Contains(sub, "@") {
		var err error
		if sub, err = c.resolve(ctx, e); err != nil {
			return err
		}
	}
	at := time.UnixMicro(time.Now().UnixMicro()) // what cookies keep
	if err := e.Store.EndUserSessions(ctx, sub, at, at.Add(endsKeptFor)); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "ended every session of %s issued until %s (every replica refuses them within a second)\n", sub, at.UTC().Format(time.RFC3339))
	return nil
}

// endsKeptFor is how long the store keeps that an admin ended a user's
// sessions: this command does not know signin's -session-max-age, so a
// bound well above any sensible one (it is one small row per user).
const endsKeptFor = 400 * 24 * time.Hour

// importFiles copies the file store in c.from into the database, record by
// record under each user's lock, by grant.Import: the newer record wins. It
// is idempotent, and tokens are sealed on the way in.
func (c *command) importFiles(ctx context.Context, e *wiring.Parts) error {
	fi, err := os.Stat(c.from)
	if err != nil || !fi.IsDir() {
		return usageError(fmt.Errorf("import: -from %s: not a credentials directory", c.from))
	}
	src, err := store.Open(ctx, store.Config{Dir: c.from, Logger: c.log}) // the file store
	if err != nil {
		return err
	}
	defer src.Close()
	keys := e.Keys
	if kf := filepath.Join(c.from, seal.DefaultKeyFileName); exists(kf) {
		fileKeys, err := seal.LoadKeys(func(string) string { return "" }, kf, c.log)
		if err != nil {
			return err
		}
		keys = keys.With(fileKeys) // opens what that deployment sealed
	}
	from, to := grant.Sealed(src, keys), e.Sealed
	var imported, kept, failed int
	err = from.List(ctx, func(rec *grant.Record, err error) error {
		if err != nil {
			failed++
			fmt.Fprintf(c.stderr, "signin-admin: import: %s\n", err)
			return nil
		}
		wrote, err := grant.Import(ctx, to, rec)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(c.stderr, "signin-admin: import %s: %s\n", rec.Sub, signin.ErrorMessage(err))
		case wrote:
			imported++
		default:
			kept++
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "imported=%d kept=%d failed=%d\n", imported, kept, failed)
	if failed > 0 {
		return fmt.Errorf("%d records were not imported", failed)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// reencrypt reseals every record whose tokens are not sealed with the
// newest key (a plain, legacy record included), one user at a time under
// that user's lock, so it is safe while the servers run. It reports how
// many records each older key still seals.
func (c *command) reencrypt(ctx context.Context, e *wiring.Parts) error {
	newest := e.Keys.Newest()
	var resealed, unreadable int
	byKey := map[string]int{}
	err := e.Store.List(ctx, func(raw *grant.Record, err error) error {
		if err != nil {
			unreadable++
			return nil
		}
		if kid := seal.KeyID(raw.Token.RefreshToken); kid == newest && (raw.Token.AccessToken == "" || seal.KeyID(raw.Token.AccessToken) == newest) {
			return nil
		}
		_, err = e.Sealed.Update(ctx, raw.Sub, func(cur *grant.Record) (*grant.Record, error) {
			return cur, nil // written back through Sealed: sealed with the newest key
		})
		if err != nil {
			unreadable++
			fmt.Fprintf(c.stderr, "signin-admin: reencrypt %s: %s\n", raw.Sub, err)
			return nil
		}
		resealed++
		return nil
	})
	if err != nil {
		return err
	}
	// Count what each key seals now.
	err = e.Store.List(ctx, func(raw *grant.Record, err error) error {
		if err == nil {
			byKey[seal.KeyID(raw.Token.RefreshToken)]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "resealed=%d unreadable=%d newest_key=%s\n", resealed, unreadable, newest)
	for _, kid := range e.Keys.IDs() {
		fmt.Fprintf(c.stdout, "key %s: %d records\n", kid, byKey[kid])
	}
	if n := byKey[""]; n > 0 {
		fmt.Fprintf(c.stdout, "no key (no refresh token, or plain): %d records\n", n)
	}
	if c.drop != "" {
		if n := byKey[c.drop]; n > 0 || unreadable > 0 {
			return fmt.Errorf("refusing to drop key %s: %d records are still sealed with it (%d unreadable)", c.drop, n, unreadable)
		}
		fmt.Fprintf(c.stdout, "key %s seals no record: it can be removed from %s\n", c.drop, seal.EnvKeys)
	}
	if unreadable > 0 {
		return fmt.Errorf("%d records could not be read or resealed", unreadable)
	}
	return nil
}
