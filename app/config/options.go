package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mixmatch/app/dburl"
	"mixmatch/app/services"
)

// option is one key of mixmatch.conf. Its default is written as the file would write
// it and goes through the same parser, so the sample can never show a default that
// does not load.
type option[T any] struct {
	key  string
	kind string // the type in oslo-config-generator's words: "string value", ...
	def  string // "" with no defDoc: no default, written <None>
	// defDoc describes a default computed from other options.
	defDoc string
	// example is written uncommented in the sample's [sp_default] section.
	example string
	help    string
	set     func(*T, string) error
}

func strOpt[T any](key, def, help string, field func(*T) *string) option[T] {
	return option[T]{key: key, kind: "string value", def: def, help: help,
		set: func(t *T, v string) error { *field(t) = v; return nil }}
}

func urlOpt[T any](key, def, help string, field func(*T) *string) option[T] {
	return urlOptTo(key, def, help, func(t *T, v string) { *field(t) = v })
}

// urlOptTo is urlOpt for a value that is not a field, such as a map entry.
func urlOptTo[T any](key, def, help string, set func(*T, string)) option[T] {
	return option[T]{key: key, kind: "URI value", def: def, help: help,
		set: func(t *T, v string) error {
			if v == "" {
				set(t, "")
				return nil
			}
			if err := checkHTTPURL(v); err != nil {
				return err
			}
			set(t, strings.TrimRight(v, "/"))
			return nil
		}}
}

func boolOpt[T any](key string, def bool, help string, field func(*T) *bool) option[T] {
	return option[T]{key: key, kind: "boolean value", def: strconv.FormatBool(def), help: help,
		set: func(t *T, v string) error {
			b, err := parseBool(v)
			*field(t) = b
			return err
		}}
}

func intOpt[T any](key string, def, minimum int, help string, field func(*T) *int) option[T] {
	return option[T]{key: key, kind: fmt.Sprintf("integer value, at least %d", minimum),
		def: strconv.Itoa(def), help: help,
		set: func(t *T, v string) error {
			n, err := atLeast(v, minimum)
			if err == nil {
				*field(t) = n
			}
			return err
		}}
}

func secondsOpt[T any](key string, def, minimum int, help string, field func(*T) *time.Duration) option[T] {
	return option[T]{key: key, kind: fmt.Sprintf("integer value, seconds, at least %d", minimum),
		def: strconv.Itoa(def), help: help,
		set: func(t *T, v string) error {
			n, err := atLeast(v, minimum)
			if err == nil {
				*field(t) = time.Duration(n) * time.Second
			}
			return err
		}}
}

// atLeast reads a whole number no smaller than minimum.
func atLeast(v string, minimum int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	if n < minimum {
		return 0, fmt.Errorf("%d is less than %d", n, minimum)
	}
	return n, nil
}

func listOpt[T any](key, def, help string, check func(string) error, field func(*T) *[]string) option[T] {
	return listOptTo(key, def, help, check, func(t *T, v []string) { *field(t) = v })
}

// listOptTo is listOpt for a value that is not a field, such as a map entry.
func listOptTo[T any](key, def, help string, check func(string) error, set func(*T, []string)) option[T] {
	return option[T]{key: key, kind: "list value", def: def, help: help,
		set: func(t *T, v string) error {
			items := splitList(v)
			for _, item := range items {
				if err := check(item); err != nil {
					return err
				}
			}
			set(t, items)
			return nil
		}}
}

// setEntry sets one key of a map the zero Config or SP does not have yet.
func setEntry[V any](m *map[string]V, key string, v V) {
	if *m == nil {
		*m = map[string]V{}
	}
	(*m)[key] = v
}

// choiceOpt maps each accepted spelling to the value the program uses.
func choiceOpt[T any](key, def, help string, spellings map[string]string, field func(*T) *string) option[T] {
	names := make([]string, 0, len(spellings))
	for name := range spellings {
		names = append(names, name)
	}
	sortStrings(names)
	return option[T]{key: key, kind: "string value: " + strings.Join(names, ", "), def: def, help: help,
		set: func(t *T, v string) error {
			value, ok := spellings[v]
			if !ok {
				return fmt.Errorf("%q is not one of %s", v, strings.Join(names, ", "))
			}
			*field(t) = value
			return nil
		}}
}

