//go:build bench

// Command bareproxy is the rig's measure of what Go itself costs: a reverse proxy
// with nothing of mixmatch in it (no token check, no lookup, no log, no metrics),
// standard library only, served the two ways mixmatch-fcgi is: over HTTP, and
// through net/http/fcgi behind Apache. What mixmatch reaches against nginx and
// Apache's mod_proxy_http is read against what this reaches in the same run.
//
//	bareproxy -backend URL -strip PREFIX (-http ADDR | -fcgi SOCKET)
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
)

func main() {
	backend := flag.String("backend", "", "URL every call goes to")
	strip := flag.String("strip", "", "path prefix taken off before forwarding (/image)")
	httpAddr := flag.String("http", "", "serve HTTP on this address")
	sock := flag.String("fcgi", "", "serve FastCGI on this Unix socket")
	flag.Parse()
	target, err := url.Parse(*backend)
	if err != nil || target.Host == "" || (*httpAddr == "") == (*sock == "") {
		log.Fatal("usage: bareproxy -backend URL [-strip PREFIX] (-http ADDR | -fcgi SOCKET)")
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, *strip)
			r.Out.URL.RawPath = ""
		},
		// As mixmatch's own pool: every connection the clients keep, kept upstream.
		Transport: &http.Transport{MaxIdleConnsPerHost: 256},
	}
	var l net.Listener
	if *sock != "" {
		os.Remove(*sock)
		l, err = net.Listen("unix", *sock)
	} else {
		l, err = net.Listen("tcp", *httpAddr)
	}
	if err != nil {
		log.Fatal(err)
	}
	// The rig waits for this line, as it does for mixmatch-fcgi's.
	log.Printf("bareproxy serving on %s", l.Addr())
	if *sock != "" {
		err = fcgi.Serve(l, proxy)
	} else {
		err = http.Serve(l, proxy)
	}
	log.Fatal(err)
}
