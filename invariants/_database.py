"""Where the gate keeps failing examples: a directory, or a Redis shared by a team."""

from __future__ import annotations

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from tradeguard.errors import InvalidConfig

__all__ = ["resolve_database", "DEFAULT_DATABASE_DIR"]

DEFAULT_DATABASE_DIR = ".hypothesis/tradeguard"


def resolve_database(spec: str | None) -> ExampleDatabase | None:
    """Turn ``--database`` / ``TRADEGUARD_DATABASE`` into an example database.

    ``None`` or ``""``: the local directory :data:`DEFAULT_DATABASE_DIR`; ``"none"``: no
    database; ``redis://host:port/db``: a Redis database layered over the local
    directory (reads both, writes both); anything else: a directory path.
    """
    if spec is None or spec == "":
        return DirectoryBasedExampleDatabase(DEFAULT_DATABASE_DIR)
    if spec.lower() == "none":
        return None
    if spec.startswith(("redis://", "rediss://")):
        try:
            import redis
            from hypothesis.database import MultiplexedDatabase
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError:
            raise InvalidConfig(
                f"database={spec!r} needs the redis client: pip install 'tradeguard[redis]'."
            ) from None
        client = redis.Redis.from_url(spec)
        return MultiplexedDatabase(
            DirectoryBasedExampleDatabase(DEFAULT_DATABASE_DIR), RedisExampleDatabase(client)
        )
    return DirectoryBasedExampleDatabase(spec)
