package credentials

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/butler-mcp/butler/internal/store"
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

// Knows reports whether keyID names one of the vault's keys.
func (v *Vault) Knows(keyID string) bool {
	_, ok := v.keys[keyID]
	return ok
}

// The canary: a fixed plaintext sealed with the vault key and kept in the
// store, so that a key that is not the one this database's credentials are
// sealed with is noticed at start-up (readiness "vault_key") rather than
// at the first call of each user. Its additional data names no user (a
// user id cannot hold a NUL byte), so a canary cannot pass for a credential
// or the other way round.
const (
	// CanarySetting is the store setting that holds the canary.
	CanarySetting   = "vault key canary"
	canaryFormat    = "butler vault canary v1\n"
	canaryPlaintext = "butler vault key canary v1"
	canaryUser      = "\x00vault key canary"
)

// ErrWrongKey: store.vault_key (with vault_old_keys) is not the key this
// database's credentials were sealed with. Errors wrapping it also wrap
// ErrDecrypt.
var ErrWrongKey = errors.New("store.vault_key is not the key this database's credentials were sealed with (nor is any of store.vault_old_keys)")

// SealCanary seals the canary with the current key, as stored.
func (v *Vault) SealCanary() ([]byte, error) {
	sealed, keyID, err := v.Seal(canaryUser, "", []byte(canaryPlaintext))
	if err != nil {
		return nil, err
	}
	return append([]byte(canaryFormat+keyID+"\n"), sealed...), nil
}

// OpenCanary checks a stored canary. stale reports that an old key sealed
// it.
func (v *Vault) OpenCanary(value []byte) (stale bool, err error) {
	rest, ok := bytes.CutPrefix(value, []byte(canaryFormat))
	keyID, sealed, ok2 := bytes.Cut(rest, []byte("\n"))
	if !ok || !ok2 {
		return false, fmt.Errorf("%w: %w: the vault key canary is malformed", ErrWrongKey, ErrDecrypt)
	}
	plain, stale, err := v.Open(canaryUser, "", sealed, string(keyID))
	if err != nil {
		return false, fmt.Errorf("%w: the vault key canary: %w", ErrWrongKey, err)
	}
	if string(plain) != canaryPlaintext {
		return false, fmt.Errorf("%w: %w: the vault key canary holds something else", ErrWrongKey, ErrDecrypt)
	}
	return stale, nil
}

// CanaryStore is what KeyCheck needs of the store.
type CanaryStore interface {
	GetSetting(ctx context.Context, name string) ([]byte, error)
	CreateSetting(ctx context.Context, name string, value []byte) (bool, error)
	PutSetting(ctx context.Context, name string, value []byte) error
	ListCredentials(ctx context.Context) ([]store.Credential, error)
}

// KeyCheck is the readiness check "vault_key": it fails when the vault's
// keys do not open the canary in the store. The first check on a database
// without a canary writes one (after making sure no stored credential was
// sealed with a key the vault does not have); a check that finds a canary
// sealed with an old key seals it again with the current one. Each check
// reads the canary (one small row) and decrypts it only when it changed.
type KeyCheck struct {
	store  CanaryStore
	vault  *Vault
	logger *slog.Logger

	mu     sync.Mutex
	value  []byte // the canary last checked
	result error  // and what the check found
	opens  int    // how many canaries it decrypted (for tests)
}

// NewKeyCheck returns the check of v against s. logger may be nil.
func NewKeyCheck(s CanaryStore, v *Vault, logger *slog.Logger) *KeyCheck {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &KeyCheck{store: s, vault: v, logger: logger}
}

// Check reports whether the vault's keys open the stored canary: nil, an
// error wrapping ErrWrongKey, or the store's error (which wraps
// store.ErrUnavailable when the database does not answer).
func (k *KeyCheck) Check(ctx context.Context) error {
	for range 3 {
		value, err := k.store.GetSetting(ctx, CanarySetting)
		if errors.Is(err, store.ErrNotFound) {
			created, err := k.create(ctx)
			if err != nil || created {
				return err
			}
			continue // another replica created it first: check its canary
		}
		if err != nil {
			return fmt.Errorf("credentials: vault key check: %w", err)
		}
		return k.checkValue(ctx, value)
	}
	return errors.New("credentials: vault key check: the canary keeps disappearing")
}

func (k *KeyCheck) checkValue(ctx context.Context, value []byte) error {
	k.mu.Lock()
	if k.value != nil && bytes.Equal(k.value, value) {
		defer k.mu.Unlock()
		return k.result
	}
	k.opens++
	k.mu.Unlock()
	stale, err := k.vault.OpenCanary(value)
	if err == nil && stale {
		if fresh, serr := k.vault.SealCanary(); serr != nil {
			k.logger.WarnContext(ctx, "sealing the vault key canary with the current key failed", "err", serr)
		} else if perr := k.store.PutSetting(ctx, CanarySetting, fresh); perr != nil {
			k.logger.WarnContext(ctx, "sealing the vault key canary with the current key failed", "err", perr)
		} else {
			value = fresh
		}
	}
	k.remember(value, err)
	return err
}

// create writes the canary of a database that has none, unless a stored
// credential was sealed with a key the vault does not have.
func (k *KeyCheck) create(ctx context.Context) (bool, error) {
	creds, err := k.store.ListCredentials(ctx)
	if err != nil {
		return false, fmt.Errorf("credentials: vault key check: %w", err)
	}
	for _, c := range creds {
		if !k.vault.Knows(c.KeyID) {
			return false, fmt.Errorf("%w: %w: the credential of %q was sealed with key %s, which is not configured",
				ErrWrongKey, ErrDecrypt, c.User, c.KeyID)
		}
	}
	value, err := k.vault.SealCanary()
	if err != nil {
		return false, err
	}
	created, err := k.store.CreateSetting(ctx, CanarySetting, value)
	if err != nil {
		return false, fmt.Errorf("credentials: vault key check: %w", err)
	}
	if created {
		k.remember(value, nil)
	}
	return created, nil
}

func (k *KeyCheck) remember(value []byte, result error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.value, k.result = bytes.Clone(value), result
}
