package credentials

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// sealVersion is the first byte of every sealed value, so the format can
// change later without guessing.
const sealVersion = 1

// ErrDecrypt: a sealed credential could not be opened: no configured key
// has its key id, or the bytes or their binding to the user were altered.
var ErrDecrypt = errors.New("credentials: cannot decrypt the stored credential")

// Vault encrypts stored Jenkins credentials with AES-256-GCM. Each sealed
// value is bound (as GCM additional data) to the user and the Jenkins user
// it belongs to, so a row copied onto another user's record does not
// decrypt. Old keys stay readable for rotation; sealing always uses the
// current key.
type Vault struct {
	current keyEntry
	keys    map[string]cipher.AEAD
}

type keyEntry struct {
	id   string
	aead cipher.AEAD
}

// NewVault returns a vault sealing with current and opening with current
// or any of old.
func NewVault(current [32]byte, old [][32]byte) (*Vault, error) {
	v := &Vault{keys: map[string]cipher.AEAD{}}
	for i, k := range append([][32]byte{current}, old...) {
		block, err := aes.NewCipher(k[:])
		if err != nil {
			return nil, fmt.Errorf("credentials: vault key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("credentials: vault key %d: %w", i, err)
		}
		id := KeyID(k)
		if i == 0 {
			v.current = keyEntry{id: id, aead: aead}
		}
		if _, dup := v.keys[id]; !dup {
			v.keys[id] = aead
		}
	}
	return v, nil
}

// KeyID names a key without revealing it: a prefix of a SHA-256 of the key
// under a fixed label.
func KeyID(k [32]byte) string {
	h := sha256.Sum256(append([]byte("butler vault key id\x00"), k[:]...))
	return "k" + hex.EncodeToString(h[:6])
}

// CurrentKeyID is the id of the key Seal uses.
func (v *Vault) CurrentKeyID() string { return v.current.id }

func additionalData(user, jenkinsUser string) []byte {
	return []byte(fmt.Sprintf("butler credential v1\x00%d:%s\x00%d:%s", len(user), user, len(jenkinsUser), jenkinsUser))
}

// Seal encrypts secret for user (acting as jenkinsUser) with the current
// key and returns the sealed bytes and the key id.
func (v *Vault) Seal(user, jenkinsUser string, secret []byte) ([]byte, string, error) {
	nonce := make([]byte, v.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("credentials: nonce: %w", err)
	}
	out := append([]byte{sealVersion}, nonce...)
	out = v.current.aead.Seal(out, nonce, secret, additionalData(user, jenkinsUser))
	return out, v.current.id, nil
}

// Open decrypts a sealed value. stale reports that it was sealed with an old
// key and should be sealed again with the current one.
func (v *Vault) Open(user, jenkinsUser string, sealed []byte, keyID string) (secret []byte, stale bool, err error) {
	aead, ok := v.keys[keyID]
	if !ok {
		return nil, false, fmt.Errorf("%w: it was sealed with key %s, which is not configured (store.vault_key / vault_old_keys)", ErrDecrypt, keyID)
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, false, fmt.Errorf("%w: malformed sealed value", ErrDecrypt)
	}
	secret, err = aead.Open(nil, sealed[1:1+n], sealed[1+n:], additionalData(user, jenkinsUser))
	if err != nil {
		return nil, false, fmt.Errorf("%w: authentication failed (altered, or bound to another user)", ErrDecrypt)
	}
	return secret, keyID != v.current.id, nil
}
