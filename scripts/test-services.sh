#!/usr/bin/env bash
# Makes sure the servers `make test` talks to are installed and answering on loopback:
# PostgreSQL, MariaDB, memcached, RabbitMQ, and that Apache and oslo.messaging are
# installed. On a go-svc machine they run already and this only checks; on a fresh
# Debian machine (as root) it installs them with apt-get and starts them. Running it
# again changes nothing.
#
# The database tests connect as their own user, mixmatch_test (app/dbtest), which
# this creates on both servers through the local socket as the servers' own admin.
# Nothing else of the servers' authentication is touched: pg_hba.conf and MariaDB's
# root stay as they are. The user may create databases on PostgreSQL and, on
# MariaDB, has privileges only on the databases the tests make, mixmatch_test_*.
# A server named by MIXMATCH_TEST_POSTGRESQL / MIXMATCH_TEST_MYSQL is the caller's
# business and is left alone; MIXMATCH_TEST_ENGINES=sqlite needs neither.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

engines=${MIXMATCH_TEST_ENGINES:-sqlite,postgresql,mysql}
# Keep in step with DefaultPostgreSQL and DefaultMySQL in app/dbtest. The password is
# no secret: the account only reaches throwaway databases, and only from loopback.
test_user=mixmatch_test
test_password=mixmatch_test

# The admin connections below need root (runuser, MariaDB's unix_socket root);
# without it, a test user made earlier is all there is.
need_root() {
	[ "$(id -u)" = 0 ] && return 0
	log "$1: starting it or creating its test user $test_user needs root; run this once as root"
	exit 1
}

# The user logs in over TCP with its password and may create databases.
pg_user_ok() {
	[ "$(PGPASSWORD=$test_password psql -h 127.0.0.1 -p 5432 -U "$test_user" -d postgres -tAc \
		'select rolcreatedb from pg_roles where rolname = current_user' 2>/dev/null)" = t ]
}
ensure_postgresql() {
	[ -n "${MIXMATCH_TEST_POSTGRESQL:-}" ] && return 0
	pg_user_ok && return 0
	if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
		if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
			apt_install postgresql
		fi
		need_root postgresql
		local version
		version=$(ls /etc/postgresql | sort -V | tail -n 1)
		log "starting postgresql $version"
		# The package's own start-up may have won the race: readiness decides.
		pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
		until_ready 60 pg_isready -q -h 127.0.0.1 -p 5432 ||
			{ log "postgresql does not answer on 127.0.0.1:5432"; exit 1; }
	fi
	need_root postgresql
	# Peer authentication on the socket, as the postgres system user: the one admin
	# login every Debian cluster has, whatever pg_hba says about TCP. The password is
	# set again each time, so a user left with another one is mended.
	log "creating the PostgreSQL user $test_user"
	(cd / && runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres <<EOF >/dev/null
SELECT 'CREATE ROLE $test_user' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$test_user')
\gexec
ALTER ROLE $test_user LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '$test_password';
EOF
	)
	# Debian's pg_hba allows password (scram) logins on 127.0.0.1; one that does not
	# is the operator's choice, not ours to rewrite.
	pg_user_ok || { log "postgresql refuses $test_user on 127.0.0.1:5432 with a password: check pg_hba.conf"; exit 1; }
}

# The user logs in over TCP with its password and holds the grant on the tests' databases.
# shellcheck disable=SC2016 # the backquotes are SQL, not a command
my_user_ok() {
	MYSQL_PWD=$test_password mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u "$test_user" -N -r -e 'SHOW GRANTS' 2>/dev/null |
		grep -qF 'ON `mixmatch\_test\_%`.*'
}
ensure_mysql() {
	[ -n "${MIXMATCH_TEST_MYSQL:-}" ] && return 0
	my_user_ok && return 0
	if ! command -v mariadbd >/dev/null 2>&1; then
		apt_install mariadb-server mariadb-client
	fi
	need_root mariadb
	if ! mariadb-admin ping >/dev/null 2>&1; then
		log "starting mariadb"
		mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
		until_ready 60 mariadb-admin ping || { log "mariadb does not start"; exit 1; }
	fi
	# root through the socket (unix_socket authentication, Debian's default). A TCP
	# client may show up as localhost or as 127.0.0.1 depending on name resolution,
	# hence both accounts. `\_` keeps `_` literal in the database pattern.
	log "creating the MariaDB user $test_user"
	local host
	for host in localhost 127.0.0.1; do
		mariadb <<EOF
CREATE USER IF NOT EXISTS '$test_user'@'$host';
ALTER USER '$test_user'@'$host' IDENTIFIED BY '$test_password';
GRANT ALL PRIVILEGES ON \`mixmatch\\_test\\_%\`.* TO '$test_user'@'$host';
EOF
	done
	until_ready 10 my_user_ok || { log "mariadb refuses $test_user on 127.0.0.1:3306"; exit 1; }
}

memcached_ok() {
	exec 3<>/dev/tcp/127.0.0.1/11211 || return 1
	printf 'version\r\n' >&3
	local line
	read -r -t 2 line <&3
	exec 3<&-
	[[ $line == VERSION* ]]
}
# The shared token cache's tests need a memcached; the go-svc kind has none.
ensure_memcached() {
	[ -n "${MIXMATCH_TEST_MEMCACHED:-}" ] && return 0
	memcached_ok 2>/dev/null && return 0
	command -v memcached >/dev/null || apt_install memcached
	log "starting memcached on 127.0.0.1:11211"
	memcached -d -u memcache -l 127.0.0.1 -p 11211 -m 64 2>/dev/null || memcached -d -u root -l 127.0.0.1 -p 11211 -m 64
	until_ready 60 memcached_ok || { log "memcached does not answer on 127.0.0.1:11211"; exit 1; }
}

# The Apache test runs Debian's apache2 with mod_proxy_fcgi in front of real workers.
ensure_apache() {
	command -v apache2 >/dev/null || apt_install apache2
}

# The ingester's tests publish with the real client, oslo.messaging's Notifier.
ensure_oslo_messaging() {
	/usr/bin/python3 -c 'import oslo_messaging' 2>/dev/null && return 0
	apt_install python3-oslo.messaging
}

rabbitmq_ok() { exec 3<>/dev/tcp/127.0.0.1/5672 && exec 3<&-; }
# RabbitMQ runs on go-svc machines; start it if it stopped, install it on a bare Debian.
ensure_rabbitmq() {
	[ -n "${MIXMATCH_TEST_RABBITMQ:-}" ] && return 0
	rabbitmq_ok 2>/dev/null && return 0
	command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
	log "starting rabbitmq"
	rabbitmq-server -detached
	until_ready 60 rabbitmq_ok || { log "rabbitmq does not answer on 127.0.0.1:5672"; exit 1; }
}

ensure_memcached
ensure_apache
ensure_rabbitmq
ensure_oslo_messaging
case ",$engines," in *,postgresql,*) ensure_postgresql ;; esac
case ",$engines," in *,mysql,*) ensure_mysql ;; esac
