"""One small database interface over SQLite and PostgreSQL, so the store is written once.

SQL is written with `?` placeholders and portable types; the PostgreSQL backend rewrites
the placeholders for psycopg. Both connections run in autocommit mode: every write goes
through `transaction()`, which commits as a whole or not at all.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.errors import UserError

ENV_VAR = "RESULTS_DB"
DEFAULT_SQLITE_PATH = Path("results") / "results.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_SCHEMES = ("postgresql", "postgres")
SECRET_KEYS = ("password", "sslpassword")  # libpq parameters that hold secrets
MASK = "***"

Row = dict[str, Any]


class Transaction(Protocol):
    """What a write transaction offers: run a statement and get its rows (INSERT ... RETURNING id too)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Database(Protocol):
    dialect: str
    url: str

    def transaction(self) -> Any: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """The URL with every password (`user:pass@`, `?password=`, `?sslpassword=`) masked, safe to print or log."""
    try:
        parts = urlsplit(url)  # only splits: never parses the port, so a bad port cannot raise here
    except ValueError:  # e.g. an unclosed IPv6 bracket; the text may hold a password, so show none of it
        return f"{url.split(':', 1)[0]}://<not a valid URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if ":" in userinfo:
        userinfo = f"{userinfo.split(':', 1)[0]}:{MASK}"
    pairs = [f"{pair.split('=', 1)[0]}={MASK}" if unquote(pair.split("=", 1)[0]) in SECRET_KEYS else pair
             for pair in parts.query.split("&")] if parts.query else []
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{hostport}", query="&".join(pairs)))


def _scrub(text: str, url: str) -> str:
    """A driver's message with the connection string and every password in it replaced (libpq echoes
    whole URIs in some parse errors)."""
    secrets = [url, *_passwords(url)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, redact_url(url) if secret == url else MASK)
    return text


def _passwords(url: str) -> list[str]:
    """Password values as libpq reads them, plus their raw (percent-encoded) spelling in the URL."""
    from psycopg.conninfo import conninfo_to_dict

    raw = [userinfo.split(":", 1)[1] for userinfo in [url.split("://", 1)[-1].rpartition("@")[0]] if ":" in userinfo]
    raw += [pair.split("=", 1)[1] for pair in url.replace("?", "&").split("&")
            if "=" in pair and unquote(pair.split("=", 1)[0]) in SECRET_KEYS]
    try:
        parsed = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - unparseable: the raw spellings are all there is
        parsed = {}
    return raw + [str(parsed[key]) for key in SECRET_KEYS if parsed.get(key)]


def _is_conninfo(text: str) -> bool:
    """True for a libpq `key=value` string, even a malformed one (it must never silently become a SQLite
    file name): libpq parses it, or it holds one of libpq's own keywords followed by '='."""
    from psycopg import pq
    from psycopg.conninfo import conninfo_to_dict

    try:
        return bool(conninfo_to_dict(text))
    except Exception:  # noqa: BLE001 - psycopg raises ProgrammingError for anything that is not conninfo
        keywords = "|".join(option.keyword.decode() for option in pq.Conninfo.get_defaults())
        return re.search(rf"(?:^|\s)(?:{keywords})\s*=", text) is not None


def resolve_url(url: str | None) -> str:
    """The explicit URL, else $RESULTS_DB, else the default SQLite file."""
    return url or os.environ.get(ENV_VAR) or str(DEFAULT_SQLITE_PATH)


def connect(url: str | None = None) -> Database:
    """Open the database named by a postgresql:// URL, a sqlite:/// URL or a file path."""
    url = resolve_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return PostgresDatabase(url)
    if scheme not in ("", "sqlite"):
        raise UserError(f"unsupported results database URL scheme {scheme!r}: "
                        "use postgresql://... or a SQLite file path")
    path = url.removeprefix("sqlite://") if scheme else url
    if not path.isprintable():
        raise UserError(f"the results database {ENV_VAR} / --db holds control characters or a line break; "
                        "give a SQLite file path or a postgresql:// URL")
    if _is_conninfo(path):  # not shown: it may hold a password
        raise UserError(f"the results database {ENV_VAR} / --db is a libpq key=value string, which is not supported; "
                        "write it as a URL: postgresql://user@host:port/dbname (password in ~/.pgpass or PGPASSWORD)")
    return SqliteDatabase(path)


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(row) for row in self.connection.execute(sql, params).fetchall()]


