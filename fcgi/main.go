// mixmatch-fcgi is the API worker: FastCGI behind Apache's mod_proxy_fcgi, or plain
// HTTP with --http.
package main

import (
	"mixmatch/app/cmdline"
	"mixmatch/app/worker"
)

func main() { cmdline.Main("mixmatch-fcgi", worker.Run) }
