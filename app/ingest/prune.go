package ingest

import (
	"context"
	"log/slog"
	"time"

	"mixmatch/app/store"
)

// prune forgets old deletions once an hour.
func prune(ctx context.Context, s *store.Store, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.PruneTombstones(ctx, tombstoneAge); err != nil && ctx.Err() == nil {
			logger.Warn("could not prune deletions", "error", err)
		} else if n > 0 {
			logger.Info("pruned old deletions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
