#!/usr/bin/env bash
# make e2e: the built binaries driven as an operator drives them: db_sync, the
# mappings commands, a worker on plain HTTP answered with curl, SIGTERM. The real
# federation (Keystone, Glance, Apache, RabbitMQ) joins this script in later work.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
worker=
cleanup() {
	[ -n "$worker" ] && kill "$worker" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "e2e: FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "e2e: ok: $*"; }

conf=$work/mixmatch.conf
bin/mixmatch-manage config-sample |
	sed "s|^#connection = .*|connection = sqlite:///$work/mixmatch.db|" >"$conf"

bin/mixmatch-manage --config-file "$conf" db_sync | grep -q "at version" || fail "db_sync"
ok "db_sync"

bin/mixmatch-manage --config-file "$conf" mappings add images 5f0c1a2b-0000-4000-8000-00000000000a default 8a1e >/dev/null
sqlite3 "$work/mixmatch.db" "SELECT resource_sp FROM resource_mapping WHERE resource_id = '5f0c1a2b00004000800000000000000a'" |
	grep -qx default || fail "mapping not visible to plain SQL"
ok "mappings add, read back with sqlite3"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bin/mixmatch-fcgi --config-file "$conf" --http "127.0.0.1:$port" 2>"$work/worker.log" &
worker=$!
for _ in $(seq 1 100); do
	grep -q "mixmatch-fcgi serving" "$work/worker.log" && break
	sleep 0.1
done
grep -q "mixmatch-fcgi serving" "$work/worker.log" || fail "worker did not start: $(cat "$work/worker.log")"
code=$(curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$port/compute/v2.1/servers")
[ "$code" = 404 ] && grep -q '"code":404' "$work/body" || fail "GET /compute answered $code $(cat "$work/body")"
ok "worker answers an unknown service with a JSON 404"

kill -TERM "$worker"
wait "$worker" || fail "worker exited with $? after SIGTERM"
worker=
ok "worker stops cleanly on SIGTERM"
echo "$pass passed, 0 failed"
