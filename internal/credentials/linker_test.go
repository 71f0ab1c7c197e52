package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// Tokens of the fake Jenkins. They are long and distinctive so that a
// leak into a message is easy to spot.
const (
	aliceToken   secret.String = "11aa22bb33cc44dd55ee66ff77aa88bb-alice"
	aliceToken2  secret.String = "99ff88ee77dd66cc55bb44aa33ff22ee-alice"
	malloryToken secret.String = "0badc0de0badc0de0badc0de0badc0de-mallory"
	revokedToken secret.String = "deadbeefdeadbeefdeadbeefdeadbeef-revoked"
)

const (
	aliceUser    = "alice@example.com"
	aliceJenkins = "alice"
)

// fakeJenkins answers /me/api/json: the user a token belongs to, or
// ErrUnauthorized for a token it does not know. With down set it cannot be
// reached at all.
type fakeJenkins struct {
	users map[secret.String]jenkins.User
	down  error

	mu    sync.Mutex
	calls []jenkins.Credential
}

func newFakeJenkins() *fakeJenkins {
	return &fakeJenkins{users: map[secret.String]jenkins.User{
		aliceToken:   {ID: aliceJenkins, FullName: "Alice Example"},
		aliceToken2:  {ID: aliceJenkins, FullName: "Alice Example"},
		malloryToken: {ID: "mallory", FullName: "Mallory"},
	}}
}

func (f *fakeJenkins) Me(_ context.Context, cred jenkins.Credential) (*jenkins.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, cred)
	if f.down != nil {
		return nil, f.down
	}
	u, ok := f.users[cred.APIToken]
	if !ok {
		return nil, &jenkins.Error{Op: "get /me", Status: 401, Err: jenkins.ErrUnauthorized}
	}
	return &u, nil
}

func (f *fakeJenkins) asked() []jenkins.Credential {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jenkins.Credential(nil), f.calls...)
}

// mapLocalPart maps "alice@example.com" to "alice" (a user_template of
// "{{ local }}").
func mapLocalPart(user string) (string, error) {
	local, _, ok := strings.Cut(user, "@")
	if !ok {
		return "", fmt.Errorf("user %q has no @", user)
	}
	return local, nil
}

type linkerFixture struct {
	st      store.Store
	stored  *credentials.Stored
	jenkins *fakeJenkins
	linker  *credentials.Linker
}

func newLinkerFixture(t *testing.T, mapUser func(string) (string, error)) *linkerFixture {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var k [32]byte
	for i := range k {
		k[i] = byte(0x5a ^ i*13)
	}
	v, err := credentials.NewVault(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := credentials.NewStored(st, v, nil, nil)
	j := newFakeJenkins()
	if mapUser == nil {
		mapUser = mapLocalPart
	}
	return &linkerFixture{st: st, stored: stored, jenkins: j, linker: credentials.NewLinker(j, stored, mapUser)}
}

func alicePrincipal() identity.Principal {
	return identity.Principal{User: aliceUser, JenkinsUser: aliceJenkins}
}

// assertNothingStored checks that the store holds no credential for user.
func (f *linkerFixture) assertNothingStored(t *testing.T, user string) {
	t.Helper()
	if c, err := f.st.GetCredential(context.Background(), user); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCredential(%q) = %+v, %v; want store.ErrNotFound", user, c, err)
	}
}

// assertNoToken checks that err's message holds none of the tokens.
func assertNoToken(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, tok := range []secret.String{aliceToken, aliceToken2, malloryToken, revokedToken} {
		if strings.Contains(err.Error(), tok.Reveal()) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), tok.Reveal()) {
			t.Errorf("error %q holds a token", err)
		}
	}
}

func TestLinker_StoresATokenOfTheMappedAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLinkerFixture(t, nil)

	me, err := f.linker.Link(ctx, aliceUser, aliceToken)
	if err != nil {
		t.Fatalf("Link = %v", err)
	}
	if diff := cmp.Diff(&jenkins.User{ID: aliceJenkins, FullName: "Alice Example"}, me); diff != "" {
		t.Errorf("Link's user (-want +got):\n%s", diff)
	}
	// Jenkins was asked once, as the mapped account, with the token.
	if diff := cmp.Diff([]jenkins.Credential{{User: aliceJenkins, APIToken: aliceToken}}, f.jenkins.asked()); diff != "" {
		t.Errorf("Jenkins asked (-want +got):\n%s", diff)
	}
	got, err := f.stored.For(ctx, alicePrincipal())
	if err != nil {
		t.Fatalf("For = %v", err)
	}
	if diff := cmp.Diff(jenkins.Credential{User: aliceJenkins, APIToken: aliceToken}, got); diff != "" {
		t.Errorf("stored credential (-want +got):\n%s", diff)
	}
	rec, err := f.st.GetCredential(ctx, aliceUser)
	if err != nil {
		t.Fatalf("GetCredential = %v", err)
	}
	if rec.JenkinsUser != aliceJenkins {
		t.Errorf("stored JenkinsUser = %q, want %q", rec.JenkinsUser, aliceJenkins)
	}
	if strings.Contains(string(rec.Sealed), aliceToken.Reveal()) {
		t.Error("the stored row holds the token in the clear")
	}
}

