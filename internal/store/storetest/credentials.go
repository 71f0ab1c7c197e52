package storetest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/store"
)

var credentialTests = []suiteTest{
	{"PutThenGet", testCredentialPutThenGet},
	{"ReplaceKeepsCreatedAtAndMovesUpdatedAt", testCredentialReplace},
	{"GetMissingIsNotFound", testCredentialGetMissing},
	{"Delete", testCredentialDelete},
	{"ListIsOrderedByUserBytewise", testCredentialList},
	{"SealedIsBinarySafe", testCredentialSealedBinarySafe},
	{"InvalidIsRejected", testCredentialInvalid},
	{"UnicodeAndCaseDistinctUsers", testCredentialUnicodeUsers},
	{"NoSharedBytes", testCredentialNoSharedBytes},
	{"RejectedMarkPersistsUntilRelinked", testCredentialRejectedMark},
}

// A credential Jenkins rejected is marked, and the mark is read back,
// kept by a re-seal that passes it on, and cleared by a new link; a mark
// for a credential already replaced changes nothing.
func testCredentialRejectedMark(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := store.Credential{User: "alice", JenkinsUser: "alice", Sealed: []byte("sealed-1"), KeyID: "k1"}
	if err := s.PutCredential(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCredential(ctx, "alice"); err != nil || !got.RejectedAt.IsZero() {
		t.Fatalf("a new credential: %+v, %v", got, err)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	if err := s.MarkCredentialRejected(ctx, "alice", []byte("sealed-1"), at); err != nil {
		t.Fatalf("MarkCredentialRejected: %v", err)
	}
	got, err := s.GetCredential(ctx, "alice")
	if err != nil || !got.RejectedAt.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("after the mark: RejectedAt %v, %v", got.RejectedAt, err)
	}
	if all, err := s.ListCredentials(ctx); err != nil || len(all) != 1 || !all[0].RejectedAt.Equal(got.RejectedAt) {
		t.Errorf("ListCredentials: %+v, %v", all, err)
	}
	// Re-sealed under a new key (rotation), the mark stays.
	resealed := got
	resealed.Sealed, resealed.KeyID = []byte("sealed-1-k2"), "k2"
	if err := s.PutCredential(ctx, resealed); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetCredential(ctx, "alice"); !got.RejectedAt.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("re-sealing lost the mark: %v", got.RejectedAt)
	}
	// A new link clears it, and a late mark for the old one does nothing.
	if err := s.PutCredential(ctx, store.Credential{User: "alice", JenkinsUser: "alice", Sealed: []byte("sealed-2"), KeyID: "k2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkCredentialRejected(ctx, "alice", []byte("sealed-1-k2"), at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("marking a replaced credential: %v, want ErrNotFound", err)
	}
	if got, _ := s.GetCredential(ctx, "alice"); !got.RejectedAt.IsZero() {
		t.Errorf("after re-linking: RejectedAt %v", got.RejectedAt)
	}
	if err := s.MarkCredentialRejected(ctx, "nobody", []byte("x"), at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("marking a missing credential: %v", err)
	}
	if err := s.MarkCredentialRejected(ctx, "alice", []byte("sealed-2"), time.Time{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("marking without a time: %v", err)
	}
}

// now returns the current time at the store's precision, to bound the
// times the store sets.
func now() time.Time { return time.Now().Truncate(time.Millisecond) }

func testCredentialPutThenGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := store.Credential{
		User:        "alice",
		JenkinsUser: "alice.jenkins",
		Sealed:      []byte("nonce+ciphertext+tag"),
		KeyID:       "2025-01",
		// Ignored: the store sets both.
		CreatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
		UpdatedAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	before := now()
	if err := s.PutCredential(ctx, in); err != nil {
		t.Fatalf("PutCredential: %v", err)
	}
	after := time.Now()
	got, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatalf("GetCredential: %v", err)
	}
	want := in
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetCredential (-want +got):\n%s", diff)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %v, want the time of the put, in [%v, %v]", got.CreatedAt, before, after)
	}
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("UpdatedAt = %v, want CreatedAt %v for a new credential", got.UpdatedAt, got.CreatedAt)
	}
	if got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("CreatedAt = %v, want UTC at millisecond precision", got.CreatedAt)
	}
}

func testCredentialReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.PutCredential(ctx, store.Credential{User: "alice", JenkinsUser: "alice", Sealed: []byte("old"), KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	first, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the store's clock must visibly move
	replacement := store.Credential{User: "alice", JenkinsUser: "alice2", Sealed: []byte("new-and-longer"), KeyID: "k2"}
	if err := s.PutCredential(ctx, replacement); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := replacement
	want.CreatedAt, want.UpdatedAt = first.CreatedAt, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after replacing (-want +got):\n%s", diff)
	}
	if !got.UpdatedAt.After(first.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want after the first put's %v", got.UpdatedAt, first.UpdatedAt)
	}
	if list := listCredentials(t, s); len(list) != 1 {
		t.Errorf("after replacing, %d credentials are stored, want 1", len(list))
	}
}

func testCredentialGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetCredential(t.Context(), "nobody")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCredential(nobody) = %v, want ErrNotFound", err)
	}
	if want := "get credential"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not name the operation %q", err, want)
	}
}

func testCredentialDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, u := range []string{"alice", "bob"} {
		if err := s.PutCredential(ctx, store.Credential{User: u, JenkinsUser: u, Sealed: []byte(u), KeyID: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCredential(ctx, "alice"); err != nil {
		t.Fatalf("DeleteCredential(alice): %v", err)
	}
	if _, err := s.GetCredential(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCredential after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCredential(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteCredential(alice) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCredential(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteCredential(nobody) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetCredential(ctx, "bob"); err != nil {
		t.Errorf("bob's credential is gone after deleting alice's: %v", err)
	}
}

func testCredentialList(t *testing.T, s store.Store) {
	ctx := t.Context()
	if got := listCredentials(t, s); len(got) != 0 {
		t.Fatalf("a new store lists %d credentials, want none", len(got))
	}
	// Byte order, not a locale's: upper case before lower, ASCII before
	// the rest, "alice" before "alice2".
	users := []string{"zed", "Émile", "alice2", "Bob", "alice", "用户"}
	for _, u := range users {
		if err := s.PutCredential(ctx, store.Credential{User: u, JenkinsUser: u, Sealed: []byte(u), KeyID: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, c := range listCredentials(t, s) {
		got = append(got, c.User)
		if string(c.Sealed) != c.User || c.JenkinsUser != c.User {
			t.Errorf("listed credential %+v does not hold what was put for %q", c, c.User)
		}
	}
	want := []string{"Bob", "alice", "alice2", "zed", "Émile", "用户"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListCredentials users (-want +got):\n%s", diff)
	}
}

func listCredentials(t *testing.T, s store.Store) []store.Credential {
	t.Helper()
	list, err := s.ListCredentials(t.Context())
	if err != nil {
		t.Fatalf("ListCredentials: %v", err)
	}
	return list
}

// allBytes is every byte value once, in order.
func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func testCredentialSealedBinarySafe(t *testing.T, s store.Store) {
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'u', 't', 'l', 'e', 'r'}))
	large := make([]byte, 64<<10)
	for i := range large {
		large[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name   string
		sealed []byte
	}{
		{"every byte value", allBytes()},
		{"every byte value, reversed", func() []byte { b := allBytes(); slices.Reverse(b); return b }()},
		{"a single NUL", []byte{0}},
		{"NULs around text", []byte("\x00token\x00")},
		{"invalid UTF-8", []byte{0xff, 0xfe, 0xc3, 0x28, 0x80}},
		{"64 KiB of random bytes", large},
	}
	for i, tc := range tests {
		user := "user-" + string(rune('a'+i))
		if err := s.PutCredential(t.Context(), store.Credential{User: user, Sealed: tc.sealed, KeyID: "k"}); err != nil {
			t.Errorf("%s: PutCredential: %v", tc.name, err)
			continue
		}
		got, err := s.GetCredential(t.Context(), user)
		if err != nil {
			t.Errorf("%s: GetCredential: %v", tc.name, err)
			continue
		}
		if !bytes.Equal(got.Sealed, tc.sealed) {
			t.Errorf("%s: Sealed came back changed: got %d bytes %x..., want %d bytes %x...",
				tc.name, len(got.Sealed), got.Sealed[:min(16, len(got.Sealed))], len(tc.sealed), tc.sealed[:min(16, len(tc.sealed))])
		}
	}
}

func testCredentialInvalid(t *testing.T, s store.Store) {
	ok := store.Credential{User: "alice", JenkinsUser: "alice", Sealed: []byte{1, 2, 3}, KeyID: "k"}
	tests := []struct {
		name   string
		change func(c *store.Credential)
	}{
		{"empty user", func(c *store.Credential) { c.User = "" }},
		{"nil sealed", func(c *store.Credential) { c.Sealed = nil }},
		{"empty sealed", func(c *store.Credential) { c.Sealed = []byte{} }},
		{"NUL in user", func(c *store.Credential) { c.User = "ali\x00ce" }},
		{"invalid UTF-8 in user", func(c *store.Credential) { c.User = "ali\xffce" }},
		{"NUL in jenkins user", func(c *store.Credential) { c.JenkinsUser = "a\x00" }},
		{"invalid UTF-8 in key id", func(c *store.Credential) { c.KeyID = "\xc3\x28" }},
	}
	for _, tc := range tests {
		c := ok
		tc.change(&c)
		if err := s.PutCredential(t.Context(), c); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: PutCredential = %v, want ErrInvalid", tc.name, err)
		}
	}
	if got := listCredentials(t, s); len(got) != 0 {
		t.Errorf("after rejected puts, %d credentials are stored, want none", len(got))
	}
}

func testCredentialUnicodeUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	users := []string{"Alice", "alice", "ümlaut@example.com", "用户@example.com", "🦊", "e\u0301"}
	for i, u := range users {
		if err := s.PutCredential(ctx, store.Credential{User: u, JenkinsUser: "j-" + u, Sealed: []byte{byte(i + 1)}, KeyID: "k"}); err != nil {
			t.Fatalf("PutCredential(%q): %v", u, err)
		}
	}
	for i, u := range users {
		got, err := s.GetCredential(ctx, u)
		if err != nil {
			t.Errorf("GetCredential(%q): %v", u, err)
			continue
		}
		if got.User != u || got.JenkinsUser != "j-"+u || !bytes.Equal(got.Sealed, []byte{byte(i + 1)}) {
			t.Errorf("GetCredential(%q) = %+v, want its own credential", u, got)
		}
	}
	if got := listCredentials(t, s); len(got) != len(users) {
		t.Errorf("%d credentials listed, want %d: users differing by case or normalization must stay apart", len(got), len(users))
	}
	// "é" precomposed is another user than "e" + combining accent.
	if _, err := s.GetCredential(ctx, "\u00e9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf(`GetCredential("\u00e9") = %v, want ErrNotFound: keys are compared byte for byte`, err)
	}
}

func testCredentialNoSharedBytes(t *testing.T, s store.Store) {
	ctx := t.Context()
	sealed := []byte("sealed")
	if err := s.PutCredential(ctx, store.Credential{User: "alice", Sealed: sealed, KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	sealed[0] = 'X'
	got, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Sealed) != "sealed" {
		t.Fatalf("changing the slice passed to PutCredential changed the stored value to %q", got.Sealed)
	}
	got.Sealed[0] = 'Y'
	again, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Sealed) != "sealed" {
		t.Errorf("changing a returned slice changed the stored value to %q", again.Sealed)
	}
}
