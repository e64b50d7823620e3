// Package metrics exposes mixmatch's Prometheus metrics. Counters kept elsewhere as
// atomics (K2K exchanges, token cache hits) are read at scrape time, so the hot paths
// pay nothing for them.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set is the metrics of one process.
type Set struct {
	Registry *prometheus.Registry
	// Requests counts answered requests by service, method, status and target SP.
	Requests *prometheus.CounterVec
	// Upstream is the time to an SP's response headers, by SP and service.
	Upstream *prometheus.HistogramVec
	// Learned counts mappings recorded, by source: notification, broadcast, create.
	Learned *prometheus.CounterVec
	// Conflicts counts mappings refused because the row names another SP, by source.
	Conflicts *prometheus.CounterVec
	// Messages counts ingested notifications by event type and outcome.
	Messages *prometheus.CounterVec
	// Reconnects counts lost broker connections, by SP.
	Reconnects *prometheus.CounterVec
}

// New registers the metrics (and Go's runtime ones) in a registry of their own.
func New() *Set {
	s := &Set{Registry: prometheus.NewRegistry()}
	s.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mixmatch_requests_total",
		Help: "Requests answered, by service, method, status and target service provider."},
		[]string{"service", "method", "status", "sp"})
	s.Upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mixmatch_upstream_seconds",
		Help: "Time to a service provider's response headers.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)},
		[]string{"sp", "service"})
	s.Learned = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mixmatch_mappings_learned_total",
		Help: "Resource mappings recorded, by source."}, []string{"source"})
	s.Conflicts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mixmatch_mapping_conflicts_total",
		Help: "Mappings refused because the table names another service provider, by source."}, []string{"source"})
	s.Messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mixmatch_ingester_messages_total",
		Help: "Notifications consumed, by event type and outcome."}, []string{"event_type", "outcome"})
	s.Reconnects = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mixmatch_broker_reconnects_total",
		Help: "Lost connections to a notification bus, by service provider."}, []string{"sp"})
	s.Registry.MustRegister(s.Requests, s.Upstream, s.Learned, s.Conflicts, s.Messages, s.Reconnects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// CounterFunc registers a counter read from elsewhere at scrape time.
func (s *Set) CounterFunc(name, help string, labels prometheus.Labels, read func() float64) {
	s.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, read))
}

// Handler serves the metrics in the Prometheus text format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}

// Serve exposes the metrics on addr until ctx ends; "" serves nothing.
func (s *Set) Serve(ctx context.Context, addr string, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Info("metrics served", "address", l.Addr().String())
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server stopped", "error", err)
		}
	}()
	return nil
}
