// Package worker is mixmatch-fcgi: one API worker process.
package worker

import (
	"context"
	"io"
	"net/http"
	"os"
	"runtime/debug"

	"mixmatch/app/admission"
	"mixmatch/app/api"
	"mixmatch/app/cmdline"
	"mixmatch/app/extend"
	"mixmatch/app/health"
	"mixmatch/app/httpclient"
	"mixmatch/app/k2k"
	"mixmatch/app/logsink"
	"mixmatch/app/metrics"
	"mixmatch/app/proxy"
	"mixmatch/app/reqlog"
	"mixmatch/app/serve"
)

// Run parses the worker's flags, checks configuration and database, and serves until
// ctx is cancelled. Nothing listens before the configuration and the schema are known
// to be good, so a broken deployment fails at start-up, not at the first request.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var configFile string
	var fe serve.Frontend
	fs := cmdline.NewFlagSet("mixmatch-fcgi", stderr, &configFile)
	fs.StringVar(&fe.HTTP, "http", "", "serve plain HTTP on ADDR (host:port)")
	var metricsAddr string
	fs.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics on HOST:PORT (default: [metrics] listen)")
	fs.StringVar(&fe.FCGI, "fcgi", "", "serve FastCGI on tcp:HOST:PORT or unix:PATH "+
		"(with neither flag: FastCGI on the socket given as standard input)")
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	if err := cmdline.NoArgs(fs); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// Each call leaves a few kilobytes of garbage and little survives it: the
		// default of 100 spent an eighth of the worker's CPU collecting a heap of a
		// few MiB. 200 halves that for a few MiB more; GOGC still decides when set.
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft bound: near it the collector works harder rather than letting a
		// burst of calls (each with its buffers and goroutine) grow the heap; past
		// it nothing fails. 40 MiB of Go memory keeps the process, binary and C heap
		// included, under 64 MiB at 5x overload. GOMEMLIMIT decides when set.
		debug.SetMemoryLimit(40 << 20)
	}
	if fe.HTTP != "" && fe.FCGI != "" {
		return cmdline.Usagef("give --http or --fcgi, not both")
	}
	// Lines go out from a goroutine of their own, many to a write under load: a
	// write(2) per call's line was a sixth of a busy worker's CPU.
	logs := logsink.New(stderr, 0)
	defer logs.Close()
	cfg, logger, err := cmdline.LoadConfig(configFile, logs)
	if err != nil {
		return err
	}
	s, err := cmdline.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	// One set of clients for the process, so that everything calling an SP shares
	// its pool and its max_concurrent_requests.
	clients := httpclient.New(cfg)
	local, exchanger, err := k2k.FromConfig(cfg, clients, logger)
	if err != nil {
		return err
	}
	tracker := health.NewTracker()
	m := metrics.New()
	m.CounterFunc("mixmatch_k2k_exchanges_total", "SAML assertions presented to service providers.", nil,
		func() float64 { return float64(exchanger.Stats.Exchanges.Load()) })
	m.CounterFunc("mixmatch_k2k_rescopes_total", "Scoped tokens issued by service providers.", nil,
		func() float64 { return float64(exchanger.Stats.Rescopes.Load()) })
	if c := exchanger.Cache(); c != nil {
		m.CounterFunc("mixmatch_token_cache_total", "Token cache look-ups.", map[string]string{"result": "hit"},
			func() float64 { return float64(c.Stats.Hits.Load()) })
		m.CounterFunc("mixmatch_token_cache_total", "Token cache look-ups.", map[string]string{"result": "miss"},
			func() float64 { return float64(c.Stats.Misses.Load()) })
	}
	if metricsAddr == "" {
		metricsAddr = cfg.MetricsListen
	}
	cache := "disabled"
	if cfg.Cache.Enabled && cfg.Auth.Caching {
		cache = cfg.Cache.Backend
	}
	// The detailed health check names internal addresses: operators only.
	detail := health.Detail(s, cache, cfg.ServiceProviders, tracker)
	if err := m.Serve(ctx, metricsAddr, logger, map[string]http.Handler{"/healthcheck": detail}); err != nil {
		return err
	}
	prox := proxy.New(cfg, proxy.Deps{Store: s, Auth: local, Tokens: exchanger, Service: local, Transport: clients.Transport,
		Logger: logger, Tracker: tracker, Metrics: m})
	admit := admission.New(cfg.MaxActiveRequests, cfg.AdmissionWait, logger)
	if admit != nil {
		m.CounterFunc("mixmatch_requests_shed_total", "Calls refused with a 503: max_active_requests were being served.", nil,
			func() float64 { return float64(admit.Shed.Load()) })
		m.GaugeFunc("mixmatch_admission_limit", "Calls served at once now: max_active_requests, lower while the CPU is the bottleneck.",
			func() float64 { return float64(admit.Limit()) })
		go admit.Govern(ctx)
	}
	handler := reqlog.Middleware(logger, m.Request, admit.Middleware(serve.LimitHeaders(cfg.MaxRequestHeaderSize, api.NewRouter(cfg, prox,
		health.Summary(s), extend.Deps{Local: local, Tokens: exchanger, Clients: clients, Logger: logger}))))
	l, err := serve.Listen(fe)
	if err != nil {
		return err
	}
	l = serve.LimitConnections(l, cfg.MaxConnections)
	logger.Info("mixmatch-fcgi serving", "address", l.Addr().String(), "fastcgi", fe.HTTP == "",
		"service_providers", cfg.ServiceProviders)
	err = serve.Serve(ctx, l, fe.HTTP == "", handler, logger)
	prox.Drain()
	logger.Info("mixmatch-fcgi stopped")
	return err
}
