// mixmatch-standin plays a remote cloud for `make demo` and `make e2e`, where no
// second OpenStack can run: a Keystone service provider behind a SAML2 ECP endpoint
// (verifying the local Keystone's assertions with gosaml2) and its Glance and Cinder
// (the tests' fake cloud, honouring the SP's tokens). It prints the URLs to register
// as KEY=VALUE lines, then serves until SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"mixmatch/app/fakecloud"
	"mixmatch/app/k2k/k2ktest"
)

func main() {
	metadata := flag.String("idp-metadata", "", "URL of the local Keystone's SAML metadata")
	volume := flag.String("volume", "", "id of a volume to hold in the federated project")
	flag.Parse()
	if *metadata == "" {
		fmt.Fprintln(os.Stderr, "mixmatch-standin: --idp-metadata is required")
		os.Exit(2)
	}
	sp := k2ktest.NewSP(*metadata)
	cloud := fakecloud.New(fakecloud.Options{Name: "standin", Tokens: sp.ValidToken})
	if *volume != "" {
		// An id is one volume in one project, as in Cinder.
		cloud.Add(fakecloud.Volumes, sp.Projects[0].ID, *volume, map[string]any{"name": "remote-volume"})
	}
	fmt.Printf("STANDIN_SP_URL=%s\nSTANDIN_AUTH_URL=%s\nSTANDIN_ENDPOINT=%s\nSTANDIN_PROJECT_ID=%s\n",
		sp.SPURL(), sp.AuthURL(), cloud.URL(), sp.Projects[0].ID)
	os.Stdout.Sync()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
}
