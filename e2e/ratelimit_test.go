package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestServe_RateLimitSharedThroughRedis: two replicas with limits.redis_url
// share each user's budget.
func TestServe_RateLimitSharedThroughRedis(t *testing.T) {
	t.Parallel()
	redisURL := os.Getenv("BUTLER_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("set BUTLER_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the shared rate-limit test")
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("BUTLER_TEST_REDIS_URL is set but Redis is unreachable: %v", err)
	}
	// A fresh budget for alice, whatever an earlier run left.
	sum := sha256.Sum256([]byte("user:alice"))
	rc.Del(context.Background(), "butler:rl:"+hex.EncodeToString(sum[:]))

	addr1, addr2 := freeAddr(t), freeAddr(t)
	a := newAuthzEnv(t, addr1, "", "limits:\n  per_user_rps: 0.1\n  burst: 3\n  redis_url: "+redisURL+"\n")
	cfg := strings.Replace(mustRead(t, a.cfgPath), "server:\n", "server:\n  stateless: true\n", 1)
	r1 := startServe(t, addr1, cfg)
	r2 := startServe(t, addr2, strings.Replace(cfg, "  listen: "+addr1, "  listen: "+addr2, 1))
	tok := a.token(t, "alice")
	c1, err := connectHTTP(t, r1.url, tok)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := connectHTTP(t, r2.url, tok)
	if err != nil {
		t.Fatal(err)
	}
	var allowed, limited int
	for i := range 6 {
		cs := c1
		if i%2 == 1 {
			cs = c2
		}
		r := callTool(t, cs, "get_current_time_info", nil)
		switch {
		case !r.isError:
			allowed++
		case strings.HasPrefix(r.text, "rate_limited: "):
			limited++
			if e := r.out["error"].(map[string]any); e["status"] != float64(429) || e["retry_after_seconds"].(float64) < 1 {
				t.Errorf("rate_limited error: %v", e)
			}
		default:
			t.Errorf("call %d: %s", i, r.text)
		}
	}
	if allowed != 3 || limited != 3 {
		t.Errorf("across two replicas: %d allowed, %d limited; want the shared burst of 3", allowed, limited)
	}
}
