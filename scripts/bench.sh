#!/usr/bin/env bash
# make bench: runs the Go benchmarks and prints one table. Each benchmark reports what
# its issue's target is about (latency, rates, K2K exchanges per 1,000 requests); the
# targets are in README.rst. Nothing here fails on a slow machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# package  pattern  benchtime
runs=(
	"./app/store/ . ${BENCHTIME:-1s}"
	# 1,000 requests exactly: the metric is exchanges per 1,000 requests.
	"./app/k2k/ K2KExchanges 1000x"
	# 2,000 timed GETs each way inside one run; the metric is the added latency.
	"./app/proxy/ MappedGET 1x"
	"./app/proxy/ Concurrent64 20000x"
	"./app/proxy/ Aggregate 20x"
	# A 20,000-notification backlog, then a steady 2,000/s, on the real RabbitMQ.
	"./app/ingest/ Ingest 1x"
	# 2 GiB up and 2 GiB down through a real worker process.
	"./app/cmdtest/ StreamingRSS 1x"
)
for run in "${runs[@]}"; do
	read -r pkg pattern benchtime <<<"$run"
	go test -run '^$' -bench "$pattern" -benchmem -benchtime "$benchtime" "$pkg" | tee -a "$out" >&2
done

echo
printf '%-40s %12s %12s %10s %8s  %s\n' benchmark ns/op ops/s B/op allocs other
awk '/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	ns = 0; bytes = "-"; allocs = "-"; other = ""
	for (i = 3; i < NF; i += 2) {
		unit = $(i+1)
		if (unit == "ns/op") ns = $i
		else if (unit == "B/op") bytes = $i
		else if (unit == "allocs/op") allocs = $i
		else other = other sprintf("%s %s  ", $i, unit)
	}
	printf "%-40s %12.0f %12.0f %10s %8s  %s\n", name, ns, (ns > 0 ? 1e9 / ns : 0), bytes, allocs, other
}' "$out"
