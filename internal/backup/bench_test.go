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

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	benchDatabase = "sf_bench_200mb"
	benchRole     = "sf_bench"
	benchPassword = "softfactory-bench"
	// benchSize is the database size (pg_database_size: tables, TOAST and indexes) the
	// benchmark dumps: a realistic size for the SoftFactory API's database.
	benchSize = 200 << 20
)

// benchDB returns the benchmark's database, seeding it on first use. It is kept
// between runs (seeding takes a minute or more) and recognised by a marker row written
// last, so an interrupted seeding is redone rather than measured.
func benchDB(b *testing.B) *testDB {
	b.Helper()
	admin := adminURL()
	host, _, _ := strings.Cut(strings.SplitN(admin, "@", 2)[1], "/")
	db := &testDB{Name: benchDatabase, Role: benchRole, Password: benchPassword,
		URL: fmt.Sprintf("postgresql://%s:%s@%s/%s", benchRole, benchPassword, host, benchDatabase)}

	exists := mustPSQL(b, admin, fmt.Sprintf("SELECT count(*) FROM pg_database WHERE datname = '%s';", benchDatabase))
	if exists == "1" {
		if done, err := psql(b.Context(), db.URL, "SELECT complete FROM bench_meta;"); err == nil && done == "t" {
			return db
		}
		mustPSQL(b, admin, fmt.Sprintf("DROP DATABASE %s WITH (FORCE);", benchDatabase))
	}
	b.Logf("seeding the %d MB benchmark database %s (first run only)...", benchSize>>20, benchDatabase)
	started := time.Now()
	mustPSQL(b, admin, fmt.Sprintf(`
		DO $$BEGIN
		  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN; END IF;
		END$$;
		ALTER ROLE %[1]s PASSWORD '%[2]s';`, benchRole, benchPassword))
	mustPSQL(b, admin, fmt.Sprintf("CREATE DATABASE %s OWNER %s;", benchDatabase, benchRole))
	// Shaped like the API's data: request events with JSON-ish text (compresses a few
	// times over, like real logs and records) and about a tenth in uploaded files that
	// do not compress.
	mustPSQL(b, db.URL, `
		CREATE TABLE bench_meta (complete bool NOT NULL);
		CREATE TABLE events (
		  id bigint PRIMARY KEY,
		  customer_id int NOT NULL,
		  kind text NOT NULL,
		  created_at timestamptz NOT NULL,
		  payload text NOT NULL
		);
		CREATE INDEX events_customer_id_idx ON events (customer_id);
		CREATE TABLE uploads (id int PRIMARY KEY, data bytea NOT NULL);`)
	for batch := 0; ; batch++ {
		size, err := strconv.ParseInt(mustPSQL(b, db.URL, "SELECT pg_database_size(current_database());"), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		if size >= benchSize {
			break
		}
		mustPSQL(b, db.URL, fmt.Sprintf(`
			INSERT INTO events
			  SELECT g, g %% 50000, (ARRAY['login', 'order', 'refund', 'view'])[1 + g %% 4],
			         '2026-01-01'::timestamptz + g * interval '1 second',
			         '{"path": "/api/orders/' || g || '", "status": ' || (200 + (g %% 7) * 50) ||
			         ', "ms": ' || (g %% 997) || ', "request_id": "' || md5(g::text) ||
			         '", "user_agent": "softfactory-client/1.' || (g %% 13) || '"}'
			  FROM generate_series(%[1]d * 100000 + 1, (%[1]d + 1) * 100000) g;
			INSERT INTO uploads
			  SELECT i, decode(string_agg(md5(i || ':' || g), '' ORDER BY g), 'hex')
			  FROM generate_series(%[1]d * 40 + 1, (%[1]d + 1) * 40) i, generate_series(1, 4096) g GROUP BY i;`, batch))
	}
	mustPSQL(b, db.URL, "VACUUM ANALYZE; INSERT INTO bench_meta VALUES (true);")
	b.Logf("seeded in %s", time.Since(started).Round(time.Second))
	return db
}

// BenchmarkBackup200MB runs the backup Job's command against a 200 MB database and
// reports the throughput in MB of database per second (the size users see in their
// monitoring), with and without verification. A figure, not a timed assertion: the
// machine is shared, so a threshold would only make the suite flaky.
func BenchmarkBackup200MB(b *testing.B) {
	requirePostgres(b)
	if testing.Short() {
		b.Skip("seeding the 200 MB benchmark database takes minutes; run without -short")
	}
	db := benchDB(b)
	dbBytes, err := strconv.ParseInt(mustPSQL(b, db.URL, "SELECT pg_database_size(current_database());"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	for _, verify := range []string{"true", "false"} {
		b.Run("verify="+verify, func(b *testing.B) {
			dir := b.TempDir()
			env := map[string]string{
				EnvDatabaseURL: db.URL, EnvBackupDir: dir, EnvReleaseName: testRelease,
				EnvKeepLast: "1", EnvVerify: verify, EnvMinSizeBytes: "1",
			}
			var dumpBytes int64
			for b.Loop() {
				file := FileName(testRelease, testRevision, time.Now())
				env[EnvBackupFile] = file
				r := execute(b, scriptRun{shell: shell{name: "dash"}, command: BackupCommand(), env: env, secrets: db.secrets()})
				if r.exitCode != 0 {
					b.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
				}
				info, err := os.Stat(filepath.Join(dir, file))
				if err != nil {
					b.Fatal(err)
				}
				dumpBytes = info.Size()
			}
			perRun := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(dbBytes)/1e6/perRun, "MB/s")
			b.ReportMetric(float64(dbBytes)/1e6, "db-MB")
			b.ReportMetric(float64(dumpBytes)/1e6, "dump-MB")
		})
	}
}
