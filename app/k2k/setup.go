package k2k

import (
	"log/slog"

	"mixmatch/app/config"
	"mixmatch/app/httpclient"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

// FromConfig builds what a worker needs to authenticate calls: the local Keystone
// client (validations cached) and the K2K exchanger (tokens cached), sharing one
// cache backend as [cache] and [auth] caching say, and talking to each Keystone
// through clients.
func FromConfig(cfg *config.Config, clients *httpclient.Clients, logger *slog.Logger) (*keystone.Client, *Exchanger, error) {
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
		HTTP: clients.LocalKeystone(),
	})
	ex := New(Options{Local: local, Cache: cache, VerifyAssertions: true, ProjectsTTL: cfg.Auth.CacheTime,
		HTTP: clients.Keystone, Logger: logger})
	return local, ex, nil
}
