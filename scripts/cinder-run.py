"""Runs a Cinder service (api, scheduler or volume) as its console script does,
after mending one incompatibility between two Debian 12 packages, and one way
Cinder fails on SQLite under concurrent calls.

python3-oslo.messaging 14.0.3-0+deb12u1 sanitizes the context of every notification
by rebuilding it with the context class's from_dict from a dict that has no
read_deleted; python3-cinder 21.3.1 passes that None on and its RequestContext
refuses it (ValueError). Every Cinder notification then fails, and with it the
create of every volume. The context of a notification is only read to serialise
it, so read_deleted defaults to "no", Cinder's own default.

oslo.db begins each SQLite transaction with a plain (deferred) BEGIN: a transaction
that reads before it writes holds a snapshot of the database file, and when one of
the three services (or another request of the API) has written since, its first
write fails at once with "database is locked" (in WAL mode a stale snapshot cannot
be upgraded; no busy wait helps), and the API answers 500. With two Tempest workers
a run met a dozen of them, in random tests. BEGIN IMMEDIATE takes the write lock
first, waiting for it as long as the busy timeout, so the transactions of the
three processes take turns.

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

import sqlalchemy  # noqa: E402
from oslo_db.sqlalchemy import engines  # noqa: E402

_create_engine = engines.create_engine


def create_engine(sql_connection, *args, **kwargs):
    engine = _create_engine(sql_connection, *args, **kwargs)
    if engine.dialect.name == "sqlite":
        @sqlalchemy.event.listens_for(engine, "connect")
        def busy_timeout(dbapi_con, con_record):
            dbapi_con.execute("PRAGMA busy_timeout = 15000")

        # In place of oslo.db's listener, which emits the deferred BEGIN.
        for fn in list(engine.dispatch.begin):
            if getattr(fn, "__name__", "") == "_sqlite_emit_begin":
                sqlalchemy.event.remove(engine, "begin", fn)

        @sqlalchemy.event.listens_for(engine, "begin")
        def begin_immediate(conn):
            if "in_transaction" not in conn.info:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.info["in_transaction"] = True
    return engine


engines.create_engine = create_engine

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
