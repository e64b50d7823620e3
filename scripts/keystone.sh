#!/usr/bin/env bash
# A real Keystone (Debian's package) on loopback, as the local cloud's Identity
# Provider: SQLite, fernet tokens, bootstrap admin, a SAML IdP signing with xmlsec1,
# and a demo user with a project. Used by the K2K integration test and by the demo.
#
#   scripts/keystone.sh start DIR   install if missing, configure in DIR, start,
#                                   and print KEY=VALUE lines (also kept in DIR/env)
#   scripts/keystone.sh stop DIR
#
# start begins from an empty DIR: one from an earlier start is stopped and wiped
# (its database already holds the demo project), any other non-empty one refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# uwsgi runs with --die-on-term: TERM stops the master and its workers.
stop() { stop_pidfile "$dir/uwsgi.pid" "OS_KEYSTONE_CONFIG_DIR=$(cd "$dir" 2>/dev/null && pwd) "; }

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

if ! command -v keystone-manage >/dev/null || ! command -v xmlsec1 >/dev/null || ! command -v uwsgi >/dev/null; then
	apt_install --no-install-recommends keystone xmlsec1 uwsgi-plugin-python3 openssl curl
fi

mark=.mixmatch-keystone
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
mkdir -p "$dir/saml"
dir=$(cd "$dir" && pwd)
port=$(free_port)
url="http://127.0.0.1:$port/v3"
admin_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
demo_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
use_stderr = false
log_file = $dir/keystone.log
[database]
connection = sqlite:///$dir/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[saml]
certfile = $dir/saml/cert.pem
keyfile = $dir/saml/key.pem
idp_entity_id = $url/OS-FEDERATION/saml2/idp
idp_sso_endpoint = $url/OS-FEDERATION/saml2/sso
idp_metadata_path = $dir/saml/idp_metadata.xml
xmlsec1_binary = $(command -v xmlsec1)
EOF

manage() { keystone-manage --config-file "$dir/keystone.conf" "$@" 2>>"$dir/manage.log"; }
# keystone-manage prints eventlet noise at exit; the status is what counts.
manage db_sync
sqlite_wal "$dir/keystone.db"
manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
manage bootstrap --bootstrap-password "$admin_password" --bootstrap-public-url "$url" \
	--bootstrap-internal-url "$url" --bootstrap-admin-url "$url" --bootstrap-region-id RegionOne
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=mixmatch-test-idp -days 30 \
	-keyout "$dir/saml/key.pem" -out "$dir/saml/cert.pem" 2>/dev/null
manage saml_idp_metadata >"$dir/saml/idp_metadata.xml"

# One process: several keystone processes writing one SQLite file lock each other out.
# Connection: close, because uwsgi's http-socket closes after each answer anyway, and a
# client reusing the connection for a POST would read a reset. The log names the tokens
# each request carries (X-Auth-Token, X-Subject-Token), so that make e2e can show where
# this IdP's tokens went, and did not: a test cloud on loopback whose tokens die with it.
uwsgi --http-socket "127.0.0.1:$port" --plugins python3 --wsgi-file "$(command -v keystone-wsgi-public)" \
	--master --processes 1 --threads 4 --lazy-apps --buffer-size 65535 --die-on-term \
	--add-header "Connection: close" \
	--log-format '%(addr) [%(ctime)] "%(method) %(uri) %(proto)" %(status) %(size) %(msecs)ms auth=%(var.HTTP_X_AUTH_TOKEN) subject=%(var.HTTP_X_SUBJECT_TOKEN)' \
	--env "OS_KEYSTONE_CONFIG_DIR=$dir" --env OS_KEYSTONE_CONFIG_FILES=keystone.conf \
	--pidfile "$dir/uwsgi.pid" --daemonize "$dir/uwsgi.log"

until_ready 30 curl -sf "$url" || { log "keystone did not answer on $url; see $dir/uwsgi.log"; stop; exit 1; }

# A demo user with the member role on a demo project, through the API.
if ! /usr/bin/python3 - "$url" "$admin_password" "$demo_password" >"$dir/demo.env" <<'EOF'; then
import json, sys, urllib.request
url, admin_pw, demo_pw = sys.argv[1:]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("X-Subject-Token"), (json.load(r) if r.status != 204 else None)
token, _ = call("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": admin_pw}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
_, p = call("POST", "/projects", {"project": {"name": "demo", "domain_id": "default"}}, token)
_, u = call("POST", "/users", {"user": {"name": "demo", "domain_id": "default", "password": demo_pw}}, token)
_, roles = call("GET", "/roles?name=member", None, token)
call("PUT", "/projects/%s/users/%s/roles/%s" % (p["project"]["id"], u["user"]["id"], roles["roles"][0]["id"]), None, token)
print("KEYSTONE_DEMO_PROJECT_ID=%s" % p["project"]["id"])
EOF
	log "creating the demo user failed"
	stop
	exit 1
fi

{
	echo "KEYSTONE_URL=$url"
	echo "KEYSTONE_ADMIN_PASSWORD=$admin_password"
	echo "KEYSTONE_DEMO_USER=demo"
	echo "KEYSTONE_DEMO_PASSWORD=$demo_password"
	cat "$dir/demo.env"
	echo "KEYSTONE_DIR=$dir"
} | tee "$dir/env"