func TestLinker_StoresNothingWhenLinkIsRefused(t *testing.T) {
	t.Parallel()
	errDown := errors.New("dial tcp 192.0.2.10:8080: connect: connection refused")
	tests := []struct {
		name    string
		user    string
		token   secret.String
		mapUser func(string) (string, error)
		down    error
		// wantIs is what the error must wrap.
		wantIs error
		// wantMsg are substrings of the message.
		wantMsg []string
		// wantAsked is how many times Jenkins is asked.
		wantAsked int
	}{
		{
			name: "token rejected", user: aliceUser, token: revokedToken,
			wantIs: credentials.ErrTokenRejected, wantMsg: []string{"HTTP 401", `"alice"`}, wantAsked: 1,
		},
		{
			name: "token of another account", user: aliceUser, token: malloryToken,
			wantIs: credentials.ErrWrongAccount, wantMsg: []string{"refusing to link someone else's account", `"mallory"`, `"alice"`}, wantAsked: 1,
		},
		{
			name: "Jenkins unreachable", user: aliceUser, token: aliceToken, down: errDown,
			wantIs: errDown, wantMsg: []string{"verifying the token with Jenkins", "connection refused"}, wantAsked: 1,
		},
		{
			name: "Jenkins unavailable", user: aliceUser, token: aliceToken,
			down:   &jenkins.Error{Op: "get /me", Status: 503, Err: jenkins.ErrUnavailable},
			wantIs: jenkins.ErrUnavailable, wantMsg: []string{"verifying the token with Jenkins"}, wantAsked: 1,
		},
		{
			name: "mapper fails", user: aliceUser, token: aliceToken,
			mapUser: func(string) (string, error) { return "", errors.New("user_template: no claim local") },
			wantIs:  credentials.ErrNoAccount, wantMsg: []string{"no claim local"}, wantAsked: 0,
		},
		{
			name: "mapper gives no account", user: aliceUser, token: aliceToken,
			mapUser: func(string) (string, error) { return "", nil },
			wantIs:  credentials.ErrNoAccount, wantAsked: 0,
		},
		{
			name: "mapper fails for this user", user: "no-at-sign", token: aliceToken,
			wantIs: credentials.ErrNoAccount, wantAsked: 0,
		},
		{
			name: "no user", user: "", token: aliceToken, wantAsked: 0,
		},
		{
			name: "no token", user: aliceUser, token: "", wantAsked: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLinkerFixture(t, tt.mapUser)
			f.jenkins.down = tt.down
			me, err := f.linker.Link(context.Background(), tt.user, tt.token)
			if err == nil {
				t.Fatalf("Link = %+v, nil; want an error", me)
			}
			if me != nil {
				t.Errorf("Link returned user %+v with an error", me)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Link = %v, want it to wrap %v", err, tt.wantIs)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Link = %q, want it to mention %q", err, s)
				}
			}
			if got := len(f.jenkins.asked()); got != tt.wantAsked {
				t.Errorf("Jenkins asked %d times, want %d", got, tt.wantAsked)
			}
			assertNoToken(t, err)
			f.assertNothingStored(t, tt.user)
			f.assertNothingStored(t, aliceUser)
			if _, err := f.stored.For(context.Background(), alicePrincipal()); !errors.Is(err, credentials.ErrNotLinked) {
				t.Errorf("For after a refused link = %v, want ErrNotLinked", err)
			}
		})
	}
}

func TestLinker_LinkErrorNamesTheAccounts(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, nil)
	_, err := f.linker.Link(context.Background(), aliceUser, malloryToken)
	var le *credentials.LinkError
	if !errors.As(err, &le) {
		t.Fatalf("Link = %v, want a *LinkError", err)
	}
	if le.JenkinsUser != aliceJenkins || le.Actual != "mallory" {
		t.Errorf("LinkError JenkinsUser, Actual = %q, %q; want %q, %q", le.JenkinsUser, le.Actual, aliceJenkins, "mallory")
	}
	if errors.Is(err, credentials.ErrTokenRejected) || errors.Is(err, credentials.ErrNoAccount) {
		t.Errorf("a wrong-account error wraps another kind too: %v", err)
	}
}

func TestLinker_NoAccountMessageDoesNotPrintNil(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, func(string) (string, error) { return "", nil })
	_, err := f.linker.Link(context.Background(), aliceUser, aliceToken)
	if !errors.Is(err, credentials.ErrNoAccount) {
		t.Fatalf("Link = %v, want ErrNoAccount", err)
	}
	if strings.Contains(err.Error(), "<nil>") || strings.Contains(err.Error(), "%!") {
		t.Errorf("Link = %q: the message prints a nil error", err)
	}
}

