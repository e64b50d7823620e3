#!/usr/bin/env bash
# A real Glance (Debian's glance-api) on loopback, for either cloud of the federation:
# file store, SQLite, keystonemiddleware against the Keystone of KEYSTONE_ENV (the env
# file of scripts/keystone.sh or scripts/sp-keystone.sh, or the directory holding it),
# and notifications through oslo.messaging (driver messagingv2) to TRANSPORT_URL, by
# default the local RabbitMQ's / virtual host. Everything it writes is under DIR.
#
#   scripts/glance.sh start DIR KEYSTONE_ENV [TRANSPORT_URL]
#                                    prints GLANCE_URL=... (also in DIR/env)
#   scripts/glance.sh stop DIR
#
# start begins from an empty DIR: one from an earlier start is stopped and wiped,
# any other non-empty one refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR KEYSTONE_ENV [TRANSPORT_URL] | stop DIR" >&2; exit 2; }

stop() { stop_pidfile "$dir/glance.pid" "$(cd "$dir" 2>/dev/null && pwd)/glance-api.conf "; }
if [ "$cmd" = stop ]; then stop; exit 0; fi
keystone_env=${3:?KEYSTONE_ENV missing}
[ -d "$keystone_env" ] && keystone_env=$keystone_env/env
transport_url=${4:-rabbit://guest:guest@127.0.0.1:5672/}
# shellcheck disable=SC1090
. "$keystone_env"

command -v glance-api >/dev/null || apt_install --no-install-recommends glance-api

mark=.mixmatch-glance
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
mkdir -p "$dir/images" "$dir/staging"
dir=$(cd "$dir" && pwd)
port=$(free_port)
cat >"$dir/glance-api.conf" <<EOF
[DEFAULT]
# keystoneauth logs each token keystonemiddleware validates, as {SHA256}<hash of the
# id>, at debug level: make e2e reads that to tell which tokens reached which cloud.
# The other loggers keep oslo.log's default levels.
default_log_levels = amqp=WARN,amqplib=WARN,sqlalchemy=WARN,oslo.messaging=INFO,oslo_messaging=INFO,iso8601=WARN,urllib3.connectionpool=WARN,keystonemiddleware=WARN,routes.middleware=WARN,stevedore=WARN,taskflow=WARN,keystoneauth=WARN,keystoneauth.session=DEBUG,oslo_policy=INFO
bind_host = 127.0.0.1
bind_port = $port
workers = 1
use_stderr = false
log_file = $dir/glance-api.log
transport_url = $transport_url
# Image imports stage their data here; the default, /tmp/staging, is every Glance's.
node_staging_uri = file://$dir/staging/
# web-download would fetch from the internet, and copy-image needs several stores:
# of the default methods only glance-direct works in a single-store Glance on loopback.
enabled_import_methods = [glance-direct]
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
sqlite_wal "$dir/glance.db"
nohup glance-api --config-file "$dir/glance-api.conf" >"$dir/glance-api.out" 2>&1 &
echo $! >"$dir/glance.pid"

url="http://127.0.0.1:$port"
# Settled once it answers, or early once glance-api has died.
glance_settled() { curl -s -o /dev/null "$url/versions" || ! kill -0 "$(cat "$dir/glance.pid")"; }
until_ready 60 glance_settled || true
curl -s -o /dev/null "$url/versions" || { log "glance-api did not start; see $dir/glance-api.out and $dir/glance-api.log"; stop; exit 1; }
echo "GLANCE_URL=$url" | tee "$dir/env"
