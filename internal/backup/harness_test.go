/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package backup

// The test harness: the PostgreSQL server hack/install-postgres.sh starts, throwaway
// databases owned by a password-protected role (as the app's would be), and a runner
// that executes the very command BackupCommand or RestoreCommand returns, with the
// environment the Job sets and a temporary directory in place of the volume.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// defaultTestDatabaseURL is what hack/install-postgres.sh sets up and prints; the
// environment variable lets a developer point the tests at another server.
const defaultTestDatabaseURL = "postgresql://postgres:softfactory-test@127.0.0.1:54329/postgres"

const installHint = "Run hack/install-postgres.sh first: it installs PostgreSQL (and busybox) from Debian's " +
	"packages when missing and starts the test server on 127.0.0.1:54329; `make test` runs it for you."

func adminURL() string {
	if u := os.Getenv("SOFTFACTORY_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultTestDatabaseURL
}

var server struct {
	once sync.Once
	err  error
}

// requirePostgres fails the test (never skips it: a backup test that silently does not
// run proves nothing) when the test server or the client tools are missing.
func requirePostgres(t testing.TB) {
	t.Helper()
	server.once.Do(func() {
		for _, tool := range []string{"psql", "pg_dump", "pg_restore"} {
			if _, err := exec.LookPath(tool); err != nil {
				server.err = fmt.Errorf("%s is not on PATH", tool)
				return
			}
		}
		_, server.err = psql(context.Background(), adminURL(), "SELECT 1")
	})
	if server.err != nil {
		u, _ := url.Parse(adminURL())
		host := "?"
		if u != nil {
			host = u.Host
		}
		t.Fatalf("the PostgreSQL test server at %s is not usable: %v\n%s", host, server.err, installHint)
	}
}

// psql runs SQL through the psql client and returns its trimmed output (unaligned,
// tuples only); an error carries psql's message.
func psql(ctx context.Context, dbURL, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "--no-psqlrc", "--no-password", "--quiet", "--tuples-only",
		"--no-align", "--set=ON_ERROR_STOP=1", "--dbname="+dbURL, "--file=-")
	cmd.Stdin = strings.NewReader(sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func mustPSQL(t testing.TB, dbURL, sql string) string {
	t.Helper()
	out, err := psql(context.Background(), dbURL, sql)
	if err != nil {
		t.Fatalf("%v\nSQL:\n%s", err, sql)
	}
	return out
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testDB is a database of its own for one test, owned by a role of its own that logs in
// with a password, like the app's: the scripts run as that role, never as a superuser.
type testDB struct {
	Name     string
	Role     string
	Password string
	// URL connects as Role, with the password percent-encoded in the user-info part.
	URL string
}

// secrets are the strings that must never appear in a script's output.
func (db *testDB) secrets() []string {
	encoded := url.UserPassword(db.Role, db.Password).String()
	return []string{db.Password, encoded[strings.Index(encoded, ":")+1:], url.QueryEscape(db.Password), db.URL}
}

// urlWith returns the database's URL with the host (and port) and password replaced.
func (db *testDB) urlWith(host, password string) string {
	u, err := url.Parse(db.URL)
	if err != nil {
		panic(err)
	}
	u.Host = host
	u.User = url.UserPassword(db.Role, password)
	return u.String()
}

var notIdentifier = regexp.MustCompile(`[^a-z0-9]+`)

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	requirePostgres(t)
	name := strings.Trim(notIdentifier.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	name = "sf_" + name + "_" + randomHex(t, 3)
	db := &testDB{
		Name: name,
		Role: name,
		// Reserved URL characters, so percent-encoding and its redaction are exercised.
		Password: "Pw-" + randomHex(t, 6) + "-p@ss/w:rd%?&=",
	}
	admin, err := url.Parse(adminURL())
	if err != nil {
		t.Fatal(err)
	}
	db.URL = (&url.URL{Scheme: "postgresql", User: url.UserPassword(db.Role, db.Password),
		Host: admin.Host, Path: "/" + db.Name}).String()
	mustPSQL(t, adminURL(), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s';",
		db.Role, strings.ReplaceAll(db.Password, "'", "''")))
	mustPSQL(t, adminURL(), fmt.Sprintf("CREATE DATABASE %s OWNER %s;", db.Name, db.Role))
	t.Cleanup(func() {
		mustPSQL(t, adminURL(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE);", db.Name))
		mustPSQL(t, adminURL(), fmt.Sprintf("DROP ROLE IF EXISTS %s;", db.Role))
	})
	return db
}

// shell is an interpreter to run the scripts under. The Jobs run them under busybox sh
// (postgres:15-alpine); Debian's /bin/sh is dash. Both are strict POSIX shells with
// different gaps, so every script test runs under each.
type shell struct {
	name string
	// binDir, when set, goes first on PATH: it holds busybox applets under the names the
	// scripts call (sh, awk, sed, ...), as in the Alpine image.
	binDir string
}

var busyboxApplets = []string{"sh", "awk", "sed", "sort", "cut", "wc", "tr", "date", "mv", "rm", "grep", "sync", "cat"}

func shells(t testing.TB) []shell {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox is not on PATH: the scripts must be tested under busybox sh, the Jobs' shell.\n%s", installHint)
	}
	dir := t.TempDir()
	for _, applet := range busyboxApplets {
		if err := os.Symlink(busybox, filepath.Join(dir, applet)); err != nil {
			t.Fatal(err)
		}
	}
	return []shell{{name: "dash"}, {name: "busybox", binDir: dir}}
}

// run is one execution of a script.
type run struct {
	output   string // stdout and stderr, interleaved as written
	exitCode int
}

// scriptRun describes how to run a command returned by BackupCommand or RestoreCommand.
type scriptRun struct {
	shell   shell
	command []string
	env     map[string]string
	// wrap goes in front of the command, for example unshare(1) to cut the network.
	wrap []string
	// pathFirst goes first on PATH, ahead of the shell's applets: test doubles.
	pathFirst string
	// secrets must not appear in the output.
	secrets []string
}

// execute runs the command with only the environment a Job's container would have:
// PATH, HOME and the given variables (no PG* variables of the developer's, no
// ~/.pgpass), bounded in time. It fails the test if any secret shows in the output.
func execute(t testing.TB, r scriptRun) run {
	t.Helper()
	command := append([]string(nil), r.command...)
	if command[0] != "/bin/sh" {
		t.Fatalf("the Jobs' commands start with /bin/sh, got %q", command[0])
	}
	path := os.Getenv("PATH")
	if r.shell.binDir != "" {
		path = r.shell.binDir + string(os.PathListSeparator) + path
		command[0] = filepath.Join(r.shell.binDir, "sh")
	}
	if r.pathFirst != "" {
		path = r.pathFirst + string(os.PathListSeparator) + path
	}
	command = append(append([]string(nil), r.wrap...), command...)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
	for k, v := range r.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	result := run{output: out.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		result.exitCode = exitErr.ExitCode()
	default:
		t.Fatalf("running %s: %v", command[0], err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the script did not finish within the test's bound; output:\n%s", result.output)
	}
	for _, s := range r.secrets {
		if s != "" && strings.Contains(result.output, s) {
			t.Fatalf("the output shows a secret (marked [LEAKED] here); output:\n%s",
				strings.ReplaceAll(result.output, s, "[LEAKED]"))
		}
	}
	return result
}

// listDir returns the names in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
