// Package ingest is mixmatch-ingester: it learns where resources live from each
// cloud's notifications.
package ingest

import (
	"context"
	"errors"
	"io"

	"mixmatch/app/cmdline"
)

// Run checks configuration and database; consuming notifications is not built yet,
// and saying so beats a process that runs and learns nothing.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var configFile string
	fs := cmdline.NewFlagSet("mixmatch-ingester", stderr, &configFile)
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	if err := cmdline.NoArgs(fs); err != nil {
		return err
	}
	cfg, _, err := cmdline.LoadConfig(configFile, stderr)
	if err != nil {
		return err
	}
	s, err := cmdline.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return errors.New("consuming notifications is not implemented in this build")
}
