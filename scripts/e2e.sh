#!/usr/bin/env bash
# make e2e: the federation of scripts/federation.sh (two real clouds, mixmatch in the
# local catalog) driven with real clients as the local demo user: python3-openstackclient
# here, gophercloud in app/e2etest. Each check says where every call landed, asking
# the clouds' own Glance and Cinder, and what the ingester learned from each cloud's
# own notifications. A failed check is reported and the run goes on; the exit status
# is 1 if any failed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
SECONDS=0
work=$(mktemp -d)
chmod 755 "$work"
# A failed run keeps the federation's logs in var/e2e-fed (its image data dropped).
cleanup() {
	scripts/federation.sh stop "$work/fed" >/dev/null 2>&1 || true
	if [ "$1" != 0 ] && [ -d "$work/fed" ]; then
		rm -rf var/e2e-fed "$work"/fed/{,remote1/}glance/images
		mkdir -p var && mv "$work/fed" var/e2e-fed &&
			log "the federation's logs are in var/e2e-fed: worker-*.log, ingester.log, {,remote1/}*/*.log"
	fi
	rm -rf "$work"
}
trap 'cleanup $?' EXIT
passed=() failed=()
ok() { passed+=("$1"); echo "e2e: ok: $1"; }
nok() { failed+=("$1"); echo "e2e: FAIL: $1: $2" >&2; }
# check NAME FUNCTION: runs FUNCTION, which returns non-zero with its reason in $why.
# set -e does not apply inside it (an if condition), so each step says why it failed.
why=
check() {
	why=
	if "$2"; then ok "$1"; else nok "$1" "${why:-failed}"; fi
}

if scripts/federation.sh start "$work/fed" 2>"$work/federation-start.err" >/dev/null; then
	cat "$work/federation-start.err" >&2
else
	explain_failure "$work/federation-start.err"
	exit 1
fi
started=$SECONDS
# shellcheck disable=SC1091
. "$work/fed/env"
export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=demo OS_PASSWORD=$KEYSTONE_DEMO_PASSWORD OS_PROJECT_NAME=demo \
	OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public
# The remote cloud's own user, in its own Keystone and catalog.
remote_demo() { OS_AUTH_URL=$REMOTE1_KEYSTONE_URL OS_PASSWORD=$REMOTE1_KEYSTONE_DEMO_PASSWORD "$@"; }

