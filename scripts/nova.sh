#!/usr/bin/env bash
# A real Nova (Debian's nova-api, nova-conductor, nova-scheduler and nova-compute) and
# Placement (placement-api) on loopback, for the local cloud of the federation:
# keystonemiddleware against the Keystone of KEYSTONE_ENV (keystone.sh's env file),
# SQLite databases (the API's, cell0's, cell1's and Placement's) and RPC on
# TRANSPORT_URL. nova-compute runs the fake driver (fake.ImageFakeDriver of
# scripts/nova-run.py: Nova's FakeDriver, which fetches each server's image from
# Glance and uploads its snapshots as a real driver does), so servers boot without
# a hypervisor. There is no Neutron: boot with --nic none.
#
# Nova finds Glance and Cinder in the catalog, as the user's token carries it: in the
# federation those are mixmatch's. It sends its service token (the user "nova", role
# "service", project "service") with every call to them ([service_user]). The
# Keystone gets: the role "service", the project "service", the user "nova", and the
# catalog's compute and placement services, replaced on every start. Nova gets the
# flavor "tiny" (64 MB, 1 vCPU, 1 GB disk). Everything it writes is under DIR.
#
#   scripts/nova.sh start DIR KEYSTONE_ENV TRANSPORT_URL
#                               prints NOVA_URL=... and PLACEMENT_URL=... (also in
#                               DIR/env)
#   scripts/nova.sh stop DIR    stops every process start started; DIR keeps the logs
#                               and databases, the Keystone its objects, and
#                               TRANSPORT_URL's virtual host the queues Nova declared
#                               (a federation's Keystone starts afresh each time, and
#                               federation.sh deletes its virtual hosts at stop)
#
# start begins from an empty DIR: one from an earlier start is stopped and wiped,
# any other non-empty one refused. Its Keystone objects are found again, not doubled.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start DIR KEYSTONE_ENV TRANSPORT_URL | stop DIR" >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
services=(api conductor scheduler compute)
here=$(cd "$(dirname "$0")" && pwd)

