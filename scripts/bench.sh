#!/usr/bin/env bash
# make bench: runs the Go benchmarks and prints one table. Targets are stated beside
# each issue's numbers in README.rst; nothing here fails on a slow machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-2s}" ./... | tee "$out" >&2
echo
printf '%-44s %14s %14s %12s %10s\n' benchmark ns/op ops/s B/op allocs/op
awk '/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	ns = ""; bytes = ""; allocs = ""
	for (i = 3; i < NF; i++) {
		if ($(i+1) == "ns/op") ns = $i
		if ($(i+1) == "B/op") bytes = $i
		if ($(i+1) == "allocs/op") allocs = $i
	}
	printf "%-44s %14.0f %14.0f %12s %10s\n", name, ns, (ns > 0 ? 1e9 / ns : 0), bytes, allocs
}' "$out"
