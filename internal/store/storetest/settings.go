package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/butler-mcp/butler/internal/store"
)

var settingTests = []suiteTest{
	{"GetMissingIsNotFound", testSettingMissing},
	{"CreateThenGetIsBinarySafe", testSettingCreateThenGet},
	{"CreateKeepsTheFirstValue", testSettingCreateKeepsFirst},
	{"PutReplacesOrCreates", testSettingPut},
	{"ConcurrentCreatesHaveOneWinner", testSettingConcurrentCreate},
	{"InvalidIsRejected", testSettingInvalid},
	{"NamesAreDistinct", testSettingNamesDistinct},
}

func getSetting(t *testing.T, s store.Store, name string) []byte {
	t.Helper()
	v, err := s.GetSetting(t.Context(), name)
	if err != nil {
		t.Fatalf("GetSetting(%q): %v", name, err)
	}
	return v
}

func testSettingMissing(t *testing.T, s store.Store) {
	if v, err := s.GetSetting(t.Context(), "vault canary"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSetting of a missing setting = %q, %v; want ErrNotFound", v, err)
	}
}

func testSettingCreateThenGet(t *testing.T, s store.Store) {
	created, err := s.CreateSetting(t.Context(), "vault canary", allBytes())
	if err != nil || !created {
		t.Fatalf("CreateSetting = %t, %v; want true, nil", created, err)
	}
	if got := getSetting(t, s, "vault canary"); !bytes.Equal(got, allBytes()) {
		t.Errorf("GetSetting = %x, want every byte value %x", got, allBytes())
	}
}

func testSettingCreateKeepsFirst(t *testing.T, s store.Store) {
	ctx := t.Context()
	if created, err := s.CreateSetting(ctx, "k", []byte("first")); err != nil || !created {
		t.Fatalf("first CreateSetting = %t, %v; want true, nil", created, err)
	}
	created, err := s.CreateSetting(ctx, "k", []byte("second"))
	if err != nil || created {
		t.Fatalf("second CreateSetting = %t, %v; want false, nil", created, err)
	}
	if got := getSetting(t, s, "k"); string(got) != "first" {
		t.Errorf("after a second CreateSetting, the value is %q, want %q", got, "first")
	}
}

func testSettingPut(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.PutSetting(ctx, "k", []byte("one")); err != nil {
		t.Fatalf("PutSetting of a new setting: %v", err)
	}
	if got := getSetting(t, s, "k"); string(got) != "one" {
		t.Errorf("value %q, want %q", got, "one")
	}
	if err := s.PutSetting(ctx, "k", []byte("two")); err != nil {
		t.Fatalf("PutSetting over a setting: %v", err)
	}
	if got := getSetting(t, s, "k"); string(got) != "two" {
		t.Errorf("after replacing, value %q, want %q", got, "two")
	}
	if err := s.PutSetting(ctx, "empty", nil); err != nil {
		t.Fatalf("PutSetting of an empty value: %v", err)
	}
	if got := getSetting(t, s, "empty"); len(got) != 0 {
		t.Errorf("empty value reads back as %q", got)
	}
}

func testSettingConcurrentCreate(t *testing.T, s store.Store) {
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
	)
	for i := range n {
		wg.Go(func() {
			v := fmt.Sprintf("replica-%d", i)
			created, err := s.CreateSetting(t.Context(), "canary", []byte(v))
			if err != nil {
				t.Errorf("CreateSetting #%d: %v", i, err)
				return
			}
			if created {
				mu.Lock()
				winners = append(winners, v)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d CreateSetting calls reported creating the setting (%v), want exactly 1", len(winners), winners)
	}
	if got := getSetting(t, s, "canary"); string(got) != winners[0] {
		t.Errorf("stored value %q, want the winner's %q", got, winners[0])
	}
}

func testSettingInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"", "nul\x00byte", "bad\xffutf8"} {
		if _, err := s.CreateSetting(ctx, name, []byte{1}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateSetting(%q) = %v, want ErrInvalid", name, err)
		}
		if err := s.PutSetting(ctx, name, []byte{1}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutSetting(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

func testSettingNamesDistinct(t *testing.T, s store.Store) {
	ctx := t.Context()
	names := []string{"a", "A", "a ", "é", "e\u0301"}
	for i, name := range names {
		if err := s.PutSetting(ctx, name, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range names {
		if got := getSetting(t, s, name); !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("setting %q = %v, want [%d]", name, got, i)
		}
	}
}
