#!/usr/bin/env bash
# make tempest: Tempest's image and volume API tests (tempest.api.image.v2 and
# tempest.api.volume, v3) and Nova's volume tests (tempest.api.compute.volumes:
# attach, detach, Nova's volume proxy), from Debian's tempest package, run twice
# against one federation of scripts/federation.sh:
#   1. through mixmatch, the catalog's image and volumev3 endpoints as federation.sh
#      sets them: the tests' calls and Nova's and Cinder's own go to mixmatch;
#   2. against the local cloud's own Glance and Cinder, those endpoints pointed at them.
# A client must not tell mixmatch from the services behind it, so the second run is
# the reference: this fails unless every test ends the same way in both (one that
# does not is run once more in each, and those outcomes count). A test that
# fails in both is listed but not held against mixmatch (the deployment lacks
# something). One table per API; the summary, the subunit streams, Tempest's and the
# federation's logs (mixmatch's workers' among them) are kept in var/tempest.
#
#   TEMPEST_APIS          which tests: any of "image volume compute" (all three)
#   TEMPEST_RUN_TIMEOUT   seconds one run may take (900)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$repo/var/tempest
run_timeout=${TEMPEST_RUN_TIMEOUT:-900}

command -v tempest >/dev/null || apt_install --no-install-recommends tempest

work=$(mktemp -d)
chmod 755 "$work" # Apache's children (www-data) reach the workers' sockets in it
rm -rf "$out"
mkdir -p "$out"
# The federation goes whatever happens; its logs stay, for reading a failure against.
running=
cleanup() {
	if [ -n "$running" ]; then
		# timeout passes the signal on to its whole group, Tempest's workers too.
		kill -TERM "$running" 2>/dev/null || true
		wait "$running" 2>/dev/null || true
	fi
	scripts/federation.sh stop "$work/fed" >/dev/null 2>&1 || true
	if [ -d "$work/fed" ]; then
		mkdir -p "$out/federation"
		(cd "$work/fed" && find . -name '*.log' -print0 | tar --null -T - -cf -) | tar -C "$out/federation" -xf -
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
log "starting a federation in $work/fed"
scripts/federation.sh start "$work/fed" >"$out/federation-start.out" 2>&1 ||
	{ log "the federation did not start; see $out/federation-start.out"; explain_failure "$out/federation-start.out"; exit 1; }
# shellcheck disable=SC1091
. "$work/fed/env"
export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=admin OS_PASSWORD=$KEYSTONE_ADMIN_PASSWORD OS_PROJECT_NAME=admin \
	OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public

# The metadefs tests read the namespaces a packaged Glance ships and loads at install.
glance-manage --config-file "$work/fed/glance/glance-api.conf" db_load_metadefs >"$out/load-metadefs.log" 2>&1 ||
	{ log "glance-manage db_load_metadefs failed; see $out/load-metadefs.log"; exit 1; }

# The image Nova boots Tempest's servers from and Cinder makes volumes of: public,
# raw, small (the fake driver copies it on every boot, as a real one would), and
# local, so that both runs see the same one.
head -c 65536 /dev/urandom >"$work/image.raw"
image_ref=$(openstack image create --public --disk-format raw --container-format bare \
	--file "$work/image.raw" -f value -c id tempest-image) ||
	{ log "creating Tempest's image through mixmatch failed"; exit 1; }

# The microversions the local Cinder serves (its version document's v3), and those
# mixmatch's document announces for the federation. Tempest picks the tests whose
# microversions fall in [volume] min_microversion..max_microversion, and sends each
# one's in OpenStack-API-Version; the Cinder's own range there makes both runs the
# same selection, and a microversion mixmatch mishandles shows as a difference.
microversions() {
	curl -sf "$1" | /usr/bin/python3 -c '
import json, sys
v3 = [v for v in json.load(sys.stdin)["versions"] if v["id"].startswith("v3")]
print(v3[0].get("min_version") or "", v3[0].get("version") or "")'
}
read -r cinder_min cinder_max <<<"$(microversions "$CINDER_URL/")" || true
if [ -z "${cinder_min:-}" ] || [ -z "${cinder_max:-}" ]; then
	log "no v3 microversion range in $CINDER_URL/"
	exit 1
fi
read -r mm_min mm_max <<<"$(microversions "$MIXMATCH_URL/volume/")" || true
log "volume microversions: Cinder $cinder_min..$cinder_max, mixmatch announces ${mm_min:-?}..${mm_max:-?}"

# A workspace of its own: the workspace list too, rather than ~/.tempest's. Tempest
# logs to tempest.log in the working directory until it has a configuration of its
# own, so init runs in the scratch directory, not in the checkout.
ws=$work/tempest
(cd "$work" && tempest init --workspace-path "$work/workspaces.yaml" "$ws") >/dev/null 2>&1
# The logging.conf init copies from /etc/tempest has each test worker truncate one
# tempest.log in the working directory; without it, log_dir and log_file below hold.
rm -f "$ws/etc/logging.conf"
# What this Glance is (scripts/glance.sh): one file store, glance-direct its only
# import method, no cache, no multiple locations. What this Cinder is
# (scripts/cinder.sh): one backend, Cinder's FakeLoggingVolumeDriver (its name and
# protocol from the env, its vendor the driver's "Open Source"), which creates,
# snapshots, clones, retypes and groups volumes without storage; no cinder-backup,
# so no backups; nothing to manage. What Nova is (scripts/nova.sh): one fake
# compute host, no Neutron (servers have no network; nothing to reach by SSH),
# the flavor tiny. What the fake
# driver cannot do fails alike in both runs, and is listed as such: it holds no
# data (test_volume_upload), its LVM stand-in cannot extend
# (test_volume_extend_when_volume_has_snapshot), and the tests of a volume made
# from [compute] image_ref, Nova's image, find none (VolumesImageMetadata,
# test_volume_extend, test_create_from_bootable_volume,
# test_volume_create_get_update_delete_from_image).
# Dynamic credentials: each test class gets projects and users of its own from the
# admin, so the two runs start alike.
cat >"$ws/etc/tempest.conf" <<EOF
[DEFAULT]
log_dir = $ws/logs
log_file = tempest.log
[oslo_concurrency]
lock_path = $ws/tempest_lock
[auth]
use_dynamic_credentials = true
create_isolated_networks = false
admin_username = admin
admin_password = $KEYSTONE_ADMIN_PASSWORD
admin_project_name = admin
admin_domain_name = Default
[identity]
auth_version = v3
uri_v3 = $KEYSTONE_URL
region = RegionOne
v3_endpoint_type = public
[identity-feature-enabled]
api_v2 = false
[service-clients]
http_timeout = 60
[image]
region = RegionOne
endpoint_type = publicURL
# Imports on loopback end in seconds; a wait that goes on means a lost answer.
build_timeout = 60
build_interval = 1
[image-feature-enabled]
api_v2 = true
api_v1 = false
import_image = true
os_glance_reserved = true
manage_locations = false
[volume]
region = RegionOne
catalog_type = volumev3
endpoint_type = publicURL
backend_names = $CINDER_BACKEND_NAME
storage_protocol = $CINDER_STORAGE_PROTOCOL
vendor_name = Open Source
min_microversion = $cinder_min
max_microversion = $cinder_max
# The fake driver answers at once; a volume still creating after a minute is lost.
build_timeout = 60
build_interval = 1
[volume-feature-enabled]
multi_backend = false
backup = false
snapshot = true
clone = true
manage_volume = false
manage_snapshot = false
extend_attached_volume = false
extend_attached_encrypted_volume = false
api_extensions = all
[service_available]
glance = true
cinder = true
neutron = false
nova = true
swift = false
horizon = false
[compute]
region = RegionOne
endpoint_type = publicURL
image_ref = $image_ref
image_ref_alt = $image_ref
flavor_ref = $NOVA_FLAVOR
flavor_ref_alt = $NOVA_FLAVOR
# Nova's own range: the shelve tests (2.20 on) attach to a shelved server.
min_microversion = 2.1
max_microversion = latest
# The fake driver boots at once; a server still building after two minutes is lost.
build_timeout = 120
build_interval = 1
[compute-feature-enabled]
# One host: nothing to migrate or resize to.
resize = false
cold_migration = false
live_migration = false
[validation]
run_validation = false
EOF
cp "$ws/etc/tempest.conf" "$out/tempest.conf"

# The tests: Glance's v2 API, Cinder's v3 (tempest.api.volume has no other), Nova's
# volume attachments and volume proxy. None is excluded by name: what this
# deployment lacks (backups, a second backend, volumes to manage, a second compute
# host), tempest.conf above tells Tempest, and its tests skip. TEMPEST_APIS picks
# among them; CI runs all three.
declare -A api_regex=([image]='image\.v2' [volume]='volume' [compute]='compute\.volumes')
regex=
for api in ${TEMPEST_APIS:-image volume compute}; do
	[ -n "${api_regex[$api]:-}" ] || { log "TEMPEST_APIS: words of \"image volume compute\", not \"$api\""; exit 2; }
	regex=${regex:+$regex|}${api_regex[$api]}
done
regex="^tempest\\.api\\.($regex)\\."

# run NAME [LIST]: one run of the tests (those LIST names, when given); its results
# go to $out/NAME.subunit.
run() {
	local name=$1 t0=$SECONDS select=(--regex "$regex")
	[ -z "${2:-}" ] || select=(--load-list "$2")
	log "$name: tempest run ${select[*]} (concurrency 2)"
	# In the background and waited for, so that an interrupt stops it at once (see
	# cleanup); timeout leads a process group of its own, the test workers in it.
	(cd "$ws" && exec timeout --kill-after=30 "$run_timeout" tempest run "${select[@]}" --concurrency 2) \
		>"$out/$name.out" 2>&1 &
	running=$!
	# Tempest exits non-zero when a test fails; the results decide, below.
	wait "$running" || true
	running=
	(cd "$ws" && stestr last --subunit) >"$out/$name.subunit" 2>/dev/null || true
	mv "$ws/logs/tempest.log" "$out/tempest-$name.log" 2>/dev/null || true
	log "$name: done in $((SECONDS - t0)) s"
}

run mixmatch

# repoint TYPE URL: every endpoint of the catalog's service TYPE to URL.
repoint() {
	local id
	for id in $(openstack endpoint list --service "$1" -f value -c ID); do
		openstack endpoint set --url "$2" "$id"
	done
	[ "$(openstack endpoint list --service "$1" -f value -c URL | sort -u)" = "$2" ] ||
		{ log "the $1 endpoints were not all repointed to $2"; exit 1; }
}
# The same Glance and Cinder, reached straight from the catalog: Cinder's own calls
# to Glance (a volume from an image) follow the catalog too.
repoint image "$GLANCE_URL"
repoint volumev3 "$CINDER_URL/v3/%(project_id)s"

run direct

# The comparison, kept as a file: it runs twice.
cat >"$work/compare.py" <<'EOF'
import re, sys
import subunit, testtools

exception = re.compile(r"^\s*(\w+\.)*[A-Z]\w*: ")
call = re.compile(r"Request \([^)]*\): (.*)$")

def why(details):
    """The exception a test ended with, and the last API call it made."""
    if "traceback" not in details:
        return details["reason"].as_text().strip() if "reason" in details else ""
    lines = details["traceback"].as_text().splitlines()
    frame = max([i for i, l in enumerate(lines) if l.lstrip().startswith('File "')], default=0)
    start = min([i for i, l in enumerate(lines) if i > frame and exception.match(l)], default=len(lines) - 1)
    text = " ".join(l.strip() for l in lines[start:] if l.strip())
    calls = [m.group(1) for d in details for l in details[d].as_text().splitlines()
             if d.startswith("pythonlogging") for m in [call.search(l)] if m]
    return text + (" (last call: %s)" % calls[-1] if calls else "")

def outcomes(path):
    """test id (without its [attributes]) -> (status, why it did not pass)"""
    tests = {}
    def done(t):
        reason = why(t["details"]) if t["status"] not in ("success", "xfail") else ""
        tests[re.sub(r"\[.*\]$", "", t["id"])] = (t["status"], reason, t["id"])
    with open(path, "rb") as f:
        result = testtools.StreamToDict(done)
        result.startTestRun()
        subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout").run(result)
        result.stopTestRun()
    return tests

def count(tests, *statuses):
    return sum(1 for s, _, _ in tests.values() if s in statuses)
def short(tests, t):
    s = tests.get(t, ("absent",))[0]
    return {"success": "pass", "xfail": "pass", "fail": "FAIL", "uxsuccess": "FAIL"}.get(s, s)

mm_all, direct_all = outcomes(sys.argv[2]), outcomes(sys.argv[3])
if sys.argv[1] == "differ":
    # The tests (as Tempest names them, to load) that ended otherwise in the two
    # runs; a class that failed before its tests started cannot be loaded alone.
    for t in sorted(set(mm_all) | set(direct_all)):
        if short(mm_all, t) != short(direct_all, t) and not t.startswith("setUpClass"):
            print((mm_all.get(t) or direct_all.get(t))[2])
    sys.exit(0)
# A test run again in both (argv 5 and 6) ends as it did then.
if len(sys.argv) > 6:
    again_mm, again_direct = outcomes(sys.argv[5]), outcomes(sys.argv[6])
    for t in set(again_mm) & set(again_direct):
        mm_all[t], direct_all[t] = again_mm[t], again_direct[t]
failed = not mm_all or not direct_all
# One table per API; a test that errs before it starts (a class's setUpClass) is
# named after its class, which still begins with the API's prefix.
for prefix, service in (("tempest.api.image.v2", "Glance"), ("tempest.api.volume", "Cinder"),
                        ("tempest.api.compute.volumes", "Nova")):
    if not re.match(sys.argv[4], prefix + "."):
        continue  # not run this time (TEMPEST_APIS)
    mm = {t: o for t, o in mm_all.items() if t.startswith(prefix + ".") or prefix + "." in t}
    di = {t: o for t, o in direct_all.items() if t.startswith(prefix + ".") or prefix + "." in t}
    direct = "%s directly" % service if service != "Nova" else "Nova, Cinder directly"
    print("%-24s passed  failed  skipped  total" % prefix)
    for name, tests in (("through mixmatch", mm), (direct, di)):
        print("%-22s %10d %7d %8d %6d" % (name, count(tests, "success", "xfail"), count(tests, "fail", "uxsuccess"),
                                          count(tests, "skip"), len(tests)))
    differ = sorted(t for t in set(mm) | set(di) if short(mm, t) != short(di, t))
    both = sorted(t for t in set(mm) & set(di) if short(mm, t) == short(di, t) == "FAIL")
    print()
    print("Outcome differs (%d): through mixmatch / %s" % (len(differ), direct))
    for t in differ:
        m, d = mm.get(t, (None, "")), di.get(t, (None, ""))
        print("  %s: %s / %s" % (t, short(mm, t), short(di, t)))
        if m[1]:
            print("      mixmatch: %s" % m[1][:400])
        if d[1]:
            print("      %s: %s" % (service.lower(), d[1][:400]))
    print()
    print("Fails in both (%d): the deployment, not mixmatch" % len(both))
    for t in both:
        print("  %s" % t)
        print("      %s" % di[t][1][:400])
    print()
    failed = failed or bool(differ) or not mm or not di
sys.exit(1 if failed else 0)
EOF

# A test that ended otherwise in the two runs is run once more in each, directly
# first (the catalog points there now), then through mixmatch again: the
# services here are real, and a race of their own (two test classes' dynamic
# projects, quotas that are global) can fail one run and not the other. What
# still differs after that is held against mixmatch.
/usr/bin/python3 "$work/compare.py" differ "$out/mixmatch.subunit" "$out/direct.subunit" >"$work/differ.txt" || true
again=()
if [ -s "$work/differ.txt" ]; then
	cp "$work/differ.txt" "$out/run-again.txt"
	log "$(wc -l <"$work/differ.txt") test(s) ended otherwise; running them once more in each"
	run direct-again "$work/differ.txt"
	repoint image "$MIXMATCH_URL/image"
	repoint volumev3 "$MIXMATCH_URL/volume/v3/%(project_id)s"
	run mixmatch-again "$work/differ.txt"
	again=("$out/mixmatch-again.subunit" "$out/direct-again.subunit")
fi
status=0
/usr/bin/python3 "$work/compare.py" summary "$out/mixmatch.subunit" "$out/direct.subunit" "$regex" "${again[@]}" \
	>"$out/summary.txt" || status=$?
cat "$out/summary.txt"
log "$((SECONDS - start)) s in all; results, Tempest's output and the federation's logs in $out"
if [ "$status" != 0 ]; then
	log "FAIL: through mixmatch, tests end otherwise than against Glance and Cinder themselves"
	exit 1
fi
