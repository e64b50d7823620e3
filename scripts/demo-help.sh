#!/usr/bin/env bash
# Prints how to use the federation `make demo` started in DIR.
set -euo pipefail
dir=$1
# shellcheck disable=SC1091
. "$dir/env"
cat <<TXT

The federation runs (stop it with: scripts/federation.sh stop $dir). Try, as the demo user:

  export OS_AUTH_URL=$KEYSTONE_URL OS_USERNAME=demo OS_PASSWORD=$KEYSTONE_DEMO_PASSWORD \\
         OS_PROJECT_NAME=demo OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default OS_IDENTITY_API_VERSION=3
  head -c 1048576 /dev/urandom > /tmp/disk.raw
  openstack image create --disk-format raw --container-format bare --file /tmp/disk.raw mine
  openstack image create --disk-format raw --container-format bare --file /tmp/disk.raw theirs@remote1
  openstack image list
  openstack volume create --size 1 mine
  openstack volume create --size 1 theirs@remote1
  openstack volume list
  openstack --os-compute-api-version 2.37 server create --image theirs --flavor tiny --nic none --wait vm
  openstack server add volume vm theirs
  openstack server image create --name vm-snapshot --wait vm
  bin/mixmatch-manage --config-file $MIXMATCH_CONF mappings list

The remote cloud's own user (its Keystone is $REMOTE1_KEYSTONE_URL, behind Apache and
Shibboleth) is demo too: OS_AUTH_URL=$REMOTE1_KEYSTONE_URL OS_PASSWORD=$REMOTE1_KEYSTONE_DEMO_PASSWORD.

mixmatch is at $MIXMATCH_URL (Apache, two FastCGI workers); the clouds' logs are in
$dir/{keystone,glance,cinder,nova} and $dir/remote1/{keystone,glance,cinder}, mixmatch's in $dir.
Nova (the fake driver, no Neutron: --nic none) reaches Glance and Cinder through mixmatch.
TXT
