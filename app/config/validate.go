package config

import (
	"crypto/tls"
	"errors"
	"strings"

	"mixmatch/app/services"
	"mixmatch/app/tlsclient"
)

// validate checks what no single option can check alone. Every problem is collected;
// nothing stops at the first.
func (l *loader) validate(c *Config) {
	seen := map[string]bool{}
	for _, name := range c.ServiceProviders {
		if seen[name] {
			l.problem("DEFAULT", "service_providers", "lists %q twice", name)
		}
		seen[name] = true
	}
	if !seen[LocalSP] {
		l.problem("DEFAULT", "service_providers", "must list %q, the local cloud (it lists %s)",
			LocalSP, strings.Join(quoteAll(c.ServiceProviders), ", "))
	}

	spNames := map[string]string{}
	for _, sp := range c.SPs {
		section := "sp_" + sp.Name
		if _, err := l.ini.GetSection(section); err != nil {
			continue // already reported by loadSP
		}
		for _, service := range sp.EnabledServices {
			svc, known := services.Get(service)
			if known && sp.Endpoint(service) == "" && !l.hasProblem(section, svc.EndpointKey) {
				l.problem(section, svc.EndpointKey, "is required because enabled_services includes %s", service)
			}
		}
		if sp.Local() && sp.ServiceToken == ServiceTokenK2K {
			l.problem(section, "service_token", "the local cloud gets the caller's own service token; k2k is for remote clouds")
		}
		if other, dup := spNames[sp.SPName]; dup {
			l.problem(section, "sp_name", "%q is also the sp_name of [sp_%s]", sp.SPName, other)
		}
		spNames[sp.SPName] = sp.Name
		sp.TLSConfig = l.buildTLS(section, sp.TLS)
	}
	c.Auth.TLSConfig = l.buildTLS("auth", c.Auth.TLS)

	a := &c.Auth
	if a.UserDomainID != "" && a.UserDomainName != "" {
		l.problem("auth", "user_domain_name", "set user_domain_id or user_domain_name, not both")
	}
	if a.UserDomainID == "" && a.UserDomainName == "" {
		a.UserDomainID = "default"
	}
	if a.ProjectDomainID != "" && a.ProjectDomainName != "" {
		l.problem("auth", "project_domain_name", "set project_domain_id or project_domain_name, not both")
	}
	if a.ProjectDomainID == "" && a.ProjectDomainName == "" {
		a.ProjectDomainID = "default"
	}
	if c.MetricsListen != "" {
		if err := checkHostPort(c.MetricsListen); err != nil {
			l.problem("metrics", "listen", "%v", err)
		}
	}
	if c.Cache.Enabled && c.Cache.Backend == "memcached" {
		if len(c.Cache.MemcacheServers) == 0 {
			l.problem("cache", "memcache_servers", "lists no server, but backend is memcached")
		}
		// Tokens in a shared cache must not be readable by whoever reaches memcached.
		if c.Cache.SecretKey == "" {
			l.problem("cache", "memcache_secret_key", "is required with backend memcached")
		}
	}
	for _, svc := range services.All() {
		if len(c.APIVersions[svc.Name]) == 0 {
			l.problem("DEFAULT", svc.VersionsKey, "lists no version")
		}
	}
}

func quoteAll(items []string) []string {
	quoted := make([]string, len(items))
	for i, item := range items {
		quoted[i] = `"` + item + `"`
	}
	if len(quoted) == 0 {
		return []string{"nothing"}
	}
	return quoted
}

func (l *loader) hasProblem(section, key string) bool {
	for _, p := range l.problems {
		if p.Section == section && p.Key == key {
			return true
		}
	}
	return false
}

// buildTLS reads the CA bundle and client certificate once, when the file loads, so
// a wrong path or a mismatched key stops mixmatch at start-up, named, not at the
// first call to a cloud.
func (l *loader) buildTLS(section string, f tlsclient.Files) *tls.Config {
	c, err := f.Config()
	var p *tlsclient.Problem
	if errors.As(err, &p) {
		l.problem(section, p.Key, "%v", p.Err)
	}
	return c
}