# json PYTHON-EXPRESSION [ARG...]: evaluates it on the JSON document read from stdin,
# as j; the ARGs are sys.argv[2:].
json() { /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$@"; }
# token KEYSTONE_URL USER PASSWORD: "TOKEN PROJECT_ID", the user scoped to the project
# of its own name (admin, demo).
token() {
	OS_AUTH_URL=$1 OS_USERNAME=$2 OS_PASSWORD=$3 OS_PROJECT_NAME=$2 openstack token issue -f value -c id -c project_id | paste -sd' '
}
declare -A glance=([local]=$GLANCE_URL [remote1]=$REMOTE1_GLANCE_URL)
declare -A cinder=([local]=$CINDER_URL [remote1]=$REMOTE1_CINDER_URL)
declare -A admin_token admin_project demo_token demo_project
read -r "admin_token[local]" "admin_project[local]" < <(token "$KEYSTONE_URL" admin "$KEYSTONE_ADMIN_PASSWORD")
read -r "admin_token[remote1]" "admin_project[remote1]" < <(token "$REMOTE1_KEYSTONE_URL" admin "$REMOTE1_KEYSTONE_ADMIN_PASSWORD")
read -r "demo_token[local]" "demo_project[local]" < <(token "$KEYSTONE_URL" demo "$KEYSTONE_DEMO_PASSWORD")
read -r "demo_token[remote1]" "demo_project[remote1]" < <(token "$REMOTE1_KEYSTONE_URL" demo "$REMOTE1_KEYSTONE_DEMO_PASSWORD")
fedproj=$REMOTE1_SP_PROJECT_ID # the project the local demo user has at remote1

# The clouds themselves, as their admins, not through mixmatch.
# image_at CLOUD ID: the image's status in that cloud's Glance, or "none".
image_at() {
	curl -s -H "X-Auth-Token: ${admin_token[$1]}" "${glance[$1]}/v2/images/$2" | json 'j.get("status", "none")' 2>/dev/null || echo none
}
# cinder_at CLOUD volumes|snapshots ID: its status in that cloud's Cinder, or "none".
cinder_at() {
	curl -s -H "X-Auth-Token: ${admin_token[$1]}" "${cinder[$1]}/v3/${admin_project[$1]}/$2/$3" |
		json 'next(iter(j.values())).get("status", "none") if "itemNotFound" not in j else "none"' 2>/dev/null || echo none
}
status_is() { [ "$("${@:2}")" = "$1" ]; }
# until_status STATUS CLOUD KIND ID: waits (bounded) for a volume or snapshot's status.
until_status() { until_ready 60 status_is "$1" cinder_at "$2" "$3" "$4"; }

manage() { bin/mixmatch-manage --config-file "$MIXMATCH_CONF" "$@" 2>/dev/null; }
# mapping TYPE ID: "SP PROJECT" of the mapping row, dashes dropped as stored, or nothing.
mapping() { manage mappings show "$1" "$2" --format json | json 'j["resource_sp"] + " " + j["project_id"]' 2>/dev/null; }
mapping_is() { [ "$(mapping "$2" "$3")" = "$1" ]; }
no_mapping() { ! manage mappings show "$1" "$2" >/dev/null; }
# wait_mapping TYPE ID SP PROJECT: the ingester works from the buses, asynchronously.
wait_mapping() {
	until_ready 30 mapping_is "$3 ${4//-/}" "$1" "$2" ||
		{ why="$1 $2: mapping is '$(mapping "$1" "$2")', want '$3 ${4//-/}'"; return 1; }
}
wait_no_mapping() { until_ready 30 no_mapping "$1" "$2" || { why="$1 $2: mapping '$(mapping "$1" "$2")' kept"; return 1; }; }

# paged "KIND" [OPTION...]: the ids of `openstack KIND list OPTION...`, asked one at a
# time (--limit 1, and the last id as --marker), in the order given.
paged() {
	local ids=() id marker=() i kind
	read -ra kind <<<"$1"
	for ((i = 0; i < 20; i++)); do
		id=$(openstack "${kind[@]}" list "${@:2}" --limit 1 "${marker[@]}" -f value -c ID) || return 1
		[ -n "$id" ] || break
		ids+=("$id")
		marker=(--marker "$id")
	done
	echo "${ids[*]}"
}
head -c 3145728 /dev/urandom >"$work/local.raw"
head -c 2097152 /dev/urandom >"$work/remote.raw"
create_image() { openstack image create --disk-format raw --container-format bare --file "$1" "$2" -f value -c id; }

image_local() {
	img_local=$(create_image "$work/local.raw" e2e-local) || { why="create failed"; return 1; }
	[ "$(image_at local "$img_local")" = active ] || { why="$img_local is not active in the local Glance"; return 1; }
	[ "$(image_at remote1 "$img_local")" = none ] || { why="$img_local is in the remote Glance"; return 1; }
	wait_mapping images "$img_local" default "$KEYSTONE_DEMO_PROJECT_ID"
}
check "openstack image create: in the local Glance, mapped to the demo project" image_local

image_remote() {
	img_remote=$(create_image "$work/remote.raw" e2e-remote@remote1) || { why="create failed"; return 1; }
	[ "$(image_at remote1 "$img_remote")" = active ] || { why="$img_remote is not active in the remote Glance"; return 1; }
	[ "$(image_at local "$img_remote")" = none ] || { why="$img_remote is in the local Glance"; return 1; }
	local name
	name=$(curl -s -H "X-Auth-Token: ${admin_token[remote1]}" "${glance[remote1]}/v2/images/$img_remote" | json 'j["name"]')
	[ "$name" = e2e-remote ] || { why="named $name at remote1, not e2e-remote"; return 1; }
	wait_mapping images "$img_remote" remote1 "$fedproj"
}
check "openstack image create NAME@remote1: in the remote Glance as NAME, mapped to the federated project" image_remote

volume_local() {
	vol_local=$(openstack volume create --size 1 e2e-local -f value -c id) || { why="create failed"; return 1; }
	until_status available local volumes "$vol_local" || { why="$vol_local: $(cinder_at local volumes "$vol_local") in the local Cinder"; return 1; }
	[ "$(cinder_at remote1 volumes "$vol_local")" = none ] || { why="$vol_local is in the remote Cinder"; return 1; }
	wait_mapping volumes "$vol_local" default "$KEYSTONE_DEMO_PROJECT_ID"
}
check "openstack volume create: available in the local Cinder, mapped" volume_local

volume_remote() {
	vol_remote=$(openstack volume create --size 1 e2e-remote@remote1 -f value -c id) || { why="create failed"; return 1; }
	until_status available remote1 volumes "$vol_remote" || { why="$vol_remote: $(cinder_at remote1 volumes "$vol_remote") in the remote Cinder"; return 1; }
	[ "$(cinder_at local volumes "$vol_remote")" = none ] || { why="$vol_remote is in the local Cinder"; return 1; }
	local name
	name=$(curl -s -H "X-Auth-Token: ${admin_token[remote1]}" "$REMOTE1_CINDER_URL/v3/${admin_project[remote1]}/volumes/$vol_remote" | json 'j["volume"]["name"]')
	[ "$name" = e2e-remote ] || { why="named $name at remote1, not e2e-remote"; return 1; }
	wait_mapping volumes "$vol_remote" remote1 "$fedproj"
}
check "openstack volume create NAME@remote1: available in the remote Cinder as NAME, mapped" volume_remote

snapshot_local() {
	snap_local=$(openstack volume snapshot create --volume "$vol_local" e2e-local -f value -c id) || { why="create failed"; return 1; }
	until_status available local snapshots "$snap_local" || { why="$snap_local: $(cinder_at local snapshots "$snap_local") in the local Cinder"; return 1; }
	wait_mapping snapshots "$snap_local" default "$KEYSTONE_DEMO_PROJECT_ID"
}
check "openstack volume snapshot create (local volume): in the local Cinder" snapshot_local

# The snapshot names its volume in the body only: mixmatch routes the create to the
# volume's cloud, with no header from the client.
snapshot_remote() {
	snap_remote=$(openstack volume snapshot create --volume "$vol_remote" e2e-remote -f value -c id) || { why="create failed"; return 1; }
	until_status available remote1 snapshots "$snap_remote" || { why="$snap_remote: $(cinder_at remote1 snapshots "$snap_remote") in the remote Cinder"; return 1; }
	[ "$(cinder_at local snapshots "$snap_remote")" = none ] || { why="$snap_remote is in the local Cinder"; return 1; }
	wait_mapping snapshots "$snap_remote" remote1 "$fedproj"
}
check "openstack volume snapshot create (remote volume): routed by the volume in the body, in the remote Cinder" snapshot_remote

# Lists: both clouds' items, in the services' default order (newest first), one page
# of one item at a time. The openstack client sorts images by name itself, after the
# call (its --sort is client-side); sorting by the services is gophercloud's check.
list_images() {
	local got want="$img_remote $img_local"
	got=$(paged image) || { why="image list failed"; return 1; }
	[ "$got" = "$want" ] || { why="paged by 1, newest first: got [$got], want [$want]"; return 1; }
}
check "openstack image list: both clouds, newest first, paged one at a time" list_images

list_volumes() {
	local got want="$vol_remote $vol_local"
	got=$(paged volume) || { why="volume list failed"; return 1; }
	[ "$got" = "$want" ] || { why="paged by 1, newest first: got [$got], want [$want]"; return 1; }
}
check "openstack volume list: both clouds, newest first, paged one at a time" list_volumes

list_snapshots() {
	local got want="$snap_remote $snap_local"
	got=$(paged "volume snapshot") || { why="snapshot list failed"; return 1; }
	[ "$got" = "$want" ] || { why="paged by 1, newest first: got [$got], want [$want]"; return 1; }
}
check "openstack volume snapshot list: both clouds, newest first, paged one at a time" list_snapshots

show_images() {
	local name
	name=$(openstack image show "$img_remote" -f value -c name) || { why="image show failed"; return 1; }
	[ "$name" = e2e-remote ] || { why="image show of the remote image: $name"; return 1; }
	openstack image save --file "$work/local.out" "$img_local" || { why="image save (local) failed"; return 1; }
	openstack image save --file "$work/remote.out" "$img_remote" || { why="image save (remote) failed"; return 1; }
	cmp -s "$work/local.raw" "$work/local.out" || { why="the local image came back altered"; return 1; }
	cmp -s "$work/remote.raw" "$work/remote.out" || { why="the remote image came back altered"; return 1; }
}
check "openstack image show/save: local and remote data back byte for byte" show_images

show_volumes() {
	local v s
	v=$(openstack volume show "$vol_remote" -f value -c name -c status | paste -sd' ') || { why="volume show failed"; return 1; }
	[ "$v" = "e2e-remote available" ] || { why="volume show of the remote volume: $v"; return 1; }
	s=$(openstack volume snapshot show "$snap_remote" -f value -c name -c status -c volume_id | paste -sd' ') ||
		{ why="snapshot show failed"; return 1; }
	[ "$s" = "e2e-remote available $vol_remote" ] || { why="snapshot show of the remote snapshot: $s"; return 1; }
}
check "openstack volume show, volume snapshot show: the remote volume and snapshot" show_volumes

# mixmatch stands for the clouds behind it: what it answers names mixmatch's address
# and the user's own project, not a cloud's address (Glance's Location on create,
# Cinder's links to items and pages) nor the project of the K2K token at remote1.
addresses() {
	local bad=() name hdrs id loc path h
	for name in e2e-links e2e-links@remote1; do
		hdrs=$(curl -s -D - -o "$work/image.json" -X POST -H "X-Auth-Token: ${demo_token[local]}" \
			-H "Content-Type: application/json" -d "{\"name\": \"$name\"}" "$MIXMATCH_URL/image/v2/images")
		id=$(json 'j["id"]' <"$work/image.json") || { why="image create $name: $(cat "$work/image.json")"; return 1; }
		curl -s -o /dev/null -X DELETE -H "X-Auth-Token: ${demo_token[local]}" "$MIXMATCH_URL/image/v2/images/$id"
		loc=$(sed -n 's/^[Ll]ocation: *//p' <<<"$hdrs" | tr -d '\r')
		[[ $loc == "$MIXMATCH_URL/image/"* ]] || bad+=("POST /image/v2/images ($name): Location: $loc")
	done
	for path in "volumes/$vol_local" "volumes/$vol_remote" "snapshots/$snap_remote" "volumes?limit=1" \
		"volumes/detail?limit=1" "snapshots?limit=1"; do
		for h in $(curl -s -H "X-Auth-Token: ${demo_token[local]}" "$MIXMATCH_URL/volume/v3/$KEYSTONE_DEMO_PROJECT_ID/$path" |
			grep -o '"href": *"[^"]*"' | cut -d'"' -f4); do
			[[ $h == "$MIXMATCH_URL/volume/"* && $h != *"$fedproj"* ]] || bad+=("GET .../$path: href $h")
		done
	done
	[ "${#bad[@]}" = 0 ] || { why="${#bad[@]} foreign addresses, $(printf '%s; ' "${bad[@]:0:12}")"; return 1; }
}
check "answers name mixmatch and the user's project: image create Location, Cinder's item and page links" addresses

# A transfer at remote1: the local demo user (the federated user at remote1) offers a
# volume there, and the remote cloud's own demo user accepts it in its own project.
# mixmatch never sees the accept; the ingester learns the new owner from remote1's own
# volume.transfer.accept.end.
transfer() {
	vol_xfer=$(openstack volume create --size 1 e2e-transfer@remote1 -f value -c id) || { why="create failed"; return 1; }
	until_status available remote1 volumes "$vol_xfer" || { why="$vol_xfer not available at remote1"; return 1; }
	wait_mapping volumes "$vol_xfer" remote1 "$fedproj" || return 1
	# The body names the volume, which routes the create to remote1.
	local offer id key
	offer=$(openstack volume transfer request create --name e2e "$vol_xfer" -f json 2>&1)
	id=$(echo "$offer" | json 'j["id"]') && key=$(echo "$offer" | json 'j["auth_key"]') ||
		{ why="transfer create: $offer"; return 1; }
	remote_demo openstack volume transfer request accept --auth-key "$key" "$id" >/dev/null ||
		{ why="accept at remote1 failed"; return 1; }
	wait_mapping volumes "$vol_xfer" remote1 "${demo_project[remote1]}"
}
check "volume transfer accepted at remote1: the ingester learns the new project from remote1's notification" transfer

# With the mapping rows gone, mixmatch asks every cloud, finds the resource, and
# records where it was found.
# A worker may still answer from a row it read less than [database]
# mapping_cache_time (1 s) before the delete, and then asks no one: the show is
# tried again, a few times, until the row is back.
broadcast() {
	manage mappings delete images "$img_remote" >/dev/null && manage mappings delete volumes "$vol_remote" >/dev/null ||
		{ why="mixmatch-manage mappings delete failed"; return 1; }
	local try
	for try in 1 2 3; do
		[ "$(openstack image show "$img_remote" -f value -c name)" = e2e-remote ] || { why="image show after the mapping was deleted"; return 1; }
		[ "$(openstack volume show "$vol_remote" -f value -c name)" = e2e-remote ] || { why="volume show after the mapping was deleted"; return 1; }
		mapping_is "remote1 ${fedproj//-/}" images "$img_remote" && mapping_is "remote1 ${fedproj//-/}" volumes "$vol_remote" && return 0
	done
	why="mappings after three shows: image $(mapping images "$img_remote"), volume $(mapping volumes "$vol_remote")"
	return 1
}
check "broadcast search after mixmatch-manage mappings delete: image and volume found at remote1, mapped again" broadcast

# Resources made in each cloud directly, by each cloud's own demo user: only that
# cloud's notifications can tell the ingester about them.
direct=()
ingest_creates() {
	local c id
	for c in local remote1; do
		id=$(curl -s -X POST -H "X-Auth-Token: ${demo_token[$c]}" -H "Content-Type: application/json" \
			-d '{"name": "e2e-direct", "disk_format": "raw", "container_format": "bare"}' "${glance[$c]}/v2/images" | json 'j["id"]') ||
			{ why="image create at $c failed"; return 1; }
		direct+=("$c images $id")
		id=$(curl -s -X POST -H "X-Auth-Token: ${demo_token[$c]}" -H "Content-Type: application/json" \
			-d '{"volume": {"size": 1, "name": "e2e-direct"}}' "${cinder[$c]}/v3/${demo_project[$c]}/volumes" | json 'j["volume"]["id"]') ||
			{ why="volume create at $c failed"; return 1; }
		direct+=("$c volumes $id")
	done
	local d sp
	for d in "${direct[@]}"; do
		read -r c kind id <<<"$d"
		sp=$c && [ "$c" = local ] && sp=default
		wait_mapping "$kind" "$id" "$sp" "${demo_project[$c]}" || return 1
	done
}
check "the ingester learns creates from both clouds' own notifications (images, volumes)" ingest_creates

ingest_deletes() {
	local d c kind id url
	for d in "${direct[@]}"; do
		read -r c kind id <<<"$d"
		if [ "$kind" = images ]; then
			url=${glance[$c]}/v2/images/$id
		else
			until_status available "$c" volumes "$id" || { why="$id not available at $c"; return 1; }
			url=${cinder[$c]}/v3/${demo_project[$c]}/volumes/$id
		fi
		curl -sf -X DELETE -H "X-Auth-Token: ${demo_token[$c]}" "$url" || { why="delete of $kind $id at $c failed"; return 1; }
	done
	for d in "${direct[@]}"; do
		read -r c kind id <<<"$d"
		wait_no_mapping "$kind" "$id" || return 1
	done
}
check "the ingester learns deletes from both clouds' own notifications" ingest_deletes

gophercloud() {
	MIXMATCH_E2E_ENV=$work/fed/env go test -tags e2e -count=1 -timeout 5m ./app/e2etest/ >"$work/gophercloud.log" 2>&1 ||
		{ why=$(grep -E '^\s+\S+_test.go:[0-9]+:|FAIL|panic' "$work/gophercloud.log" | head -n 20); return 1; }
}
check "gophercloud: images, volumes, snapshots through the catalog (create, paged and sorted lists, show, download, delete)" gophercloud

delete_all() {
	openstack volume snapshot delete "$snap_local" "$snap_remote" || { why="snapshot delete failed"; return 1; }
	until_status none local snapshots "$snap_local" && until_status none remote1 snapshots "$snap_remote" ||
		{ why="snapshots not deleted in their clouds"; return 1; }
	openstack volume delete "$vol_local" "$vol_remote" || { why="volume delete failed"; return 1; }
	openstack image delete "$img_local" "$img_remote" || { why="image delete failed"; return 1; }
	remote_demo openstack volume delete "$vol_xfer" || { why="the remote demo user's delete of $vol_xfer failed"; return 1; }
	until_status none local volumes "$vol_local" && until_status none remote1 volumes "$vol_remote" &&
		until_status none remote1 volumes "$vol_xfer" || { why="volumes not deleted in their clouds"; return 1; }
	[ "$(image_at local "$img_local")" = deleted ] || [ "$(image_at local "$img_local")" = none ] || { why="$img_local still in the local Glance"; return 1; }
	[ "$(image_at remote1 "$img_remote")" = deleted ] || [ "$(image_at remote1 "$img_remote")" = none ] || { why="$img_remote still in the remote Glance"; return 1; }
	local r
	for r in "images $img_local" "images $img_remote" "volumes $vol_local" "volumes $vol_remote" "volumes $vol_xfer" \
		"snapshots $snap_local" "snapshots $snap_remote"; do
		# shellcheck disable=SC2086
		wait_no_mapping $r || return 1
	done
	local left
	left=$(openstack image list -f value -c ID; openstack volume list -f value -c ID; openstack volume snapshot list -f value -c ID)
	[ -z "$left" ] || { why="lists still show: $left"; return 1; }
}
check "delete everything through mixmatch: gone from both clouds, mappings dropped, lists empty" delete_all

# Nova, in the local cloud, as the demo user: it finds Glance and Cinder in the
# catalog, so mixmatch, and sends its service token beside the user's. Servers boot
# with --nic none (API microversion 2.37), as the cloud has no Neutron. Each step is
# asked of the clouds themselves, as their admins.
server() { openstack --os-compute-api-version 2.37 server "$@"; }
# worker_log_count TEXT: how many lines of the workers' logs contain TEXT.
worker_log_count() { cat "$FEDERATION_DIR"/worker-*.log | grep -cF -- "$1" || true; }
# volume_state CLOUD ID: "STATUS SERVER..." of the volume in that cloud, the servers
# it is attached to after its status; "none" when the cloud has no such volume.
volume_state() {
	curl -s -H "X-Auth-Token: ${admin_token[$1]}" "${cinder[$1]}/v3/${admin_project[$1]}/volumes/$2" |
		json '" ".join([j["volume"]["status"]] + [a["server_id"] for a in j["volume"]["attachments"]]) if "volume" in j else "none"' 2>/dev/null || echo none
}
# attachment_of CLOUD VOLUME: the id of the volume's attachment in that cloud.
attachment_of() {
	curl -s -H "X-Auth-Token: ${admin_token[$1]}" "${cinder[$1]}/v3/${admin_project[$1]}/volumes/$2" |
		json 'j["volume"]["attachments"][0]["attachment_id"]' 2>/dev/null
}
# attachments_of CLOUD SERVER: the ids of every attachment that cloud's Cinder holds
# for the server, in any project (the attachments API, volume 3.27).
attachments_of() {
	curl -s -H "X-Auth-Token: ${admin_token[$1]}" -H "OpenStack-API-Version: volume 3.27" \
		"${cinder[$1]}/v3/${admin_project[$1]}/attachments?all_tenants=1" |
		json '" ".join(a["id"] for a in j["attachments"] if a["instance"] == sys.argv[2])' "$2"
}
state_is() { [ "$(volume_state "$2" "$3")" = "$1" ]; }
# until_state STATE CLOUD VOLUME: waits (bounded) for the volume's state.
until_state() {
	until_ready 60 state_is "$1" "$2" "$3" || { why="volume $3 at $2: '$(volume_state "$2" "$3")', want '$1'"; return 1; }
}
# What the checks below make, found again by the later ones and deleted at the end.
declare -A nova_vol=([local]="" [remote1]="") nova_att=([local]="" [remote1]="")
server_id="" img_nova="" vol_from_image="" snap_image=""
nova_volumes() {
	local c name
	for c in local remote1; do
		name=e2e-nova && [ "$c" = remote1 ] && name=e2e-nova@remote1
		nova_vol[$c]=$(openstack volume create --size 1 "$name" -f value -c id) || { why="volume create $name failed"; return 1; }
	done
	for c in local remote1; do until_state available "$c" "${nova_vol[$c]}" || return 1; done
}

nova_boot() {
	img_nova=$(create_image "$work/remote.raw" e2e-nova@remote1) || { why="image create failed"; return 1; }
	[ "$(image_at remote1 "$img_nova")" = active ] || { why="$img_nova is not active in the remote Glance"; return 1; }
	nova_volumes || return 1
	local out status
	out=$(server create --image "$img_nova" --flavor "$NOVA_FLAVOR" --nic none --wait e2e-server -f value -c id 2>"$work/err") ||
		{ why="server create: $(cat "$work/err")"; return 1; }
	# --wait writes a line of its own before the id.
	server_id=$(tail -n 1 <<<"$out")
	status=$(server show "$server_id" -f value -c status)
	[ "$status" = ACTIVE ] || { why="server $server_id is $status"; return 1; }
	# Nova's download, through the catalog's image endpoint: mixmatch sends it to remote1.
	[ "$(worker_log_count "method=GET path=/image/v2/images/$img_nova/file sp=remote1 status=200 bytes=2097152")" = 1 ] ||
		{ why="no GET /image/v2/images/$img_nova/file routed to remote1 in the workers' logs"; return 1; }
	grep -qF "Fetched image $img_nova: 2097152 bytes" "$NOVA_DIR/nova-compute.log" ||
		{ why="nova-compute did not fetch $img_nova"; return 1; }
}
check "openstack server create --image (an image of remote1) --nic none --wait: ACTIVE, Nova downloaded the image from remote1 through mixmatch" nova_boot

# attach CLOUD: the cloud's volume attached to the server, in-use there with the
# server's attachment, the attachment mapped to that cloud; detach CLOUD undoes it.
attach() {
	local sp=$1 project=$fedproj
	[ "$1" = local ] && sp=default project=$KEYSTONE_DEMO_PROJECT_ID
	[ -n "$server_id" ] || { why="no server"; return 1; }
	server add volume "$server_id" "${nova_vol[$1]}" >/dev/null || { why="server add volume failed"; return 1; }
	until_state "in-use $server_id" "$1" "${nova_vol[$1]}" || return 1
	nova_att[$1]=$(attachment_of "$1" "${nova_vol[$1]}")
	wait_mapping attachments "${nova_att[$1]}" "$sp" "$project"
}
# Cinder 21 deletes an attachment Nova holds only when the call has a service token:
# the local Cinder gets Nova's, remote1's gets mixmatch's own K2K token there
# (service_token = k2k). With the user's token alone, the local Cinder would ask Nova
# and refuse (409); remote1's, which has no Nova to ask, fails.
detach() {
	local sp=$1
	[ "$1" = local ] && sp=default
	server remove volume "$server_id" "${nova_vol[$1]}" || { why="server remove volume failed"; return 1; }
	until_state available "$1" "${nova_vol[$1]}" || return 1
	[ "$(worker_log_count "method=DELETE path=/volume/v3/$KEYSTONE_DEMO_PROJECT_ID/attachments/${nova_att[$1]} sp=$sp status=200")" = 1 ] ||
		{ why="no DELETE of attachment ${nova_att[$1]} answered 200 by $sp in the workers' logs"; return 1; }
	wait_no_mapping attachments "${nova_att[$1]}"
}
attach_remote() { attach remote1; }
detach_remote() { detach remote1; }
attach_local() { attach local; }
detach_local() { detach local; }
check "openstack server add volume (a volume of remote1): in-use at remote1 with the server's attachment, mapped" attach_remote
check "openstack server remove volume (remote1): available at remote1, the attachment deleted with mixmatch's service token" detach_remote
check "openstack server add volume (a local volume): in-use in the local Cinder with the server's attachment, mapped" attach_local
check "openstack server remove volume (local): available, the attachment deleted with Nova's service token" detach_local

# The local Cinder makes the volume and downloads the image through the catalog's
# image endpoint, mixmatch, from remote1; its fake backend keeps the bytes in a file.
volume_from_image() {
	local before file
	before=$(worker_log_count "method=GET path=/image/v2/images/$img_nova/file sp=remote1 status=200 bytes=2097152")
	vol_from_image=$(openstack volume create --image "$img_nova" --size 1 e2e-from-image -f value -c id) ||
		{ why="volume create failed"; return 1; }
	until_status available local volumes "$vol_from_image" ||
		{ why="$vol_from_image: $(cinder_at local volumes "$vol_from_image") in the local Cinder"; return 1; }
	[ "$(worker_log_count "method=GET path=/image/v2/images/$img_nova/file sp=remote1 status=200 bytes=2097152")" = $((before + 1)) ] ||
		{ why="no second download of $img_nova routed to remote1 in the workers' logs"; return 1; }
	file=$CINDER_DIR/volumes/volume-$vol_from_image
	cmp -s "$work/remote.raw" "$file" || { why="$file does not hold the image's bytes"; return 1; }
}
check "openstack volume create --image (an image of remote1): the local Cinder downloaded it through mixmatch, its bytes in the volume" volume_from_image

# Nova creates the snapshot's image through the catalog (no NAME@SP: the local Glance)
# and uploads the server's disk, the remote image's bytes.
server_snapshot() {
	[ -n "$server_id" ] || { why="no server"; return 1; }
	local out
	out=$(server image create --name e2e-server-snapshot --wait "$server_id" -f value -c id 2>"$work/err") ||
		{ why="server image create: $(cat "$work/err")"; return 1; }
	snap_image=$(tail -n 1 <<<"$out")
	[ "$(image_at local "$snap_image")" = active ] || { why="$snap_image is $(image_at local "$snap_image") in the local Glance"; return 1; }
	[ "$(image_at remote1 "$snap_image")" = none ] || { why="$snap_image is in the remote Glance"; return 1; }
	wait_mapping images "$snap_image" default "$KEYSTONE_DEMO_PROJECT_ID" || return 1
	openstack image list -f value -c ID | grep -qxF "$snap_image" || { why="$snap_image is not listed"; return 1; }
	openstack image save --file "$work/snapshot.out" "$snap_image" || { why="image save failed"; return 1; }
	cmp -s "$work/remote.raw" "$work/snapshot.out" || { why="the snapshot does not hold the server's disk"; return 1; }
}
check "openstack server image create (a server of a remote image): active in the local Glance, mapped, listed, the disk's bytes" server_snapshot

# Deleting a server with a volume of each cloud attached: Nova deletes both
# attachments, each in its cloud.
server_delete() {
	[ -n "$server_id" ] || { why="no server"; return 1; }
	attach remote1 && attach local || return 1
	server delete --wait "$server_id" || { why="server delete failed"; return 1; }
	local c left
	for c in local remote1; do
		until_state available "$c" "${nova_vol[$c]}" || return 1
		left=$(attachments_of "$c" "$server_id") || { why="attachments at $c unreadable"; return 1; }
		[ -z "$left" ] || { why="attachments of $server_id left at $c: $left"; return 1; }
		wait_no_mapping attachments "${nova_att[$c]}" || return 1
	done
}
check "openstack server delete with a volume of each cloud attached: no attachment left in either cloud, mappings dropped" server_delete

nova_cleanup() {
	local v i pair c
	for v in "${nova_vol[local]}" "${nova_vol[remote1]}" "$vol_from_image"; do
		[ -z "$v" ] || openstack volume delete "$v" || { why="volume delete $v failed"; return 1; }
	done
	for i in "$img_nova" "$snap_image"; do
		[ -z "$i" ] || openstack image delete "$i" || { why="image delete $i failed"; return 1; }
	done
	for pair in "local ${nova_vol[local]}" "remote1 ${nova_vol[remote1]}" "local $vol_from_image"; do
		read -r c v <<<"$pair"
		[ -z "$v" ] || until_status none "$c" volumes "$v" || { why="volume $v not deleted at $c"; return 1; }
	done
	[ -z "$vol_from_image" ] || [ ! -e "$CINDER_DIR/volumes/volume-$vol_from_image" ] || { why="the volume's file outlived it"; return 1; }
	local left
	left=$(openstack image list -f value -c ID; openstack volume list -f value -c ID; server list -f value -c ID)
	[ -z "$left" ] || { why="lists still show: $left"; return 1; }
}
check "delete the Nova checks' volumes and images through mixmatch: lists empty" nova_cleanup

# Where the tokens went. The local Keystone logs every token presented to it (the
# subject of each validation, the caller's own); the remote Keystone's Apache logs the
# tokens it receives and issues; the Glances and Cinders log each token they validate
# as {SHA256}<hash>. No local token, raw or hashed, may be in any log of remote1, and
# every token remote1's services validated must be one remote1's Keystone issued.
tokens() {
	why=$(/usr/bin/python3 - "$FEDERATION_DIR" <<'EOF'
import glob, hashlib, os, re, sys
fed = sys.argv[1]
def fail(message):
    print(message)
    sys.exit(1)
def read(pattern):
    return "".join(open(f, errors="replace").read() for f in sorted(glob.glob(os.path.join(fed, pattern))))
h = lambda t: "{SHA256}" + hashlib.sha256(t.encode()).hexdigest()
local = set(re.findall(r"(?:subject|auth)=(gAAAA\S+)", read("keystone/uwsgi.log")))
if not local:
    fail("the local Keystone logged no token")
remote_logs = read("remote1/*/*.log") + read("remote1/*/*.out")
leaked = [t for t in local if t in remote_logs or h(t) in remote_logs]
if leaked:
    fail("%d of %d local tokens reached remote1, e.g. %s" % (len(leaked), len(local), h(leaked[0])))
local_services = read("glance/*.log") + read("cinder/*.log")
if not any(h(t) in local_services for t in local):
    fail("no local token in the local Glance's and Cinder's logs: the logs do not show tokens")
issued = {h(t) for t in re.findall(r"issued=(gAAAA\S+)", read("remote1/keystone/apache-access.log"))}
seen = set(re.findall(r"X-Subject-Token: (\{SHA256\}[0-9a-f]+)", read("remote1/glance/*.log") + read("remote1/cinder/*.log")))
if not seen:
    fail("remote1's Glance and Cinder logged no token")
if seen - issued:
    fail("remote1's services validated %d tokens its Keystone did not issue" % len(seen - issued))
print("%d local tokens, none at remote1; remote1's services saw %d tokens, all its own" % (len(local), len(seen)))
EOF
	) || return 1
	echo "e2e: $why"
}
check "the local tokens never left the IdP: remote1's logs show only tokens its own Keystone issued" tokens

not_a_version() {
	local code
	code=$(curl -s -o "$work/body" -w '%{http_code}' "$MIXMATCH_URL/image/not-a-version/images")
	[ "$code" = 404 ] && grep -q '"code":404' "$work/body" || { why="GET /image/not-a-version answered $code"; return 1; }
}
check "a path outside the API answers a JSON 404 through Apache" not_a_version

health() {
	[ "$(curl -sf "$MIXMATCH_URL/healthcheck?detail")" = '{"status":"ok"}' ] ||
		{ why="healthcheck through Apache: $(curl -s "$MIXMATCH_URL/healthcheck?detail")"; return 1; }
	curl -sf "$MIXMATCH_METRICS_URL/healthcheck" | grep -q '"database":{"engine":"sqlite3","ok":true}' ||
		{ why="detailed healthcheck: $(curl -s "$MIXMATCH_METRICS_URL/healthcheck")"; return 1; }
}
check "GET /healthcheck: a status only through Apache; the details on the worker's metrics listener" health

echo "e2e: the federation started in $started s; the checks took $((SECONDS - started)) s"
echo "${#passed[@]} passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'e2e: failed: %s\n' "${failed[@]}" >&2
	exit 1
fi
