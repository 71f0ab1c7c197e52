package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/store"
)

var sessionTests = []suiteTest{
	{"PutThenGet", testSessionPutThenGet},
	{"PutReplaces", testSessionReplace},
	{"GetMissingIsNotFound", testSessionMissing},
	{"ExpiredIsNotFound", testSessionExpired},
	{"DeleteIsIdempotent", testSessionDelete},
	{"DeleteExpiredSessions", testSessionDeleteExpired},
	{"InvalidIsRejected", testSessionInvalid},
}

// normalizedSession is s as the store returns it.
func normalizedSession(s store.Session) store.Session {
	s.ExpiresAt = s.ExpiresAt.UTC().Truncate(time.Millisecond)
	return s
}

func putSession(t *testing.T, s store.Store, sess store.Session) {
	t.Helper()
	if err := s.PutSession(t.Context(), sess); err != nil {
		t.Fatalf("PutSession: %v", err)
	}
}

func testSessionPutThenGet(t *testing.T, s store.Store) {
	in := []store.Session{
		{ID: "sid-binary", User: "alice", Data: allBytes(), ExpiresAt: time.Now().Add(time.Hour).In(time.FixedZone("X", 5*3600))},
		{ID: "sid-empty", User: "", Data: nil, ExpiresAt: time.Now().Add(time.Minute)}, // a login in progress
		{ID: "sid-far", User: "用户", Data: []byte(`{"state":"x"}`), ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)},
	}
	for _, sess := range in {
		putSession(t, s, sess)
	}
	for _, want := range in {
		got, err := s.GetSession(t.Context(), want.ID)
		if err != nil {
			t.Errorf("GetSession(%s): %v", want.ID, err)
			continue
		}
		if diff := cmp.Diff(normalizedSession(want), got, cmpOpts...); diff != "" {
			t.Errorf("GetSession(%s) (-want +got):\n%s", want.ID, diff)
		}
	}
}

func testSessionReplace(t *testing.T, s store.Store) {
	putSession(t, s, store.Session{ID: "sid", User: "", Data: []byte("login-state"), ExpiresAt: time.Now().Add(time.Minute)})
	want := store.Session{ID: "sid", User: "alice", Data: []byte("logged-in"), ExpiresAt: time.Now().Add(8 * time.Hour)}
	putSession(t, s, want)
	got, err := s.GetSession(t.Context(), "sid")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalizedSession(want), got, cmpOpts...); diff != "" {
		t.Errorf("after replacing (-want +got):\n%s", diff)
	}
}

func testSessionMissing(t *testing.T, s store.Store) {
	const id = "secret-session-id-7f3e"
	_, err := s.GetSession(t.Context(), id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession(missing) = %v, want ErrNotFound", err)
	}
	if strings.Contains(err.Error(), id) {
		t.Errorf("error %q shows the session id, a secret", err)
	}
}

func testSessionExpired(t *testing.T, s store.Store) {
	putSession(t, s, store.Session{ID: "old", User: "alice", ExpiresAt: time.Now().Add(-time.Second)})
	if _, err := s.GetSession(t.Context(), "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession(expired) = %v, want ErrNotFound", err)
	}
}

func testSessionDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	putSession(t, s, store.Session{ID: "a", User: "alice", ExpiresAt: time.Now().Add(time.Hour)})
	putSession(t, s, store.Session{ID: "b", User: "bob", ExpiresAt: time.Now().Add(time.Hour)})
	if err := s.DeleteSession(ctx, "a"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.GetSession(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, "a"); err != nil {
		t.Errorf("second DeleteSession = %v, want nil (logging out twice is fine)", err)
	}
	if _, err := s.GetSession(ctx, "b"); err != nil {
		t.Errorf("the other session is gone: %v", err)
	}
}

func testSessionDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	// A cut-off in the future, so every session is still live for
	// GetSession, which uses the store's clock, until it is deleted.
	cut := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	sessions := map[string]time.Time{
		"expired-long-ago": cut.Add(-23 * time.Hour),
		"expired-just":     cut.Add(-time.Millisecond),
		"expires-at-cut":   cut, // not after the cut: expired
		"live":             cut.Add(time.Millisecond),
		"live-long":        cut.Add(time.Hour),
	}
	for id, exp := range sessions {
		putSession(t, s, store.Session{ID: id, User: "u", ExpiresAt: exp})
	}
	n, err := s.DeleteExpiredSessions(ctx, cut)
	if err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	if n != 3 {
		t.Errorf("DeleteExpiredSessions = %d, want 3", n)
	}
	for id, exp := range sessions {
		_, err := s.GetSession(ctx, id)
		if exp.After(cut) && err != nil {
			t.Errorf("GetSession(%s) = %v, want the live session", id, err)
		}
		if !exp.After(cut) && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession(%s) = %v, want ErrNotFound after deleting expired sessions", id, err)
		}
	}
	if n, err := s.DeleteExpiredSessions(ctx, cut); err != nil || n != 0 {
		t.Errorf("second DeleteExpiredSessions = %d, %v, want 0, nil", n, err)
	}
}

func testSessionInvalid(t *testing.T, s store.Store) {
	ok := store.Session{ID: "sid-9c2e41", User: "alice", ExpiresAt: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		name   string
		change func(*store.Session)
	}{
		{"empty id", func(s *store.Session) { s.ID = "" }},
		{"NUL in id", func(s *store.Session) { s.ID = "s\x00id" }},
		{"invalid UTF-8 in user", func(s *store.Session) { s.User = "\xff" }},
		{"no expiry", func(s *store.Session) { s.ExpiresAt = time.Time{} }},
	} {
		sess := ok
		tc.change(&sess)
		err := s.PutSession(t.Context(), sess)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: PutSession = %v, want ErrInvalid", tc.name, err)
		}
		if sess.ID != "" && err != nil && strings.Contains(err.Error(), sess.ID) {
			t.Errorf("%s: error %q shows the session id", tc.name, err)
		}
	}
}
