package ratelimit

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOpen_EmptyURLGivesMemory(t *testing.T) {
	t.Parallel()
	l, closeFn, err := Open(context.Background(), 10, 20, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.(*Memory); !ok {
		t.Errorf("Open(\"\") = %T, want *Memory", l)
	}
	if err := closeFn(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestOpen_BadURLIsAnError(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"http://127.0.0.1:6379", "127.0.0.1:6379", "redis://127.0.0.1:6379/notadb",
		"redis://user:s3cret@127.0.0.1:port/0", "redis://127.0.0.1:6379/0?nope=1",
	} {
		_, _, err := Open(context.Background(), 10, 20, u, nil)
		if err == nil {
			t.Errorf("Open(%q): no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): error %q reveals the password", u, err)
		}
	}
}

func TestOpen_RedisDownAtStartStillLimits(t *testing.T) {
	t.Parallel()
	logs := &recordingHandler{}
	l, closeFn, err := Open(context.Background(), 0.1, 2, "redis://"+closedAddr(t)+"/0", slog.New(logs))
	if err != nil {
		t.Fatalf("Open with Redis down: %v; want no error", err)
	}
	defer closeFn()
	if _, ok := l.(*Redis); !ok {
		t.Fatalf("Open = %T, want *Redis", l)
	}
	var got []bool
	for range 4 {
		d, err := l.Allow(context.Background(), "alice")
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		got = append(got, d.Allowed)
	}
	if diff := cmp.Diff([]bool{true, true, false, false}, got); diff != "" {
		t.Errorf("Allowed mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]slog.Level{slog.LevelWarn}, logs.levels()); diff != "" {
		t.Errorf("log levels mismatch (-want +got):\n%s", diff)
	}
}

func TestOpen_RedisURLGivesRedis(t *testing.T) {
	t.Parallel()
	url := testRedisURL(t)
	admin := newTestClient(t)
	logs := &recordingHandler{}
	l, closeFn, err := Open(context.Background(), 0.1, 2, url, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := l.(*Redis)
	if !ok {
		t.Fatalf("Open(%q) = %T, want *Redis", url, l)
	}
	// Use the default prefix with a user id no real user has, and clean up.
	user := "butler-test-" + testPrefix(t, admin)
	t.Cleanup(func() { admin.Del(context.Background(), r.Key(user)) })
	var got []bool
	for range 3 {
		d, err := l.Allow(context.Background(), user)
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		got = append(got, d.Allowed)
	}
	if diff := cmp.Diff([]bool{true, true, false}, got); diff != "" {
		t.Errorf("Allowed mismatch (-want +got):\n%s", diff)
	}
	if n := admin.Exists(context.Background(), r.Key(user)).Val(); n != 1 {
		t.Errorf("no key %s in Redis", r.Key(user))
	}
	if n := len(logs.levels()); n != 0 {
		t.Errorf("%d log records, want none", n)
	}
	if err := closeFn(); err != nil {
		t.Errorf("close: %v", err)
	}
}
