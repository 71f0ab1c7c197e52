package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/butler-mcp/butler/internal/app"
	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// loadConfig loads and validates the config for one command. For stdio,
// JENKINS_USER and JENKINS_API_TOKEN fill in the local user's credential.
func loadConfig(e *env, path string, mode config.Mode) (*config.Config, error) {
	if path == "" {
		return nil, usagef("--config is required")
	}
	cfg, err := config.Load(path, e.getenv)
	if err != nil {
		return nil, err
	}
	if mode == config.ModeStdio {
		cfg.ApplyStdioEnv(e.getenv)
	}
	if err := cfg.Validate(mode); err != nil {
		return nil, err
	}
	return cfg, nil
}

// runLink provisions a user's Jenkins API token: it reads the token from
// stdin, checks with Jenkins (/me/api/json) that it belongs to the Jenkins
// account the user maps to, and stores it sealed (credentials.Linker, the
// same use case the linking page runs).
func runLink(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "link", "--config FILE --user ID [--jenkins-user JID] < token")
	path := fs.String("config", "", "config file (`FILE`)")
	user := fs.String("user", "", "the user id, as the token's user claim names it")
	jenkinsUser := fs.String("jenkins-user", "", "the Jenkins user id the token must belong to (default: jenkins.user_template applied to --user; if given, it must agree)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" {
		return usagef("--user is required")
	}
	cfg, err := loadConfig(e, *path, config.ModeLink)
	if err != nil {
		return err
	}
	logger := app.NewLogger(e.stderr, cfg.Log)
	linker, closeStore, err := app.OpenLinker(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	mapped, err := linker.JenkinsUserFor(*user)
	if err != nil {
		return fmt.Errorf("jenkins.user_template: %w", err)
	}
	if *jenkinsUser != "" && *jenkinsUser != mapped {
		return fmt.Errorf("--jenkins-user %q is not the account %q maps to (%q, by jenkins.user_template): Butler would never use it for %q", *jenkinsUser, *user, mapped, *user)
	}
	token, err := readToken(e.stdin)
	if err != nil {
		return err
	}
	me, err := linker.Link(ctx, *user, token)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "linked %s to Jenkins user %s (%s)\n", *user, me.ID, me.FullName)
	return nil
}

// readToken reads the first line of r: the API token, never a flag (flags
// end up in shell history and process lists).
func readToken(r io.Reader) (secret.String, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the token from stdin: %w", err)
	}
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", usagef("no API token on stdin (e.g. butler link ... < token.txt)")
	}
	return secret.String(tok), nil
}

func runUnlink(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "unlink", "--config FILE --user ID")
	path := fs.String("config", "", "config file (`FILE`)")
	user := fs.String("user", "", "the user whose stored credential to remove")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *user == "" {
		return usagef("--user is required")
	}
	cfg, err := loadConfig(e, *path, config.ModeAdmin)
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteCredential(ctx, *user); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no Jenkins credential is stored for %q", *user)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "unlinked %s (running servers stop using the credential within %s)\n", *user, credentials.CacheTTL)
	return nil
}

// auditJSON is one record as `butler audit --json` prints it.
type auditJSON struct {
	Time string `json:"time"`
	audit.Record
}

func runAudit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "audit", "--config FILE [--user ID] [--tool T] [--decision allow|deny|error] [--since DURATION] [--limit N] [--json]")
	path := fs.String("config", "", "config file (`FILE`)")
	user := fs.String("user", "", "only this user's records")
	tool := fs.String("tool", "", "only calls of this tool")
	decision := fs.String("decision", "", "only allow, deny or error")
	since := fs.Duration("since", 0, "only records newer than this (e.g. 1h, 30m)")
	limit := fs.Int("limit", 100, "at most this many records (newest first)")
	asJSON := fs.Bool("json", false, "print JSON lines, one record each")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *decision {
	case "", audit.Allow, audit.Deny, audit.Error:
	default:
		return usagef("--decision must be allow, deny or error")
	}
	if *limit <= 0 || *limit > 10000 {
		return usagef("--limit must be between 1 and 10000")
	}
	if *since < 0 {
		return usagef("--since must be positive")
	}
	cfg, err := loadConfig(e, *path, config.ModeAdmin)
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	q := store.AuditQuery{User: *user, Tool: *tool, Decision: *decision, Limit: *limit}
	if *since > 0 {
		q.Since = time.Now().Add(-*since)
	}
	recs, err := st.QueryAudit(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, rec := range recs {
			if err := enc.Encode(auditJSON{Time: rec.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Record: rec}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tDECISION\tUSER\tTOOL\tRESOURCE\tCODE\tREASON")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339),
			cell(r.Decision), cell(r.User), cell(r.Tool), cell(r.Resource), cell(r.Code), cell(r.Reason))
	}
	return tw.Flush()
}

// cell is a field of the audit table with every control or format
// character (a newline, a tab, a terminal escape, a bidi override) escaped, so that a value a client
// chose can neither forge a row nor drive the terminal.
func cell(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

const policyUsage = "explain --config FILE --user ID [--group G]... [--scope S]... --tool T [--job PATH]"

// runPolicy dispatches `butler policy <subcommand>`.
func runPolicy(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintf(e.stdout, "Usage: butler policy %s\n(run 'butler policy explain -h' for its flags)\n", policyUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "explain" {
		return usagef("usage: butler policy %s", policyUsage)
	}
	fs := newFlags(e, "policy explain", "--config FILE --user ID [--group G]... [--scope S]... --tool T [--job PATH]")
	path := fs.String("config", "", "config file (`FILE`)")
	user := fs.String("user", "", "the user id (\"\" with --guest)")
	guest := fs.Bool("guest", false, "explain for a guest (no token)")
	tool := fs.String("tool", "", "the tool")
	job := fs.String("job", "", "the job (or, for list_all_jobs, folder) path")
	var groups, scopes stringList
	fs.Var(&groups, "group", "a group of the user (repeatable)")
	fs.Var(&scopes, "scope", "a scope of the token (repeatable); with none, scopes are not checked")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if (*user == "") == !*guest || *tool == "" {
		return usagef("--tool and exactly one of --user or --guest are required")
	}
	cfg, err := loadConfig(e, *path, config.ModePolicy)
	if err != nil {
		return err
	}
	az, err := app.NewAuthorizer(cfg)
	if err != nil {
		return err
	}
	if !catalog.Known(*tool) {
		return usagef("unknown tool %s; the tools are %s", catalog.Quote(*tool), strings.Join(catalog.Names(), ", "))
	}
	p := identity.Principal{User: *user, Groups: groups, Scopes: scopes, Local: len(scopes) == 0}
	if *guest {
		p = identity.Guest()
	} else if mapped, err := cfg.JenkinsUserFor(*user); err == nil {
		p.JenkinsUser = mapped
	}
	ex := az.Explain(ctx, authz.Request{Principal: p, Tool: *tool, Job: *job})
	fmt.Fprint(e.stdout, authz.FormatExplanation(ex))
	if len(scopes) == 0 && !*guest {
		fmt.Fprintln(e.stdout, "(no --scope given: OAuth scopes were not checked)")
	}
	if !ex.Decision.Allow {
		return exitError{exitDenied}
	}
	return nil
}
