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

// Package softfactoryapp tests the sample app's schema changes for real: its Alembic
// migrations run with `flask db upgrade` against the PostgreSQL test server
// (hack/install-postgres.sh), and its versions serve with gunicorn on loopback, as the
// release operator would run them, with no cluster. The real-cluster suite (test/real)
// runs the same release through the operator.
package softfactoryapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// python is Debian's interpreter, the one the sample app's image runs and the one
// Debian's python3-flask & co are installed for (a python3 earlier on PATH, pyenv's for
// one, would not have them). SOFTFACTORY_APP_PYTHON overrides it.
var python = func() string {
	if p := os.Getenv("SOFTFACTORY_APP_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}()

const defaultTestDatabaseURL = "postgresql://postgres:softfactory-test@127.0.0.1:54329/postgres"

const installHint = "Run `make test-deps` first: it installs PostgreSQL and the sample app's Python packages " +
	"(python3-flask, python3-flask-migrate, python3-flask-sqlalchemy, python3-psycopg2, gunicorn) from " +
	"Debian and starts the test server on 127.0.0.1:54329; `make test` runs it for you."

// TestRenameColumnInTwoSteps is the README's "renaming a column" example, step by step,
// with both versions under concurrent load while the schema changes under them:
//
//  1. version 2 serves on schema 0002 (items.name);
//  2. the expand step (0003) runs while version 2 serves: version 2 never fails;
//  3. version 3 (items.title) starts beside it: each version reads the items the other
//     wrote, and neither fails;
//  4. version 2 is stopped, and the contract step (0004) runs while version 3 serves:
//     version 3 never fails; name and the trigger are gone, title is NOT NULL, and every
//     item written by either version is there with its title;
//  5. version 2 fails against the contracted schema (why the operator refuses a rollback
//     past the contract), and `flask db downgrade 0003`, the documented undo, makes it
//     serve again, reading the items version 3 wrote after the contract.
func TestRenameColumnInTwoSteps(t *testing.T) {
	db := newAppDatabase(t)
	migrate(t, db, "2.0.0", "upgrade", "0002")
	v2 := startApp(t, db, "2.0.0")
	for _, label := range []string{"anvil", "rocket", "magnet"} {
		if _, err := v2.create(label); err != nil {
			t.Fatal(err)
		}
	}

	// written is every item the loads wrote, by either version, in every phase.
	written := make([]item, 0, 4096)

	t.Log("expand (0003) while version 2 serves")
	l := startLoad(t, []*appServer{v2}, []*appServer{v2})
	migrate(t, db, "3.0.0", "upgrade", "0003")
	l.waitForMore(t, 20)
	v3 := startApp(t, db, "3.0.0")
	l.stop(t)
	written = append(written, l.items()...)

	t.Log("versions 2 and 3 together: each writes, each reads what the other wrote")
	l = startLoad(t, []*appServer{v2, v3}, []*appServer{v2, v3})
	l.waitForMore(t, 100)
	l.stop(t)
	written = append(written, l.items()...)
	if l.written["3.0.0"] == 0 || l.written["2.0.0"] == 0 {
		t.Fatalf("both versions must have written during the overlap: %v", l.written)
	}
	if got := mustPSQL(t, db, "SELECT count(*) FROM items WHERE name IS DISTINCT FROM title"); got != "0" {
		t.Fatalf("%s rows have name and title apart during the overlap", got)
	}

	t.Log("contract (0004) once version 2 is gone, while version 3 serves")
	v2.stop(t)
	l = startLoad(t, []*appServer{v3}, []*appServer{v3})
	migrate(t, db, "3.0.0", "upgrade", "0004")
	l.waitForMore(t, 20)
	l.stop(t)
	written = append(written, l.items()...)

	columns := mustPSQL(t, db, "SELECT string_agg(column_name || ':' || is_nullable, ',' ORDER BY column_name) "+
		"FROM information_schema.columns WHERE table_name = 'items'")
	if columns != "created_at:NO,id:NO,status:NO,title:NO" {
		t.Fatalf("items after the contract: %s, want created_at, id, status and title, all NOT NULL", columns)
	}
	if got := mustPSQL(t, db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'items_sync_name_title'") +
		mustPSQL(t, db, "SELECT count(*) FROM pg_proc WHERE proname = 'items_sync_name_title'"); got != "00" {
		t.Fatalf("the sync trigger or its function outlived the contract (trigger, function: %s)", got)
	}
	expectAllItems(t, db, append([]item{{Label: "anvil"}, {Label: "rocket"}, {Label: "magnet"}}, written...))

	t.Log("version 2 against the contracted schema fails; the downgrade to 0003 brings it back")
	v2 = startApp(t, db, "2.0.0")
	last := written[len(written)-1]
	if _, err := v2.read(last.ID); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("version 2 read item %d after the contract: %v; want HTTP 500 (its column is gone)", last.ID, err)
	}
	migrate(t, db, "3.0.0", "downgrade", "0003")
	for _, s := range []*appServer{v2, v3} {
		label, err := s.read(last.ID)
		if err != nil || label != last.Label {
			t.Fatalf("version %s after the downgrade read item %d as %q (%v), want %q",
				s.version, last.ID, label, err, last.Label)
		}
	}
	if id, err := v2.create("after-the-downgrade"); err != nil {
		t.Fatal(err)
	} else if label, err := v3.read(id); err != nil || label != "after-the-downgrade" {
		t.Fatalf("version 3 read version 2's item %d as %q (%v) after the downgrade", id, label, err)
	}
}

// TestExpandFailsOnALockedTableAndChangesNothing: the expand step never queues behind a
// long transaction (which would queue every request of the serving version behind it):
// with the table locked it gives up after its lock_timeout, exits non-zero (the release
// stops, the old version serving) and Alembic rolls it back whole.
func TestExpandFailsOnALockedTableAndChangesNothing(t *testing.T) {
	db := newAppDatabase(t)
	migrate(t, db, "2.0.0", "upgrade", "0002")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	holder := exec.CommandContext(ctx, "psql", "--no-psqlrc", "--quiet", "--dbname="+db.url,
		"--set=ON_ERROR_STOP=1", "--file=-")
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stdout, holder.Stderr = io.Discard, io.Discard
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = holder.Wait() })
	// A long transaction that has read the table: it holds ACCESS SHARE until it ends.
	if _, err := io.WriteString(stdin, "BEGIN; SELECT count(*) FROM items;\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the open transaction to hold its lock", func() error {
		n := mustPSQL(t, db, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "+
			"WHERE c.relname = 'items' AND l.mode = 'AccessShareLock' AND l.granted AND l.pid <> pg_backend_pid()")
		if n == "0" {
			return fmt.Errorf("no lock yet")
		}
		return nil
	})
	start := time.Now()
	out, err := runFlask(db, "3.0.0", "db", "upgrade", "0003")
	if err == nil {
		t.Fatalf("the expand step succeeded on a locked table:\n%s", out)
	}
	if !strings.Contains(out, "lock timeout") {
		t.Fatalf("the expand step failed, but not on its lock_timeout:\n%s", out)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the expand step gave up after %s; its lock_timeout is 5s", took)
	}
	if v := mustPSQL(t, db, "SELECT version_num FROM alembic_version"); v != "0002" {
		t.Fatalf("alembic_version is %s after the failed expand, want 0002", v)
	}
	if n := mustPSQL(t, db, "SELECT count(*) FROM information_schema.columns "+
		"WHERE table_name = 'items' AND column_name = 'title'"); n != "0" {
		t.Fatal("the failed expand left items.title behind")
	}
}

