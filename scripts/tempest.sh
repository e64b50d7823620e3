#!/usr/bin/env bash
# make tempest: Tempest's image API tests (tempest.api.image.v2, from Debian's tempest
# package) run twice against one federation of scripts/federation.sh:
#   1. through mixmatch, the catalog's image endpoints as federation.sh sets them;
#   2. against the same Glance, those endpoints pointed at Glance itself.
# A client must not tell mixmatch from the Glance behind it, so the second run is the
# reference: this fails unless every test ends the same way in both. A test that
# fails in both is listed but not held against mixmatch (the deployment lacks
# something). The summary, the subunit streams, Tempest's and the federation's logs
# are kept in var/tempest.
#
#   TEMPEST_RUN_TIMEOUT   seconds one run may take (600)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
repo=$(pwd)
out=$repo/var/tempest
run_timeout=${TEMPEST_RUN_TIMEOUT:-600}

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
	{ log "the federation did not start; see $out/federation-start.out"; exit 1; }
# shellcheck disable=SC1091
. "$work/fed/env"
export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=admin OS_PASSWORD=$KEYSTONE_ADMIN_PASSWORD OS_PROJECT_NAME=admin \
	OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public

# The metadefs tests read the namespaces a packaged Glance ships and loads at install.
glance-manage --config-file "$work/fed/glance/glance-api.conf" db_load_metadefs >"$out/load-metadefs.log" 2>&1 ||
	{ log "glance-manage db_load_metadefs failed; see $out/load-metadefs.log"; exit 1; }

# A workspace of its own: the workspace list too, rather than ~/.tempest's. Tempest
# logs to tempest.log in the working directory until it has a configuration of its
# own, so init runs in the scratch directory, not in the checkout.
ws=$work/tempest
(cd "$work" && tempest init --workspace-path "$work/workspaces.yaml" "$ws") >/dev/null 2>&1
# The logging.conf init copies from /etc/tempest has each test worker truncate one
# tempest.log in the working directory; without it, log_dir and log_file below hold.
rm -f "$ws/etc/logging.conf"
# What this Glance is (scripts/glance.sh): one file store, glance-direct its only
# import method, no cache, no multiple locations; and Glance is the only service.
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
[service_available]
glance = true
cinder = false
neutron = false
nova = false
swift = false
horizon = false
[validation]
run_validation = false
EOF
cp "$ws/etc/tempest.conf" "$out/tempest.conf"

# run NAME: one run of the image tests; its results go to $out/NAME.subunit.
run() {
	local name=$1 t0=$SECONDS
	log "$name: tempest run --regex '^tempest\\.api\\.image\\.v2' (concurrency 2)"
	# In the background and waited for, so that an interrupt stops it at once (see
	# cleanup); timeout leads a process group of its own, the test workers in it.
	(cd "$ws" && exec timeout --kill-after=30 "$run_timeout" tempest run --regex '^tempest\.api\.image\.v2' --concurrency 2) \
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

# The same Glance, reached straight from the catalog.
for id in $(openstack endpoint list --service image -f value -c ID); do
	openstack endpoint set --url "$GLANCE_URL" "$id"
done
[ "$(openstack endpoint list --service image -f value -c URL | sort -u)" = "$GLANCE_URL" ] ||
	{ log "the image endpoints were not all repointed to $GLANCE_URL"; exit 1; }

run glance

status=0
/usr/bin/python3 - "$out/mixmatch.subunit" "$out/glance.subunit" >"$out/summary.txt" <<'EOF' || status=$?
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
        tests[re.sub(r"\[.*\]$", "", t["id"])] = (t["status"], reason)
    with open(path, "rb") as f:
        result = testtools.StreamToDict(done)
        result.startTestRun()
        subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout").run(result)
        result.stopTestRun()
    return tests

mm, gl = outcomes(sys.argv[1]), outcomes(sys.argv[2])
def count(tests, *statuses):
    return sum(1 for s, _ in tests.values() if s in statuses)
print("tempest.api.image.v2     passed  failed  skipped  total")
for name, tests in (("through mixmatch", mm), ("Glance directly", gl)):
    print("%-22s %8d %7d %8d %6d" % (name, count(tests, "success", "xfail"), count(tests, "fail", "uxsuccess"),
                                      count(tests, "skip"), len(tests)))
def short(tests, t):
    s = tests.get(t, ("absent",))[0]
    return {"success": "pass", "xfail": "pass", "fail": "FAIL", "uxsuccess": "FAIL"}.get(s, s)
differ = sorted(t for t in set(mm) | set(gl) if short(mm, t) != short(gl, t))
both = sorted(t for t in set(mm) & set(gl) if short(mm, t) == short(gl, t) == "FAIL")
print()
print("Outcome differs (%d): through mixmatch / Glance directly" % len(differ))
for t in differ:
    m, g = mm.get(t, (None, "")), gl.get(t, (None, ""))
    print("  %s: %s / %s" % (t, short(mm, t), short(gl, t)))
    if m[1]:
        print("      mixmatch: %s" % m[1][:300])
    if g[1]:
        print("      glance:   %s" % g[1][:300])
print()
print("Fails in both (%d): the deployment, not mixmatch" % len(both))
for t in both:
    print("  %s" % t)
    print("      %s" % gl[t][1][:300])
sys.exit(1 if differ or not mm or not gl else 0)
EOF
cat "$out/summary.txt"
echo
log "$((SECONDS - start)) s in all; results, Tempest's output and the federation's logs in $out"
if [ "$status" != 0 ]; then
	log "FAIL: through mixmatch, tests end otherwise than against Glance itself"
	exit 1
fi
