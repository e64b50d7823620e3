package config

import (
	"fmt"
	"strings"
)

const sampleHeader = `# mixmatch.conf: configuration of mixmatch-fcgi, mixmatch-ingester and mixmatch-manage.
#
# Generated from the option table in app/config by "mixmatch-manage config-sample"
# ("make sample"); edit the table, not this file. A commented line shows an option's
# default.
#
# As it stands this file is a working configuration, and the one mixmatch uses when
# it finds no file: a local cloud on loopback, federated with nothing yet. It is read
# from --config-file, else ./mixmatch.conf, ./etc/mixmatch/mixmatch.conf or
# /etc/mixmatch/mixmatch.conf, the first that exists.
`

const spHeader = `#
# One [sp_<name>] section for each name in [DEFAULT] service_providers. This one
# is the local cloud; a remote one looks alike, with its own endpoints and the id
# Keystone knows it by as sp_name.
#
`

// Sample renders etc/mixmatch.conf.sample from the option table, as
// oslo-config-generator renders upstream's.
func Sample() string {
	var b strings.Builder
	b.WriteString(sampleHeader)
	for _, g := range groups {
		fmt.Fprintf(&b, "\n[%s]\n", g.name)
		if g.help != "" {
			fmt.Fprintf(&b, "#\n%s#\n", wrapComment(g.help))
		}
		for _, o := range g.opts {
			writeOption(&b, o)
		}
	}
	fmt.Fprintf(&b, "\n%s[sp_%s]\n", spHeader, LocalSP)
	for _, o := range spOptions {
		writeOption(&b, o)
	}
	return b.String()
}

func writeOption[T any](b *strings.Builder, o option[T]) {
	fmt.Fprintf(b, "\n%s", wrapComment(fmt.Sprintf("%s (%s)", o.help, o.kind)))
	if o.defDoc != "" {
		fmt.Fprintf(b, "# Default: %s\n", o.defDoc)
	}
	switch {
	case o.example != "":
		fmt.Fprintf(b, "%s = %s\n", o.key, o.example)
	case o.def == "" && o.defDoc == "":
		fmt.Fprintf(b, "#%s = <None>\n", o.key)
	case o.def == "":
		fmt.Fprintf(b, "#%s =\n", o.key)
	default:
		fmt.Fprintf(b, "#%s = %s\n", o.key, o.def)
	}
}

// wrapComment breaks text into "# " lines of at most 79 characters.
func wrapComment(text string) string {
	var b strings.Builder
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > 79 && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	b.WriteString(line + "\n")
	return b.String()
}
