package credentials_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

func key(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b ^ byte(i*7)
	}
	return k
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func alice() identity.Principal {
	return identity.Principal{User: "alice@example.com", JenkinsUser: "alice"}
}

func TestStored_LinkForUnlink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	v, _ := credentials.NewVault(key(1), nil)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	s := credentials.NewStored(st, v, clk.now, nil)

	if _, err := s.For(ctx, alice()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Fatalf("before link: %v", err)
	}
	if ok, _ := s.Linked(ctx, alice()); ok {
		t.Error("linked before link")
	}
	if err := s.Link(ctx, "alice@example.com", "alice", "tok-alice-1"); err != nil {
		t.Fatal(err)
	}
	c, err := s.For(ctx, alice())
	if err != nil || c.User != "alice" || c.APIToken != "tok-alice-1" {
		t.Fatalf("For = %v, %v", c, err)
	}
	// Stored sealed: the row never holds the token.
	rec, _ := st.GetCredential(ctx, "alice@example.com")
	if bytes.Contains(rec.Sealed, []byte("tok-alice")) || rec.KeyID != v.CurrentKeyID() {
		t.Errorf("stored row: %q key %s", rec.Sealed, rec.KeyID)
	}
	// Another principal never gets it, even with the same Jenkins id.
	if _, err := s.For(ctx, identity.Principal{User: "mallory", JenkinsUser: "alice"}); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("mallory got alice's credential: %v", err)
	}
	// If the user now maps to another Jenkins account, the stored one is
	// not used.
	if _, err := s.For(ctx, identity.Principal{User: "alice@example.com", JenkinsUser: "alice2"}); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("credential used for another Jenkins account: %v", err)
	}
	// Unlink elsewhere (another replica: the store directly) takes effect
	// within CacheTTL.
	if err := st.DeleteCredential(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.For(ctx, alice()); err != nil {
		t.Errorf("within the cache TTL the credential may still be used: %v", err)
	}
	clk.add(credentials.CacheTTL + time.Millisecond)
	if _, err := s.For(ctx, alice()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("after CacheTTL an unlinked credential is still used: %v", err)
	}
	if err := s.Unlink(ctx, "alice@example.com"); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("unlink of nothing: %v", err)
	}
	if _, err := s.For(ctx, identity.Guest()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("guest: %v", err)
	}
}

func TestStored_UnlinkIsImmediateOnTheSameReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v, _ := credentials.NewVault(key(1), nil)
	s := credentials.NewStored(openStore(t), v, nil, nil)
	if err := s.Link(ctx, "alice@example.com", "alice", "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.For(ctx, alice()); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlink(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.For(ctx, alice()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("after unlink: %v", err)
	}
}

// Key rotation: credentials sealed with the old key still work, are sealed
// again with the new key on use or by Reseal, and the old key can then go.
func TestStored_KeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	oldV, _ := credentials.NewVault(key(1), nil)
	before := credentials.NewStored(st, oldV, nil, nil)
	for _, u := range []string{"a", "b", "c"} {
		if err := before.Link(ctx, u, u, secret.String("tok-"+u)); err != nil {
			t.Fatal(err)
		}
	}
	rotated, _ := credentials.NewVault(key(2), [][32]byte{key(1)})
	after := credentials.NewStored(st, rotated, nil, nil)
	c, err := after.For(ctx, identity.Principal{User: "a", JenkinsUser: "a"})
	if err != nil || c.APIToken != "tok-a" {
		t.Fatalf("old-key credential after rotation: %v %v", c, err)
	}
	if rec, _ := st.GetCredential(ctx, "a"); rec.KeyID != rotated.CurrentKeyID() {
		t.Error("a credential used after rotation was not sealed again with the new key")
	}
	n, err := after.Reseal(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Reseal = %d, %v; want the 2 remaining", n, err)
	}
	newOnly, _ := credentials.NewVault(key(2), nil)
	final := credentials.NewStored(st, newOnly, nil, nil)
	for _, u := range []string{"a", "b", "c"} {
		if c, err := final.For(ctx, identity.Principal{User: u, JenkinsUser: u}); err != nil || c.APIToken.Reveal() != "tok-"+u {
			t.Errorf("%s without the old key: %v %v", u, c, err)
		}
	}
	// A credential sealed with an unknown key is an error, not "not linked".
	wrong, _ := credentials.NewVault(key(9), nil)
	if _, err := credentials.NewStored(st, wrong, nil, nil).For(ctx, identity.Principal{User: "a", JenkinsUser: "a"}); !errors.Is(err, credentials.ErrDecrypt) {
		t.Errorf("wrong vault key: %v", err)
	}
}

// stdio's source serves only the one local user.
func TestLocal_OnlyTheLocalUser(t *testing.T) {
	t.Parallel()
	l := credentials.Local{Credential: jenkins.Credential{User: "alice", APIToken: "t"}}
	if c, err := l.For(context.Background(), identity.Principal{User: "alice", JenkinsUser: "alice", Local: true}); err != nil || c.APIToken != "t" {
		t.Errorf("local user: %v %v", c, err)
	}
	for _, p := range []identity.Principal{{User: "bob", JenkinsUser: "alice"}, identity.Guest()} {
		if _, err := l.For(context.Background(), p); !errors.Is(err, credentials.ErrNotLinked) {
			t.Errorf("%v got the local credential: %v", p.Name(), err)
		}
	}
}
