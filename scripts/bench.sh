#!/usr/bin/env bash
# make bench: runs the Go benchmarks and prints one table, then the rig of
# app/benchrig: the real mixmatch-fcgi, alone and behind Apache as httpd/ ships it,
# against the backend directly, nginx, Apache's mod_proxy_http and a bare Go
# reverse proxy (app/benchrig/bareproxy, over HTTP and behind the same Apache)
# measured in the same run, printed as ratios against README.rst's targets. Nothing here fails on a
# slow machine; a wrong answer fails it.
#
#   BENCHTIME         Go benchmark time of the store's benchmarks (1s)
#   BENCH_DURATION    each wrk run of the rig (10s)
#   BENCH_STREAM_MIB  the image the rig streams up and down (512)
#   BENCH_HOLD        a file: the rig starts everything, prints each URL and the
#                     worker's pid, and waits while the file exists, for wrk, perf
#                     or strace by hand
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
missing=()
for tool in wrk:wrk nginx:nginx-light apache2:apache2; do
	command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[ ${#missing[@]} = 0 ] || apt_install --no-install-recommends "${missing[@]}"
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

# A list over 16 SPs against one (target: within 1.2x), from BenchmarkAggregate.
awk '/^BenchmarkAggregate\/(1|16)SPs/ { for (i = 3; i < NF; i += 2) if ($(i+1) == "ms/list") t[$1 ~ /16SPs/] = $i }
END { if (t[0] > 0) printf "\naggregated list, 16 SPs / 1 SP: %.2f (target <= 1.2)\n", t[1] / t[0] }' "$out"

# The rig's table: ratios to references measured in the same run.
go test -tags bench -run '^TestRig$' -count=1 -timeout 30m -v ./app/benchrig/ |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok '
