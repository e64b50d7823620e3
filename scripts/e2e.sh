#!/usr/bin/env bash
# make e2e: the federation of scripts/federation.sh driven with real clients
# (python3-openstackclient, through the Keystone catalog whose image and volume
# endpoints are mixmatch's), checking where every call landed and what the ingester
# learned from Glance's own notifications.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
work=$(mktemp -d)
chmod 755 "$work"
cleanup() { scripts/federation.sh stop "$work/fed" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
pass=0
ok() { pass=$((pass + 1)); echo "e2e: ok: $*"; }
fail() { echo "e2e: FAIL: $*" >&2; echo "$pass passed, 1 failed"; exit 1; }

scripts/federation.sh start "$work/fed" >/dev/null
# shellcheck disable=SC1091
. "$work/fed/env"
export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=demo OS_PASSWORD=$KEYSTONE_DEMO_PASSWORD OS_PROJECT_NAME=demo \
	OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public
manage() { bin/mixmatch-manage --config-file "$MIXMATCH_CONF" "$@" 2>/dev/null; }
glance_has() { # the local Glance itself, with the admin's token, not through mixmatch
	local token
	token=$(OS_USERNAME=admin OS_PASSWORD=$KEYSTONE_ADMIN_PASSWORD OS_PROJECT_NAME=admin openstack token issue -f value -c id)
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" "$GLANCE_URL/v2/images/$1")" = 200 ]
}

head -c 3145728 /dev/urandom >"$work/local.raw"
head -c 2097152 /dev/urandom >"$work/remote.raw"

local_id=$(openstack image create --disk-format raw --container-format bare --file "$work/local.raw" e2e-local -f value -c id)
glance_has "$local_id" || fail "image $local_id is not in the local Glance"
ok "openstack image create: uploaded to the local Glance through mixmatch"

until_ready 30 sh -c "bin/mixmatch-manage --config-file '$MIXMATCH_CONF' mappings show images '$local_id' --format json 2>/dev/null |
	grep -q '\"project_id\": \"$KEYSTONE_DEMO_PROJECT_ID\"'" ||
	fail "no mapping with the demo project for $local_id: $(manage mappings list)"
grep -q "notifications recorded" "$work/fed/ingester.log" || fail "the ingester recorded no notification"
ok "the ingester learned $local_id from Glance's notification"

remote=$(openstack image create --disk-format raw --container-format bare --file "$work/remote.raw" e2e-remote@remote1 -f value -c id -c name)
remote_id=$(echo "$remote" | head -n 1)
[ "$(echo "$remote" | tail -n 1)" = e2e-remote ] || fail "the remote image is named $(echo "$remote" | tail -n 1), not e2e-remote"
glance_has "$remote_id" && fail "the name@remote1 image went to the local Glance"
manage mappings show images "$remote_id" | grep -q remote1 || fail "no remote1 mapping for $remote_id"
ok "openstack image create NAME@remote1: created at remote1 as NAME, mapping learned"

list=$(openstack image list -f value -c ID)
echo "$list" | grep -q "$local_id" && echo "$list" | grep -q "$remote_id" || fail "image list lacks one cloud: $list"
ok "openstack image list: both clouds' images, aggregated"

[ "$(openstack image show "$remote_id" -f value -c name)" = e2e-remote ] || fail "image show of the remote image"
openstack image save --file "$work/local.out" "$local_id"
openstack image save --file "$work/remote.out" "$remote_id"
cmp -s "$work/local.raw" "$work/local.out" && cmp -s "$work/remote.raw" "$work/remote.out" || fail "downloaded images differ"
ok "openstack image show/save: local and remote data come back intact"

openstack volume list -f value -c ID | grep -q "$REMOTE_VOLUME" || fail "volume list lacks the remote volume"
ok "openstack volume list: the remote cloud's volumes"

openstack image delete "$local_id" "$remote_id"
until_ready 30 sh -c "! bin/mixmatch-manage --config-file '$MIXMATCH_CONF' mappings show images '$local_id' >/dev/null 2>&1" ||
	fail "the ingester kept the mapping of deleted $local_id"
openstack image show "$remote_id" >/dev/null 2>&1 && fail "deleted remote image still shows"
glance_has "$local_id" && fail "deleted image still in the local Glance"
ok "openstack image delete: gone from both clouds; the ingester dropped the local mapping"

MIXMATCH_E2E_ENV=$work/fed/env go test -tags e2e -count=1 -timeout 5m ./app/e2etest/ >"$work/gophercloud.log" 2>&1 ||
	fail "gophercloud: $(tail -n 20 "$work/gophercloud.log")"
ok "gophercloud (Go): create, upload, download, paged list and volume list through the catalog"

code=$(curl -s -o "$work/body" -w '%{http_code}' "$MIXMATCH_URL/image/not-a-version/images")
[ "$code" = 404 ] && grep -q '"code":404' "$work/body" || fail "GET /image/not-a-version answered $code"
ok "a path outside the API answers a JSON 404 through Apache"

[ "$(curl -sf "$MIXMATCH_URL/healthcheck?detail")" = '{"status":"ok"}' ] ||
	fail "healthcheck through Apache: $(curl -s "$MIXMATCH_URL/healthcheck?detail")"
curl -sf "$MIXMATCH_METRICS_URL/healthcheck" | grep -q '"database":{"engine":"sqlite3","ok":true}' ||
	fail "detailed healthcheck: $(curl -s "$MIXMATCH_METRICS_URL/healthcheck")"
ok "GET /healthcheck: a status only through Apache; the details on the worker's metrics listener"

echo "$pass passed, 0 failed"
