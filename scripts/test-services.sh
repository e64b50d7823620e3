#!/usr/bin/env bash
# Makes sure the servers `make test` talks to are installed and answering on loopback:
# PostgreSQL and MariaDB. On a go-svc machine they run already and this only checks;
# on a fresh Debian machine (as root) it installs them with apt-get, starts them and
# lets the test user in over TCP without a password, as go-svc does.
# A server named by MIXMATCH_TEST_POSTGRESQL / MIXMATCH_TEST_MYSQL is the caller's
# business and is left alone; MIXMATCH_TEST_ENGINES=sqlite needs neither.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

engines=${MIXMATCH_TEST_ENGINES:-sqlite,postgresql,mysql}

pg_ok() { psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; }
ensure_postgresql() {
	[ -n "${MIXMATCH_TEST_POSTGRESQL:-}" ] && return 0
	pg_ok && return 0
	local fresh=
	if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
		apt_install postgresql
		fresh=1
	fi
	local version
	version=$(ls /etc/postgresql | sort -V | tail -n 1)
	if [ -n "$fresh" ]; then
		# A throwaway test server: trust loopback, as go-svc machines do.
		sed -i '1i host all all 127.0.0.1/32 trust' "/etc/postgresql/$version/main/pg_hba.conf"
	fi
	log "starting postgresql $version"
	pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
		pg_ctlcluster --skip-systemctl-redirect "$version" main reload
	until_ready 60 pg_ok || { log "postgresql does not answer on 127.0.0.1:5432 as postgres"; exit 1; }
}

my_ok() { mariadb --protocol=tcp -h 127.0.0.1 -u root -e 'select 1' test >/dev/null 2>&1; }
ensure_mysql() {
	[ -n "${MIXMATCH_TEST_MYSQL:-}" ] && return 0
	my_ok && return 0
	if ! command -v mariadbd >/dev/null 2>&1; then
		apt_install mariadb-server mariadb-client
	fi
	if ! mariadb-admin ping >/dev/null 2>&1; then
		log "starting mariadb"
		mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
		until_ready 60 mariadb-admin ping || { log "mariadb does not start"; exit 1; }
	fi
	if ! my_ok; then
		# Debian's root logs in by socket only; tests connect over TCP.
		mariadb -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
			CREATE DATABASE IF NOT EXISTS test"
	fi
	until_ready 60 my_ok || { log "mariadb does not answer on 127.0.0.1:3306 as root"; exit 1; }
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
