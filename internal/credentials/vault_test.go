package credentials

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/butler-mcp/butler/internal/store"
)

func key(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestVault_SealOpen(t *testing.T) {
	t.Parallel()
	v, err := NewVault(key(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, id, err := v.Seal("alice", "alice", []byte("s3cret-api-token"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, _, _ := v.Seal("alice", "alice", []byte("s3cret-api-token"))
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same secret are identical: the nonce is not random")
	}
	got, stale, err := v.Open("alice", "alice", sealed, id)
	if err != nil || string(got) != "s3cret-api-token" || stale {
		t.Fatalf("Open = %q, %t, %v", got, stale, err)
	}
}

// A sealed credential is bound to its user and Jenkins user: copying it to
// another user's row must not yield a usable token.
func TestVault_BoundToUser(t *testing.T) {
	t.Parallel()
	v, _ := NewVault(key(1), nil)
	sealed, id, _ := v.Seal("alice", "alice", []byte("token"))
	for _, tc := range []struct{ user, jenkins string }{{"mallory", "alice"}, {"alice", "mallory"}, {"alic", "ealice"}} {
		if _, _, err := v.Open(tc.user, tc.jenkins, sealed, id); !errors.Is(err, ErrDecrypt) {
			t.Errorf("opened for %s/%s: %v", tc.user, tc.jenkins, err)
		}
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, _, err := v.Open("alice", "alice", tampered, id); !errors.Is(err, ErrDecrypt) {
		t.Errorf("tampered value opened: %v", err)
	}
	if _, _, err := v.Open("alice", "alice", sealed[:5], id); !errors.Is(err, ErrDecrypt) {
		t.Errorf("truncated value opened: %v", err)
	}
}

func TestVault_Rotation(t *testing.T) {
	t.Parallel()
	old, _ := NewVault(key(1), nil)
	sealed, oldID, _ := old.Seal("bob", "bob", []byte("token"))

	rotated, _ := NewVault(key(2), [][32]byte{key(1)})
	if rotated.CurrentKeyID() == oldID {
		t.Fatal("new key has the old id")
	}
	got, stale, err := rotated.Open("bob", "bob", sealed, oldID)
	if err != nil || string(got) != "token" || !stale {
		t.Fatalf("old-key value after rotation: %q stale=%t %v", got, stale, err)
	}
	resealed, newID, _ := rotated.Seal("bob", "bob", got)
	if newID != rotated.CurrentKeyID() {
		t.Error("Seal did not use the current key")
	}
	// Without the old key, the old value cannot be read.
	only, _ := NewVault(key(2), nil)
	if _, _, err := only.Open("bob", "bob", sealed, oldID); !errors.Is(err, ErrDecrypt) {
		t.Errorf("old value opened without the old key: %v", err)
	}
	if _, stale, err := only.Open("bob", "bob", resealed, newID); err != nil || stale {
		t.Errorf("re-sealed value: stale=%t %v", stale, err)
	}
}

// canaryStore is a real (in-memory SQLite) store whose calls can be made
// to fail, as when the database is down.
type canaryStore struct {
	store.Store
	mu   sync.Mutex
	down bool
	gets int
	// together, when set, makes the first together reads wait for each
	// other before they return (all find no canary), as replicas starting
	// at once do.
	together int
	gate     chan struct{}
}

func (s *canaryStore) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *canaryStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return fmt.Errorf("store: get setting: %w", store.ErrUnavailable)
	}
	return nil
}

func (s *canaryStore) GetSetting(ctx context.Context, name string) ([]byte, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.gets++
	var gate chan struct{}
	if s.together > 0 {
		if s.gate == nil {
			s.gate = make(chan struct{})
		}
		gate = s.gate
		if s.together--; s.together == 0 {
			close(s.gate)
		}
	}
	s.mu.Unlock()
	v, err := s.Store.GetSetting(ctx, name)
	if gate != nil {
		<-gate // every replica has read before any goes on
	}
	return v, err
}

func newCanaryStore(t *testing.T) *canaryStore {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &canaryStore{Store: st}
}

func vault(t *testing.T, cur byte, old ...byte) *Vault {
	t.Helper()
	var olds [][32]byte
	for _, o := range old {
		olds = append(olds, key(o))
	}
	v, err := NewVault(key(cur), olds)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// On first start the check seals a canary into the store; a restart with
// the same key passes, one with another key fails, every time, and does not
// overwrite the canary.
func TestKeyCheck_WrongKeyFails(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); err != nil {
		t.Fatalf("first start: Check = %v", err)
	}
	canary, err := st.Store.GetSetting(t.Context(), CanarySetting)
	if err != nil {
		t.Fatalf("no canary after the first check: %v", err)
	}
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); err != nil {
		t.Errorf("restart with the same key: Check = %v", err)
	}
	wrong := NewKeyCheck(st, vault(t, 9), nil)
	for i := range 3 {
		err := wrong.Check(t.Context())
		if !errors.Is(err, ErrWrongKey) || !errors.Is(err, ErrDecrypt) {
			t.Errorf("wrong key, check %d: Check = %v, want ErrWrongKey and ErrDecrypt", i, err)
		}
		if err != nil && !strings.Contains(err.Error(), "store.vault_key") {
			t.Errorf("the error %q does not name store.vault_key", err)
		}
	}
	if after, _ := st.Store.GetSetting(t.Context(), CanarySetting); !bytes.Equal(after, canary) {
		t.Error("a check with the wrong key replaced the canary")
	}
}

// A canary that was altered, or is not one, fails the check.
func TestKeyCheck_AlteredCanaryFails(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	canary, _ := st.Store.GetSetting(t.Context(), CanarySetting)
	for _, bad := range [][]byte{append(bytes.Clone(canary[:len(canary)-1]), canary[len(canary)-1]^1), []byte("garbage"), {}} {
		if err := st.Store.PutSetting(t.Context(), CanarySetting, bad); err != nil {
			t.Fatal(err)
		}
		if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); !errors.Is(err, ErrWrongKey) {
			t.Errorf("canary %q: Check = %v, want ErrWrongKey", bad, err)
		}
	}
}

// After a rotation (new key, old key in vault_old_keys) the check passes
// and seals the canary again with the new key, so that the old key can be
// dropped later.
func TestKeyCheck_RotationResealsTheCanary(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := NewKeyCheck(st, vault(t, 2, 1), nil).Check(t.Context()); err != nil {
		t.Fatalf("rotated vault: Check = %v", err)
	}
	if err := NewKeyCheck(st, vault(t, 2), nil).Check(t.Context()); err != nil {
		t.Errorf("new key alone after the rotation: Check = %v", err)
	}
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); !errors.Is(err, ErrWrongKey) {
		t.Errorf("old key alone after the rotation: Check = %v, want ErrWrongKey", err)
	}
}

