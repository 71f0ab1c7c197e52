package jenkins_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/secret"
)

// A bearer token the jwt-auth-filter plugin refuses runs as anonymous:
// Jenkins answers 403 with X-You-Are-Authenticated-As: anonymous, its login
// redirect, or anonymous's view (a 404 for an item anonymous cannot see).
// Each is the credential's rejection, never a missing permission or item.
func TestRefusedBearerToken_IsUnauthorized(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Sample(&jenkinstest.Options{BearerAuth: func(tok string) (string, bool) { return "alice", tok == "good" }})
	c := serve(t, sim, "", nil)
	ctx := context.Background()
	bad := jenkins.Credential{User: "alice", Bearer: secret.String("expired")}
	good := jenkins.Credential{User: "alice", Bearer: secret.String("good")}

	check := func(what string, err error) {
		t.Helper()
		var je *jenkins.Error
		if !errors.Is(err, jenkins.ErrUnauthorized) || !errors.As(err, &je) || !je.Anonymous || je.RequiredPermission != "" {
			t.Errorf("%s: %v, want ErrUnauthorized (ran as anonymous)", what, err)
		}
		if err != nil && strings.Contains(err.Error(), "<") {
			t.Errorf("%s: error carries markup: %v", what, err)
		}
	}
	// Anonymous has nothing: every answer is the login redirect.
	_, err := c.GetJob(ctx, bad, mustPath(t, "frontend/web-app"))
	check("get job, anonymous without Overall/Read", err)
	_, err = c.Me(ctx, bad)
	check("me", err)
	if _, err := c.GetJob(ctx, good, mustPath(t, "frontend/web-app")); err != nil {
		t.Fatalf("the good token: %v", err)
	}

	// Anonymous may read frontend: its view of backend is a 404, of a
	// trigger a 403 naming anonymous.
	sim.Grant(jenkinstest.Anonymous, "", jenkinstest.PermOverallRead)
	sim.Grant(jenkinstest.Anonymous, "frontend", jenkinstest.PermRead)
	_, err = c.GetJob(ctx, bad, mustPath(t, "backend/api"))
	check("get job hidden from anonymous", err)
	_, err = c.Trigger(ctx, bad, mustPath(t, "frontend/web-app"), false, nil)
	check("trigger as anonymous", err)
	_, err = c.Me(ctx, bad)
	check("me with anonymous read", err)

	// An API token is never confused with anonymous: a missing item is
	// still ErrNotFound with a good token.
	_, err = c.GetJob(ctx, good, mustPath(t, "backend/nothing"))
	if !errors.Is(err, jenkins.ErrNotFound) {
		t.Errorf("missing job with a good bearer token: %v", err)
	}
}

// Item.Discover without Item.Read is a 403 without X-Required-Permission
// in Jenkins; the client reports it exactly like a missing item, for jobs,
// builds, logs and queue items.
func TestDiscoverOnly_IsNotFound(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Sample(nil)
	sim.AddUser("dora", "Dora", "dora-token")
	sim.Grant("dora", "backend", jenkinstest.PermDiscover)
	c := serve(t, sim, "", nil)
	ctx := context.Background()
	dora := jenkins.Credential{User: "dora", APIToken: "dora-token"}
	id, err := c.Trigger(ctx, admin, mustPath(t, "backend/api"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, hidden := c.GetJob(ctx, dora, mustPath(t, "backend/api"))
	_, missing := c.GetJob(ctx, dora, mustPath(t, "frontend/nothing"))
	if !errors.Is(hidden, jenkins.ErrNotFound) || !errors.Is(missing, jenkins.ErrNotFound) {
		t.Fatalf("discover-only: %v; missing: %v", hidden, missing)
	}
	if strings.Replace(hidden.Error(), "backend/api", "X", 1) != strings.Replace(missing.Error(), "frontend/nothing", "X", 1) {
		t.Errorf("discover-only and missing differ:\n%v\n%v", hidden, missing)
	}
	if _, err := c.GetBuild(ctx, dora, mustPath(t, "backend/api"), 3); !errors.Is(err, jenkins.ErrNotFound) {
		t.Errorf("build: %v", err)
	}
	if _, err := c.QueueItem(ctx, dora, id); !errors.Is(err, jenkins.ErrNotFound) {
		t.Errorf("queue item: %v", err)
	}
	if _, err := c.Trigger(ctx, dora, mustPath(t, "backend/api"), true, nil); !errors.Is(err, jenkins.ErrNotFound) {
		t.Errorf("trigger: %v", err)
	}
	// Overall/Read missing is a 403 that names the permission: it stays
	// forbidden, not hidden.
	strict := jenkinstest.Sample(&jenkinstest.Options{NoImplicitOverallRead: true})
	sc := serve(t, strict, "", nil)
	_, err = sc.GetJob(ctx, jenkins.Credential{User: "alice", APIToken: "alice-token"}, mustPath(t, "frontend/web-app"))
	var je *jenkins.Error
	if !errors.Is(err, jenkins.ErrForbidden) || !errors.As(err, &je) || je.RequiredPermission != "hudson.model.Hudson.Read" {
		t.Errorf("without Overall/Read: %v", err)
	}
}

// No HTML page reaches an error message, whatever its Content-Type.
func TestErrors_NeverCarryHTML(t *testing.T) {
	t.Parallel()
	page := "<html><head><title>Error</title></head><body><h2>HTTP ERROR 409 frontend/legacy-site is not buildable</h2></body></html>"
	for _, ct := range []string{"text/html;charset=utf-8", "text/plain;charset=utf-8", ""} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, page)
		}))
		c, err := jenkins.New(hs.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Trigger(context.Background(), admin, mustPath(t, "frontend/legacy-site"), false, nil)
		hs.Close()
		if !errors.Is(err, jenkins.ErrConflict) || strings.Contains(err.Error(), "<") || strings.Contains(err.Error(), "HTTP ERROR") {
			t.Errorf("Content-Type %q: %v", ct, err)
		}
	}
}
