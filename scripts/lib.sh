# shellcheck shell=bash
# Helpers the scripts in scripts/ share; source it, do not run it:
#   . "$(dirname "$0")/lib.sh"
# log's prefix is the sourcing script's name.

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# free_port: a TCP port on loopback that nothing listens on now, for a server about to
# start. Taken below the kernel's ephemeral range (ip_local_port_range), where no
# outgoing connection is given a local port: from that range, a port found free could
# be some client's by the time the server binds it (EADDRINUSE). Each port handed out
# is claimed with a directory in /tmp for an hour, so that scripts starting servers
# side by side never get the same one.
free_port() {
	/usr/bin/python3 - <<'PY'
import os, random, socket, time
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
claims = "/tmp/mixmatch-ports-%d" % os.getuid()
os.makedirs(claims, exist_ok=True)
for _ in range(2000):
    port = random.randrange(10000, low) if low > 11000 else random.randrange(low, 65536)
    claim = os.path.join(claims, str(port))
    try:
        if time.time() - os.stat(claim).st_mtime > 3600:
            os.rmdir(claim)
    except FileNotFoundError:
        pass
    try:
        os.mkdir(claim)
    except FileExistsError:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("free_port: no free port found below %d" % low)
PY
}

# explain_failure FILE: the end of FILE, the output of a start-up that failed, and the
# end of each log it names ("...; see LOG"), on standard error: CI keeps what the run
# printed, not the files.
explain_failure() {
	local f
	log "the end of $1:"
	tail -n 40 "$1" >&2
	# A named log may be a pattern: "see DIR/*.log".
	grep 'see /' "$1" | grep -oE '/[^ ;,]+' | sed 's/[.:)]*$//' | sort -u | while read -r f; do
		compgen -G "$f" || true
	done | while read -r f; do
		[ -f "$f" ] && [ "$f" != "$1" ] || continue
		log "the end of $f:"
		tail -n 40 "$f" >&2
	done
}

# until_ready SECONDS CMD...: polls a probe every 0.1 s until it succeeds, for at most
# SECONDS: a server's start-up, or an asynchronous effect a check waits for. A probe
# with an answer, never a sleep that hopes for one.
until_ready() {
	local limit=$(($1 * 10)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@" >/dev/null 2>&1
}

# apt_install [APT-GET OPTION...] PACKAGE...: installs Debian packages, as root only.
# The scripts that start a federation's services side by side install side by side
# on a fresh machine, and apt-get update takes the lists' lock without waiting for
# it ("Could not get lock /var/lib/apt/lists/lock"): they take turns on a lock of
# their own. apt-get update runs at most once an hour, whoever asks.
apt_install() {
	local arg packages=() fd stamp=/tmp/mixmatch-apt-updated
	for arg; do [[ $arg == -* ]] || packages+=("$arg"); done
	if [ "$(id -u)" != 0 ]; then
		log "${packages[*]} missing and this is not root: install it with apt-get and run again"
		exit 1
	fi
	exec {fd}>>/tmp/mixmatch-apt.lock
	flock "$fd"
	# dpkg's lock: apt run by something else than these scripts.
	local lock=(-o DPkg::Lock::Timeout=600)
	if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
		apt-get "${lock[@]}" update -qq
		touch "$stamp"
	fi
	log "installing ${packages[*]} (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq "$@" >/dev/null
	exec {fd}>&-
}

# sqlite_wal FILE: WAL, so that a request reading does not lock out one writing
# ("database is locked"). The mode is kept in the file.
sqlite_wal() {
	/usr/bin/python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$1"
}

# alive PID: the process runs. A zombie does not: the daemons here are orphans, and
# the init of a container may take seconds to reap them.
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_pidfile FILE MATCH: stops the process FILE names and removes FILE. The process
# is signalled only if its command line, arguments joined by spaces and ended by
# one, contains MATCH: after a reboot a stale pid may be some other program's.
# TERM, then KILL after 10 s; returns once it is gone.
stop_pidfile() {
	local file=$1 match=$2 pid i
	[ -f "$file" ] || return 0
	pid=$(cat "$file")
	# 2>/dev/null before the <: a process gone since (no /proc entry) is no error.
	if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$match"; then
		kill "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
	fi
	rm -f "$file"
}

# fresh_dir DIR MARK: makes DIR an empty directory for a new run, with the file MARK
# in it. A DIR left by an earlier run (it holds MARK) is wiped, so nothing of that
# run (databases, projects, catalog entries) is carried over; the caller has
# stopped it first. Any other non-empty DIR is refused rather than wiped: it may be
# a path given by mistake.
fresh_dir() {
	local dir=$1 mark=$2
	if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
		if [ ! -f "$dir/$mark" ]; then
			log "$dir is not empty and was not made by this script (no $mark): remove it or choose another"
			exit 1
		fi
		rm -rf "${dir:?}"
	fi
	mkdir -p "$dir"
	touch "$dir/$mark"
}

# env_value FILE KEY: the value of KEY=VALUE in FILE, one of the env files the start-up
# scripts write. Read rather than sourced where two files name the same keys (the
# Keystone of each cloud writes KEYSTONE_URL).
env_value() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# catalog_add KEYSTONE_ENV TYPE NAME URL...: a service of TYPE named NAME in the catalog
# of the Keystone of KEYSTONE_ENV (keystone.sh's or sp-keystone.sh's env file), as its
# admin, with an endpoint per URL given (public, then internal and admin; one URL
# serves all three) in RegionOne. One Python process per service rather than an
# openstack command per endpoint: each of those costs a second or more of start-up.
catalog_add() {
	/usr/bin/python3 - "$(env_value "$1" KEYSTONE_URL)" "$(env_value "$1" KEYSTONE_ADMIN_PASSWORD)" "${@:2}" <<'PY'
import json, sys, urllib.request
url, password, stype, name, *urls = sys.argv[1:]
def call(method, path, body, token=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req) as r:
        return r.headers.get("X-Subject-Token"), json.load(r)
token, _ = call("POST", "/auth/tokens?nocatalog", {"auth": {"identity": {"methods": ["password"],
    "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": password}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
service = call("POST", "/services", {"service": {"type": stype, "name": name}}, token)[1]["service"]["id"]
for iface, u in zip(("public", "internal", "admin"), urls + urls[-1:] * 2):
    call("POST", "/endpoints", {"endpoint": {"service_id": service, "interface": iface, "url": u,
                                             "region_id": "RegionOne"}}, token)
PY
}

# admin_token KEYSTONE_URL PASSWORD: prints a token of the admin, scoped to the
# project admin, and that project's id, as "TOKEN PROJECT_ID".
admin_token() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
keystone, password = sys.argv[1:]
req = urllib.request.Request(keystone + "/auth/tokens?nocatalog", method="POST",
    headers={"Content-Type": "application/json"}, data=json.dumps({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}).encode())
with urllib.request.urlopen(req) as r:
    print(r.headers["X-Subject-Token"], json.load(r)["token"]["project"]["id"])
PY
}
