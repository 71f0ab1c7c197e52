package credentials

import (
	"bytes"
	"errors"
	"testing"
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
