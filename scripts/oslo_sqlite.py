"""Makes oslo.db's SQLite transactions take turns between the processes of one
OpenStack service (Cinder's api, scheduler and volume; Nova's api, conductor,
scheduler and compute).

oslo.db begins each SQLite transaction with a plain (deferred) BEGIN: a transaction
that reads before it writes holds a snapshot of the database file, and when another
process has written since, its first write fails at once with "database is locked"
(a stale snapshot cannot be upgraded; no busy wait helps), and the API answers 500.
BEGIN IMMEDIATE takes the write lock first, waiting for it as long as the busy
timeout. Call take_turns() after the service's command module is imported (it
patches eventlet first) and before any engine is made.
"""
import sqlalchemy
from oslo_db.sqlalchemy import engines


def take_turns():
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
