#!/usr/bin/env bash
# The remote cloud's Keystone: Debian's keystone as the K2K Service Provider of the
# local Keystone (scripts/keystone.sh, the Identity Provider), behind an Apache httpd
# of its own with mod_shib (Shibboleth SP, SAML2 ECP) and mod_wsgi, on loopback, as
# /work/shared/docs/real-sp.md describes. SQLite, fernet tokens, a bootstrap admin.
# The IdP's users land, as federated users, in the project "fedproj" (role member),
# the IdP's admin with the role service there too (mixmatch's account: its K2K token
# is a service token here); a user of this cloud's own, "demo", has a project "demo"
# of its own.
#
#   scripts/sp-keystone.sh start DIR IDP_ENV   IDP_ENV: the env file keystone.sh start
#                                              wrote; prints KEY=VALUE lines (DIR/env)
#   scripts/sp-keystone.sh stop DIR
#
# DIR/env names the same keys as keystone.sh's (KEYSTONE_URL, KEYSTONE_ADMIN_PASSWORD,
# KEYSTONE_DEMO_*), so that glance.sh and cinder.sh run behind either Keystone, plus
# SP_URL and SP_AUTH_URL to register in the IdP and SP_PROJECT_ID, the project
# federated users are given. start begins from an empty DIR: one from an earlier start
# is stopped and wiped, any other non-empty one refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start DIR IDP_ENV | stop DIR" >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage

