"""Where the gate keeps failing examples: a directory, or a Redis shared by a team.

A counterexample one runner finds is saved in the example database and replayed
first by every later run that reads the same database. Point every CI runner and
developer machine at one Redis (``TRADEGUARD_DATABASE=redis://host:6379/0``) and a
failure found anywhere replays everywhere; see ``docs/ci.md``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from tradeguard.errors import InvalidConfig

__all__ = ["DEFAULT_DATABASE_DIR", "REDIS_CONNECT_TIMEOUT", "gate_database", "resolve_database"]

DEFAULT_DATABASE_DIR = ".hypothesis/tradeguard"
"""The local example database, relative to the working directory."""

REDIS_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the shared Redis to answer before the run is refused."""

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
"""A URL's ``scheme://`` (RFC 3986's scheme): never a directory path, whose drive (``C:\\``,
``C:/``) or ``:`` in a name is not followed by ``//``."""
_TRUE = ("", "1", "true", "yes", "on")  # a bare ?readonly means true
_FALSE = ("0", "false", "no", "off")


def resolve_database(spec: str | None) -> ExampleDatabase | None:
    """Turn ``--database`` / ``--tradeguard-database`` / ``TRADEGUARD_DATABASE`` into an example database.

    Args:
        spec: One of

            - ``None`` or ``""``: the local directory :data:`DEFAULT_DATABASE_DIR`;
            - ``"none"``: no database (nothing saved, nothing replayed);
            - ``redis://[:password@]host:port/db`` (also ``rediss://`` for TLS,
              ``unix:///path/redis.sock``): a Redis shared by a team, layered over the
              local directory: failures are read from both and written to both.
              Add ``?readonly=true`` to read the shared failures without writing to
              Redis (for developer machines and pull-request runs: a run on a branch
              that fixed a bug would otherwise delete the shared counterexample the
              other branches still need);
            - anything else without a URL scheme (``name://``): a directory path.

    Returns:
        The database, or ``None`` for ``"none"``.

    Raises:
        InvalidConfig: a URL of another scheme (``s3://``, ``file://``, ...), a Redis URL
            without the redis client installed, a Redis that does not answer within
            :data:`REDIS_CONNECT_TIMEOUT` seconds, or a bad ``readonly`` value.

    Example:
        >>> resolve_database("none") is None
        True
        >>> type(resolve_database(".hypothesis/mine")).__name__
        'DirectoryBasedExampleDatabase'
    """
    if spec is None or spec == "":
        return DirectoryBasedExampleDatabase(DEFAULT_DATABASE_DIR)
    if spec.lower() == "none":
        return None
    if spec.lower().startswith(_REDIS_SCHEMES):
        return _redis_database(spec)
    scheme = _URL.match(spec)
    if scheme is not None:
        raise InvalidConfig(
            f"database={_redact(spec)!r}: tradeguard does not know the scheme {scheme.group()!r}; expected "
            "a directory path (e.g. .hypothesis/tradeguard), none (no database), or a shared Redis: "
            "redis://[:password@]host:port/db (rediss:// for TLS, unix:///path/redis.sock)."
        )
    return DirectoryBasedExampleDatabase(spec)


def gate_database(database: ExampleDatabase | str | None) -> ExampleDatabase | None:
    """``check_trading_env(database=...)``'s database: ``None`` or ``"none"`` (none), a directory path, or a database.

    A URL is refused: in Python a shared Redis is ``resolve_database(url)``, whose connection
    errors then surface where it is called.
    """
    if database is None or isinstance(database, ExampleDatabase):
        return database
    if isinstance(database, str):
        if database.lower() == "none":  # the spelling of --database and TRADEGUARD_DATABASE, as docs/ci.md shows
            return None
        if not database.strip():
            raise InvalidConfig(
                f"database={database!r} names no directory; expected None or 'none' (no database), a directory "
                "path such as '.hypothesis/tradeguard', or an ExampleDatabase."
            )
        if is_url(database):
            raise InvalidConfig(
                f"database={_redact(database)!r} is a URL; check_trading_env takes a directory path, None, "
                "or an ExampleDatabase. For a shared Redis, pass resolve_database(url) (from tradeguard.invariants)."
            )
        return DirectoryBasedExampleDatabase(database)
    raise InvalidConfig(f"database={database!r}; expected None, a directory path or an ExampleDatabase.")


def is_url(spec: str) -> bool:
    """Whether ``spec`` starts with a URL scheme (``redis://``, ``s3://``, ...), not a directory path."""
    return _URL.match(spec) is not None


def _redis_database(spec: str) -> ExampleDatabase:
    try:
        import redis
        from hypothesis.database import MultiplexedDatabase, ReadOnlyDatabase
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise InvalidConfig(
            f"database={_redact(spec)!r} needs the redis client, which is not installed: "
            "pip install 'tradeguard[redis]' (or pip install 'redis>=5')."
        ) from None
    url, readonly = _split_readonly(spec)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT)
    except ValueError as exc:
        raise InvalidConfig(
            f"database={_redact(spec)!r} is not a Redis URL redis-py understands ({exc}); expected "
            "redis://[:password@]host:port/db, e.g. redis://ci-redis.internal:6379/0."
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise InvalidConfig(
            f"database={_redact(spec)!r}: the shared Redis does not answer ({type(exc).__name__}: {exc}). "
            "Check that it runs and that host, port and password are right; to run without it, give "
            "--database (pytest: --tradeguard-database) or set TRADEGUARD_DATABASE to a directory "
            "(local failures only) or to none."
        ) from None
    shared: ExampleDatabase = RedisExampleDatabase(client)
    if readonly:
        shared = ReadOnlyDatabase(shared)
    return MultiplexedDatabase(DirectoryBasedExampleDatabase(DEFAULT_DATABASE_DIR), shared)


def _split_readonly(spec: str) -> tuple[str, bool]:
    """The URL without tradeguard's own ``readonly`` parameter, and that parameter."""
    parts = urlsplit(spec)
    query = parse_qsl(parts.query, keep_blank_values=True)
    readonly = False
    kept = []
    for key, value in query:
        if key != "readonly":
            kept.append((key, value))
            continue
        v = value.strip().lower()
        if v not in _TRUE + _FALSE:
            raise InvalidConfig(
                f"database={_redact(spec)!r}: readonly={value!r}; expected readonly=true or readonly=false."
            )
        readonly = v in _TRUE
    return urlunsplit(parts._replace(query=urlencode(kept))), readonly


def _redact(spec: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    user, _, hostport = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{hostport}"))
