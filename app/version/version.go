// Package version carries the build's version, set by the Makefile with -ldflags -X.
package version

// Version is the output of git describe at build time.
var Version = "dev"
