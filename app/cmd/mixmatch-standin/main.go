// mixmatch-standin plays a remote cloud for `make demo` and `make e2e`, where no
// second OpenStack can run: a Keystone service provider behind a SAML2 ECP endpoint
// (verifying the local Keystone's assertions with gosaml2) and its Glance and Cinder.
// It prints the URLs to register as KEY=VALUE lines, then serves until SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"mixmatch/app/k2k/k2ktest"
)

func main() {
	metadata := flag.String("idp-metadata", "", "URL of the local Keystone's SAML metadata")
	volume := flag.String("volume", "", "id of a volume to hold in every project")
	flag.Parse()
	if *metadata == "" {
		fmt.Fprintln(os.Stderr, "mixmatch-standin: --idp-metadata is required")
		os.Exit(2)
	}
	sp := k2ktest.NewSP(*metadata)
	cloud := k2ktest.NewCloud(sp.ValidToken)
	if *volume != "" {
		for _, p := range sp.Projects {
			cloud.AddVolume(*volume, "remote-volume", p.ID)
		}
	}
	fmt.Printf("STANDIN_SP_URL=%s\nSTANDIN_AUTH_URL=%s\nSTANDIN_ENDPOINT=%s\nSTANDIN_PROJECT_ID=%s\n",
		sp.SPURL(), sp.AuthURL(), cloud.Server.URL, sp.Projects[0].ID)
	os.Stdout.Sync()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
}
