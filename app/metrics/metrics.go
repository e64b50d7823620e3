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
	"strconv"
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

// Request counts an answered request. Clients choose paths and methods, so
// every label is cut to a known set of values: a series per value costs memory
// for the life of the process.
func (s *Set) Request(service, method, sp string, status int) {
	if !knownServices[service] {
		service = "other"
	}
	if !knownMethods[method] {
		method = "OTHER"
	}
	code := strconv.Itoa(status)
	if http.StatusText(status) == "" {
		code = "other" // a remote SP chooses the statuses passed through
	}
	s.Requests.WithLabelValues(service, method, code, sp).Inc()
}

var (
	knownServices = map[string]bool{"image": true, "volume": true, "network": true, "healthcheck": true}
	knownMethods  = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
		http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}
)

// CounterFunc registers a counter read from elsewhere at scrape time.
func (s *Set) CounterFunc(name, help string, labels prometheus.Labels, read func() float64) {
	s.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, read))
}

// GaugeFunc registers a gauge read from elsewhere at scrape time.
func (s *Set) GaugeFunc(name, help string, read func() float64) {
	s.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read))
}

// Handler serves the metrics in the Prometheus text format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}

// Serve exposes the metrics on addr until ctx ends, with the operator-only routes
// given (path to handler); "" serves nothing.
func (s *Set) Serve(ctx context.Context, addr string, logger *slog.Logger, routes map[string]http.Handler) error {
	if addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Handler())
	for path, h := range routes {
		mux.Handle(path, h)
	}
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