// A database from before the canary: the first check does not trust a key
// that did not seal the stored credentials, and writes no canary for it.
func TestKeyCheck_NoCanaryButCredentialsOfAnotherKey(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	if err := NewStored(st, vault(t, 1), nil, nil).Link(t.Context(), "alice", "alice", "token"); err != nil {
		t.Fatal(err)
	}
	if err := NewKeyCheck(st, vault(t, 9), nil).Check(t.Context()); !errors.Is(err, ErrWrongKey) {
		t.Errorf("key 9 over credentials of key 1: Check = %v, want ErrWrongKey", err)
	}
	if _, err := st.Store.GetSetting(t.Context(), CanarySetting); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a canary was written for the wrong key: %v", err)
	}
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); err != nil {
		t.Errorf("the right key: Check = %v", err)
	}
	if err := NewKeyCheck(st, vault(t, 9), nil).Check(t.Context()); !errors.Is(err, ErrWrongKey) {
		t.Errorf("key 9 after the canary: Check = %v, want ErrWrongKey", err)
	}
}

// The store being down is the store's failure, reported as such and not
// remembered: the check passes again once the store is back.
func TestKeyCheck_StoreDownIsNotAWrongKey(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	k := NewKeyCheck(st, vault(t, 1), nil)
	if err := k.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	st.setDown(true)
	if err := k.Check(t.Context()); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrWrongKey) {
		t.Errorf("store down: Check = %v, want ErrUnavailable and not ErrWrongKey", err)
	}
	st.setDown(false)
	if err := k.Check(t.Context()); err != nil {
		t.Errorf("store back: Check = %v", err)
	}
}

