package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/catalog"
)

// HealthIn takes nothing.
type HealthIn struct{}

// HealthOut reports whether Butler and Jenkins are up.
type HealthOut struct {
	Status         string `json:"status" jsonschema:"ok when Jenkins answers, degraded when it does not"`
	Jenkins        string `json:"jenkins" jsonschema:"reachable or unreachable"`
	Version        string `json:"version" jsonschema:"Butler's version"`
	JenkinsVersion string `json:"jenkins_version,omitempty" jsonschema:"Jenkins's version, when it reports one"`
}

func addHealth(t *Toolset) (*def, error) {
	return add(t, spec[HealthIn, HealthOut]{
		name: catalog.Health,
		run: func(ctx context.Context, _ *call, _ *HealthIn) (*HealthOut, error) {
			out := &HealthOut{Status: "ok", Jenkins: "reachable", Version: t.deps.Version}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			v, err := t.deps.Jenkins.Ping(ctx)
			if err != nil {
				out.Status, out.Jenkins = "degraded", "unreachable"
			}
			out.JenkinsVersion = v
			return out, nil
		},
	})
}

// TimeIn asks for the time in a zone.
type TimeIn struct {
	Timezone string `json:"timezone,omitempty" jsonschema:"IANA time zone name such as Europe/Paris or America/New_York; default UTC"`
}

// TimeOut is the current time.
type TimeOut struct {
	ISO8601   string `json:"iso8601" jsonschema:"current local time in the zone, ISO 8601 with offset"`
	Unix      int64  `json:"unix" jsonschema:"seconds since 1970-01-01T00:00:00Z"`
	Timezone  string `json:"timezone" jsonschema:"the IANA zone used"`
	UTCOffset string `json:"utc_offset" jsonschema:"offset from UTC now, +HH:MM or -HH:MM"`
}

func addTime(t *Toolset) (*def, error) {
	return add(t, spec[TimeIn, TimeOut]{
		name:  catalog.GetCurrentTimeInfo,
		input: func(s *jsonschema.Schema) { prop(s, "timezone").MaxLength = ptr(64) },
		target: func(in *TimeIn) (target, error) {
			if in.Timezone == "Local" || strings.ContainsAny(in.Timezone, "\\") || strings.Contains(in.Timezone, "..") {
				return target{}, Errorf(CodeInvalidArgument, "timezone %q is not an IANA time zone name", in.Timezone)
			}
			return target{}, nil
		},
		run: func(_ context.Context, _ *call, in *TimeIn) (*TimeOut, error) {
			name := in.Timezone
			if name == "" {
				name = "UTC"
			}
			loc, err := time.LoadLocation(name)
			if err != nil {
				return nil, Errorf(CodeInvalidArgument, "timezone %q is not an IANA time zone name (for example Europe/Paris)", in.Timezone)
			}
			now := t.deps.Now().In(loc)
			_, off := now.Zone()
			sign := '+'
			if off < 0 {
				sign, off = '-', -off
			}
			return &TimeOut{
				ISO8601:   now.Format(time.RFC3339),
				Unix:      now.Unix(),
				Timezone:  name,
				UTCOffset: fmt.Sprintf("%c%02d:%02d", sign, off/3600, off%3600/60),
			}, nil
		},
	})
}

// WhoamiIn takes nothing.
type WhoamiIn struct{}

// WhoamiOut says who Butler acts for.
type WhoamiOut struct {
	User          string   `json:"user" jsonschema:"your user id at the identity provider"`
	JenkinsUser   string   `json:"jenkins_user" jsonschema:"the Jenkins account Butler acts as for you"`
	Groups        []string `json:"groups" jsonschema:"your groups from the identity provider"`
	Scopes        []string `json:"scopes" jsonschema:"OAuth scopes of your token"`
	ClientID      string   `json:"client_id" jsonschema:"the OAuth client you connected with"`
	JenkinsLinked bool     `json:"jenkins_linked" jsonschema:"whether Butler holds a Jenkins credential for you"`
}

func addWhoami(t *Toolset) (*def, error) {
	return add(t, spec[WhoamiIn, WhoamiOut]{
		name: catalog.Whoami,
		run: func(ctx context.Context, c *call, _ *WhoamiIn) (*WhoamiOut, error) {
			p := c.principal
			linked, err := t.deps.Credentials.Linked(ctx, p)
			if err != nil {
				return nil, err
			}
			return &WhoamiOut{
				User: p.User, JenkinsUser: p.JenkinsUser, ClientID: p.ClientID, JenkinsLinked: linked,
				Groups: nonNil(p.Groups), Scopes: nonNil(p.Scopes),
			}, nil
		},
	})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func ptr[T any](v T) *T { return &v }