# All side by side: oslo.service stops its workers first, which takes seconds.
stop() {
	local abs s
	abs=$(realpath -m "$dir")
	for s in "${services[@]}"; do
		stop_pidfile "$abs/nova-$s.pid" "nova-run.py $s --config-file $abs/nova.conf " &
	done
	stop_pidfile "$abs/placement/uwsgi.pid" "OS_PLACEMENT_CONFIG_DIR=$abs/placement " &
	wait
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || usage
keystone_env=${3:-}
transport_url=${4:-}
[ -f "$keystone_env" ] && [ -n "$transport_url" ] || usage
# shellcheck disable=SC1090
. "$keystone_env"

# nova-compute needs a hypervisor package; nova-compute-ironic's is the one that
# brings neither QEMU nor libvirtd, which the fake driver has no use for.
if ! command -v nova-api >/dev/null || ! command -v nova-conductor >/dev/null || ! command -v nova-scheduler >/dev/null ||
	! command -v nova-compute >/dev/null || ! command -v placement-api >/dev/null || ! command -v uwsgi >/dev/null; then
	apt_install --no-install-recommends nova-api nova-conductor nova-scheduler nova-compute nova-compute-ironic \
		placement-api uwsgi-plugin-python3
fi

mark=.mixmatch-nova
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
mkdir -p "$dir/placement" "$dir/instances"
dir=$(cd "$dir" && pwd)
port=$(free_port)
placement_port=$(free_port)
url="http://127.0.0.1:$port/v2.1"
placement_url="http://127.0.0.1:$placement_port"
nova_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# The Keystone objects, found or made, and the catalog's compute and placement
# services replaced (a service's endpoints go with it): one Python process, as each
# openstack command costs a second or more of start-up.
if ! /usr/bin/python3 - "$KEYSTONE_URL" "$KEYSTONE_ADMIN_PASSWORD" "$nova_password" "$url" "$placement_url" \
	>"$dir/keystone.out" 2>&1 <<'EOF'; then
import json, sys, urllib.parse, urllib.request
keystone, admin_pw, nova_pw, nova_url, placement_url = sys.argv[1:]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(keystone + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("X-Subject-Token"), (json.load(r) if r.status != 204 else None)
token, _ = call("POST", "/auth/tokens?nocatalog", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": admin_pw}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
def find_or_make(kind, name, body):
    found = call("GET", "/%s?name=%s" % (kind, urllib.parse.quote(name)), None, token)[1][kind]
    if found:
        return found[0]["id"]
    return call("POST", "/" + kind, {kind[:-1]: dict(body, name=name)}, token)[1][kind[:-1]]["id"]
role = find_or_make("roles", "service", {})
project = find_or_make("projects", "service", {"domain_id": "default"})
user = find_or_make("users", "nova", {"domain_id": "default"})
call("PATCH", "/users/" + user, {"user": {"password": nova_pw}}, token)
call("PUT", "/projects/%s/users/%s/roles/%s" % (project, user, role), None, token)
for stype, name, endpoint in (("compute", "nova", nova_url), ("placement", "placement", placement_url)):
    for s in call("GET", "/services?type=" + stype, None, token)[1]["services"]:
        call("DELETE", "/services/" + s["id"], None, token)
    service = call("POST", "/services", {"service": {"type": stype, "name": name}}, token)[1]["service"]["id"]
    for iface in ("public", "internal", "admin"):
        call("POST", "/endpoints", {"endpoint": {"service_id": service, "interface": iface, "url": endpoint,
                                                 "region_id": "RegionOne"}}, token)
EOF
	log "registering Nova in $KEYSTONE_URL failed; see $dir/keystone.out"
	exit 1
fi

# The account keystonemiddleware validates tokens with, and Nova and Placement reach
# Placement with: the Keystone's admin, as for the clouds' Glance and Cinder.
admin_auth="auth_url = $KEYSTONE_URL
auth_type = password
username = admin
password = $KEYSTONE_ADMIN_PASSWORD
project_name = admin
user_domain_id = default
project_domain_id = default"

cat >"$dir/placement/placement.conf" <<EOF
[DEFAULT]
use_stderr = false
log_file = $dir/placement/placement.log
[api]
auth_strategy = keystone
[placement_database]
connection = sqlite:///$dir/placement/placement.db
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
$admin_auth
EOF

cat >"$dir/nova.conf" <<EOF
[DEFAULT]
use_stderr = false
state_path = $dir
instances_path = $dir/instances
my_ip = 127.0.0.1
transport_url = $transport_url
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $port
osapi_compute_workers = 1
compute_driver = fake.ImageFakeDriver
# No Neutron: nothing to refresh from it.
heal_instance_info_cache_interval = -1
# Glance's and Cinder's logs show the tokens they validate; Nova's own need not.
default_log_levels = amqp=WARN,amqplib=WARN,sqlalchemy=WARN,oslo.messaging=INFO,oslo_messaging=INFO,iso8601=WARN,urllib3.connectionpool=WARN,keystonemiddleware=WARN,routes.middleware=WARN,stevedore=WARN,taskflow=WARN,keystoneauth=WARN,oslo_policy=INFO,glanceclient=WARN
[conductor]
workers = 1
[scheduler]
workers = 1
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
$admin_auth
[placement]
region_name = RegionOne
valid_interfaces = public
$admin_auth
# Sent as X-Service-Token beside the user's token to Glance, Cinder (and Neutron):
# Cinder 21 deletes an attachment Nova holds only for a caller with it.
[service_user]
send_service_user_token = true
auth_url = $KEYSTONE_URL
auth_type = password
username = nova
password = $nova_password
project_name = service
user_domain_id = default
project_domain_id = default
# Glance and Cinder from the catalog the user's token carries: mixmatch's endpoints.
[glance]
valid_interfaces = public
[cinder]
catalog_info = volumev3::publicURL
os_region_name = RegionOne
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = $dir/lock
[vnc]
enabled = false
EOF

# The databases, for all but nova-compute, which reaches them through the conductor
# only: given the API database, it would reach out for every cell's services (and
# log an error where it may not).
cat >"$dir/nova-db.conf" <<EOF
[api_database]
connection = sqlite:///$dir/nova_api.db
[database]
connection = sqlite:///$dir/nova.db
EOF
with_db=(--config-file "$dir/nova.conf" --config-file "$dir/nova-db.conf")

# Each nova-manage costs seconds of Python start-up: Placement's database and
# server meanwhile.
placement() {
	placement-manage --config-file "$dir/placement/placement.conf" db sync >>"$dir/placement/manage.log" 2>&1 ||
		{ log "placement-manage db sync failed; see $dir/placement/manage.log"; return 1; }
	sqlite_wal "$dir/placement/placement.db"
	# One process, as for Keystone: several writing one SQLite file lock each other out.
	uwsgi --http-socket "127.0.0.1:$placement_port" --plugins python3 --wsgi-file "$(command -v placement-api)" \
		--master --processes 1 --threads 4 --lazy-apps --buffer-size 65535 --die-on-term \
		--add-header "Connection: close" --env "OS_PLACEMENT_CONFIG_DIR=$dir/placement" \
		--pidfile "$dir/placement/uwsgi.pid" --daemonize "$dir/placement/uwsgi.log" ||
		{ log "uwsgi did not start placement-api; see $dir/placement/uwsgi.log"; return 1; }
	until_ready 30 curl -sf "$placement_url" ||
		{ log "placement did not answer on $placement_url; see $dir/placement/*.log"; return 1; }
}
placement &
placement_pid=$!

manage() {
	nova-manage "${with_db[@]}" "$@" >>"$dir/manage.log" 2>&1 ||
		{ log "nova-manage $* failed; see $dir/manage.log"; return 1; }
}
# nova-manage api_db sync, cell_v2 map_cell0, cell_v2 create_cell --name cell1, db
# sync, in one Python process (scripts/nova-run.py db-setup).
nova_db() {
	/usr/bin/python3 "$here/nova-run.py" db-setup "sqlite:///$dir/nova_cell0.db" "${with_db[@]}" \
		>>"$dir/manage.log" 2>&1 || { log "setting up Nova's databases failed; see $dir/manage.log"; return 1; }
	local db
	for db in nova_api nova_cell0 nova; do sqlite_wal "$dir/$db.db"; done
}
if ! nova_db; then
	wait "$placement_pid" || true
	stop
	exit 1
fi
if ! wait "$placement_pid"; then stop; exit 1; fi

# Through nova-run.py, which brings the fake driver that moves image data and the
# empty Neutron client of a cloud without Neutron; each service logs to a file of its
# own.
for s in "${services[@]}"; do
	conf=("${with_db[@]}")
	[ "$s" = compute ] && conf=(--config-file "$dir/nova.conf")
	nohup /usr/bin/python3 "$here/nova-run.py" "$s" "${conf[@]}" \
		--log-file "$dir/nova-$s.log" >"$dir/nova-$s.out" 2>&1 &
	echo $! >"$dir/nova-$s.pid"
done

# The API as the admin: ready once it answers, and the compute host is mapped into
# cell1 (discover_hosts, once the compute service has registered its node).
if ! admin=$(admin_token "$KEYSTONE_URL" "$KEYSTONE_ADMIN_PASSWORD"); then
	log "no admin token from $KEYSTONE_URL"
	stop
	exit 1
fi
admin=${admin%% *} # the token; not the project
api() { curl -sf -H "X-Auth-Token: $admin" -H "Content-Type: application/json" -H "OpenStack-API-Version: compute 2.53" "$@"; }
all_alive() {
	local s
	for s in "${services[@]}"; do alive "$(cat "$dir/nova-$s.pid")" || return 1; done
}
# The compute service is up (it reported through the conductor) and its node is in
# Placement: then discover_hosts has something to map, and the scheduler a host.
compute_up() { api "$url/os-services?binary=nova-compute" | grep -q '"state": "up"'; }
node_known() { api "$placement_url/resource_providers" | grep -q '"uuid"'; }
settled() { { compute_up && node_known; } || ! all_alive; }
until_ready 120 settled || true
if ! compute_up || ! node_known; then
	log "nova-compute did not come up at $url; see $dir/nova-*.log and $dir/*.out"
	stop
	exit 1
fi
manage cell_v2 discover_hosts || { stop; exit 1; }
api -X POST -d '{"flavor": {"name": "tiny", "ram": 64, "vcpus": 1, "disk": 1, "id": "tiny"}}' "$url/flavors" >/dev/null ||
	{ log "creating the flavor tiny failed; see $dir/nova-api.log"; stop; exit 1; }

{
	echo "NOVA_URL=$url"
	echo "NOVA_FLAVOR=tiny"
	echo "PLACEMENT_URL=$placement_url"
	echo "NOVA_DIR=$dir"
} | tee "$dir/env"
