#!/usr/bin/env bash
# make bench-load: the real worker and ingester under a steady mixed API load and a
# steady notification flow (app/loadtest). LOAD_DURATION (default 10m), LOAD_RATE
# (requests/s, default 200) and LOAD_NOTIFY_RATE (notifications/s, default 500) set
# the run; it fails on any check and prints a summary table either way. RabbitMQ must
# answer on 127.0.0.1:5672 (scripts/test-services.sh).
#
# LOAD_OVERLOAD=2,5 runs the overload mode instead (app/loadtest/overload_test.go):
# it finds the rate the worker sustains, holds each factor of it for LOAD_STEP
# (15s), then the sustained rate again, and prints the share shed, the served p99
# (as the client saw it, as the worker timed it, and the worker's own part: less
# its wait on the clouds), the slowest answer, the peak RSS and open descriptors
# of each phase, while the clouds publish LOAD_NOTIFY_RATE (500) notifications/s
# that the ingester must all handle. LOAD_SUSTAINED=R takes R as the sustained
# rate, for runs that compare.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LOAD_OVERLOAD:-}" ]; then
	exec go test -tags load -run '^TestOverload$' -count=1 -timeout 30m -v ./app/loadtest/
fi
duration=${LOAD_DURATION:-10m}
export LOAD_DURATION=$duration
# Go reads "10m10m" as 20m: the run, plus ten minutes for building, start-up, the
# drain and the checks.
exec go test -tags load -run '^TestLoad$' -count=1 -timeout "${duration}10m" -v ./app/loadtest/
