"""The bot bridge's database threads: LLM model resolution, agent-token lookups and LLM usage rows.

They keep their connections (core/db/threads.py), so an LLM call pays for no new connection.
"""

from __future__ import annotations

from core.db.threads import KeptConnectionThreads

# Reads are primary-key lookups; a few threads keep one slow read (a cold page cache, a busy PostgreSQL)
# from queueing the next calls behind it.
bridge_read = KeptConnectionThreads("bridge-db-read", workers=4).run
# One writer: SQLite takes one write at a time anyway, and a row waiting for the write lock must never
# hold up a read that a client is waiting for.
bridge_write = KeptConnectionThreads("bridge-db-write", workers=1).run
