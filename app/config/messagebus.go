package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Messagebus is an oslo.messaging transport URL:
// rabbit://user:pass@host1:5672,user:pass@host2:5672/vhost.
type Messagebus struct {
	Hosts []BusHost
	VHost string
	// Options are the URL's query parameters, kept for the ingester (ssl, ...).
	Options url.Values
}

// BusHost is one broker of a Messagebus; the ingester fails over between them in order.
type BusHost struct {
	User, Password string
	Host           string
	Port           int
}

// AMQPURL is the URL an AMQP 0-9-1 client dials for this host.
func (b *Messagebus) AMQPURL(h BusHost) string {
	u := url.URL{Scheme: "amqp", Host: net.JoinHostPort(h.Host, strconv.Itoa(h.Port)),
		Path: "/" + b.VHost, RawPath: "/" + url.PathEscape(b.VHost)}
	if h.User != "" {
		u.User = url.UserPassword(h.User, h.Password)
	}
	if _, ok := b.Options["ssl"]; ok {
		u.Scheme = "amqps"
	}
	return u.String()
}

// String names the brokers without their passwords, for logs.
func (b *Messagebus) String() string {
	hosts := make([]string, len(b.Hosts))
	for i, h := range b.Hosts {
		hosts[i] = net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
		if h.User != "" {
			hosts[i] = h.User + ":***@" + hosts[i]
		}
	}
	return "rabbit://" + strings.Join(hosts, ",") + "/" + b.VHost
}

// ParseMessagebus reads a transport URL the way oslo.messaging writes it.
func ParseMessagebus(raw string) (*Messagebus, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "rabbit" && scheme != "amqp") {
		return nil, fmt.Errorf("not a rabbit://user:password@host:port/vhost URL")
	}
	rest, query, _ := strings.Cut(rest, "?")
	netloc, vhost, _ := strings.Cut(rest, "/")
	vhost, err := url.PathUnescape(vhost)
	if err != nil {
		return nil, fmt.Errorf("virtual host: %v", err)
	}
	opts, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("options: %v", err)
	}
	bus := &Messagebus{VHost: vhost, Options: opts}
	if bus.VHost == "" {
		bus.VHost = "/"
	}
	var last BusHost
	for _, part := range strings.Split(netloc, ",") {
		h, err := parseBusHost(part, last)
		if err != nil {
			return nil, err
		}
		bus.Hosts = append(bus.Hosts, h)
		last = h
	}
	return bus, nil
}

// parseBusHost reads [user[:password]@]host[:port]; a host without credentials uses
// those of the host before it, as oslo.messaging does.
func parseBusHost(part string, prev BusHost) (BusHost, error) {
	h := BusHost{User: prev.User, Password: prev.Password, Port: 5672}
	if i := strings.LastIndex(part, "@"); i >= 0 {
		user, pass, _ := strings.Cut(part[:i], ":")
		var err1, err2 error
		h.User, err1 = url.PathUnescape(user)
		h.Password, err2 = url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			return h, fmt.Errorf("credentials are not URL-escaped properly")
		}
		part = part[i+1:]
	}
	host, port := part, ""
	if strings.HasPrefix(part, "[") || strings.Count(part, ":") == 1 {
		var err error
		if host, port, err = net.SplitHostPort(part); err != nil {
			if !strings.Contains(err.Error(), "missing port") {
				return h, fmt.Errorf("host %q: %v", part, err)
			}
			host, port = strings.Trim(part, "[]"), ""
		}
	}
	if host == "" {
		return h, fmt.Errorf("a host is missing")
	}
	h.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return h, fmt.Errorf("host %q has an invalid port", part)
		}
		h.Port = n
	}
	return h, nil
}
