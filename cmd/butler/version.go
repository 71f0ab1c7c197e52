package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version, commit and date are set at build time (GoReleaser does, see
// .goreleaser.yaml):
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// Without them, version and commit come from the module's build info when
// it has them (go install, or a build with VCS stamping).
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo returns the version, the VCS commit, the build date and the Go
// version.
func buildInfo() (ver, rev, built, goVersion string) {
	ver, rev, built, goVersion = version, commit, date, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
		if rev == "" {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value + rev
				case "vcs.modified":
					if s.Value == "true" {
						rev += "+dirty"
					}
				case "vcs.time":
					if built == "" {
						built = s.Value
					}
				}
			}
		}
	}
	if rev == "" || rev == "+dirty" {
		rev = "unknown"
	}
	if built == "" {
		built = "unknown"
	}
	return ver, rev, built, goVersion
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ver, rev, built, gov := buildInfo()
	fmt.Fprintf(e.stdout, "butler %s\ncommit %s\ndate %s\ngo %s\n", ver, rev, built, gov)
	return nil
}

// buildCommit is the commit buildInfo reports, for butler_build_info.
func buildCommit() string {
	_, rev, _, _ := buildInfo()
	return rev
}
