// Package config reads mixmatch.conf, in the format of the Python mixmatch so that an
// operator keeps the file they have, and validates all of it before anything starts.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/ini.v1"

	"mixmatch/app/tlsclient"
)

// LocalSP is the name of the local cloud in [DEFAULT] service_providers.
const LocalSP = "default"

// Config is a loaded, validated mixmatch.conf.
type Config struct {
	// File is where the configuration came from ("" for the embedded defaults).
	File string

	ServiceProviders  []string
	Aggregation       bool
	SearchByBroadcast bool
	// PublicURL is mixmatch's own URL, links are rewritten to; "" for the call's.
	PublicURL string
	// APIVersions holds each service's <name>_api_versions, by service name.
	APIVersions map[string][]string
	Debug       bool
	// Limits on what one call may cost mixmatch.
	// MaxActiveRequests and AdmissionWait bound what one worker serves at once.
	MaxActiveRequests int
	AdmissionWait     time.Duration
	// MaxConnections bounds the client connections a worker holds open.
	MaxConnections       int
	MaxRequestHeaderSize int
	MaxJSONBodySize      int
	MaxProjectsPerSP     int
	RequestTimeout       time.Duration

	Database struct {
		Connection       string
		MaxPoolSize      int
		MappingCacheTime time.Duration
	}
	Auth struct {
		AuthURL           string
		Username          string
		Password          string
		ProjectName       string
		UserDomainID      string
		UserDomainName    string
		ProjectDomainID   string
		ProjectDomainName string
		Caching           bool
		CacheTime         time.Duration
		TLS               tlsclient.Files
		// TLSConfig is built from TLS when the file loads (nil: the system's).
		TLSConfig *tls.Config
	}
	MetricsListen string

	Cache struct {
		Enabled         bool
		Backend         string // "memory" or "memcached"
		MemcacheServers []string
		SecretKey       string
	}

	// SPs holds one entry per name in ServiceProviders, in that order.
	SPs []*SP
	// Warnings are things worth a log line that do not stop mixmatch: unknown keys,
	// sections for service providers that are not listed.
	Warnings []string
}

// SP is one [sp_<name>] section.
type SP struct {
	// Name is the name in [DEFAULT] service_providers, stored in resource_sp.
	Name       string
	SPName     string
	Messagebus *Messagebus
	AuthURL    string
	// Endpoints holds each service's <name>_endpoint, by service name.
	Endpoints             map[string]string
	EnabledServices       []string
	NotificationQueue     string
	NotificationExchanges []string
	ConnectTimeout        time.Duration
	ResponseTimeout       time.Duration
	Retries               int
	MaxConcurrentRequests int
	// ServiceToken is what this cloud gets in place of a caller's X-Service-Token:
	// ServiceTokenNone or ServiceTokenK2K.
	ServiceToken string
	TLS          tlsclient.Files
	// TLSConfig is built from TLS when the file loads (nil: the system's).
	TLSConfig *tls.Config
}

// The values of [sp_*] service_token.
const (
	// ServiceTokenNone: a remote cloud gets no service token.
	ServiceTokenNone = "none"
	// ServiceTokenK2K: a remote cloud gets mixmatch's own token there, for callers
	// whose service token has the service role.
	ServiceTokenK2K = "k2k"
)

// Local reports whether this is the local cloud.
func (s *SP) Local() bool { return s.Name == LocalSP }

// Endpoint returns the endpoint of a service, or "" when the service is not enabled.
func (s *SP) Endpoint(service string) string {
	if !s.Enabled(service) {
		return ""
	}
	return s.Endpoints[service]
}

// Enabled reports whether mixmatch routes a service to this SP.
func (s *SP) Enabled(service string) bool {
	for _, e := range s.EnabledServices {
		if e == service {
			return true
		}
	}
	return false
}

// SP returns the service provider of a name in service_providers.
func (c *Config) SP(name string) (*SP, bool) {
	for _, sp := range c.SPs {
		if sp.Name == name {
			return sp, true
		}
	}
	return nil, false
}

// Problem is one mistake in a configuration file.
type Problem struct {
	File, Section, Key, Message string
}