func splitList(v string) []string {
	items := []string{}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parseBool accepts what oslo.config accepts.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use true or false)", v)
}

func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q is not an http:// or https:// URL", v)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", v)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", v)
	}
	return nil
}

var (
	apiVersionRE = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)?$`)
	spNameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

func checkAPIVersion(v string) error {
	if !apiVersionRE.MatchString(v) {
		return fmt.Errorf("%q is not an API version such as v2.0", v)
	}
	return nil
}

func checkSPName(v string) error {
	if !spNameRE.MatchString(v) {
		return fmt.Errorf("%q is not a service provider name (letters, digits, _ . -)", v)
	}
	return nil
}

func checkService(v string) error {
	if _, ok := services.Get(v); !ok {
		return fmt.Errorf("unknown service %q (known: %s)", v, strings.Join(services.Names(), ", "))
	}
	return nil
}

func checkExchange(v string) error {
	if strings.ContainsAny(v, " \t") || len(v) > 255 {
		return fmt.Errorf("%q is not an exchange name", v)
	}
	return nil
}

func checkHostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not HOST:PORT", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no valid port", v)
	}
	return nil
}

// group is one [section] of the global options.
type group struct {
	name string
	help string
	opts []option[Config]
}

// cacheBackends maps upstream's oslo.cache backend names to the two mixmatch has.
var cacheBackends = map[string]string{
	"memory":                   "memory",
	"dogpile.cache.memory":     "memory",
	"memcached":                "memcached",
	"dogpile.cache.memcached":  "memcached",
	"dogpile.cache.pymemcache": "memcached",
	"oslo_cache.memcache_pool": "memcached",
}

var groups = []group{
	{name: "DEFAULT", opts: slices.Concat([]option[Config]{
		listOpt("service_providers", "default",
			"Names of the service providers (clouds) mixmatch federates. Each needs a "+
				"[sp_<name>] section; `default` is the local cloud and must be listed.",
			checkSPName, func(c *Config) *[]string { return &c.ServiceProviders }),
		boolOpt("aggregation", false,
			"Aggregate list calls (images, volumes, snapshots) across every enabled service provider.",
			func(c *Config) *bool { return &c.Aggregation }),
		boolOpt("search_by_broadcast", false,
			"Ask every enabled service provider for a resource whose location is not known.",
			func(c *Config) *bool { return &c.SearchByBroadcast }),
		urlOpt("public_url", "",
			"mixmatch's URL as clients reach it (scheme, host, port and any path before /image, /volume "+
				"and /network), such as https://cloud.example.com:9913. Location headers and the links "+
				"services build from their own host (list pages, version documents) are rewritten to it. "+
				"No value: the scheme and Host of each call; X-Forwarded-* are not believed, so set it "+
				"behind a proxy that changes either.",
			func(c *Config) *string { return &c.PublicURL }),
	}, apiVersionOptions(), []option[Config]{
		boolOpt("debug", false,
			"Log at debug level.",
			func(c *Config) *bool { return &c.Debug }),
		intOpt("max_active_requests", 64, 0,
			"Most calls one worker process serves at once (image data streams included). A call "+
				"over it waits up to admission_wait for a slot, and no more calls wait than are served at "+
				"once: the rest get a 503 with Retry-After at once. While the worker's CPU is the "+
				"bottleneck (in a 100 ms interval, Go's scheduler latency p99 over 20 ms, half the limit "+
				"used, more calls coming than ending) it admits a fifth fewer, down to 4 calls started in "+
				"the last second, and an eighth more again after each other interval. 0: no bound. "+
				"Size Apache's MaxRequestWorkers to at most the workers' sum of it (README, Deployment).",
			func(c *Config) *int { return &c.MaxActiveRequests }),
		intOpt("max_connections", 1024, 0,
			"Most client connections one worker holds open at once, kept-alive ones included (under "+
				"FastCGI, the web server's). Past it new connections wait in the listen queue until one "+
				"closes. 0: no bound. Idle kept-alive connections of --http close after 75 seconds.",
			func(c *Config) *int { return &c.MaxConnections }),
		secondsOpt("admission_wait", 1, 0,
			"Seconds a call over max_active_requests waits for a slot before its 503. Once calls have "+
				"waited without a break for 100 ms (overload, not a burst), a new call waits at most 10 ms.",
			func(c *Config) *time.Duration { return &c.AdmissionWait }),
		intOpt("max_request_header_size", 65536, 1024,
			"Largest total size in bytes of one request's header lines; a larger request gets a 431. "+
				"Apache's LimitRequestFieldSize applies to each line before this.",
			func(c *Config) *int { return &c.MaxRequestHeaderSize }),
		intOpt("max_json_body_size", 1048576, 1024,
			"Largest JSON request body in bytes that mixmatch reads itself (the network extension, "+
				"creates named NAME@SP, creates that name their parent in the body, such as a snapshot's "+
				"volume_id); a larger one gets a 413. Bodies mixmatch only forwards, such as image data, "+
				"are streamed and not limited here.",
			func(c *Config) *int { return &c.MaxJSONBodySize }),
		intOpt("max_projects_per_sp", 25, 1,
			"Most projects of one user that a broadcast search or an aggregated list asks at each "+
				"service provider, in the order the SP lists them. Each costs a K2K token and a call; "+
				"an SP may list thousands.",
			func(c *Config) *int { return &c.MaxProjectsPerSP }),
		secondsOpt("request_timeout", 60, 1,
			"Longest time mixmatch works on one call before forwarding it or answering it itself: "+
				"token validation, K2K exchanges, a broadcast search, an aggregated list. Then it "+
				"answers 504. Image data may stream for longer.",
			func(c *Config) *time.Duration { return &c.RequestTimeout }),
	})},
	{name: "database", opts: []option[Config]{
		{key: "connection", kind: "string value", def: "sqlite:///var/mixmatch.db",
			help: "SQLAlchemy-style URL of the mapping database: sqlite:////absolute/path.db, " +
				"sqlite:///path/relative/to/the/working/directory.db, sqlite:// (in memory, one " +
				"process only), postgresql://user:password@host:5432/mixmatch or " +
				"mysql+pymysql://user:password@host:3306/mixmatch?charset=utf8.",
			set: func(c *Config, v string) error {
				if _, err := dburl.Parse(v); err != nil {
					return err
				}
				c.Database.Connection = v
				return nil
			}},
		intOpt("max_pool_size", 10, 1,
			"Most database connections one process opens.",
			func(c *Config) *int { return &c.Database.MaxPoolSize }),
		secondsOpt("mapping_cache_time", 1, 0,
			"Seconds a worker keeps a mapping it read before reading it again; 0 reads the "+
				"table on every call. What the worker itself changes it forgets at once; a "+
				"change by the ingester, another worker or SQL by hand reaches it within this time.",
			func(c *Config) *time.Duration { return &c.Database.MappingCacheTime }),
	}},
	{name: "auth", help: "mixmatch's own account in the local Keystone, used to validate tokens.", opts: []option[Config]{
		urlOpt("auth_url", "http://127.0.0.1:5000/v3",
			"Keystone v3 endpoint of the local cloud.",
			func(c *Config) *string { return &c.Auth.AuthURL }),
		strOpt("username", "admin", "User name.", func(c *Config) *string { return &c.Auth.Username }),
		strOpt("password", "", "Password.", func(c *Config) *string { return &c.Auth.Password }),
		strOpt("project_name", "admin", "Project to scope to.", func(c *Config) *string { return &c.Auth.ProjectName }),
		withDefDoc(strOpt("user_domain_id", "", "Domain id of the user; set it or user_domain_name.",
			func(c *Config) *string { return &c.Auth.UserDomainID }), "default, unless user_domain_name is set"),
		strOpt("user_domain_name", "", "Domain name of the user.", func(c *Config) *string { return &c.Auth.UserDomainName }),
		withDefDoc(strOpt("project_domain_id", "", "Domain id of the project; set it or project_domain_name.",
			func(c *Config) *string { return &c.Auth.ProjectDomainID }), "default, unless project_domain_name is set"),
		strOpt("project_domain_name", "", "Domain name of the project.", func(c *Config) *string { return &c.Auth.ProjectDomainName }),
		boolOpt("caching", true, "Cache token validations and K2K tokens.",
			func(c *Config) *bool { return &c.Auth.Caching }),
		secondsOpt("cache_time", 600, 0,
			"Longest time a token validation is cached; K2K tokens are cached until they expire.",
			func(c *Config) *time.Duration { return &c.Auth.CacheTime }),
		strOpt("cafile", "",
			"PEM bundle of the CAs that sign the local Keystone's HTTPS certificate. No value: the system's CAs.",
			func(c *Config) *string { return &c.Auth.TLS.CAFile }),
		strOpt("certfile", "", "PEM client certificate presented to the local Keystone; needs keyfile.",
			func(c *Config) *string { return &c.Auth.TLS.CertFile }),
		strOpt("keyfile", "", "PEM private key of certfile.",
			func(c *Config) *string { return &c.Auth.TLS.KeyFile }),
		boolOpt("insecure", false, "Accept any certificate from the local Keystone. For test clouds only.",
			func(c *Config) *bool { return &c.Auth.TLS.Insecure }),
	}},
	{name: "metrics", help: "Prometheus metrics.", opts: []option[Config]{
		strOpt("listen", "",
			"HOST:PORT where GET /metrics is served; no value serves none. Each process needs its own: "+
				"mixmatch-fcgi's --metrics flag overrides it per worker.",
			func(c *Config) *string { return &c.MetricsListen }),
	}},
	{name: "cache", help: "Where cached tokens live.", opts: []option[Config]{
		boolOpt("enabled", true, "Use a cache at all.", func(c *Config) *bool { return &c.Cache.Enabled }),
		choiceOpt("backend", "memory",
			"memory keeps a cache per worker process; memcached shares one between every "+
				"worker and host. Upstream's oslo.cache names are accepted.",
			cacheBackends, func(c *Config) *string { return &c.Cache.Backend }),
		listOpt("memcache_servers", "localhost:11211", "memcached servers as HOST:PORT.",
			checkHostPort, func(c *Config) *[]string { return &c.Cache.MemcacheServers }),
		strOpt("memcache_secret_key", "",
			"Secret from which the key that encrypts and authenticates every cached token is "+
				"derived; required with the memcached backend, the same in every mixmatch process.",
			func(c *Config) *string { return &c.Cache.SecretKey }),
	}},
}

// apiVersionOptions are the [DEFAULT] <service>_api_versions, one per service.
func apiVersionOptions() []option[Config] {
	var opts []option[Config]
	for _, svc := range services.All() {
		opts = append(opts, listOptTo(svc.VersionsKey, strings.Join(svc.APIVersions, ", "),
			fmt.Sprintf("%s API versions announced by GET /%s; the first is CURRENT.", capitalize(svc.Name), svc.Name),
			checkAPIVersion, func(c *Config, v []string) { setEntry(&c.APIVersions, svc.Name, v) }))
	}
	return opts
}

// endpointOptions are the [sp_*] <service>_endpoint, one per service.
func endpointOptions() []option[SP] {
	var opts []option[SP]
	for _, svc := range services.All() {
		without := "version"
		if svc.ProjectInPath {
			without = "version or project"
		}
		opts = append(opts, withExample(urlOptTo(svc.EndpointKey, "",
			fmt.Sprintf("%s endpoint, without %s.", svc.CodeName, without),
			func(s *SP, v string) { setEntry(&s.Endpoints, svc.Name, v) }),
			fmt.Sprintf("http://127.0.0.1:%d", svc.Port)))
	}
	return opts
}

// defaultEnabledServices is the default of enabled_services.
func defaultEnabledServices() string {
	var names []string
	for _, svc := range services.All() {
		if svc.DefaultEnabled {
			names = append(names, svc.Name)
		}
	}
	return strings.Join(names, ", ")
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

var spOptions = slices.Concat([]option[SP]{
	withExample(withDefDoc(strOpt("sp_name", "",
		"Id of the service provider in the local Keystone (the K2K target); the local cloud's is "+
			"`default`, and mixmatch adds it to MM-PROXY-LIST.",
		func(s *SP) *string { return &s.SPName }), "the name in [DEFAULT] service_providers"), "default"),
	{key: "messagebus", kind: "string value", help: "oslo.messaging transport URL of the " +
		"cloud's notification bus, rabbit://user:password@host:5672/vhost; several hosts, " +
		"comma separated, fail over. No value: the ingester does not listen to this cloud.",
		set: func(s *SP, v string) error {
			s.Messagebus = nil
			if v == "" {
				return nil
			}
			bus, err := ParseMessagebus(v)
			s.Messagebus = bus
			return err
		}},
	withExample(urlOpt("auth_url", "", "Keystone v3 endpoint of this cloud.",
		func(s *SP) *string { return &s.AuthURL }), "http://127.0.0.1:5000/v3"),
}, endpointOptions(), []option[SP]{
	listOpt("enabled_services", defaultEnabledServices(),
		"Services mixmatch routes to this cloud: "+strings.Join(services.Names(), ", ")+". Each needs its endpoint.",
		checkService, func(s *SP) *[]string { return &s.EnabledServices }),
	withDefDoc(strOpt("notification_queue", "",
		"The ingester's own durable queue on this cloud's bus, so that it takes no message "+
			"from other consumers such as Ceilometer.",
		func(s *SP) *string { return &s.NotificationQueue }), "mixmatch.notifications.<name>"),
	listOpt("notification_exchanges", "glance, openstack, cinder",
		"Exchanges the queue is bound to with routing key notifications.info: Glance publishes "+
			"to glance, Cinder to openstack ([DEFAULT] control_exchange), some deployments to cinder.",
		checkExchange, func(s *SP) *[]string { return &s.NotificationExchanges }),
	secondsOpt("connect_timeout", 10, 1, "Longest wait for a connection to this cloud's services.",
		func(s *SP) *time.Duration { return &s.ConnectTimeout }),
	secondsOpt("response_timeout", 60, 1,
		"Longest wait for the headers of an answer from this cloud's services (image data may then "+
			"stream for as long as it takes).",
		func(s *SP) *time.Duration { return &s.ResponseTimeout }),
	intOpt("retries", 2, 0,
		"Retries of a call without a body (GET, HEAD, DELETE) after a connection error or a 502, 503 or 504, "+
			"with exponential backoff.",
		func(s *SP) *int { return &s.Retries }),
	intOpt("max_concurrent_requests", 100, 0,
		"Most calls one mixmatch process has in flight to this cloud's services, image data "+
			"streams and broadcast searches included. A call over the limit waits up to "+
			"connect_timeout for a free slot, then gets a 503. 0: no limit.",
		func(s *SP) *int { return &s.MaxConcurrentRequests }),
	choiceOpt("service_token", ServiceTokenNone,
		"What this cloud gets in place of a caller's service token (X-Service-Token, which Nova sends "+
			"with volume calls; Cinder lets only a service detach a volume Nova still holds). The local "+
			"cloud always gets the caller's own. none: nothing. k2k: mixmatch's own token at this cloud "+
			"([auth]'s account, by K2K), when the caller's service token is valid at the local Keystone "+
			"and has the service role; an invalid one is a 401. This cloud must map mixmatch's federated "+
			"user to a group with the service role, and its Cinder's [keystone_authtoken] "+
			"service_token_roles must name that role.",
		map[string]string{ServiceTokenNone: ServiceTokenNone, ServiceTokenK2K: ServiceTokenK2K},
		func(s *SP) *string { return &s.ServiceToken }),
	strOpt("cafile", "",
		"PEM bundle of the CAs that sign this cloud's HTTPS certificates (its Keystone and services). "+
			"No value: the system's CAs.",
		func(s *SP) *string { return &s.TLS.CAFile }),
	strOpt("certfile", "",
		"PEM client certificate mixmatch presents to this cloud over HTTPS; needs keyfile.",
		func(s *SP) *string { return &s.TLS.CertFile }),
	strOpt("keyfile", "", "PEM private key of certfile.",
		func(s *SP) *string { return &s.TLS.KeyFile }),
	boolOpt("insecure", false,
		"Accept any certificate from this cloud over HTTPS. For test clouds only.",
		func(s *SP) *bool { return &s.TLS.Insecure }),
})

func withDefDoc[T any](o option[T], doc string) option[T] { o.defDoc = doc; return o }
func withExample[T any](o option[T], ex string) option[T] { o.example = ex; return o }