func TestLinker_RelinkReplacesTheToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLinkerFixture(t, nil)
	if _, err := f.linker.Link(ctx, aliceUser, aliceToken); err != nil {
		t.Fatal(err)
	}
	// Warm Stored's cache with the first token: a re-link must not be
	// hidden by it.
	if c, err := f.stored.For(ctx, alicePrincipal()); err != nil || c.APIToken != aliceToken {
		t.Fatalf("For = %v, %v", c, err)
	}
	if _, err := f.linker.Link(ctx, aliceUser, aliceToken2); err != nil {
		t.Fatalf("re-link = %v", err)
	}
	c, err := f.stored.For(ctx, alicePrincipal())
	if err != nil {
		t.Fatal(err)
	}
	if c.APIToken != aliceToken2 {
		t.Error("after a re-link For returns the old token, want the new one")
	}
	all, err := f.st.ListCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("store holds %d credentials after a re-link, want 1", len(all))
	}
}

func TestLinker_RefusedRelinkKeepsTheLinkedToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		token secret.String
		want  error
	}{
		{"rejected", revokedToken, credentials.ErrTokenRejected},
		{"another account", malloryToken, credentials.ErrWrongAccount},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLinkerFixture(t, nil)
			if _, err := f.linker.Link(ctx, aliceUser, aliceToken); err != nil {
				t.Fatal(err)
			}
			if _, err := f.linker.Link(ctx, aliceUser, tt.token); !errors.Is(err, tt.want) {
				t.Fatalf("re-link = %v, want %v", err, tt.want)
			}
			c, err := f.stored.For(ctx, alicePrincipal())
			if err != nil {
				t.Fatalf("For after a refused re-link = %v", err)
			}
			if c.APIToken != aliceToken {
				t.Error("a refused re-link changed the stored token")
			}
		})
	}
}

func TestLinker_UnlinkRemovesTheToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newLinkerFixture(t, nil)
	if _, err := f.linker.Link(ctx, aliceUser, aliceToken); err != nil {
		t.Fatal(err)
	}
	if _, err := f.stored.For(ctx, alicePrincipal()); err != nil {
		t.Fatal(err)
	}
	if err := f.linker.Unlink(ctx, aliceUser); err != nil {
		t.Fatalf("Unlink = %v", err)
	}
	if _, err := f.stored.For(ctx, alicePrincipal()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("For after Unlink = %v, want ErrNotLinked", err)
	}
	f.assertNothingStored(t, aliceUser)
	err := f.linker.Unlink(ctx, aliceUser)
	if !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("second Unlink = %v, want ErrNotLinked", err)
	}
	assertNoToken(t, err)
}

func TestLinker_JenkinsUserFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mapUser func(string) (string, error)
		want    string
		wantErr error
	}{
		{"maps", mapLocalPart, aliceJenkins, nil},
		{"mapper error", func(string) (string, error) { return "", errors.New("template failed") }, "", credentials.ErrNoAccount},
		{"empty account", func(string) (string, error) { return "", nil }, "", credentials.ErrNoAccount},
		{"account with an error", func(string) (string, error) { return "alice", errors.New("template failed") }, "", credentials.ErrNoAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLinkerFixture(t, tt.mapUser)
			got, err := f.linker.JenkinsUserFor(aliceUser)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("JenkinsUserFor = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if len(f.jenkins.asked()) != 0 {
				t.Error("JenkinsUserFor asked Jenkins")
			}
		})
	}
}

// Jenkins's default id strategy is case-insensitive: a user who maps to
// "Alice" and whose token /me reports as "alice" is that account, and
// linking works, with the simulator (which authenticates "ALICE" as alice)
// as with a fake.
func TestLinker_UserIDsCompareCaseInsensitively(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, func(string) (string, error) { return "Alice", nil })
	me, err := f.linker.Link(context.Background(), aliceUser, aliceToken)
	if err != nil || me.ID != aliceJenkins {
		t.Fatalf("Link with the mapped id differing in case: %v, %v", me, err)
	}
	// The stored account is the mapped spelling, so the principal that
	// maps to it finds its credential.
	if c, err := f.stored.For(context.Background(), identity.Principal{User: aliceUser, JenkinsUser: "Alice"}); err != nil || c.User != "Alice" {
		t.Errorf("For after a case-insensitive link: %v, %v", c, err)
	}
	// Another account is still another account.
	if _, err := f.linker.Link(context.Background(), aliceUser, malloryToken); !errors.Is(err, credentials.ErrWrongAccount) {
		t.Errorf("mallory's token: %v", err)
	}

	sim := jenkinstest.Sample(nil)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	jc, err := jenkins.New(hs.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	real := credentials.NewLinker(jc, f.stored, func(string) (string, error) { return "ALICE", nil })
	if me, err := real.Link(context.Background(), "someone", secret.String(jenkinstest.SampleAliceToken)); err != nil || me.ID != "alice" {
		t.Errorf("Link against the simulator as ALICE: %v, %v", me, err)
	}
}