// --- the database -------------------------------------------------------------------

type appDatabase struct{ url string }

func adminURL() string {
	if u := os.Getenv("SOFTFACTORY_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultTestDatabaseURL
}

// newAppDatabase makes a database of its own, owned by a role of its own that logs in
// with a password, as the app's does; it is dropped when the test ends.
func newAppDatabase(t *testing.T) *appDatabase {
	t.Helper()
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("psql is not on PATH.\n%s", installHint)
	}
	imports := "import flask, flask_migrate, flask_sqlalchemy, psycopg2, gunicorn"
	if out, err := exec.Command(python, "-c", imports).CombinedOutput(); err != nil {
		t.Fatalf("the sample app's Python packages are missing from %s: %s\n%s", python, out, installHint)
	}
	if _, err := psql(adminURL(), "SELECT 1"); err != nil {
		t.Fatalf("the PostgreSQL test server is not usable: %v\n%s", err, installHint)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "sfapp_" + hex.EncodeToString(b)
	password := hex.EncodeToString(b) + "-pw"
	mustPSQL(t, &appDatabase{url: adminURL()}, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", name, password))
	mustPSQL(t, &appDatabase{url: adminURL()}, fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, name))
	t.Cleanup(func() {
		_, _ = psql(adminURL(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
		_, _ = psql(adminURL(), fmt.Sprintf("DROP ROLE IF EXISTS %s", name))
	})
	u, err := url.Parse(adminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	u.Path = "/" + name
	return &appDatabase{url: u.String()}
}

func psql(dbURL, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "--no-psqlrc", "--no-password", "--quiet", "--tuples-only",
		"--no-align", "--set=ON_ERROR_STOP=1", "--dbname="+dbURL, "--file=-")
	cmd.Stdin = strings.NewReader(sql)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func mustPSQL(t *testing.T, db *appDatabase, sql string) string {
	t.Helper()
	out, err := psql(db.url, sql)
	if err != nil {
		t.Fatalf("%v\nSQL: %s", err, sql)
	}
	return out
}

// expectAllItems checks that every item is in the table with its title (the ones
// without an ID are looked up by title).
func expectAllItems(t *testing.T, db *appDatabase, items []item) {
	t.Helper()
	rows := mustPSQL(t, db, "SELECT id || E'\\t' || title FROM items")
	byID, byTitle := map[string]string{}, map[string]bool{}
	for row := range strings.SplitSeq(rows, "\n") {
		id, title, _ := strings.Cut(row, "\t")
		byID[id], byTitle[title] = title, true
	}
	for _, it := range items {
		if it.ID == 0 {
			if !byTitle[it.Label] {
				t.Errorf("no item titled %q", it.Label)
			}
			continue
		}
		if got, ok := byID[fmt.Sprint(it.ID)]; !ok || got != it.Label {
			t.Errorf("item %d (written by %s): title %q (present: %v), want %q", it.ID, it.Version, got, ok, it.Label)
		}
	}
}

// --- the app ------------------------------------------------------------------------

// flaskEnv is the environment of the app's processes: the version, the database, and
// no .pyc files written into the source tree.
func flaskEnv(db *appDatabase, version string) []string {
	return append(os.Environ(), "APP_VERSION="+version, "DATABASE_URL="+db.url, "FLASK_APP=app:app",
		"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
}

func runFlask(db *appDatabase, version string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"-m", "flask"}, args...)...)
	cmd.Env = flaskEnv(db, version)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// migrate runs `flask db upgrade|downgrade REVISION` with that version's app, as the
// release's migration (or contract) Job does.
func migrate(t *testing.T, db *appDatabase, version, direction, revision string) {
	t.Helper()
	if out, err := runFlask(db, version, "db", direction, revision); err != nil {
		t.Fatalf("flask db %s %s: %v\n%s", direction, revision, err, out)
	}
	if v := mustPSQL(t, db, "SELECT version_num FROM alembic_version"); v != revision {
		t.Fatalf("alembic_version is %s after flask db %s %s", v, direction, revision)
	}
}

type appServer struct {
	version, url string
	cmd          *exec.Cmd
	log          *bytes.Buffer
	client       *http.Client
}

// startApp runs that version of the app with gunicorn, as its image does, on a free
// loopback port, and waits until /health answers.
func startApp(t *testing.T, db *appDatabase, version string) *appServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s := &appServer{version: version, url: "http://" + addr, log: &bytes.Buffer{},
		client: &http.Client{Timeout: 10 * time.Second}}
	s.cmd = exec.Command(python, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", addr, "app:app")
	s.cmd.Env = flaskEnv(db, version)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	waitFor(t, time.Minute, "version "+version+" to answer on /health", func() error {
		if s.cmd.ProcessState != nil {
			return fmt.Errorf("gunicorn exited: %s", s.log)
		}
		resp, err := s.client.Get(s.url + "/health")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
	return s
}

// stop ends the server as the kubelet ends a pod: SIGTERM, and its graceful timeout.
func (s *appServer) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		t.Errorf("version %s did not stop on SIGTERM", s.version)
	}
}

// create posts an item with that label in version 2's field, which both versions take.
func (s *appServer) create(label string) (int, error) {
	body, _ := json.Marshal(map[string]string{"name": label})
	resp, err := s.client.Post(s.url+"/items", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("version %s: POST /items: %w", s.version, err)
	}
	var out struct {
		ID      int    `json:"id"`
		Version string `json:"version"`
	}
	if err := decode(resp, http.StatusCreated, &out); err != nil {
		return 0, fmt.Errorf("version %s: POST /items %q: %w", s.version, label, err)
	}
	if out.Version != s.version {
		return 0, fmt.Errorf("POST /items answered by version %s, want %s", out.Version, s.version)
	}
	return out.ID, nil
}

// read returns an item's label: name from version 2, title from version 3.
func (s *appServer) read(id int) (string, error) {
	resp, err := s.client.Get(fmt.Sprintf("%s/items/%d", s.url, id))
	if err != nil {
		return "", fmt.Errorf("version %s: GET /items/%d: %w", s.version, id, err)
	}
	var out struct {
		Item map[string]any `json:"item"`
	}
	if err := decode(resp, http.StatusOK, &out); err != nil {
		return "", fmt.Errorf("version %s: GET /items/%d: %w", s.version, id, err)
	}
	field := map[bool]string{true: "title", false: "name"}[strings.HasPrefix(s.version, "3.")]
	label, ok := out.Item[field].(string)
	if !ok {
		return "", fmt.Errorf("version %s: GET /items/%d has no %s: %v", s.version, id, field, out.Item)
	}
	return label, nil
}

func decode(resp *http.Response, want int, into any) error {
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != want {
		return fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, body)
	}
	return json.Unmarshal(body, into)
}

// --- the load -----------------------------------------------------------------------

type item struct {
	ID             int
	Label, Version string
}

// load is a few clients in a loop: each writes an item through one server, then reads
// it back through every reader, and counts anything but the right answer as a failure.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	requests int
	failures []string
	written  map[string]int
	all      []item
}

func startLoad(t *testing.T, writers, readers []*appServer) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, written: map[string]int{}}
	t.Cleanup(cancel)
	const clients = 4
	for c := range clients {
		l.wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				w := writers[(c+n)%len(writers)]
				it := item{Label: fmt.Sprintf("load-%d-%d-%s", c, n, w.version), Version: w.version}
				id, err := w.create(it.Label)
				l.record(err)
				if err != nil {
					continue
				}
				it.ID = id
				l.mu.Lock()
				l.written[w.version]++
				l.all = append(l.all, it)
				l.mu.Unlock()
				for _, r := range readers {
					label, err := r.read(id)
					if err == nil && label != it.Label {
						err = fmt.Errorf("version %s read item %d (written by %s) as %q, want %q",
							r.version, id, w.version, label, it.Label)
					}
					l.record(err)
				}
			}
		})
	}
	return l
}

func (l *load) record(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if err != nil {
		l.failures = append(l.failures, err.Error())
	}
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests
}

// waitForMore waits until n more requests have been answered, so the load goes on for a
// while after whatever the test just did.
func (l *load) waitForMore(t *testing.T, n int) {
	t.Helper()
	target := l.count() + n
	waitFor(t, time.Minute, fmt.Sprintf("%d more requests", n), func() error {
		if l.count() < target {
			return fmt.Errorf("%d of %d", l.count(), target)
		}
		return nil
	})
}

// stop ends the load and fails the test on any failed request.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		first := l.failures[:min(5, len(l.failures))]
		t.Fatalf("%d of %d requests failed; the first: %s", len(l.failures), l.requests, strings.Join(first, "\n"))
	}
	t.Logf("%d requests, none failed; items written by version: %v", l.requests, l.written)
}

func (l *load) items() []item {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]item(nil), l.all...)
}

// waitFor polls check until it succeeds, failing the test with its last error after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", timeout, what, err)
		}
		<-tick.C
	}
}
