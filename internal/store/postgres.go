package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens the PostgreSQL database of the postgres:// URL dsn
// through a pgx pool, seen through database/sql so that both backends share
// one implementation. Every pgx connection-string parameter works, notably
// search_path to keep Butler's tables in a schema of their own.
func openPostgres(ctx context.Context, dsn string, o Options) (Store, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url's error quotes the whole DSN, password included.
		return nil, errors.New("store: open postgres: the DSN is not a valid URL")
	}
	name, secrets := describePostgres(u)
	fail := func(err error) (Store, error) {
		return nil, fmt.Errorf("store: open %s: %w", name, scrub(err, secrets))
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// A *pgconn.ParseConfigError carries the whole DSN in a field, so
		// only its (scrubbed) text goes on.
		return fail(errors.New(err.Error()))
	}
	// Making a connection (dial, TLS, authentication) has the deadline of
	// a call. The pool makes connections with a context of its own, not
	// the call's, so without it a connection to a server that accepts TCP
	// but does not answer would hold a slot of the pool long after the
	// call gave up. (A DSN's connect_timeout still bounds the dial.)
	cfg.ConnConfig.ConnectTimeout = o.Timeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	s := &sqlStore{d: postgresDialect, now: o.Now, w: db, r: db, closeExtra: pool.Close}
	// Reach the server first, within the deadline, so that a database
	// that does not answer fails Open as unavailable rather than hang in
	// the migrations.
	if err := WithTimeout(s, o.Timeout).Ping(ctx); err != nil {
		s.Close()
		return fail(err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return fail(err)
	}
	return s, nil
}

// isPostgresUnavailable reports whether err is PostgreSQL not serving: a
// connection that could not be made or timed out, or the server refusing
// work for now (SQLSTATE class 08, connection exception; 53, insufficient
// resources such as too many connections; 57P01-57P03, shutting down or
// starting up).
func isPostgresUnavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"),
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03":
			return true
		}
	}
	return false
}

// describePostgres names the database of u for errors, without its password
// or query (which may hold sslpassword), and returns the secrets an error
// must not show.
func describePostgres(u *url.URL) (name string, secrets []string) {
	if pw, ok := u.User.Password(); ok {
		secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if v := q.Get(k); v != "" {
			secrets = append(secrets, v, url.QueryEscape(v))
		}
	}
	safe := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		safe.User = url.User(u.User.Username())
	}
	return safe.String(), secrets
}

// scrub returns err unless its text shows one of secrets; then an error with
// the secrets masked, which gives up err's chain: a wrapped error could
// still print them.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	leaked := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			leaked = true
		}
	}
	if !leaked {
		return err
	}
	return errors.New(msg)
}
