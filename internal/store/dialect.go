package store

import (
	"strconv"
	"strings"
)

// dialect is what differs between the SQL backends; everything else, every
// query and the schema included, is shared. It is dex's "flavor" idea kept
// small: the SQL is written once, with ? placeholders and a few {{type}}
// words, and the dialect rewrites them.
type dialect struct {
	name string
	// dollar numbers the placeholders ($1, $2, ...) instead of ?.
	dollar bool
	// types replaces the {{word}}s of the schema statements.
	types map[string]string
	// migrationLock, when set, runs first in every migration transaction and
	// blocks until no other process is migrating the same database. SQLite
	// needs none: its migration transactions begin IMMEDIATE, which already
	// takes the database's single write lock.
	migrationLock string
}

// The schema's {{words}}:
//
//	{{key}}    a text primary key that sorts and compares byte-wise
//	{{bytes}}  a byte string
//	{{serial}} an auto-increasing integer primary key, the insertion order
var (
	sqliteDialect = &dialect{
		name: "sqlite",
		types: map[string]string{
			"{{key}}":    "TEXT", // SQLite compares TEXT with BINARY (memcmp) unless told otherwise
			"{{bytes}}":  "BLOB",
			"{{serial}}": "INTEGER PRIMARY KEY", // the rowid: max+1, so never reused below the newest row
		},
	}
	postgresDialect = &dialect{
		name:   "postgres",
		dollar: true,
		types: map[string]string{
			// The "C" collation orders by bytes like SQLite, whatever the
			// database's locale, so ListCredentials has one order everywhere.
			"{{key}}":    `TEXT COLLATE "C"`,
			"{{bytes}}":  "BYTEA",
			"{{serial}}": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		},
		// A transaction-level advisory lock is released by the COMMIT that
		// records the migration, so a replica that waited re-reads the
		// version and finds the work done. The second key is the schema, so
		// databases in different schemas (tests) do not wait for each other;
		// 0x6275746c is "butl".
		migrationLock: "SELECT pg_advisory_xact_lock(1651864684, hashtext(COALESCE(current_schema(), '')))",
	}
)

// rebind rewrites the ? placeholders of query for the dialect. The shared SQL
// has no ? inside string literals, so a plain scan is enough.
func (d *dialect) rebind(query string) string {
	if !d.dollar || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// schema replaces the {{words}} of a schema statement.
func (d *dialect) schema(stmt string) string {
	for word, typ := range d.types {
		stmt = strings.ReplaceAll(stmt, word, typ)
	}
	return stmt
}
