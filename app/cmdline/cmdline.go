// Package cmdline is what the three binaries share: the --config-file flag, the
// logger, and how an error becomes an exit status.
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"mixmatch/app/config"
	"mixmatch/app/store"
	"mixmatch/app/version"
)

// Exit statuses. 2 is what flag parsing and a bad configuration give, so that a
// supervisor can tell "fix the file" from "something was down".
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// UsageError is a mistake on the command line.
type UsageError struct{ Message string }

func (e *UsageError) Error() string { return e.Message }

// Usagef builds a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Sprintf(format, args...)}
}

// ExitCode maps the error a run returned to the process's exit status.
func ExitCode(err error) int {
	var usage *UsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage), config.IsConfigError(err):
		return ExitUsage
	}
	return ExitFailure
}

// RunFunc is a binary's whole program, as a function tests can call.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs a program until it returns or SIGINT/SIGTERM cancels its context, prints
// its error, and exits with the matching status.
func Main(name string, run RunFunc) {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println(name, version.Version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(ExitCode(err))
}

// NewFlagSet returns a flag set that reports errors instead of exiting, with the
// --config-file flag every binary takes.
func NewFlagSet(name string, stderr io.Writer, configFile *string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The current value is the default, so a subcommand's flag set does not reset a
	// --config-file given before the subcommand.
	fs.StringVar(configFile, "config-file", *configFile,
		"path of mixmatch.conf (default: the first of "+fmt.Sprint(config.DefaultPaths)+" that exists, else built-in defaults)")
	return fs
}

// Parse parses flags, turning a parse failure into a UsageError.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{err.Error()}
	}
	return nil
}

// LoadConfig finds, reads and validates the configuration, and returns it with a
// logger at the level it asks for. Its warnings are logged.
func LoadConfig(explicit string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	path, err := config.Find(explicit)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		return nil, nil, err
	}
	logger := NewLogger(stderr, cfg.Debug)
	if path == "" {
		logger.Info("no configuration file found; using the built-in defaults", "searched", config.DefaultPaths)
	} else {
		logger.Debug("configuration loaded", "file", path)
	}
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	return cfg, logger, nil
}

// NewLogger logs text lines to w, at debug level when asked.
func NewLogger(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// OpenStore connects to the configured database and refuses one whose schema is not
// what this build expects: a long-running process must fail at start-up, not at its
// first query.
func OpenStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	s, err := store.Open(ctx, cfg.Database.Connection, store.Options{MaxOpenConns: cfg.Database.MaxPoolSize,
		MappingCacheTime: cfg.Database.MappingCacheTime})
	if err != nil {
		return nil, err
	}
	if err := s.CheckSchema(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// NoArgs refuses positional arguments to a command that takes none.
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return Usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
