package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/secret"
)

func TestToken_NeverPrints(t *testing.T) {
	t.Parallel()
	p := Principal{User: "alice", AccessToken: secret.String("eyJ.secret.sig")}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "principal", p, "token", p.AccessToken)
	js, _ := json.Marshal(p)
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %q %x", p, p, p, p.AccessToken, p.AccessToken, p.AccessToken), string(js), logged.String()} {
		if strings.Contains(s, "secret") {
			t.Errorf("token printed: %s", s)
		}
	}
	if p.AccessToken.Reveal() != "eyJ.secret.sig" {
		t.Error("Reveal lost the token")
	}
}
