// Command butler is an MCP server that lets AI agents work with Jenkins on
// behalf of real people, with each person's own Jenkins permissions.
//
// This package holds only flag parsing and wiring; everything else lives in
// internal/ (internal/app builds the components). See docs/ for the
// commands. Built with the nodemo tag (go build -tags nodemo), the binary
// leaves out the demo and everything only the demo needs: the Jenkins
// simulator and the development identity provider.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	_ "time/tzdata" // get_current_time_info must know every IANA zone, even on minimal hosts
)

// Exit codes (docs/operations.md, "Commands").
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitDenied  = 3 // policy explain: the request would be denied
)

// usageError marks an error in how butler was invoked.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitError carries a specific exit code without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// env is what a command gets from the process, so tests can run commands
// in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return append(demoCommands(), []command{
		{"serve", "run the production server (Streamable HTTP)", runServe},
		{"stdio", "serve MCP over stdin/stdout for one local user", runStdio},
		{"link", "store a user's Jenkins API token (read from stdin) after checking it with Jenkins", runLink},
		{"unlink", "remove a user's stored Jenkins credential", runUnlink},
		{"audit", "print audit records, newest first", runAudit},
		{"check-config", "validate a config file and its policy", runCheckConfig},
		{"policy", "policy explain: evaluate the policy for a request and say why", runPolicy},
		{"version", "print the version", runVersion},
	}...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv}
	os.Exit(run(ctx, e, os.Args[1:]))
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	if isHelp(args[0]) || args[0] == "help" {
		printUsage(e.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue usageError
		var ee exitError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ee):
			return ee.code
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "butler %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "butler %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(e.stderr, "butler: unknown command %q (run 'butler help')\n", args[0])
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: butler <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'butler <command> -h' for a command's flags.")
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// flags is a command's flag set: -h prints the usage to stdout and exits
// 0; a flag error is one line on stderr and exit 2.
type flags struct {
	*flag.FlagSet
	e     *env
	name  string
	usage string
}

// newFlags returns the flag set of `butler name`; usage is its synopsis.
func newFlags(e *env, name, usage string) *flags {
	fs := flag.NewFlagSet("butler "+name, flag.ContinueOnError)
	// The flag package would print its error and the whole usage to the
	// output; errors are reported by run instead, in one line.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, e: e, name: name, usage: usage}
}

// printUsage writes the synopsis and the flags to stdout.
func (f *flags) printUsage() {
	fmt.Fprintf(f.e.stdout, "Usage: butler %s %s\n", f.name, f.usage)
	f.SetOutput(f.e.stdout)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.printUsage()
			return err
		}
		return usagef("%v (run 'butler %s -h' for its flags)", err, fs.name)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
