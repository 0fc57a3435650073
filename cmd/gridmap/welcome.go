package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
)

// adminPasswordFile is where the first start writes the admin's password,
// under the data directory, readable by its owner only.
const adminPasswordFile = "admin-password"

// DemoPassword is the password of the demo accounts (README lists them).
const DemoPassword = "gridmap-demo"

// signInLinkLife is how long the printed sign-in link works (once).
const signInLinkLife = 12 * time.Hour

// welcome makes sure somebody can sign in. On a database without accounts
// it creates admin with a random password, written to the data directory's
// admin-password file; while that file exists (delete it once you have set
// a password of your own), each start prints a one-time sign-in link, so a
// new installation is one click from a signed-in map. With the demo, it
// also makes the demo accounts, one per role, for the demo's first street.
// It returns what to tell the operator, printed once serving.
func welcome(ctx context.Context, access *postgres.AccessStore, db *postgres.DB, dataDir string, withDemo bool, url string, logger *slog.Logger) (string, error) {
	var out strings.Builder
	password, created, err := access.EnsureAdmin(ctx)
	if err != nil {
		return "", fmt.Errorf("creating the first account: %w", err)
	}
	file := filepath.Join(dataDir, adminPasswordFile)
	written := false
	if created {
		err := os.MkdirAll(dataDir, 0o700)
		if err == nil {
			err = os.WriteFile(file, []byte(password+"\n"), 0o600)
		}
		if err != nil {
			// The link below still signs in; a password is set from there
			// or with gridmap user passwd admin.
			logger.Warn("the admin's password could not be written; sign in with the link and set one", "password_file", file, "err", err)
			fmt.Fprintf(&out, "created account admin; its password could not be written to %s (%v): sign in with the link below, then set one\n", file, err)
		} else {
			written = true
			fmt.Fprintf(&out, "created account admin; its password is in %s\n", file)
			logger.Info("created account admin", "password_file", file)
		}
	}
	if _, err := os.Stat(file); created && !written || err == nil {
		secret, err := access.CreateSignInLink(ctx, "admin", signInLinkLife)
		if err != nil {
			return "", fmt.Errorf("making a sign-in link: %w", err)
		}
		fmt.Fprintf(&out, "sign in as admin (this link works once, for %v): %s/signin/%s\n", signInLinkLife, url, secret)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if !withDemo {
		return out.String(), nil
	}
	streets, _, err := postgres.NewGridStore(db).FindGrids(ctx, gridmap.GridFilter{Layer: demo.LayerID, Level: "street", Limit: 1})
	if err != nil {
		return "", fmt.Errorf("finding the demo's first street: %w", err)
	} else if len(streets) == 0 {
		return "", fmt.Errorf("the demo layer %s has no street", demo.LayerID)
	}
	street := streets[0]
	if err := access.EnsureDemoAccounts(ctx, gridmap.Scope{Layer: demo.LayerID, Code: street.Code}, DemoPassword); err != nil {
		return "", fmt.Errorf("demo accounts: %w", err)
	}
	fmt.Fprintf(&out, "demo accounts (password %s): demo-viewer, demo-reporter, demo-dispatcher, demo-editor, demo-admin, for %s %s\n",
		DemoPassword, street.Code, street.Name)
	return out.String(), nil
}
