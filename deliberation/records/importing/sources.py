"""Finding and reading the JSON documents of an import: files, folders laid out like the EuroCon
release, and zip archives of either, within read limits.

Memory stays bounded by one file: sources are listed first (a zip's directory, a folder's names)
and each is read when it is planned, then dropped; a zip's members are read one at a time, never
extracted.
"""

import json
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from deliberation.records.importing.report import FileKind

# One JSON file, or one zip member once inflated (the largest EuroCon file is 1.2 MB).
MAX_FILE_BYTES = 32 * 1024 * 1024
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """How much one import may read: per file, and per zip archive (members, inflated bytes).

    Zip bombs lie about sizes in their directory, so an archive is checked against its declared
    sizes first and its inflated bytes are counted again while reading.
    """

    max_file_bytes: int = MAX_FILE_BYTES
    max_zip_members: int = 10_000
    max_zip_bytes: int = 1024 * 1024 * 1024


def _mib(size: int) -> str:
    return f"{size / 2**20:.3g} MiB"


@dataclass(frozen=True)
class Source:
    """One JSON document to read (load() gives its bytes, None past the size limit), or (problem
    set) one that could not be reached."""

    name: str
    kind_hint: Literal["topic", "task"] | None
    fallback_topic: str
    load: Callable[[], bytes | None] | None = None
    problem: str = ""
    unreadable: str = "cannot be read"  # what a failing load() is reported as

    def records(self, limits: ReadLimits) -> tuple[list[Any] | None, str]:
        """The parsed list of records, or None and why not."""
        if self.problem or self.load is None:
            return None, self.problem
        try:
            content = self.load()
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:  # CRC, bad compression
            return None, f"{self.unreadable}: {getattr(exc, 'strerror', None) or exc}"
        if content is None:
            return None, f"inflates past {_mib(limits.max_file_bytes)}: not read"
        return _parse(content)


def read_sources(
    paths: Sequence[Path], *, names: Mapping[Path, str] | None = None, limits: ReadLimits = ReadLimits()
) -> list[Source]:
    """Every JSON document under the paths: a file, a folder (searched recursively) or a zip."""
    sources: list[Source] = []
    names = names or {}
    for path in paths:
        path = Path(path)
        label = names.get(path)
        if path.is_dir():
            found = _folder_sources(path, limits)
            sources += found or [_unreachable(path, "no .json files in this folder", label)]
        elif path.is_file() and zipfile.is_zipfile(path):
            sources += _zip_sources(path, label or path.name, limits)
        elif path.is_file():
            sources.append(_file_source(path, label or str(path), PurePosixPath(label or path.name), limits))
        else:
            sources.append(_unreachable(path, "no such file or folder", label))
    return sources


def _unreachable(path: Path, problem: str, label: str | None = None) -> Source:
    return Source(name=label or str(path), kind_hint=None, fallback_topic="", problem=problem)


def _kind_hint(relative: PurePosixPath) -> Literal["topic", "task"] | None:
    if "task_datas" in relative.parts[:-1]:
        return "task"
    if "topic_datas" in relative.parts[:-1]:
        return "topic"
    return None


def _hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _folder_sources(root: Path, limits: ReadLimits) -> list[Source]:
    sources = []
    for path in sorted(root.rglob("*.json")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_file() and not _hidden(relative):
            sources.append(_file_source(path, f"{root.name}/{relative}", relative, limits))
    return sources


def _file_source(path: Path, name: str, relative: PurePosixPath, limits: ReadLimits) -> Source:
    source = Source(name=name, kind_hint=_kind_hint(relative), fallback_topic=relative.stem)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return replace(source, problem=f"cannot be read: {exc.strerror or exc}")
    if size > limits.max_file_bytes:
        return replace(
            source, problem=f"file is {_mib(size)}, over the limit of {_mib(limits.max_file_bytes)}: not read"
        )
    return replace(source, load=partial(_read_file, path, budget=limits.max_file_bytes))


def _read_file(path: Path, *, budget: int) -> bytes | None:
    with open(path, "rb") as handle:
        content = handle.read(budget + 1)
    return None if len(content) > budget else content


def _unsafe_member(name: str) -> bool:
    parts = re.split(r"[\\/]", name)
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name)) or ".." in parts


def _zip_sources(path: Path, label: str, limits: ReadLimits) -> list[Source]:
    """The archive's .json members, each read from the archive when it is planned (one at a time,
    nothing extracted to disk).

    An archive with too many members, or more inflated bytes than the limit by its directory, or
    any absolute or `..` member path, is refused whole: a zip like that is not a EuroCon release,
    and half of it would be a misleading import. A member never inflates past its declared size
    (zipfile stops there and the CRC check fails), and its bytes are counted while reading too.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return [_unreachable(path, f"not a readable zip archive: {exc}", label)]
    refused = zip_refusal(members, limits)
    if refused:
        return [_unreachable(path, refused, label)]
    sources: list[Source] = []
    for info in members:
        relative = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or relative.suffix.lower() != ".json" or _hidden(relative):
            continue
        source = Source(
            name=f"{label}:{info.filename}",
            kind_hint=_kind_hint(relative),
            fallback_topic=relative.stem,
            unreadable="cannot be read from the archive",
        )
        if info.file_size > limits.max_file_bytes:
            problem = f"member is {_mib(info.file_size)}, over the limit of {_mib(limits.max_file_bytes)}: not read"
            sources.append(replace(source, problem=problem))
            continue
        sources.append(replace(source, load=partial(_zip_member, path, info, budget=limits.max_file_bytes)))
    return sources or [_unreachable(path, "no .json files in this archive", label)]


def _zip_member(path: Path, info: zipfile.ZipInfo, *, budget: int) -> bytes | None:
    with zipfile.ZipFile(path) as archive:
        return zip_member_read(archive, info, budget=budget)


def zip_refusal(members: Sequence[zipfile.ZipInfo], limits: ReadLimits) -> str:
    if len(members) > limits.max_zip_members:
        return f"zip archive has {len(members):,} members, more than the limit of {limits.max_zip_members:,}: not read"
    unsafe = [info.filename for info in members if _unsafe_member(info.filename)]
    if unsafe:
        return f"zip member path {unsafe[0]!r} is absolute or climbs out with '..': the archive is refused"
    declared = sum(info.file_size for info in members)
    if declared > limits.max_zip_bytes:
        return (
            f"zip archive would inflate to {_mib(declared)}, over the limit of {_mib(limits.max_zip_bytes)}: not read"
        )
    return ""


def zip_member_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: int) -> bytes | None:
    """The member's bytes, or None once more than `budget` bytes come out (whatever it declared)."""
    chunks: list[bytes] = []
    total = 0
    with archive.open(info) as member:
        while chunk := member.read(READ_CHUNK):
            total += len(chunk)
            if total > budget:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _parse(content: bytes) -> tuple[list[Any] | None, str]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte 0x{content[exc.start]:02x} at offset {exc.start}): not read"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON, perhaps truncated ({exc.msg} at line {exc.lineno}, column {exc.colno}): not read"
    except RecursionError:
        return None, "not valid JSON (nested too deeply): not read"
    if not isinstance(data, list):
        return None, f"expected a JSON list of records, found {type(data).__name__}: not read"
    return data, ""


def file_kind(records: list[Any], hint: Literal["topic", "task"] | None) -> FileKind:
    """A task file by content (its records carry seat weights and a veto group), else by location."""
    if any(isinstance(raw, dict) and ("seat_weights" in raw or "veto_party_name" in raw) for raw in records):
        return "task"
    return hint or "topic"
