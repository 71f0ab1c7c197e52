// Package sqlite runs the store conformance suite (storetest) against the
// SQLite backend, in files under t.TempDir() and in memory, and holds the
// tests and benchmarks that only SQLite has.
//
// It has no API: the backend itself lives in package store, behind
// store.Open("sqlite:PATH"), because store.Open chooses the backend from the
// DSN and so cannot import a backend that imports store's types. The SQL is
// shared with PostgreSQL anyway; only a dialect differs (store/dialect.go).
package sqlite
