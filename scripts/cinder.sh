#!/usr/bin/env bash
# A real Cinder (Debian's cinder-api, cinder-scheduler and cinder-volume) on loopback,
# for either cloud of the federation: keystonemiddleware against the Keystone of
# KEYSTONE_ENV (the env file of keystone.sh or sp-keystone.sh), one backend with
# Cinder's own FakeLoggingVolumeDriver (shipped in python3-cinder: volumes,
# snapshots, attachments and transfers work at the API level, no storage is
# touched but a file per volume created from an image, DIR/volumes/volume-ID, which
# holds the image's bytes: see cinder-run.py), and notifications through oslo.messaging (driver messagingv2) on
# TRANSPORT_URL, which is also the RPC bus between the three services. Everything it
# writes is under DIR.
#
#   scripts/cinder.sh start DIR KEYSTONE_ENV TRANSPORT_URL
#                               prints CINDER_URL=... (also in DIR/env): the endpoint
#                               without version or project
#   scripts/cinder.sh stop DIR
#
# start begins from an empty DIR: one from an earlier start is stopped and wiped,
# any other non-empty one refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start DIR KEYSTONE_ENV TRANSPORT_URL | stop DIR" >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
services=(api scheduler volume)
here=$(cd "$(dirname "$0")" && pwd)

# The three side by side: each takes seconds to wind down (oslo.service stops its
# workers first).
stop() {
	local abs s
	abs=$(realpath -m "$dir")
	for s in "${services[@]}"; do
		stop_pidfile "$abs/cinder-$s.pid" "cinder-run.py $s --config-file $abs/cinder.conf " &
	done
	wait
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || usage
keystone_env=${3:-}
transport_url=${4:-}
[ -f "$keystone_env" ] && [ -n "$transport_url" ] || usage
# shellcheck disable=SC1090
. "$keystone_env"

if ! command -v cinder-api >/dev/null || ! command -v cinder-scheduler >/dev/null || ! command -v cinder-volume >/dev/null; then
	apt_install --no-install-recommends cinder-api cinder-scheduler cinder-volume
fi

mark=.mixmatch-cinder
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
dir=$(cd "$dir" && pwd)
port=$(free_port)
url="http://127.0.0.1:$port"

# keystoneauth logs each token keystonemiddleware validates, as {SHA256}<hash of the
# id>, at debug level: make e2e reads that to tell which tokens reached which cloud.
# The other loggers keep oslo.log's default levels.
cat >"$dir/cinder.conf" <<EOF
[DEFAULT]
use_stderr = false
state_path = $dir
default_log_levels = amqp=WARN,amqplib=WARN,sqlalchemy=WARN,oslo.messaging=INFO,oslo_messaging=INFO,iso8601=WARN,urllib3.connectionpool=WARN,keystonemiddleware=WARN,routes.middleware=WARN,stevedore=WARN,taskflow=WARN,keystoneauth=WARN,keystoneauth.session=DEBUG,oslo_policy=INFO
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $port
osapi_volume_workers = 1
api_paste_config = /etc/cinder/api-paste.ini
auth_strategy = keystone
transport_url = $transport_url
enabled_backends = fake
# The scheduler waits this long at most for the volume service's first report;
# start-up below waits for that report itself.
scheduler_driver_init_wait_time = 30
[database]
connection = sqlite:///$dir/cinder.db
[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = admin
password = $KEYSTONE_ADMIN_PASSWORD
project_name = admin
user_domain_id = default
project_domain_id = default
[oslo_messaging_notifications]
driver = messagingv2
[oslo_concurrency]
lock_path = $dir/lock
[coordination]
backend_url = file://$dir/coordination
EOF

cinder-manage --config-file "$dir/cinder.conf" db sync >>"$dir/manage.log" 2>&1 ||
	{ log "cinder-manage db sync failed; see $dir/manage.log"; exit 1; }
# WAL: three processes share the file; a reader does not lock out a writer.
sqlite_wal "$dir/cinder.db"
# Through cinder-run.py, which mends Debian 12's Cinder for Debian 12's oslo.messaging
# (every notification failed); each service logs to a file of its own.
for s in "${services[@]}"; do
	nohup /usr/bin/python3 "$here/cinder-run.py" "$s" --config-file "$dir/cinder.conf" \
		--log-file "$dir/cinder-$s.log" >"$dir/cinder-$s.out" 2>&1 &
	echo $! >"$dir/cinder-$s.pid"
done

# Ready once the scheduler knows the volume service's pool: before that a volume
# create would wait, or fail with "No valid backend". Asked through the API as the
# admin, which also shows that the API validates tokens.
if ! admin=$(admin_token "$KEYSTONE_URL" "$KEYSTONE_ADMIN_PASSWORD"); then
	log "no admin token from $KEYSTONE_URL"
	stop
	exit 1
fi
read -r token project <<<"$admin"
ready() { curl -sf -H "X-Auth-Token: $token" "$url/v3/$project/scheduler-stats/get_pools" | grep -q '"name"'; }
# Settled once ready, or early once a service has died.
all_alive() {
	local s
	for s in "${services[@]}"; do alive "$(cat "$dir/cinder-$s.pid")" || return 1; done
}
settled() { ready || ! all_alive; }
until_ready 90 settled || true
if ! ready; then
	log "cinder did not become ready at $url; see $dir/*.log and $dir/*.out"
	stop
	exit 1
fi
# What a test suite configures for this backend (tempest's [volume] backend_names,
# storage_protocol): the fake driver's own values.
{
	echo "CINDER_URL=$url"
	echo "CINDER_BACKEND_NAME=fake"
	echo "CINDER_STORAGE_PROTOCOL=fake"
	echo "CINDER_DIR=$dir"
} | tee "$dir/env"
