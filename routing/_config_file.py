"""Reading a config file: never blocking, never unbounded, every failure located.

The file's type is asked with ``stat`` before it is opened, so a FIFO (whose ``open``
blocks until a writer appears), a device (``/dev/zero`` never ends; opening some devices
has side effects) or a directory is refused without touching it.  The file is then opened
with ``O_NONBLOCK`` and asked again with ``fstat``: the path may have been replaced between
the two calls, and the answer about the open file is the one that counts.
"""

from __future__ import annotations

import errno
import os
import stat

from routing.errors import ConfigError, ConfigIssue

__all__ = ["MAX_CONFIG_BYTES", "decode_config", "read_config_bytes"]

#: Larger config files are refused before parsing (a config is a few KB).
MAX_CONFIG_BYTES = 1024 * 1024

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

_HINTS = {
    errno.ELOOP: " (a symbolic link that points back at itself?)",
    errno.EACCES: " (the user running routing may not read it)",
}


def _fail(name: str, message: str, line: int = 1, column: int = 1) -> ConfigError:
    return ConfigError([ConfigIssue(name, line, column, "$", message)])


def _refuse_special(name: str, mode: int) -> None:
    for test, kind in _KINDS:
        if test(mode):
            raise _fail(name, f"is {kind}, not a config file (routing reads regular files only)")
    if not stat.S_ISREG(mode):
        raise _fail(name, "is not a regular file, not a config file")


def _too_large(name: str, shown: str) -> ConfigError:
    return _fail(name, f"file is too large ({shown}; a config may be at most {MAX_CONFIG_BYTES:,})")


def read_config_bytes(name: str) -> bytes:
    """The bytes of the config file ``name``; :class:`ConfigError` when it cannot be one."""
    try:
        _refuse_special(name, os.stat(name).st_mode)
        fd = os.open(name, _OPEN_FLAGS)
        try:
            info = os.fstat(fd)
            _refuse_special(name, info.st_mode)
            if info.st_size > MAX_CONFIG_BYTES:
                raise _too_large(name, f"{info.st_size:,} bytes")
            # Read one byte past the limit: a file may grow after fstat.
            chunks: list[bytes] = []
            left = MAX_CONFIG_BYTES + 1
            while left > 0:
                chunk = os.read(fd, min(left, 256 * 1024))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        reason = getattr(exc, "strerror", None) or str(exc)
        hint = _HINTS.get(getattr(exc, "errno", None) or 0, "")
        raise _fail(name, f"cannot read file: {reason}{hint}") from exc
    raw = b"".join(chunks)
    if len(raw) > MAX_CONFIG_BYTES:
        raise _too_large(name, "more bytes")
    return raw


def decode_config(raw: bytes, name: str) -> str:
    """``raw`` as text: UTF-8 (a BOM is allowed), no NUL; else a located :class:`ConfigError`."""
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        line, col = _line_col(raw, at)
        raise _fail(name, "not a text file (NUL byte found); a config is UTF-8 YAML", line, col)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise _fail(
            name, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); a config is UTF-8 YAML", line, col
        ) from exc


def _line_col(raw: bytes, at: int) -> tuple[int, int]:
    return raw.count(b"\n", 0, at) + 1, at - (raw.rfind(b"\n", 0, at) + 1) + 1
