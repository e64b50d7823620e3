#!/usr/bin/env bash
# make fuzz: runs every Go fuzz target (func FuzzXxx in app/**/*_test.go) for FUZZTIME
# each, one after the other, then prints one table. A target that fails leaves its
# input in the package's testdata/fuzz/, where `go test ./app/...` replays it from
# then on; commit it with the fix. Exits non-zero if any target failed.
#
#   FUZZTIME=30s          how long each target runs (a count such as 10000x works too)
#   FUZZMINIMIZETIME=5s   how long a new input is minimised; go's default of 60s can
#                         eat a short run whole
#   FUZZPARALLEL=2        fuzzing workers per target
#   scripts/fuzz.sh [NAME...]   only the targets with these names
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

targets=()
while IFS= read -r file; do
	while IFS= read -r name; do
		targets+=("./$(dirname "$file") $name")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(grep -rl --include='*_test.go' '^func Fuzz' app | sort)

if [ "$#" -gt 0 ]; then
	wanted=" $* "
	selected=()
	for t in "${targets[@]}"; do
		[[ $wanted == *" ${t#* } "* ]] && selected+=("$t")
	done
	targets=("${selected[@]}")
fi
if [ "${#targets[@]}" -eq 0 ]; then
	log "no fuzz targets found"
	exit 1
fi

rows=()
failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log="$logs/$name.log"
	echo "== $name ($pkg)" >&2
	start=$(date +%s)
	if go test -run '^$' -fuzz "^$name\$" -fuzztime "${FUZZTIME:-30s}" \
		-fuzzminimizetime "${FUZZMINIMIZETIME:-5s}" -parallel "${FUZZPARALLEL:-2}" "$pkg" 2>&1 | tee "$log" >&2; then
		result=ok
	else
		failed=1
		# go test names the input relative to the package directory.
		input=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log" | tail -n 1)
		if [ -n "$input" ]; then
			result="FAILED ${pkg#./}/$input"
		else
			result="FAILED (no input written: build error or timeout, see the output above)"
		fi
	fi
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^fuzz: elapsed: .*, execs: \([0-9]*\) .*/\1/p' "$log" | tail -n 1)
	rows+=("$name|${pkg#./}|${secs}s|${execs:--}|$result")
done

echo
printf '%-20s %-16s %6s %10s  %s\n' target package time execs result
for row in "${rows[@]}"; do
	IFS='|' read -r name pkg secs execs result <<<"$row"
	printf '%-20s %-16s %6s %10s  %s\n' "$name" "$pkg" "$secs" "$execs" "$result"
done
exit "$failed"
