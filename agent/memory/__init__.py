"""Memory: the SQLite store. schema.py is the Alembic target, db.py opens and upgrades,
store.py reads and writes."""
