#!/usr/bin/env bash
# A federation of two real clouds on loopback, and mixmatch in front of them:
#   - the local cloud (the Identity Provider): Debian's keystone (scripts/keystone.sh),
#     glance-api (scripts/glance.sh) and cinder-api, -scheduler and -volume
#     (scripts/cinder.sh), notifying in a RabbitMQ virtual host of its own, and Nova
#     (nova-api, -conductor, -scheduler and -compute with the fake driver) with
#     Placement (scripts/nova.sh), whose RPC is on that virtual host too;
#   - the remote cloud "remote1" (a K2K Service Provider): keystone behind Apache with
#     mod_shib and mod_wsgi (scripts/sp-keystone.sh), registered in the local Keystone
#     as service provider remote1, and its own glance-api and Cinder (the same scripts),
#     notifying in another virtual host;
#   - mixmatch: two mixmatch-fcgi workers behind real Apache (httpd/mixmatch.conf), and
#     mixmatch-ingester listening to both clouds' notifications;
#   - the local catalog's image and volume endpoints replaced by mixmatch's, as an
#     operator does it, so that Nova and Cinder reach Glance and Cinder through
#     mixmatch too; the remote catalog names its own Glance and Cinder.
#
#   scripts/federation.sh start DIR   start it all; prints the environment (DIR/env)
#                                     and how long the start took
#   scripts/federation.sh stop DIR    stop it and delete its RabbitMQ virtual hosts;
#                                     DIR keeps the logs
#
# The local cloud lives in DIR/{keystone,glance,cinder,nova}, the remote one in
# DIR/remote1/{keystone,glance,cinder}; mixmatch's files are in DIR.
#
# start builds every run from nothing: a DIR left by an earlier start is stopped and
# wiped first, since its Keystone would answer 409 to a second demo project and
# service provider. A non-empty DIR that start did not make is refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
repo=$(pwd)
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# Each cloud notifies in a virtual host of its own on the shared RabbitMQ, as two
# clouds have two buses; the queues filled there (the ingester's durable one,
# notifications.info, Cinder's RPC) go with it at stop: nothing keeps filling after
# the consumers are gone. Named after DIR and the cloud rather than chosen at random,
# so that a start finds one a crash left.
vhost_of() { printf 'mixmatch-federation-%s-%s' "$(printf %s "$1" | sha256sum | cut -c1-12)" "$2"; }
delete_vhost() {
	if rabbitmqctl -q list_vhosts name | grep -qxF "$1"; then
		rabbitmqctl -q delete_vhost "$1" >/dev/null
	fi
}
clouds=(local remote1)

