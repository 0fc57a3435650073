package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
)

const userUsage = `usage:
  gridmap user add NAME --role ROLE [--scope CODE] [--layer L] [--display-name S]
                   [--person LAYER/GRID/NAME] [--password-file F]
  gridmap user list
  gridmap user disable NAME
  gridmap user enable NAME
  gridmap user passwd NAME [--password-file F]
`

const tokenUsage = `usage:
  gridmap token create --role ROLE [--scope CODE] [--layer L] [--name NAME] [--expires DURATION]
  gridmap token list
  gridmap token revoke NAME
`

// runUser manages the accounts people sign in to the web pages with.
func runUser(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, userUsage)
		return exitError(2)
	}
	fs := flag.NewFlagSet("user "+args[0], flag.ContinueOnError)
	dataDir := dataFlag(fs)
	var run func(*postgres.DB, *postgres.AccessStore, []string) error
	switch args[0] {
	case "add":
		role := fs.String("role", "", "role: viewer, reporter, dispatcher, editor or admin")
		scope := scopeFlags(fs)
		display := fs.String("display-name", "", "the name the pages show (default: the username)")
		person := fs.String("person", "", "the grid person the account acts as, LAYER/GRID/NAME; with no --scope, their grid is the scope")
		passwordFile := fs.String("password-file", "", "read the password from this file (- for standard input) instead of making one")
		run = func(db *postgres.DB, s *postgres.AccessStore, names []string) error {
			a := &gridmap.Account{Username: names[0], Role: *role, DisplayName: *display}
			var err error
			if a.Scope, err = scope.resolve(ctx, db); err != nil {
				return err
			}
			if *person != "" {
				parts := strings.SplitN(*person, "/", 3)
				if len(parts) != 3 {
					return fmt.Errorf("--person %q: give LAYER/GRID/NAME, for example zonghe/310101001001001/张伟", *person)
				}
				a.Person = &gridmap.PersonRef{Layer: parts[0], Grid: parts[1], Name: parts[2]}
			}
			password, generated, err := passwordFrom(*passwordFile)
			if err != nil {
				return err
			}
			if err := s.AddAccount(ctx, a, password); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "account %s added: %s%s\n", a.Username, a.Role, scopeText(" in ", a.Scope))
			printPassword(stdout, password, generated)
			return nil
		}
	case "list":
		run = func(_ *postgres.DB, s *postgres.AccessStore, _ []string) error { return listAccounts(ctx, s, stdout) }
	case "disable", "enable":
		disable := args[0] == "disable"
		run = func(_ *postgres.DB, s *postgres.AccessStore, names []string) error {
			if _, err := s.ChangeAccount(ctx, names[0], gridmap.AccountChange{Disabled: &disable}); err != nil {
				return err
			}
			if disable {
				fmt.Fprintf(stdout, "account %s disabled; its sessions have ended\n", names[0])
			} else {
				fmt.Fprintf(stdout, "account %s enabled\n", names[0])
			}
			return nil
		}
	case "passwd":
		passwordFile := fs.String("password-file", "", "read the password from this file (- for standard input) instead of making one")
		run = func(_ *postgres.DB, s *postgres.AccessStore, names []string) error {
			password, generated, err := passwordFrom(*passwordFile)
			if err != nil {
				return err
			}
			if _, err := s.ChangeAccount(ctx, names[0], gridmap.AccountChange{Password: &password}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "password of %s changed; its sessions have ended\n", names[0])
			printPassword(stdout, password, generated)
			return nil
		}
	default:
		fmt.Fprintf(os.Stderr, "gridmap user: unknown command %q\n\n%s", args[0], userUsage)
		return exitError(2)
	}
	return runAccess(ctx, fs, args, dataDir, logger, userUsage, run)
}

// runToken manages the tokens other systems call with.
func runToken(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, tokenUsage)
		return exitError(2)
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	dataDir := dataFlag(fs)
	var run func(*postgres.DB, *postgres.AccessStore, []string) error
	switch args[0] {
	case "create":
		role := fs.String("role", "", "role: viewer, reporter, dispatcher, editor or admin")
		scope := scopeFlags(fs)
		name := fs.String("name", "", "the token's name (default: token- and random hex digits)")
		expires := fs.String("expires", "", "how long the token lives: a Go duration (720h) or days (30d); default: until revoked")
		run = func(db *postgres.DB, s *postgres.AccessStore, _ []string) error {
			t := &gridmap.Token{Name: *name, Role: *role, CreatedBy: cliActor()}
			if *expires != "" {
				d, err := gridmap.ParseLifetime(*expires)
				if err != nil {
					return err
				}
				at := time.Now().Add(d)
				t.ExpiresAt = &at
			}
			var err error
			if t.Scope, err = scope.resolve(ctx, db); err != nil {
				return err
			}
			secret, err := s.CreateToken(ctx, t)
			if err != nil {
				return err
			}
			until := "until revoked"
			if t.ExpiresAt != nil {
				until = "until " + t.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "token %s created: %s%s, valid %s\n", t.Name, t.Role, scopeText(" in ", t.Scope), until)
			fmt.Fprintln(stdout, "its secret, shown this once:")
			fmt.Fprintln(stdout, secret)
			return nil
		}
	case "list":
		run = func(_ *postgres.DB, s *postgres.AccessStore, _ []string) error { return listTokens(ctx, s, stdout) }
	case "revoke":
		run = func(_ *postgres.DB, s *postgres.AccessStore, names []string) error {
			if err := s.RevokeToken(ctx, names[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "token %s revoked\n", names[0])
			return nil
		}
	default:
		fmt.Fprintf(os.Stderr, "gridmap token: unknown command %q\n\n%s", args[0], tokenUsage)
		return exitError(2)
	}
	return runAccess(ctx, fs, args, dataDir, logger, tokenUsage, run)
}