def refuse_if_damaged(path: Path) -> None:
    """A damaged file is refused before anything opens it for writing: switching it to WAL, a migration
    or a checkpoint could write over what a restore still needs. SQLite only notices a damaged page when
    it reads one, so an existing file is checked first, read-only (PRAGMA quick_check)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        # Without a -wal file the main file is everything: immutable=1 reads it without creating -wal/-shm.
        wal = path.with_name(path.name + "-wal").exists()
        mode = "mode=ro" if wal else "immutable=1"
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
    except (OSError, sqlite3.Error):
        return  # unreadable here: the open that follows says why
    try:
        problems = [row[0] for row in probe.execute("PRAGMA quick_check(1)").fetchall()]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    finally:
        probe.close()
    if problems != ["ok"]:
        reason = " ".join(" ".join(problems).split())
        quoted = shlex.quote(str(path))
        raise UserError(f"the results database {path} is damaged ({reason}); nothing was written to it. "
                        f"Check it with `sqlite3 {quoted} \"PRAGMA integrity_check\"`, then restore it from "
                        f"a backup (or move it aside to start an empty one)")


class SqliteDatabase:
    """A SQLite file in WAL mode: readers never block the writer, a killed writer loses nothing committed."""

    dialect = "sqlite"

    def __init__(self, path: str):
        self.path = Path(path)
        self.url = str(self.path)
        refuse_if_damaged(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
            self.connection.row_factory = sqlite3.Row
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable across process crashes
            self.connection.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as error:
            if self._disk_full(error):
                raise self._full_error(error) from None
            raise UserError(f"cannot open the results database {self.path}: {error}; "
                            "check the path and its permissions") from error

    def _disk_full(self, error: Exception) -> bool:
        """SQLite reports a full disk as SQLITE_FULL while writing, but only as 'disk I/O error' when it
        cannot create its -wal/-shm files on one: then the free space tells."""
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL:
            return True
        return code == sqlite3.SQLITE_IOERR and shutil.disk_usage(self.path.parent).free == 0

    def _full_error(self, error: Exception) -> UserError:
        return UserError(f"cannot write into the results database {self.path}: the disk is full ({error}); free "
                         f"some space, or move the database elsewhere with {ENV_VAR} / --db")

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTransaction]:
        """BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking."""
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self.connection)
                self.connection.execute("COMMIT")
            except BaseException:
                if self.connection.in_transaction:  # SQLite may already have rolled back (say, on a full disk)
                    self.connection.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as error:
            if self._disk_full(error):  # nothing of this transaction was kept; earlier ones are intact
                raise self._full_error(error) from None
            raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(row) for row in self.connection.execute(sql, params).fetchall()]

    def close(self) -> None:
        self.connection.close()


_PLACEHOLDER = re.compile(r"\?")


def _to_psycopg(sql: str) -> str:
    """`?` -> `%s` (the store's SQL never contains a literal `?` or `%`)."""
    return _PLACEHOLDER.sub("%s", sql)


class _PostgresTransaction:
    def __init__(self, connection: Any):
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.execute(_to_psycopg(sql), params)
        return list(cursor.fetchall()) if cursor.description else []


class PostgresDatabase:
    """A PostgreSQL database reached with psycopg 3; the URL is never printed with its password."""

    dialect = "postgresql"

    def __init__(self, url: str):
        import psycopg
        from psycopg.rows import dict_row

        self.url = redact_url(url)
        try:
            self.connection = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        except psycopg.Error as error:
            reason = _scrub(str(error).strip(), url).splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"cannot connect to PostgreSQL at {self.url}: {reason}; check RESULTS_DB / --db") from None

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        import psycopg

        try:
            with self.connection.transaction():
                yield _PostgresTransaction(self.connection)
        except psycopg.errors.DiskFull as error:  # the server rolled the transaction back; earlier ones are intact
            reason = str(error).strip().splitlines()[0]
            raise UserError(f"cannot write into the results database {self.url}: its server's disk is full ({reason}); "
                            f"free some space on the server, or point {ENV_VAR} / --db at another database") from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return _PostgresTransaction(self.connection).execute(sql, params)

    def close(self) -> None:
        self.connection.close()
