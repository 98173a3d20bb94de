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
	"strings"
	"testing"
)

// seedSQL is a small SoftFactory-like schema with the kinds of things a restore gets
// wrong first: foreign keys (drop order), an enum type, serial and standalone sequences
// (their positions), bytea with every byte value, large objects (stored outside the
// tables), NULLs, and an Alembic version table. blobs holds ~1 MB that does not
// compress, so a dump of this database overflows a tiny file system.
const seedSQL = `
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers (id),
  status order_status NOT NULL,
  total numeric(12, 2) NOT NULL,
  note text
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE TABLE documents (id int PRIMARY KEY, name text NOT NULL, body bytea NOT NULL);
CREATE TABLE attachments (
  id int PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES orders (id),
  content oid NOT NULL
);
CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL);
CREATE SEQUENCE invoice_number_seq START 1000;
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);

INSERT INTO customers (name, email)
  SELECT 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 500) g;
INSERT INTO orders (customer_id, status, total, note)
  SELECT 1 + g % 500, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3]::order_status,
         (g * 7 % 100000) / 100.0, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g END
  FROM generate_series(1, 3000) g;
INSERT INTO documents
  SELECT g, 'doc ' || g, decode(repeat(md5(g::text), 20), 'hex') FROM generate_series(1, 200) g;
INSERT INTO documents
  SELECT 0, 'every byte', decode(string_agg(lpad(to_hex(b), 2, '0'), '' ORDER BY b), 'hex')
  FROM generate_series(0, 255) b;
INSERT INTO attachments
  SELECT g, g, lo_from_bytea(0, decode(md5(g::text), 'hex') || convert_to(repeat('attachment ', g), 'UTF8'))
  FROM generate_series(1, 20) g;
INSERT INTO blobs
  SELECT i, decode(string_agg(md5(i || ':' || g), '' ORDER BY g), 'hex')
  FROM generate_series(1, 16) i, generate_series(1, 4096) g GROUP BY i;
SELECT setval('invoice_number_seq', 1042);
INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6');
`

// seededTables are the tables of seedSQL, compared by snapshot.
var seededTables = []string{"customers", "orders", "documents", "attachments", "blobs", "alembic_version"}

// seededSequences are the sequences of seedSQL, compared by snapshot.
var seededSequences = []string{"customers_id_seq", "orders_id_seq", "invoice_number_seq"}

func seed(t testing.TB, db *testDB) {
	t.Helper()
	mustPSQL(t, db.URL, seedSQL)
}

// snapshot fingerprints what a restore must bring back: for each table its row count
// and a checksum of its rows in a fixed order, its columns, each sequence's position,
// and the content of each large object the tables reference.
func snapshot(t testing.TB, db *testDB) map[string]string {
	t.Helper()
	// One psql run, one query (and so one output line) per key: connecting with
	// password authentication dozens of times made the tests slow.
	var keys []string
	var sql strings.Builder
	query := func(key, q string) {
		keys = append(keys, key)
		sql.WriteString(q + "\n")
	}
	for _, table := range seededTables {
		query("table "+table, fmt.Sprintf(
			`SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '-') FROM %s t;`, table))
		query("columns "+table, fmt.Sprintf(
			`SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
			 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '%s';`, table))
	}
	for _, seq := range seededSequences {
		query("sequence "+seq, fmt.Sprintf(`SELECT last_value || ' ' || is_called FROM %s;`, seq))
	}
	// Large objects live outside the tables; a release may have rewritten or unlinked
	// the ones a row points at.
	query("large objects", `
		SELECT string_agg(a.id || ':' || a.content || ':' || CASE
		  WHEN EXISTS (SELECT FROM pg_largeobject_metadata m WHERE m.oid = a.content)
		  THEN md5(lo_get(a.content)) ELSE 'missing' END, ', ' ORDER BY a.id)
		FROM attachments a;`)

	lines := strings.Split(mustPSQL(t, db.URL, sql.String()), "\n")
	if len(lines) != len(keys) {
		t.Fatalf("snapshot: %d queries gave %d lines:\n%s", len(keys), len(lines), strings.Join(lines, "\n"))
	}
	snap := map[string]string{}
	for i, key := range keys {
		snap[key] = lines[i]
	}
	return snap
}

// diffSnapshots describes how got differs from want, or returns "".
func diffSnapshots(want, got map[string]string) string {
	var b strings.Builder
	for k, w := range want {
		if g := got[k]; g != w {
			fmt.Fprintf(&b, "  %s: want %q, got %q\n", k, w, g)
		}
	}
	return b.String()
}