// runAccess parses the flags of an access subcommand (NAME where it takes
// one), opens the database and runs it. Errors a person can act on come
// out as their message alone.
func runAccess(ctx context.Context, fs *flag.FlagSet, args []string, dataDir *string, logger *slog.Logger, usage string,
	run func(*postgres.DB, *postgres.AccessStore, []string) error) error {
	names, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	wantNames := 1
	if args[0] == "list" || args[0] == "create" {
		wantNames = 0
	}
	if len(names) != wantNames {
		fmt.Fprint(os.Stderr, usage)
		return exitError(2)
	}
	db, err := openDatabase(ctx, *dataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close(false)
	store := postgres.NewAccessStore(db.DB)
	at := time.Now()
	err = run(db.DB, store, names)
	if args[0] != "list" {
		// The command line changes accounts and tokens as the admin API
		// does, and goes into the audit log as it does.
		recordCLI(ctx, store, fs.Name(), names, at, err, logger)
	}
	if code := gridmap.ErrorCode(err); code != "" && code != gridmap.EINTERNAL {
		return errors.New(gridmap.ErrorMessage(err))
	}
	return err
}

// scopeOptions are the --scope and --layer flags.
type scopeOptions struct{ code, layer *string }

func scopeFlags(fs *flag.FlagSet) scopeOptions {
	return scopeOptions{
		code:  fs.String("scope", "", "the grid code the access is limited to (its subtree); default: everywhere"),
		layer: fs.String("layer", "", "the comprehensive layer of --scope, needed when its code is in several"),
	}
}

// resolve finds the scope's layer when --layer is not given: the one
// comprehensive layer with a current grid of that code.
func (o scopeOptions) resolve(ctx context.Context, db *postgres.DB) (*gridmap.Scope, error) {
	code, layer := *o.code, *o.layer
	switch {
	case code == "" && layer != "":
		return nil, fmt.Errorf("--layer %s names the layer of a scope: give the grid with --scope CODE", layer)
	case code == "":
		return nil, nil
	case layer != "":
		return &gridmap.Scope{Layer: layer, Code: code}, nil
	}
	layers, err := postgres.NewLayerStore(db).Layers(ctx)
	if err != nil {
		return nil, err
	}
	grids := postgres.NewGridStore(db)
	var found []string
	for _, l := range layers {
		if l.Kind != gridmap.KindComprehensive {
			continue
		}
		if _, err := grids.Grid(ctx, l.ID, code); err == nil {
			found = append(found, l.ID)
		} else if gridmap.ErrorCode(err) != gridmap.ENOTFOUND {
			return nil, err
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no comprehensive layer has a current grid %q", code)
	case 1:
		return &gridmap.Scope{Layer: found[0], Code: code}, nil
	}
	return nil, fmt.Errorf("grid %q is in the comprehensive layers %s: say which with --layer", code, strings.Join(found, ", "))
}

// passwordFrom reads a password from file ("-" for standard input; its
// line ending is not part of it), or makes one when file is "".
func passwordFrom(file string) (password string, generated bool, err error) {
	if file == "" {
		return gridmap.NewPassword(), true, nil
	}
	var b []byte
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), false, nil
}

// printPassword prints a password made here alone on the last line, for
// scripts to take.
func printPassword(w io.Writer, password string, generated bool) {
	if generated {
		fmt.Fprintln(w, "password, shown this once:")
		fmt.Fprintln(w, password)
	}
}

func scopeText(prefix string, s *gridmap.Scope) string {
	if s == nil {
		return ""
	}
	return prefix + s.Layer + "/" + s.Code
}

// cliActor names the person at the command line in created_by.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Local().Format("2006-01-02 15:04")
}

func listAccounts(ctx context.Context, s *postgres.AccessStore, stdout io.Writer) error {
	accounts, err := s.Accounts(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "USERNAME\tDISPLAY NAME\tROLE\tSCOPE\tDISABLED\tLAST SIGN-IN")
	for _, a := range accounts {
		disabled := ""
		if a.Disabled {
			disabled = "disabled"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Username, a.DisplayName, a.Role, orDash(scopeText("", a.Scope)),
			orDash(disabled), when(a.LastSignInAt, "never"))
	}
	return w.Flush()
}

func listTokens(ctx context.Context, s *postgres.AccessStore, stdout io.Writer) error {
	tokens, err := s.Tokens(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tROLE\tSCOPE\tCREATED BY\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, t := range tokens {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, orDash(scopeText("", t.Scope)), orDash(t.CreatedBy),
			when(&t.CreatedAt, ""), when(t.ExpiresAt, "never"), when(t.LastUsedAt, "never"), when(t.RevokedAt, "-"))
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// recordCLI puts a command's change of accounts or tokens into the audit
// log: the person at the command line, what they ran on what, and whether
// it worked (200, else 400 for a refusal, 500 for a failure). A failure to
// record is logged, not fatal: the change is made.
func recordCLI(ctx context.Context, s *postgres.AccessStore, command string, names []string, at time.Time, err error, logger *slog.Logger) {
	status := 200
	switch code := gridmap.ErrorCode(err); {
	case code == gridmap.EINTERNAL:
		status = 500
	case code != "":
		status = 400
	}
	target := ""
	if len(names) > 0 {
		target = names[0]
	}
	e := &gridmap.AuditEntry{At: at, Actor: cliActor(), Role: gridmap.RoleAdmin, Action: "gridmap " + command, Target: target, Status: status}
	if aerr := s.Audit(ctx, e); aerr != nil {
		logger.Warn("recording the command in the audit log failed", "command", command, "err", aerr)
	}
}
