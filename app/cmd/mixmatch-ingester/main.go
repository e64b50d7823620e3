// mixmatch-ingester consumes each cloud's notifications and records where resources live.
package main

import (
	"mixmatch/app/cmdline"
	"mixmatch/app/ingest"
)

func main() { cmdline.Main("mixmatch-ingester", ingest.Run) }