// Replicas starting together on a new database, some with one key and
// some with another: one canary is written, and exactly the replicas with
// its key pass.
func TestKeyCheck_ReplicasRacingOnFirstStart(t *testing.T) {
	t.Parallel()
	for range 5 {
		st := newCanaryStore(t)
		const n = 6
		st.together = n
		keys := []byte{1, 1, 1, 3, 3, 3}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = NewKeyCheck(st, vault(t, keys[i]), nil).Check(t.Context()) })
		}
		wg.Wait()
		passed := map[byte]int{}
		for i, err := range errs {
			switch {
			case err == nil:
				passed[keys[i]]++
			case !errors.Is(err, ErrWrongKey):
				t.Errorf("replica %d: Check = %v, want nil or ErrWrongKey", i, err)
			}
		}
		if !(passed[1] == 3 && passed[3] == 0) && !(passed[1] == 0 && passed[3] == 3) {
			t.Errorf("replicas passing by key: %v; want the three of one key, none of the other", passed)
		}
	}
}

// Each check reads the canary, but decrypts it only when it changed.
func TestKeyCheck_CachesTheResultOfACanary(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	k := NewKeyCheck(st, vault(t, 1), nil)
	for range 3 {
		if err := k.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if k.opens != 0 {
		t.Errorf("%d canaries decrypted after writing it and checking it twice, want 0", k.opens)
	}
	// Another replica's rotation replaces the canary: checked again, once.
	if err := NewKeyCheck(st, vault(t, 2, 1), nil).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := k.Check(t.Context()); !errors.Is(err, ErrWrongKey) {
			t.Errorf("key 1 alone after the canary was sealed with key 2: Check = %v, want ErrWrongKey", err)
		}
	}
	if k.opens != 1 {
		t.Errorf("%d canaries decrypted, want 1 (the new one, once)", k.opens)
	}
	if st.gets < 6 {
		t.Errorf("%d reads of the canary for 6 checks: a check must read it", st.gets)
	}
}

// A canary must hold the canary's plaintext, sealed for no user: neither
// another plaintext nor a user's sealed credential passes.
func TestKeyCheck_OnlyTheCanaryPasses(t *testing.T) {
	t.Parallel()
	v := vault(t, 1)
	sealed, id, err := v.Seal(canaryUser, "", []byte("something else"))
	if err != nil {
		t.Fatal(err)
	}
	cred, credID, err := v.Seal("alice", "alice", []byte(canaryPlaintext))
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string][]byte{
		"another plaintext":   append([]byte(canaryFormat+id+"\n"), sealed...),
		"a user's credential": append([]byte(canaryFormat+credID+"\n"), cred...),
		"no format line":      append([]byte(id+"\n"), mustSealCanary(t, v)[len(canaryFormat)+len(id)+1:]...),
	} {
		st := newCanaryStore(t)
		if err := st.Store.PutSetting(t.Context(), CanarySetting, value); err != nil {
			t.Fatal(err)
		}
		if err := NewKeyCheck(st, v, nil).Check(t.Context()); !errors.Is(err, ErrWrongKey) {
			t.Errorf("%s as the canary: Check = %v, want ErrWrongKey", name, err)
		}
	}
}

// The canary holds neither a key nor the canary's plaintext.
func TestKeyCheck_CanaryRevealsNothing(t *testing.T) {
	t.Parallel()
	st := newCanaryStore(t)
	if err := NewKeyCheck(st, vault(t, 1), nil).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	canary, err := st.Store.GetSetting(t.Context(), CanarySetting)
	if err != nil {
		t.Fatal(err)
	}
	k := key(1)
	if bytes.Contains(canary, k[:8]) || bytes.Contains(canary, []byte("key canary")) {
		t.Errorf("the canary %q shows the key or its plaintext", canary)
	}
}

func mustSealCanary(t *testing.T, v *Vault) []byte {
	t.Helper()
	c, err := v.SealCanary()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
