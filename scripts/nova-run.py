"""Runs a Nova service (api, conductor, scheduler or compute) as its console script
does, in a cloud without a hypervisor and without Neutron.

nova-compute's driver, fake.ImageFakeDriver, is Nova's own FakeDriver (no
hypervisor) that moves image data as a real driver does: spawn downloads the
server's image with nova.virt.images.fetch, as the libvirt driver fetches a root
disk from Glance (GET /v2/images/ID, then /file), into the instance's directory;
snapshot uploads that file to the image nova-api created for it, as libvirt's
snapshot does (PUT /v2/images/ID/file). FakeDriver itself touches no image: a
server would boot without a byte of its image read, and a snapshot would stay
"queued". A server booted from a volume has no image to fetch.

A cloud without Neutron: servers boot with networks "none" (--nic none, API
microversion 2.37 on), or with no networks named before 2.37, and Nova skips the
network for them when it builds them (finding none to give them).
It still asks Neutron about them elsewhere: their ports and security groups when
it shows them, their ports again when it deletes them. With no network service in
the catalog each of those fails (a 500, a server left in ERROR). So every service
here gets a Neutron client that knows nothing: every list is empty (a server has
no ports, a port no security groups) and anything else is refused. Nova's own
Neutron code then answers as it would for a server without ports.

    /usr/bin/python3 scripts/nova-run.py api|conductor|scheduler|compute --config-file FILE ...

"db-setup" runs in one process what a new deployment runs with nova-manage, in its
order: api_db sync, cell_v2 map_cell0 (its database: CELL0_URL), cell_v2 create_cell
--name cell1 (the [database] connection and transport_url of FILE), db sync (cell0's
and cell1's schemas). Each nova-manage costs five seconds of Python start-up on two
cores, as much as the work itself; this costs one.

    /usr/bin/python3 scripts/nova-run.py db-setup CELL0_URL --config-file FILE
"""
import importlib
import os
import sys

service = sys.argv.pop(1) if len(sys.argv) > 1 else ""
if service == "db-setup" and len(sys.argv) > 1:
    cell0 = sys.argv.pop(1)
    # Before anything else of nova, as nova-manage: eventlet is patched first.
    from nova.cmd import manage
    from nova import config, objects

    config.parse_args(["nova-manage"] + sys.argv[1:])
    objects.register_all()
    steps = (
        ("api_db sync", lambda: manage.ApiDbCommands().sync()),
        ("cell_v2 map_cell0", lambda: manage.CellV2Commands().map_cell0(database_connection=cell0)),
        ("cell_v2 create_cell", lambda: manage.CellV2Commands().create_cell(name="cell1")),
        ("db sync", lambda: manage.DbCommands().sync()),
    )
    for name, step in steps:
        status = step()
        if status:
            sys.exit("nova-manage %s: exit status %s" % (name, status))
    sys.exit(0)
if service not in ("api", "conductor", "scheduler", "compute"):
    sys.exit("usage: nova-run.py api|conductor|scheduler|compute [OPTION...] | db-setup CELL0_URL [OPTION...]")
# The command module first: nova.cmd monkey-patches eventlet before anything else.
cmd = importlib.import_module("nova.cmd." + service)
import oslo_sqlite  # noqa: E402

# Nova's four services share their SQLite files as Cinder's three do.
oslo_sqlite.take_turns()

from neutronclient.common import exceptions as neutron_exceptions  # noqa: E402

from nova.network import neutron  # noqa: E402


class EmptyNeutron:
    """The Neutron client of a cloud without Neutron: nothing in any list."""

    def show_quota(self, project_id):
        # Asked before a server booted without --nic (before API microversion 2.37,
        # as Tempest boots them) counts the ports it would take: none are counted.
        return {"quota": {"port": -1}}

    def __getattr__(self, name):
        if name.startswith("list_"):
            collection = name[len("list_"):]
            return lambda *args, **kwargs: {collection: []}

        def refused(*args, **kwargs):
            raise neutron_exceptions.NeutronClientException(
                message="this cloud has no Neutron (%s)" % name, status_code=501)
        return refused


# Every caller in Nova, the API's security groups included, reads it by this name.
neutron.get_client = lambda context, admin=False: EmptyNeutron()

if service == "compute":
    from oslo_log import log as logging  # noqa: E402

    from nova.virt import fake  # noqa: E402
    from nova.virt import images  # noqa: E402

    LOG = logging.getLogger("nova.virt.fake")

    class ImageFakeDriver(fake.FakeDriver):
        """FakeDriver with a root disk: the image's data, fetched from Glance."""

        def _disk(self, instance):
            return os.path.join(self._instances_path, instance.uuid, "disk")

        @property
        def _instances_path(self):
            return fake.CONF.instances_path

        def spawn(self, context, instance, image_meta, injected_files,
                  admin_password, allocations, network_info=None,
                  block_device_info=None, power_on=True, accel_info=None):
            if instance.image_ref:
                path = self._disk(instance)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                images.fetch(context, instance.image_ref, path,
                             trusted_certs=instance.trusted_certs)
                LOG.info("Fetched image %s: %d bytes", instance.image_ref,
                         os.path.getsize(path), instance=instance)
            super().spawn(context, instance, image_meta, injected_files,
                          admin_password, allocations, network_info=network_info,
                          block_device_info=block_device_info, power_on=power_on,
                          accel_info=accel_info)

        def snapshot(self, context, instance, image_id, update_task_state):
            super().snapshot(context, instance, image_id, update_task_state)
            path = self._disk(instance)
            if not os.path.exists(path):
                return
            image_meta = instance.image_meta
            metadata = {
                "disk_format": image_meta.disk_format if image_meta.obj_attr_is_set("disk_format") else "raw",
                "container_format": image_meta.container_format if image_meta.obj_attr_is_set("container_format") else "bare",
                "properties": {"image_location": "snapshot", "image_state": "available",
                               "owner_id": instance.project_id},
            }
            with open(path, "rb") as data:
                images.IMAGE_API.update(context, image_id, metadata, data, purge_props=False)
            LOG.info("Uploaded snapshot %s: %d bytes", image_id, os.path.getsize(path),
                     instance=instance)

        def destroy(self, context, instance, network_info, block_device_info=None,
                    destroy_disks=True, destroy_secrets=True):
            super().destroy(context, instance, network_info, block_device_info,
                            destroy_disks, destroy_secrets)
            if destroy_disks:
                try:
                    os.remove(self._disk(instance))
                    os.rmdir(os.path.dirname(self._disk(instance)))
                except FileNotFoundError:
                    pass

    fake.ImageFakeDriver = ImageFakeDriver

sys.argv[0] = "/usr/bin/nova-" + service
sys.exit(cmd.main())