stop() {
	local abs c
	# -m: a DIR removed by hand may still have left its virtual hosts.
	abs=$(realpath -m "$dir")
	# Everything side by side: each service takes a moment to wind down.
	stop_pidfile "$abs/apache.pid" "-f $abs/apache2.conf " &
	stop_pidfile "$abs/ingester.pid" "--config-file $abs/mixmatch.conf " &
	stop_pidfile "$abs/worker-1.pid" "--config-file $abs/mixmatch.conf " &
	stop_pidfile "$abs/worker-2.pid" "--config-file $abs/mixmatch.conf " &
	if [ -d "$abs/nova" ]; then scripts/nova.sh stop "$abs/nova" & fi
	for c in "$abs" "$abs/remote1"; do
		if [ -d "$c/cinder" ]; then scripts/cinder.sh stop "$c/cinder" & fi
		if [ -d "$c/glance" ]; then scripts/glance.sh stop "$c/glance" & fi
	done
	if [ -d "$abs/remote1/keystone" ]; then scripts/sp-keystone.sh stop "$abs/remote1/keystone" & fi
	if [ -d "$abs/keystone" ]; then scripts/keystone.sh stop "$abs/keystone" & fi
	wait
	for c in "${clouds[@]}"; do delete_vhost "$(vhost_of "$abs" "$c")"; done
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

SECONDS=0
mark=.mixmatch-federation
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/remote1"
trap 'log "start-up failed at line $LINENO ($BASH_COMMAND); stopping what started"; stop' ERR

scripts/test-services.sh
command -v openstack >/dev/null || apt_install --no-install-recommends python3-openstackclient
declare -A bus
for c in "${clouds[@]}"; do
	vhost=$(vhost_of "$dir" "$c")
	delete_vhost "$vhost"
	rabbitmqctl -q add_vhost "$vhost" >/dev/null
	rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
	bus[$c]=rabbit://guest:guest@127.0.0.1:5672/$vhost
done

# The services start side by side where they can: each waits for little but its own
# Keystone, and Python's start-up dominates. waitall fails if any of them failed.
jobs_started=()
background() { "$@" >/dev/null & jobs_started+=($!); }
waitall() {
	local pid failed=0
	for pid in "${jobs_started[@]}"; do wait "$pid" || failed=1; done
	jobs_started=()
	return "$failed"
}
# The remote cloud's Glance and Cinder wait for its Keystone only.
remote_cloud() {
	local env=$dir/remote1/keystone/env
	scripts/sp-keystone.sh start "$dir/remote1/keystone" "$dir/keystone/env" >/dev/null || return 1
	background scripts/glance.sh start "$dir/remote1/glance" "$env" "${bus[remote1]}"
	background scripts/cinder.sh start "$dir/remote1/cinder" "$env" "${bus[remote1]}"
	waitall
}
scripts/keystone.sh start "$dir/keystone" >/dev/null
background remote_cloud
background scripts/glance.sh start "$dir/glance" "$dir/keystone/env" "${bus[local]}"
background scripts/cinder.sh start "$dir/cinder" "$dir/keystone/env" "${bus[local]}"
background scripts/nova.sh start "$dir/nova" "$dir/keystone/env" "${bus[local]}"
waitall

# shellcheck disable=SC1091
. "$dir/keystone/env"
GLANCE_URL=$(env_value "$dir/glance/env" GLANCE_URL)
CINDER_URL=$(env_value "$dir/cinder/env" CINDER_URL)
remote_env=$dir/remote1/keystone/env
REMOTE1_KEYSTONE_URL=$(env_value "$remote_env" KEYSTONE_URL)
REMOTE1_GLANCE_URL=$(env_value "$dir/remote1/glance/env" GLANCE_URL)
REMOTE1_CINDER_URL=$(env_value "$dir/remote1/cinder/env" CINDER_URL)

# The remote cloud in the local Keystone, as the K2K service provider remote1.
OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=admin OS_PASSWORD=$KEYSTONE_ADMIN_PASSWORD OS_PROJECT_NAME=admin \
	OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3 \
	openstack service provider create --auth-url "$(env_value "$remote_env" SP_AUTH_URL)" \
	--service-provider-url "$(env_value "$remote_env" SP_URL)" --enable remote1 >/dev/null
# The remote catalog names the remote services, for the remote cloud's own users.
background catalog_add "$remote_env" image glance "$REMOTE1_GLANCE_URL"
background catalog_add "$remote_env" volumev3 cinderv3 "$REMOTE1_CINDER_URL/v3/%(project_id)s"

# mixmatch. Glance publishes to the exchange glance, Cinder to openstack (its default
# control_exchange), on each cloud's bus.
port=$(free_port)
cat >"$dir/mixmatch.conf" <<EOF
[DEFAULT]
service_providers = default, remote1
aggregation = true
search_by_broadcast = true
debug = true
[database]
connection = sqlite:///$dir/mixmatch.db
[auth]
auth_url = $KEYSTONE_URL
username = admin
password = $KEYSTONE_ADMIN_PASSWORD
project_name = admin
[sp_default]
auth_url = $KEYSTONE_URL
image_endpoint = $GLANCE_URL
volume_endpoint = $CINDER_URL
enabled_services = image, volume
messagebus = ${bus[local]}
notification_exchanges = glance, openstack
[sp_remote1]
sp_name = remote1
auth_url = $REMOTE1_KEYSTONE_URL
image_endpoint = $REMOTE1_GLANCE_URL
volume_endpoint = $REMOTE1_CINDER_URL
enabled_services = image, volume
messagebus = ${bus[remote1]}
notification_exchanges = glance, openstack
# Nova's detach of a remote volume: remote1's Cinder deletes an attachment Nova holds
# for a service only, and has no Nova of its own to ask. sp-keystone.sh gives the
# admin, mixmatch's account, the role service there.
service_token = k2k
EOF
bin/mixmatch-manage --config-file "$dir/mixmatch.conf" db_sync >/dev/null 2>>"$dir/manage.log" ||
	{ log "mixmatch-manage db_sync failed; see $dir/manage.log"; false; }
chmod 755 "$dir"
# Each worker serves its metrics and detailed health check on a loopback port of
# its own: operators only, never through Apache.
metrics_ports=()
for i in 1 2; do
	metrics_ports[i]=$(free_port)
	bin/mixmatch-fcgi --config-file "$dir/mixmatch.conf" --fcgi "unix:$dir/fcgi-$i.sock" \
		--metrics "127.0.0.1:${metrics_ports[i]}" >/dev/null 2>"$dir/worker-$i.log" &
	echo $! >"$dir/worker-$i.pid"
done
# Their standard output goes nowhere: one inherited by a daemon would keep the reader
# of start's output (make demo | tee ...) waiting after start has finished.
bin/mixmatch-ingester --config-file "$dir/mixmatch.conf" >/dev/null 2>"$dir/ingester.log" &
echo $! >"$dir/ingester.pid"
for i in 1 2; do
	until_ready 30 test -S "$dir/fcgi-$i.sock"
	chmod 666 "$dir/fcgi-$i.sock" # Apache's children run as www-data
done
# One consumer per cloud.
consuming() { [ "$(grep -c "consuming notifications" "$dir/ingester.log")" -ge 2 ]; }
until_ready 30 consuming || { log "the ingester does not consume both buses; see $dir/ingester.log"; false; }

mods=/usr/lib/apache2/modules
cat >"$dir/apache2.conf" <<EOF
ServerRoot $dir
PidFile $dir/apache.pid
DefaultRuntimeDir $dir
ServerName 127.0.0.1
User www-data
Group www-data
ErrorLog $dir/apache-error.log
# httpd/mixmatch.conf logs in the format Debian's apache2.conf defines.
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined
Define APACHE_LOG_DIR $dir
Define MIXMATCH_PORT $port
Define MIXMATCH_LISTEN 127.0.0.1:$port
Define MIXMATCH_RUNDIR $dir
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_fcgi_module $mods/mod_proxy_fcgi.so
LoadModule proxy_balancer_module $mods/mod_proxy_balancer.so
LoadModule slotmem_shm_module $mods/mod_slotmem_shm.so
LoadModule lbmethod_byrequests_module $mods/mod_lbmethod_byrequests.so
Include $repo/httpd/mixmatch.conf
EOF
apache2 -f "$dir/apache2.conf" -k start
mixmatch=http://127.0.0.1:$port
until_ready 30 curl -s -o /dev/null "$mixmatch/compute"

# The local catalog: image and volume point at mixmatch, as an operator replaces them.
background catalog_add "$dir/keystone/env" image glance "$mixmatch/image"
background catalog_add "$dir/keystone/env" volumev3 cinderv3 "$mixmatch/volume/v3/%(project_id)s"
waitall
trap - ERR

{
	echo "MIXMATCH_URL=$mixmatch"
	echo "MIXMATCH_METRICS_URL=http://127.0.0.1:${metrics_ports[1]}"
	echo "MIXMATCH_CONF=$dir/mixmatch.conf"
	echo "FEDERATION_DIR=$dir"
	# The local cloud: its Keystone (the catalog's image and volumev3 are mixmatch's),
	# its Glance and Cinder themselves, behind mixmatch, and its Nova and Placement.
	cat "$dir/keystone/env" "$dir/glance/env" "$dir/cinder/env" "$dir/nova/env"
	echo "RABBITMQ_VHOST=$(vhost_of "$dir" local)"
	# The remote cloud, the same keys prefixed: its Keystone (the SP; its catalog names
	# its own Glance and Cinder), its own user "demo", the project the local users
	# are given there (REMOTE1_SP_PROJECT_ID), its Glance and Cinder.
	sed 's/^/REMOTE1_/' "$remote_env" "$dir/remote1/glance/env" "$dir/remote1/cinder/env"
	echo "REMOTE1_RABBITMQ_VHOST=$(vhost_of "$dir" remote1)"
} >"$dir/env"
cat "$dir/env"
log "the federation started in $SECONDS s"
