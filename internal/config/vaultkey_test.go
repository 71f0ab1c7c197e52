package config

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/secret"
)

// A vault key must look like 32 random bytes: check-config refuses keys
// that are one byte value repeated (the all-zero key of an example or a
// test), or that use fewer than 16 distinct byte values (text, hex digits,
// a short pattern), in store.vault_key and in store.vault_old_keys.
func TestValidate_VaultKeyMustLookRandom(t *testing.T) {
	t.Parallel()
	random := make([]byte, 32)
	rand.Read(random)
	pattern := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 4)
	fifteen := make([]byte, 32)
	for i := range fifteen {
		fifteen[i] = byte(i % 15)
	}
	sixteen := make([]byte, 32)
	for i := range sixteen {
		sixteen[i] = byte(i % 16)
	}
	for _, tc := range []struct {
		name string
		key  string
		want string // "" = accepted
	}{
		{"all zero", strings.Repeat("A", 43) + "=", "all 32 bytes are 0x00"},
		{"all 0xff", encodeStd(bytes.Repeat([]byte{0xff}, 32)), "all 32 bytes are 0xff"},
		{"eight byte values", encodeStd(pattern), "only 8 distinct byte values"},
		{"fifteen byte values", encodeStd(fifteen), "only 15 distinct byte values"},
		{"hex text", encodeStd([]byte("deadbeefcafe0123deadbeefcafe0123")), "only 10 distinct byte values"},
		{"sixteen byte values", encodeStd(sixteen), ""},
		{"the test key", testVaultKey, ""},
		{"random", encodeStd(random), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, mode := range []Mode{ModeServe, ModeCheck, ModeLink, ModeAdmin} {
				for _, field := range []string{"store.vault_key", "store.vault_old_keys[0]"} {
					c := validBase(t)
					if field == "store.vault_key" {
						c.Store.VaultKey = secret.String(tc.key)
					} else {
						c.Store.VaultOldKeys = []secret.String{secret.String(tc.key)}
					}
					err := c.ValidateWith(mode, fakeFiles(t))
					if tc.want == "" {
						if err != nil {
							t.Errorf("%s %s: ValidateWith = %v, want nil", mode, field, err)
						}
						continue
					}
					ps := problemsOf(t, err)
					if diff := cmp.Diff([]string{field}, fields(ps)); diff != "" {
						t.Fatalf("%s %s: problem fields (-want +got):\n%s\n%v", mode, field, diff, err)
					}
					msg := ps[0].Message
					for _, want := range []string{tc.want, "not a random key", "openssl rand -base64 32"} {
						if !strings.Contains(msg, want) {
							t.Errorf("%s %s: message %q does not say %q", mode, field, msg, want)
						}
					}
					if strings.Contains(msg, tc.key) {
						t.Errorf("the message %q shows the key", msg)
					}
				}
			}
		})
	}
}
