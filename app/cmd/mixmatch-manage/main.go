// mixmatch-manage is the operator's command: schema, sample configuration, mappings.
package main

import (
	"mixmatch/app/cmdline"
	"mixmatch/app/manage"
)

func main() { cmdline.Main("mixmatch-manage", manage.Run) }
