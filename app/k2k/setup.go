package k2k

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"mixmatch/app/config"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

// FromConfig builds what a worker needs to authenticate calls: the local Keystone
// client (validations cached) and the K2K exchanger (tokens cached), sharing one
// cache backend as [cache] and [auth] caching say.
func FromConfig(cfg *config.Config, logger *slog.Logger) (*keystone.Client, *Exchanger, error) {
	var cache *tokencache.Cache
	if cfg.Cache.Enabled && cfg.Auth.Caching {
		var backend tokencache.Backend = tokencache.NewMemory(nil)
		if cfg.Cache.Backend == "memcached" {
			m, err := tokencache.NewMemcached(cfg.Cache.MemcacheServers, cfg.Cache.SecretKey)
			if err != nil {
				return nil, nil, err
			}
			backend = m
		}
		cache = tokencache.New(backend, nil)
	}
	local := keystone.NewClient(keystone.Options{
		AuthURL: cfg.Auth.AuthURL,
		Credentials: keystone.Credentials{Username: cfg.Auth.Username, Password: cfg.Auth.Password,
			ProjectName: cfg.Auth.ProjectName, UserDomainID: cfg.Auth.UserDomainID, UserDomainName: cfg.Auth.UserDomainName,
			ProjectDomainID: cfg.Auth.ProjectDomainID, ProjectDomainName: cfg.Auth.ProjectDomainName},
		Cache: cache, CacheTime: cfg.Auth.CacheTime,
		HTTP: clientWith(cfg.Auth.TLSConfig, 15*time.Second),
	})
	spHTTP := map[string]*http.Client{}
	for _, sp := range cfg.SPs {
		if sp.Local() || sp.TLSConfig == nil {
			continue
		}
		spHTTP[sp.Name] = clientWith(sp.TLSConfig, 30*time.Second)
	}
	ex := New(Options{Local: local, Cache: cache, VerifyAssertions: true, ProjectsTTL: cfg.Auth.CacheTime,
		HTTP: clientWith(nil, 30*time.Second), SPHTTP: spHTTP, Logger: logger})
	return local, ex, nil
}

// clientWith is a client that talks only to the URLs it is given: no environment
// proxy, and the TLS settings of the cloud it is for.
func clientWith(c *tls.Config, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.TLSClientConfig = c
	return &http.Client{Transport: t, Timeout: timeout}
}
