"""Runs a Cinder service (api, scheduler or volume) as its console script does,
after mending one incompatibility between two Debian 12 packages, and one way
Cinder fails on SQLite under concurrent calls.

python3-oslo.messaging 14.0.3-0+deb12u1 sanitizes the context of every notification
by rebuilding it with the context class's from_dict from a dict that has no
read_deleted; python3-cinder 21.3.1 passes that None on and its RequestContext
refuses it (ValueError). Every Cinder notification then fails, and with it the
create of every volume. The context of a notification is only read to serialise
it, so read_deleted defaults to "no", Cinder's own default.

oslo.db's deferred SQLite transactions fail with "database is locked" when the
three services write at once (with two Tempest workers a run met a dozen of them):
oslo_sqlite.py makes them take turns.

    /usr/bin/python3 scripts/cinder-run.py api|scheduler|volume --config-file FILE ...
"""
import importlib
import sys

service = sys.argv.pop(1)
if service not in ("api", "scheduler", "volume"):
    sys.exit("usage: cinder-run.py api|scheduler|volume [OPTION...]")
# The command module first: it monkey-patches eventlet before anything else loads.
cmd = importlib.import_module("cinder.cmd." + service)
from cinder import context  # noqa: E402

_from_dict = context.RequestContext.from_dict.__func__


def from_dict(cls, values):
    if values.get("read_deleted") is None:
        values = dict(values, read_deleted="no")
    return _from_dict(cls, values)


context.RequestContext.from_dict = classmethod(from_dict)

import oslo_sqlite  # noqa: E402

oslo_sqlite.take_turns()

if service == "volume":
    import os  # noqa: E402

    from cinder.tests import fake_driver  # noqa: E402

    def local_path(self, volume, vg=None):
        path = os.path.join(context.CONF.state_path, "volumes", volume["name"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    _delete_volume = fake_driver.FakeLoggingVolumeDriver.delete_volume

    def delete_volume(self, volume):
        _delete_volume(self, volume)
        try:
            os.remove(local_path(self, volume))
        except FileNotFoundError:
            pass

    fake_driver.FakeLoggingVolumeDriver.local_path = local_path
    fake_driver.FakeLoggingVolumeDriver.delete_volume = delete_volume
sys.argv[0] = "/usr/bin/cinder-" + service
sys.exit(cmd.main())
