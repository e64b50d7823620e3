#!/usr/bin/env bash
# A small federation on loopback, out of real parts where they can run here:
#   - the local cloud (IdP): Debian's keystone (scripts/keystone.sh) and glance-api
#     (scripts/glance.sh), notifying the local RabbitMQ in a virtual host of the
#     federation's own;
#   - mixmatch: two mixmatch-fcgi workers behind real Apache (httpd/mixmatch.conf) on
#     loopback, and mixmatch-ingester listening to the local cloud's notifications;
#   - the catalog's image and volume endpoints replaced by mixmatch's, as an operator
#     does it;
#   - a remote cloud "remote1": bin/mixmatch-standin (a Keystone SP verifying the
#     local Keystone's SAML assertions, and stand-ins of its Glance and Cinder),
#     registered in the local Keystone as service provider remote1.
#
#   scripts/federation.sh start DIR   start it all; prints the environment (DIR/env)
#   scripts/federation.sh stop DIR    stop it and delete its RabbitMQ virtual host;
#                                     DIR keeps the logs
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

# The queues the federation fills on the shared RabbitMQ (the ingester's durable
# one, Glance's notifications.info) live in a virtual host named after DIR, and go
# with it at stop: nothing keeps filling after the consumers are gone. Named after
# DIR rather than chosen at random, so that a start finds one a crash left.
vhost_of() { printf 'mixmatch-federation-%s' "$(printf %s "$1" | sha256sum | cut -c1-12)"; }
delete_vhost() {
	if rabbitmqctl -q list_vhosts name | grep -qxF "$1"; then
		rabbitmqctl -q delete_vhost "$1" >/dev/null
	fi
}

stop() {
	local abs
	# -m: a DIR removed by hand may still have left its virtual host.
	abs=$(realpath -m "$dir")
	stop_pidfile "$abs/apache.pid" "-f $abs/apache2.conf "
	stop_pidfile "$abs/ingester.pid" "--config-file $abs/mixmatch.conf "
	stop_pidfile "$abs/worker-1.pid" "--config-file $abs/mixmatch.conf "
	stop_pidfile "$abs/worker-2.pid" "--config-file $abs/mixmatch.conf "
	stop_pidfile "$abs/standin.pid" "$repo/bin/mixmatch-standin "
	[ -d "$dir/glance" ] && scripts/glance.sh stop "$dir/glance"
	[ -d "$dir/keystone" ] && scripts/keystone.sh stop "$dir/keystone"
	delete_vhost "$(vhost_of "$abs")"
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

mark=.mixmatch-federation
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
dir=$(cd "$dir" && pwd)
trap 'log "start-up failed; stopping what started"; stop' ERR

scripts/test-services.sh
command -v openstack >/dev/null || apt_install --no-install-recommends python3-openstackclient
vhost=$(vhost_of "$dir")
delete_vhost "$vhost"
rabbitmqctl -q add_vhost "$vhost" >/dev/null
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
bus=rabbit://guest:guest@127.0.0.1:5672/$vhost
scripts/keystone.sh start "$dir/keystone" >/dev/null
scripts/glance.sh start "$dir/glance" "$dir/keystone" "$bus" >/dev/null
# shellcheck disable=SC1091
. "$dir/keystone/env"
# shellcheck disable=SC1091
. "$dir/glance/env"
export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=admin OS_PASSWORD=$KEYSTONE_ADMIN_PASSWORD OS_PROJECT_NAME=admin \
	OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public

# The remote cloud.
remote_volume=7c0ffee0-0000-4000-8000-00000000beef
"$repo/bin/mixmatch-standin" --idp-metadata "$KEYSTONE_URL/OS-FEDERATION/saml2/metadata" --volume "$remote_volume" \
	>"$dir/standin.env" 2>"$dir/standin.log" &
echo $! >"$dir/standin.pid"
until_ready 30 grep -q STANDIN_PROJECT_ID "$dir/standin.env"
# shellcheck disable=SC1091
. "$dir/standin.env"
openstack service provider create --auth-url "$STANDIN_AUTH_URL" --service-provider-url "$STANDIN_SP_URL" \
	--enable remote1 >/dev/null

# mixmatch.
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
enabled_services = image
messagebus = $bus
notification_queue = mixmatch.notifications.demo-$port
notification_exchanges = glance
[sp_remote1]
sp_name = remote1
image_endpoint = $STANDIN_ENDPOINT
volume_endpoint = $STANDIN_ENDPOINT
enabled_services = image, volume
EOF
bin/mixmatch-manage --config-file "$dir/mixmatch.conf" db_sync >/dev/null
chmod 755 "$dir"
# Each worker serves its metrics and detailed health check on a loopback port of
# its own: operators only, never through Apache.
metrics_ports=()
for i in 1 2; do
	metrics_ports[i]=$(free_port)
	bin/mixmatch-fcgi --config-file "$dir/mixmatch.conf" --fcgi "unix:$dir/fcgi-$i.sock" \
		--metrics "127.0.0.1:${metrics_ports[i]}" 2>"$dir/worker-$i.log" &
	echo $! >"$dir/worker-$i.pid"
	until_ready 30 test -S "$dir/fcgi-$i.sock"
	chmod 666 "$dir/fcgi-$i.sock" # Apache's children run as www-data
done
bin/mixmatch-ingester --config-file "$dir/mixmatch.conf" 2>"$dir/ingester.log" &
echo $! >"$dir/ingester.pid"
until_ready 30 grep -q "consuming notifications" "$dir/ingester.log"

mods=/usr/lib/apache2/modules
cat >"$dir/apache2.conf" <<EOF
ServerRoot $dir
PidFile $dir/apache.pid
DefaultRuntimeDir $dir
ServerName 127.0.0.1
User www-data
Group www-data
ErrorLog $dir/apache-error.log
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

# The catalog: image and volume point at mixmatch, as an operator replaces them.
openstack service create --name glance image -f value -c id >/dev/null
openstack service create --name cinderv3 volumev3 -f value -c id >/dev/null
for iface in public internal admin; do
	openstack endpoint create --region RegionOne image "$iface" "$mixmatch/image" >/dev/null
	openstack endpoint create --region RegionOne volumev3 "$iface" "$mixmatch/volume/v3/%(project_id)s" >/dev/null
done
trap - ERR

{
	echo "MIXMATCH_URL=$mixmatch"
	echo "MIXMATCH_METRICS_URL=http://127.0.0.1:${metrics_ports[1]}"
	echo "MIXMATCH_CONF=$dir/mixmatch.conf"
	echo "GLANCE_URL=$GLANCE_URL"
	echo "REMOTE_VOLUME=$remote_volume"
	echo "RABBITMQ_VHOST=$vhost"
	cat "$dir/keystone/env" "$dir/standin.env"
} | tee "$dir/env"