stop() {
	local abs
	abs=$(realpath -m "$dir")
	# TERM to Apache's parent stops its children and the WSGI daemon with them.
	stop_pidfile "$abs/apache.pid" "-f $abs/httpd.conf "
	stop_pidfile "$abs/shibd.pid" "-c $abs/shibboleth2.xml "
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || usage
idp_env=${3:-}
[ -f "$idp_env" ] || usage

if ! command -v keystone-manage >/dev/null || ! command -v shibd >/dev/null ||
	[ ! -f /usr/lib/apache2/modules/mod_shib.so ] || [ ! -f /usr/lib/apache2/modules/mod_wsgi.so ]; then
	apt_install --no-install-recommends apache2 libapache2-mod-shib libapache2-mod-wsgi-py3 keystone curl
fi

idp_url=$(sed -n 's/^KEYSTONE_URL=//p' "$idp_env")
[ -n "$idp_url" ] || { log "$idp_env names no KEYSTONE_URL"; exit 1; }

mark=.mixmatch-sp-keystone
[ -f "$dir/$mark" ] && stop
fresh_dir "$dir" "$mark"
dir=$(cd "$dir" && pwd)
port=$(free_port)
base="http://127.0.0.1:$port"
url="$base/v3"
idp_id=idp1
auth_url="$url/OS-FEDERATION/identity_providers/$idp_id/protocols/saml2/auth"
admin_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
demo_password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# The IdP's metadata carries its entity id and the certificate its assertions are
# signed with; Shibboleth trusts exactly that.
curl -sf "$idp_url/OS-FEDERATION/saml2/metadata" -o "$dir/idp-metadata.xml" ||
	{ log "no SAML metadata at $idp_url/OS-FEDERATION/saml2/metadata: is it keystone.sh's IdP?"; exit 1; }
idp_entity_id=$(grep -o 'entityID="[^"]*"' "$dir/idp-metadata.xml" | head -n 1 | cut -d'"' -f2)

cat >"$dir/keystone.conf" <<EOF
[DEFAULT]
use_stderr = false
log_file = $dir/keystone.log
public_endpoint = $base
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
[auth]
methods = password,token,saml2,mapped,application_credential
[federation]
remote_id_attribute = Shib-Identity-Provider
[saml2]
remote_id_attribute = Shib-Identity-Provider
EOF

manage() { keystone-manage --config-file "$dir/keystone.conf" "$@" 2>>"$dir/manage.log"; }
manage db_sync
sqlite_wal "$dir/keystone.db"
# As root, fernet_setup for www-data fails writing into a root-owned directory: set
# the keys up as root and hand the whole directory to www-data below.
manage fernet_setup --keystone-user root --keystone-group root
manage credential_setup --keystone-user root --keystone-group root
manage bootstrap --bootstrap-password "$admin_password" --bootstrap-public-url "$url" \
	--bootstrap-internal-url "$url" --bootstrap-admin-url "$url" --bootstrap-region-id RegionOne

# Shibboleth: one application, ECP only, the IdP's metadata from a file, the
# attributes Keystone's IdP sends, under the names Keystone's mapping reads.
cat >"$dir/shibboleth2.xml" <<EOF
<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config" clockSkew="180">
  <OutOfProcess logger="$dir/shibd.logger"/>
  <InProcess logger="$dir/native.logger"/>
  <UnixListener address="$dir/shibd.sock"/>
  <StorageService type="Memory" id="mem" cleanupInterval="900"/>
  <SessionCache type="StorageService" StorageService="mem" cacheAssertions="false"
                cacheAllowance="900" inprocTimeout="900" cleanupInterval="900"/>
  <ApplicationDefaults entityID="$base/shibboleth" homeURL="$base/" REMOTE_USER="openstack_user">
    <!-- Plain HTTP on loopback: no Secure cookie, no TLS handler. relayState ss:mem
         cannot recover Keystone's relay state, so the answer is a 302 to homeURL,
         which is what a K2K client expects before it fetches auth_url. -->
    <Sessions lifetime="28800" timeout="3600" relayState="ss:mem" checkAddress="false"
              handlerSSL="false" cookieProps="http" redirectLimit="none">
      <SSO ECP="true" entityID="$idp_entity_id">SAML2</SSO>
      <Handler type="Session" Location="/Session" showAttributeValues="false"/>
    </Sessions>
    <MetadataProvider type="XML" validate="false" path="$dir/idp-metadata.xml"/>
    <AttributeExtractor type="XML" validate="true" path="$dir/attribute-map.xml"/>
  </ApplicationDefaults>
  <SecurityPolicyProvider type="XML" validate="true" path="/etc/shibboleth/security-policy.xml"/>
  <ProtocolProvider type="XML" validate="true" path="/etc/shibboleth/protocols.xml"/>
</SPConfig>
EOF
{
	echo '<Attributes xmlns="urn:mace:shibboleth:2.0:attribute-map">'
	for a in openstack_user openstack_user_domain openstack_roles openstack_project openstack_project_domain openstack_groups; do
		echo "  <Attribute name=\"$a\" id=\"$a\"/>"
	done
	echo '</Attributes>'
} >"$dir/attribute-map.xml"
# shibd (OutOfProcess) and mod_shib in Apache's children (InProcess) log to files here.
for l in shibd native; do
	cat >"$dir/$l.logger" <<EOF
log4j.rootCategory=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.fileName=$dir/$l.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{%Y-%m-%d %H:%M:%S} %p %c %x: %m%n
EOF
done

cat >"$dir/keystone.wsgi" <<EOF
import os
os.environ["OS_KEYSTONE_CONFIG_DIR"] = "$dir"
os.environ["OS_KEYSTONE_CONFIG_FILES"] = "keystone.conf"
from keystone.server.wsgi import initialize_public_application
application = initialize_public_application()
EOF

mods=/usr/lib/apache2/modules
cat >"$dir/httpd.conf" <<EOF
ServerRoot $dir
PidFile $dir/apache.pid
DefaultRuntimeDir $dir
ServerName 127.0.0.1
Listen 127.0.0.1:$port
User www-data
Group www-data
ErrorLog $dir/apache-error.log
# The token headers are logged so that make e2e can show that only tokens this
# Keystone issued reach this cloud, never the IdP's: a test cloud on loopback whose
# tokens die with it.
LogFormat "%h %t \"%r\" %>s %b %D auth=%{X-Auth-Token}i subject=%{X-Subject-Token}i issued=%{X-Subject-Token}o" tokens
CustomLog $dir/apache-access.log tokens
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
LoadModule mime_module $mods/mod_mime.so
LoadModule wsgi_module $mods/mod_wsgi.so
LoadModule mod_shib $mods/mod_shib.so
TypesConfig /etc/mime.types
ShibConfig $dir/shibboleth2.xml
ShibCompatValidUser Off
WSGISocketPrefix $dir/wsgi
# One process: several keystone processes writing one SQLite file lock each other out.
WSGIDaemonProcess keystone-sp processes=1 threads=4 user=www-data group=www-data display-name=keystone-sp
WSGIProcessGroup keystone-sp
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / $dir/keystone.wsgi
<Directory $dir>
  Require all granted
</Directory>
<Location /Shibboleth.sso>
  SetHandler shib
  AuthType None
  Require all granted
</Location>
# requireSession 0: a request without a session gets a clean 401, not a 500 for want
# of a browser SSO binding at the IdP.
<Location /v3/OS-FEDERATION/identity_providers/$idp_id/protocols/saml2/auth>
  AuthType shibboleth
  ShibRequestSetting requireSession 0
  ShibExportAssertion Off
  Require shib-session
</Location>
EOF
chown -R www-data:www-data "$dir"
chmod 755 "$dir"

# -f: a socket left by a killed shibd is removed rather than refused.
shibd -f -c "$dir/shibboleth2.xml" -p "$dir/shibd.pid" -w 30 -u www-data -g www-data >>"$dir/shibd.out" 2>&1 ||
	{ log "shibd did not start; see $dir/shibd.out and $dir/shibd.log"; stop; exit 1; }
apache2 -f "$dir/httpd.conf" -k start ||
	{ log "apache2 did not start; see $dir/apache-error.log"; stop; exit 1; }
until_ready 30 curl -sf "$url" || { log "keystone did not answer on $url; see $dir/apache-error.log and $dir/keystone.log"; stop; exit 1; }

# The federation objects, and this cloud's own user, through the API as the admin.
if ! /usr/bin/python3 - "$url" "$admin_password" "$demo_password" "$idp_id" "$idp_entity_id" >"$dir/objects.env" <<'EOF'; then
import json, sys, urllib.request
url, admin_pw, demo_pw, idp_id, entity_id = sys.argv[1:]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("X-Subject-Token"), (json.load(r) if r.status != 204 else None)
token, _ = call("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": admin_pw}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
member = call("GET", "/roles?name=member", None, token)[1]["roles"][0]["id"]
def project(name):
    return call("POST", "/projects", {"project": {"name": name, "domain_id": "default"}}, token)[1]["project"]["id"]
fedproj = project("fedproj")
group = call("POST", "/groups", {"group": {"name": "federated", "domain_id": "default"}}, token)[1]["group"]["id"]
call("PUT", "/projects/%s/groups/%s/roles/%s" % (fedproj, group, member), None, token)
call("PUT", "/OS-FEDERATION/identity_providers/" + idp_id,
     {"identity_provider": {"remote_ids": [entity_id], "enabled": True}}, token)
# The IdP's admin, the account mixmatch uses in the federation, is also a service here
# (the role service, in a group of its own): mixmatch's K2K token is then the service
# token this cloud's Cinder asks for of a detach ([sp_remote1] service_token = k2k).
service = call("POST", "/roles", {"role": {"name": "service"}}, token)[1]["role"]["id"]
services = call("POST", "/groups", {"group": {"name": "idp-services", "domain_id": "default"}}, token)[1]["group"]["id"]
call("PUT", "/projects/%s/groups/%s/roles/%s" % (fedproj, services, service), None, token)
call("PUT", "/OS-FEDERATION/mappings/k2k-mapping", {"mapping": {"rules": [{
    "local": [{"user": {"name": "{0}"}}, {"group": {"id": group}}],
    "remote": [{"type": "openstack_user"}]}, {
    "local": [{"group": {"id": services}}],
    "remote": [{"type": "openstack_user", "any_one_of": ["admin"]},
               {"type": "openstack_user_domain", "any_one_of": ["Default"]}]}]}}, token)
call("PUT", "/OS-FEDERATION/identity_providers/%s/protocols/saml2" % idp_id,
     {"protocol": {"mapping_id": "k2k-mapping"}}, token)
demo = project("demo")
user = call("POST", "/users", {"user": {"name": "demo", "domain_id": "default", "password": demo_pw}}, token)[1]["user"]["id"]
call("PUT", "/projects/%s/users/%s/roles/%s" % (demo, user, member), None, token)
print("SP_PROJECT_ID=%s" % fedproj)
print("KEYSTONE_DEMO_PROJECT_ID=%s" % demo)
EOF
	log "creating the federation objects failed; see $dir/keystone.log"
	stop
	exit 1
fi

{
	echo "KEYSTONE_URL=$url"
	echo "KEYSTONE_ADMIN_PASSWORD=$admin_password"
	echo "KEYSTONE_DEMO_USER=demo"
	echo "KEYSTONE_DEMO_PASSWORD=$demo_password"
	echo "SP_URL=$base/Shibboleth.sso/SAML2/ECP"
	echo "SP_AUTH_URL=$auth_url"
	cat "$dir/objects.env"
	echo "KEYSTONE_DIR=$dir"
} | tee "$dir/env"
