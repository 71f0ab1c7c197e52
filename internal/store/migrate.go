package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// A migration moves the schema from version N to N+1 (its index in
// migrations plus one). Migrations are append-only: a released one is never
// edited, a change is a new one at the end. Each runs in its own
// transaction, together with the schema_migrations row that records it, so
// it is applied entirely and exactly once.
type migration struct {
	name  string
	stmts []string // one statement each, with the dialect's {{words}}
}

// Times are integer milliseconds since the Unix epoch (UTC) on both
// backends: one schema, one comparison, and values that read back identical.
var migrations = []migration{
	{
		name: "credentials",
		stmts: []string{`
CREATE TABLE credentials (
	user_id       {{key}} PRIMARY KEY,
	jenkins_user  TEXT    NOT NULL,
	sealed        {{bytes}} NOT NULL,
	key_id        TEXT    NOT NULL,
	created_at_ms BIGINT  NOT NULL,
	updated_at_ms BIGINT  NOT NULL
)`,
		},
	},
	{
		name: "audit records",
		stmts: []string{`
CREATE TABLE audit_records (
	id           {{serial}},
	time_ms      BIGINT NOT NULL,
	request_id   TEXT   NOT NULL,
	user_id      TEXT   NOT NULL,
	jenkins_user TEXT   NOT NULL,
	client_id    TEXT   NOT NULL,
	tool         TEXT   NOT NULL,
	resource     TEXT   NOT NULL,
	decision     TEXT   NOT NULL,
	code         TEXT   NOT NULL,
	reason       TEXT   NOT NULL,
	duration_ms  BIGINT NOT NULL,
	remote_addr  TEXT   NOT NULL
)`,
			// One index per filter of QueryAudit, each ending in the result
			// order, so a filtered query reads its newest rows first and
			// stops at the limit instead of sorting the table.
			`CREATE INDEX audit_records_time ON audit_records (time_ms DESC, id DESC)`,
			`CREATE INDEX audit_records_user ON audit_records (user_id, time_ms DESC, id DESC)`,
			`CREATE INDEX audit_records_tool ON audit_records (tool, time_ms DESC, id DESC)`,
			`CREATE INDEX audit_records_decision ON audit_records (decision, time_ms DESC, id DESC)`,
		},
	},
	{
		name: "web sessions",
		stmts: []string{`
CREATE TABLE sessions (
	id            {{key}} PRIMARY KEY,
	user_id       TEXT    NOT NULL,
	data          {{bytes}} NOT NULL,
	expires_at_ms BIGINT  NOT NULL
)`,
			`CREATE INDEX sessions_expires ON sessions (expires_at_ms)`,
		},
	},
	{
		// Butler's own small values, such as the vault key's canary.
		name: "settings",
		stmts: []string{`
CREATE TABLE settings (
	name          {{key}}   PRIMARY KEY,
	value         {{bytes}} NOT NULL,
	updated_at_ms BIGINT    NOT NULL
)`,
		},
	},
	{
		// When Jenkins rejected the stored credential (0: it has not), so
		// that it is not sent again until the user links again.
		name: "credential rejected mark",
		stmts: []string{
			`ALTER TABLE credentials ADD COLUMN rejected_at_ms BIGINT NOT NULL DEFAULT 0`,
		},
	},
}

// schemaVersion is the newest schema this binary knows.
func schemaVersion() int { return len(migrations) }

// migrate applies the pending migrations, one transaction each. Several
// processes may call it at once on the same database: the first to lock
// applies a migration, the others then see it recorded and move on.
func (s *sqlStore) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next pending migration, if any, and reports whether
// the schema is up to date.
func (s *sqlStore) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer rollbackOnError(tx, &err)
	if s.d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.migrationLock); err != nil {
			return false, fmt.Errorf("lock: %w", err)
		}
	}
	// Inside the locked transaction: two PostgreSQL sessions racing on
	// CREATE TABLE IF NOT EXISTS can both try to create it.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version       INTEGER PRIMARY KEY,
	name          TEXT    NOT NULL,
	applied_at_ms BIGINT  NOT NULL
)`); err != nil {
		return false, err
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return false, fmt.Errorf("read version: %w", err)
	}
	switch {
	case version > schemaVersion():
		return false, &SchemaTooNewError{Database: version, Binary: schemaVersion()}
	case version == schemaVersion():
		return true, tx.Commit()
	}
	m := migrations[version]
	next := version + 1
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, s.d.schema(stmt)); err != nil {
			return false, fmt.Errorf("%d (%s): %w", next, m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)`),
		next, m.name, s.now().UnixMilli()); err != nil {
		return false, fmt.Errorf("%d (%s): record: %w", next, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("%d (%s): commit: %w", next, m.name, err)
	}
	return false, nil
}

// rollbackOnError rolls tx back when *err is set, adding the rollback's own
// failure, if any, to *err. A transaction that already ended (committed, or
// rolled back by a canceled context) is no failure.
func rollbackOnError(tx *sql.Tx, err *error) {
	if *err == nil {
		return
	}
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		*err = errors.Join(*err, fmt.Errorf("rollback: %w", rerr))
	}
}
