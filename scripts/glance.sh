#!/usr/bin/env bash
# A real Glance (Debian's glance-api) on loopback for the local cloud: file store,
# SQLite, keystonemiddleware against the Keystone of scripts/keystone.sh, and
# notifications to the local RabbitMQ through oslo.messaging (driver messagingv2).
#
#   scripts/glance.sh start DIR KEYSTONE_DIR   prints GLANCE_URL=... (also in DIR/env)
#   scripts/glance.sh stop DIR
set -euo pipefail

cmd=${1:-}
dir=${2:-}
log() { printf 'glance.sh: %s\n' "$*" >&2; }
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR KEYSTONE_DIR | stop DIR" >&2; exit 2; }

stop() {
	if [ -f "$dir/glance.pid" ]; then
		kill "$(cat "$dir/glance.pid")" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$(cat "$dir/glance.pid")" 2>/dev/null || break; sleep 0.1; done
		rm -f "$dir/glance.pid"
	fi
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
keystone_dir=${3:?KEYSTONE_DIR missing}
# shellcheck disable=SC1091
. "$keystone_dir/env"

if ! command -v glance-api >/dev/null; then
	[ "$(id -u)" = 0 ] || { log "glance-api is missing and this is not root"; exit 1; }
	log "installing glance-api (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends glance-api >/dev/null
fi

mkdir -p "$dir/images"
dir=$(cd "$dir" && pwd)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $port
workers = 1
use_stderr = false
log_file = $dir/glance-api.log
transport_url = rabbit://guest:guest@127.0.0.1:5672/
[database]
connection = sqlite:///$dir/glance.db
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $dir/images/
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = admin
password = $KEYSTONE_ADMIN_PASSWORD
project_name = admin
user_domain_id = default
project_domain_id = default
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[oslo_messaging_notifications]
driver = messagingv2
[oslo_concurrency]
lock_path = $dir/lock
EOF

glance-manage --config-file "$dir/glance-api.conf" db_sync >>"$dir/manage.log" 2>&1 ||
	{ log "glance-manage db_sync failed; see $dir/manage.log"; exit 1; }
/usr/bin/python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$dir/glance.db"
nohup glance-api --config-file "$dir/glance-api.conf" >"$dir/glance-api.out" 2>&1 &
echo $! >"$dir/glance.pid"

url="http://127.0.0.1:$port"
# A server start-up, bounded at 60 s.
for _ in $(seq 1 600); do
	curl -s -o /dev/null "$url/versions" && break
	kill -0 "$(cat "$dir/glance.pid")" 2>/dev/null || break
	sleep 0.1
done
curl -s -o /dev/null "$url/versions" || { log "glance-api did not start; see $dir/glance-api.out and .log"; stop; exit 1; }
echo "GLANCE_URL=$url" | tee "$dir/env"
