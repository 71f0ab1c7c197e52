// Package postgres runs the store conformance suite (storetest) against the
// PostgreSQL backend, each test in a schema of its own, when
// BUTLER_TEST_POSTGRES_DSN names a server (e.g.
// postgres://postgres@127.0.0.1:5432/test), and holds the tests and
// benchmarks that only PostgreSQL has. Without the variable they are
// skipped.
//
// It has no API: the backend itself lives in package store, behind
// store.Open("postgres://..."), because store.Open chooses the backend from
// the DSN and so cannot import a backend that imports store's types. The SQL
// is shared with SQLite anyway; only a dialect differs (store/dialect.go).
package postgres