func (p Problem) String() string {
	switch {
	case p.Key != "":
		return fmt.Sprintf("%s [%s] %s: %s", p.File, p.Section, p.Key, p.Message)
	case p.Section != "":
		return fmt.Sprintf("%s [%s]: %s", p.File, p.Section, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// Error lists every problem of a configuration at once, so an operator fixes them in
// one round.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// IsConfigError reports whether err is a mistake in the configuration, as opposed to
// a failure of something the configuration names.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// DefaultPaths are searched, in order, when no --config-file is given, as upstream does.
var DefaultPaths = []string{"mixmatch.conf", "etc/mixmatch/mixmatch.conf", "/etc/mixmatch/mixmatch.conf"}

// Find returns the configuration file to read: the explicit one, else the first of
// DefaultPaths that exists, else "" for the embedded defaults.
func Find(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", &Error{[]Problem{{File: explicit, Message: "cannot read the configuration file: " + pathErrorReason(err)}}}
		}
		return explicit, nil
	}
	for _, p := range DefaultPaths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", nil
}

// LoadFile reads a configuration file; "" gives the embedded defaults.
func LoadFile(path string) (*Config, error) {
	if path == "" {
		return Defaults()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{[]Problem{{File: path, Message: "cannot read the configuration file: " + pathErrorReason(err)}}}
	}
	defer f.Close()
	return Load(f, path)
}

// Defaults is the configuration mixmatch runs on without a file: the sample, which
// describes a local cloud on loopback.
func Defaults() (*Config, error) {
	c, err := Load(strings.NewReader(Sample()), "<embedded defaults>")
	if c != nil {
		c.File = ""
	}
	return c, err
}

// Load reads and validates a configuration; name is the file name messages give.
func Load(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &Error{[]Problem{{File: name, Message: err.Error()}}}
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		// oslo.config has no inline comments: a '#' in a password is part of it.
		IgnoreInlineComment: true,
		// Section names with dots ([sp_a.b]) must not inherit from [sp_a].
		ChildSectionDelimiter: "\x00",
	}, bytes.NewReader(data))
	if err != nil {
		return nil, &Error{[]Problem{{File: name, Message: err.Error()}}}
	}
	l := loader{file: name, ini: f, known: map[string]map[string]bool{}}
	c := &Config{File: name}
	for _, g := range groups {
		for _, o := range g.opts {
			l.apply(g.name, o.key, o.def, func(v string) error { return o.set(c, v) })
		}
	}
	l.legacyCacheOptions(c)
	for _, name := range c.ServiceProviders {
		c.SPs = append(c.SPs, l.loadSP(name))
	}
	l.validate(c)
	c.Warnings = append(c.Warnings, l.unknownKeys()...)
	if len(l.problems) > 0 {
		return nil, &Error{l.problems}
	}
	return c, nil
}

type loader struct {
	file     string
	ini      *ini.File
	problems []Problem
	known    map[string]map[string]bool // section -> keys mixmatch reads
}

func (l *loader) problem(section, key, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: l.file, Section: section, Key: key, Message: fmt.Sprintf(format, args...)})
}

// value returns a key's value as written, and whether it was written at all.
func (l *loader) value(section, key string) (string, bool) {
	if l.known[section] == nil {
		l.known[section] = map[string]bool{}
	}
	l.known[section][key] = true
	sec, err := l.ini.GetSection(section)
	if err != nil || !sec.HasKey(key) {
		return "", false
	}
	return strings.TrimSpace(sec.Key(key).String()), true
}

func (l *loader) apply(section, key, def string, set func(string) error) {
	v, ok := l.value(section, key)
	if !ok {
		v = def
	}
	if err := set(v); err != nil {
		l.problem(section, key, "%v", err)
	}
}

// legacyCacheOptions: upstream registered caching and cache_time in [DEFAULT] while its
// sample wrote them in [auth]; a file with either keeps working.
func (l *loader) legacyCacheOptions(c *Config) {
	for _, key := range []string{"caching", "cache_time"} {
		o := findOption("auth", key)
		if _, inAuth := l.value("auth", o.key); inAuth {
			continue
		}
		if v, ok := l.value("DEFAULT", o.key); ok {
			if err := o.set(c, v); err != nil {
				l.problem("DEFAULT", o.key, "%v", err)
			}
		}
	}
}

func (l *loader) loadSP(name string) *SP {
	sp := &SP{Name: name}
	section := "sp_" + name
	if _, err := l.ini.GetSection(section); err != nil {
		l.problem("DEFAULT", "service_providers", "lists %q but the file has no [%s] section", name, section)
		return sp
	}
	for _, o := range spOptions {
		l.apply(section, o.key, o.def, func(v string) error { return o.set(sp, v) })
	}
	if sp.SPName == "" {
		sp.SPName = name
	}
	if sp.NotificationQueue == "" {
		sp.NotificationQueue = "mixmatch.notifications." + name
	}
	return sp
}

// unknownKeys warns of keys mixmatch does not read, which are mostly typos. oslo.log
// and oslo.db keys that upstream files carry are expected and left alone.
func (l *loader) unknownKeys() []string {
	var warnings []string
	for _, sec := range l.ini.Sections() {
		known, read := l.known[sec.Name()]
		if !read {
			if strings.HasPrefix(sec.Name(), "sp_") {
				warnings = append(warnings, fmt.Sprintf("%s [%s]: not in [DEFAULT] service_providers, so ignored", l.file, sec.Name()))
			}
			continue
		}
		if sec.Name() == "DEFAULT" || sec.Name() == "database" {
			continue
		}
		for _, key := range sec.KeyStrings() {
			if !known[key] {
				warnings = append(warnings, fmt.Sprintf("%s [%s] %s: unknown option, ignored", l.file, sec.Name(), key))
			}
		}
	}
	sort.Strings(warnings)
	return warnings
}

func sortStrings(s []string) { sort.Strings(s) }

// pathErrorReason drops the path from an *os.PathError: the Problem names the file.
func pathErrorReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func findOption(section, key string) option[Config] {
	for _, g := range groups {
		for _, o := range g.opts {
			if g.name == section && o.key == key {
				return o
			}
		}
	}
	panic("config: no option [" + section + "] " + key)
}
