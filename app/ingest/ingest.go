// Package ingest is mixmatch-ingester: it learns where resources live from each
// cloud's notifications.
package ingest

import (
	"context"
	"errors"
	"io"

	"mixmatch/app/cmdline"
	"mixmatch/app/store"
)

// Run checks configuration and database; consuming notifications is not built yet,
// and saying so beats a process that runs and learns nothing.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var configFile string
	fs := cmdline.NewFlagSet("mixmatch-ingester", stderr, &configFile)
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmdline.Usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, _, err := cmdline.LoadConfig(configFile, stderr)
	if err != nil {
		return err
	}
	s, err := store.Open(ctx, cfg.Database.Connection, store.Options{MaxOpenConns: cfg.Database.MaxPoolSize})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.CheckSchema(ctx); err != nil {
		return err
	}
	return errors.New("consuming notifications is not implemented in this build")
}
