// Package ingest is mixmatch-ingester: it learns where resources live from each
// cloud's notifications (volumes, snapshots and images created, deleted, transferred).
package ingest

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"mixmatch/app/cmdline"
	"mixmatch/app/metrics"
)

// tombstoneAge is how long a deletion is remembered against a late create.
const tombstoneAge = 7 * 24 * time.Hour

// Run starts one consumer per SP with a messagebus and runs until ctx ends
// (SIGTERM), when each consumer applies and acks what it holds.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var configFile string
	fs := cmdline.NewFlagSet("mixmatch-ingester", stderr, &configFile)
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	if err := cmdline.NoArgs(fs); err != nil {
		return err
	}
	cfg, logger, err := cmdline.LoadConfig(configFile, stderr)
	if err != nil {
		return err
	}
	s, err := cmdline.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	m := metrics.New()
	if err := m.Serve(ctx, cfg.MetricsListen, logger, nil); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, sp := range cfg.SPs {
		if sp.Messagebus == nil {
			logger.Info("no messagebus; not listening", "sp", sp.Name)
			continue
		}
		c := &Consumer{SP: sp, Store: s, Logger: logger, Metrics: m}
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(ctx) }()
	}
	go prune(ctx, s, logger)
	wg.Wait()
	if ctx.Err() == nil {
		return errors.New("no service provider has a messagebus to listen to")
	}
	logger.Info("mixmatch-ingester stopped")
	return nil
}
