"""Importing HowTheyVote.eu's CSV export: plenary roll-call votes as records with real group votes.

The export (CSV tables, as HowTheyVote's backend/howtheyvote/export writes them, in a folder or in
the zip archive they publish) holds, among others:
- votes.csv: id, timestamp, display_title, reference, description, amendment_subject,
  amendment_number, is_main, procedure_reference, procedure_title, procedure_type,
  procedure_stage, count_for, count_against, count_abstention, count_did_not_vote, result,
  texts_adopted_reference
- member_votes.csv: vote_id, member_id, position (FOR, AGAINST, ABSTENTION, DID_NOT_VOTE),
  country_code, group_code (the MEP's group on the day of the vote)
- groups.csv: code, official_label, label, short_label
- responsible_committee_votes.csv (optional): vote_id, committee_code

One main vote (is_main True: the vote on a text as a whole) becomes one record. A group's real
vote is aggregated from its members as EuroCon does: score = the share of the group's members
who took part (for, against or abstention) that voted for; choice = min(9, floor(10 * score)).
Members who did not vote are left out; non-attached members (NI) belong to no group. HowTheyVote
publishes votes, not positions: a stance's text states the group's vote in words.

Reading is plain data (read and validate, nothing written, bounded memory: member votes stream
and only counts per vote and group are kept); records.services.records_import_plan writes the
plan with the EuroCon importer's transaction, versions and report.
"""

import csv
import io
import math
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import TextIO

from django.contrib.auth.base_user import AbstractBaseUser

from deliberation.records.importing.plan import ImportPlan, RecordPlan, StancePlan, plan_totals
from deliberation.records.importing.report import FileReport, ImportReport, Problem
from deliberation.records.importing.sources import ReadLimits, zip_refusal
from deliberation.records.models import RecordSetVersion
from deliberation.records.normalise import collapse_whitespace, record_content_hash
from deliberation.records.services import known_group_codes, read_limits, records_import_plan

# HowTheyVote group code -> ours. Theirs tell apart groups that shared a name in different
# periods by a suffix (EPP_2009_0); ours by term. Their EFD (2014-2019) is Europe of Freedom and
# Direct Democracy, our 8th-term EFDD; their EFD_2009_0 is our 7th-term EFD.
GROUP_CODES = {
    "EPP": "EPP",
    "EPP_2009_0": "EPP",
    "SD": "SD",
    "RENEW": "RENEW",
    "ALDE": "ALDE",
    "ECR": "ECR",
    "GREEN_EFA": "GREEN_EFA",
    "GUE_NGL": "GUE_NGL",
    "GUE_NGL_1995_0": "GUE_NGL",
    "ID": "ID",
    "ENF": "ENF",
    "EFD": "EFDD",
    "EFD_2009_0": "EFD",
    "PFE": "PFE",
    "ESN": "ESN",
}
NON_ATTACHED = "NI"
# Terms by the date of their constitutive session, newest first.
TERM_STARTS = (
    ("10th", date(2024, 7, 16)),
    ("9th", date(2019, 7, 2)),
    ("8th", date(2014, 7, 1)),
    ("7th", date(2009, 7, 14)),
)
# Committee responsible for the procedure -> EuroCon's policy area.
COMMITTEE_TOPICS = {
    "AGRI": "agriculture",
    "BUDG": "budget",
    "CONT": "budgetary control",
    "LIBE": "civil liberties, justice & home affairs",
    "AFCO": "constitutional and inter-institutional affairs",
    "CULT": "culture & education",
    "DEVE": "development",
    "ECON": "economic & monetary affairs",
    "EMPL": "employment & social affairs",
    "ENVI": "environment & public health",
    "PECH": "fisheries",
    "AFET": "foreign & security policy",
    "SEDE": "foreign & security policy",
    "DROI": "foreign & security policy",
    "FEMM": "gender equality",
    "ITRE": "industry, research & energy",
    "IMCO": "internal market & consumer protection",
    "INTA": "international trade",
    "JURI": "legal affairs",
    "REGI": "regional development",
    "TRAN": "transport & tourism",
}
UNSORTED_TOPIC = "plenary votes"
POSITIONS = ("FOR", "AGAINST", "ABSTENTION", "DID_NOT_VOTE")

VOTES = "votes.csv"
MEMBER_VOTES = "member_votes.csv"
GROUPS = "groups.csv"
COMMITTEES = "responsible_committee_votes.csv"
COLUMNS = {
    VOTES: (
        "id",
        "timestamp",
        "display_title",
        "description",
        "is_main",
        "procedure_title",
        "count_for",
        "count_against",
        "count_abstention",
    ),
    MEMBER_VOTES: ("vote_id", "position", "group_code"),
    GROUPS: ("code",),
    COMMITTEES: ("vote_id", "committee_code"),
}


def term_of(day: date) -> str | None:
    return next((term for term, start in TERM_STARTS if day >= start), None)


@dataclass
class _Vote:
    id: int
    day: date
    term: str
    title: str
    background: str
    total: tuple[int, int, int]  # for, against, abstention
    ref: str


class _Tables:
    """The export's tables in a folder, or in its zip archive (read in place, never extracted).

    An archive is checked as the EuroCon importer checks one (members, declared sizes, unsafe
    paths); zipfile stops each member at its declared size and checks its CRC, so what inflates
    is bounded by what the check let through. Members are found by name at any depth.
    """

    def __init__(self, source: Path, limits: ReadLimits) -> None:
        self.folder: Path | None = None
        self.archive: zipfile.ZipFile | None = None
        if source.is_dir():
            self.folder = source
            return
        try:
            self.archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError):
            raise ValueError(f"{source} is not a folder or a zip archive of HowTheyVote.eu CSV tables") from None
        infos = self.archive.infolist()
        refused = zip_refusal(infos, limits)
        if refused:
            self.archive.close()
            raise ValueError(refused)
        self.members = {
            PurePosixPath(info.filename.replace("\\", "/")).name: info for info in infos if not info.is_dir()
        }

    def has(self, name: str) -> bool:
        return (self.folder / name).is_file() if self.folder else name in self.members

    def open(self, name: str) -> TextIO:
        if self.folder:
            return (self.folder / name).open(newline="", encoding="utf-8-sig")
        if name not in self.members:
            raise FileNotFoundError(f"no {name} in the archive")
        return io.TextIOWrapper(self.archive.open(self.members[name]), encoding="utf-8-sig", newline="")

    def close(self) -> None:
        if self.archive:
            self.archive.close()


def _rows(tables: _Tables, name: str, report: FileReport) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV table; a missing file or column is reported and yields nothing."""
    try:
        handle = tables.open(name)
    except OSError as error:
        report.kind = "unreadable"
        report.problem("", "", f"cannot be read: {getattr(error, 'strerror', None) or error}")
        return
    with handle:
        reader = csv.DictReader(handle)
        try:
            missing = [column for column in COLUMNS[name] if column not in (reader.fieldnames or ())]
        except (UnicodeDecodeError, csv.Error) as error:
            report.kind = "unreadable"
            report.problem("", "", f"not a UTF-8 CSV table: {error}")
            return
        if missing:
            report.kind = "unreadable"
            report.problem("", "", f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}: not read")
            return
        try:
            for row in reader:
                yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error, zipfile.BadZipFile) as error:
            report.problem(f"line {reader.line_num}", "", f"the rest of the file cannot be read: {error}")


def _count(row: Mapping[str, str], column: str) -> int:
    value = int((row.get(column) or "").strip())
    if value < 0:
        raise ValueError
    return value


def _background(row: Mapping[str, str], day: date, vote_id: int) -> str:
    # The vote's id makes each vote its own record: two votes on one text the same day stay two.
    procedure = ", ".join(
        part for part in (row.get("procedure_reference"), row.get("procedure_type")) if part and part.strip()
    )
    parts = [
        (row.get("procedure_title") or "").strip() + (f" ({procedure})" if procedure else ""),
        f"Roll-call vote in plenary on {day.isoformat()}"
        + (f" on {row['reference'].strip()}" if (row.get("reference") or "").strip() else "")
        + (f": {row['description'].strip()}" if (row.get("description") or "").strip() else "")
        + ".",
        f"HowTheyVote.eu vote {vote_id}.",
    ]
    return collapse_whitespace(" ".join(part for part in parts if part))


def _read_votes(tables: _Tables, report: FileReport) -> tuple[dict[int, _Vote], set[int], int]:
    """The main votes worth importing, every vote id in the file, and how many were not main votes."""
    votes: dict[int, _Vote] = {}
    seen: set[int] = set()
    not_main = 0
    for line, row in _rows(tables, VOTES, report):
        raw_id = (row.get("id") or "").strip()
        ref = f"id {raw_id}" if raw_id else f"line {line}"

        def skip(field_name: str, message: str) -> None:
            report.records_skipped += 1
            report.problem(ref, field_name, message)

        try:
            vote_id = int(raw_id)
        except ValueError:
            skip("id", "missing or not a number")
            continue
        seen.add(vote_id)
        is_main = (row.get("is_main") or "").strip()
        if is_main not in ("True", "False"):
            skip("is_main", f"{is_main!r} is neither True nor False")
            continue
        if is_main == "False":
            not_main += 1
            continue
        if vote_id in votes:
            skip("id", "appears twice: the first one is kept")
            continue
        try:
            day = datetime.fromisoformat((row.get("timestamp") or "").strip()).date()
        except ValueError:
            skip("timestamp", f"{row.get('timestamp')!r} is not a date and time")
            continue
        term = term_of(day)
        if term is None:
            skip("timestamp", f"{day.isoformat()} is before the 7th term")
            continue
        title = collapse_whitespace(row.get("display_title") or "") or collapse_whitespace(
            row.get("procedure_title") or ""
        )
        if not title:
            skip("display_title", "missing, and no procedure_title either")
            continue
        try:
            total = tuple(_count(row, column) for column in ("count_for", "count_against", "count_abstention"))
        except ValueError:
            skip("count_for", "the counts must be whole numbers of 0 or more")
            continue
        votes[vote_id] = _Vote(vote_id, day, term, title, _background(row, day, vote_id), total, ref)
        report.records_kept += 1
    return votes, seen, not_main


def _read_groups(tables: _Tables, report: FileReport) -> set[str]:
    return {row["code"].strip() for _, row in _rows(tables, GROUPS, report) if (row.get("code") or "").strip()}


def _read_member_votes(
    tables: _Tables,
    report: FileReport,
    *,
    votes: Mapping[int, _Vote],
    all_votes: set[int],
    listed_groups: set[str],
    known_groups: Mapping[str, set[str]],
) -> dict[tuple[int, str], Counter]:
    """Positions counted per (main vote, our group code); bad rows reported and skipped."""
    counts: dict[tuple[int, str], Counter] = {}
    unknown: set[tuple[int, str]] = set()
    for line, row in _rows(tables, MEMBER_VOTES, report):
        ref = f"line {line}"
        try:
            vote_id = int((row.get("vote_id") or "").strip())
        except ValueError:
            report.stances_skipped += 1
            report.problem(ref, "vote_id", "missing or not a number")
            continue
        if vote_id not in all_votes:
            report.stances_skipped += 1
            report.problem(ref, "vote_id", f"vote {vote_id} is not in {VOTES}")
            continue
        if vote_id not in votes:
            continue  # not a main vote, or a vote skipped (and reported) in votes.csv
        position = (row.get("position") or "").strip()
        if position not in POSITIONS:
            report.stances_skipped += 1
            report.problem(ref, "position", f"{position!r} is not one of {', '.join(POSITIONS)}")
            continue
        theirs = (row.get("group_code") or "").strip()
        if not theirs or theirs == NON_ATTACHED:
            continue  # no group on that day, or non-attached
        ours = GROUP_CODES.get(theirs)
        term = votes[vote_id].term
        if theirs not in listed_groups or ours is None or ours not in known_groups.get(term, ()):
            if (vote_id, theirs) not in unknown:
                unknown.add((vote_id, theirs))
                reason = (
                    f"not in {GROUPS}"
                    if theirs not in listed_groups
                    else f"no group of the {term} term in Hemicycle"
                    if ours is not None
                    else "not a group code Hemicycle maps (docs/power-and-rules.md)"
                )
                report.problem(
                    f"vote {vote_id}", "group_code", f"{theirs} is {reason}: its members' votes are not counted"
                )
            report.stances_skipped += 1
            continue
        counts.setdefault((vote_id, ours), Counter())[position] += 1
    return counts


def _read_topics(tables: _Tables, report: FileReport, votes: Iterable[int]) -> dict[int, list[str]]:
    wanted = set(votes)
    topics: dict[int, list[str]] = {}
    if not tables.has(COMMITTEES):
        return topics
    for _, row in _rows(tables, COMMITTEES, report):
        try:
            vote_id = int((row.get("vote_id") or "").strip())
        except ValueError:
            continue
        topic = COMMITTEE_TOPICS.get((row.get("committee_code") or "").strip())
        if vote_id in wanted and topic and topic not in topics.setdefault(vote_id, []):
            topics[vote_id].append(topic)
    return topics


def group_vote(counts: Mapping[str, int]) -> tuple[float, int] | None:
    """EuroCon's (score, choice) from a group's counts: for / (for + against + abstention)."""
    voted = counts.get("FOR", 0) + counts.get("AGAINST", 0) + counts.get("ABSTENTION", 0)
    if not voted:
        return None
    score = counts.get("FOR", 0) / voted
    return score, min(9, math.floor(10 * score))


def _stance_text(counts: Mapping[str, int], day: date) -> str:
    voted = counts.get("FOR", 0) + counts.get("AGAINST", 0) + counts.get("ABSTENTION", 0)
    return (
        f"In the roll-call vote of {day.isoformat()}, {counts.get('FOR', 0)} of the group's {voted} members "
        f"who voted were in favour, {counts.get('AGAINST', 0)} against and {counts.get('ABSTENTION', 0)} abstained."
    )


def howtheyvote_plan(
    *, folder: Path, record_set: str, known_groups: Mapping[str, Iterable[str]], limits: ReadLimits = ReadLimits()
) -> ImportPlan:
    """Read and validate an export (a folder, or the zip HowTheyVote publishes); nothing is
    written. known_groups: term -> our group codes."""
    report = ImportReport(record_set=record_set)
    known = {term: set(codes) for term, codes in known_groups.items()}
    files = {name: FileReport(name, "csv") for name in (VOTES, MEMBER_VOTES, GROUPS, COMMITTEES)}
    try:
        tables = _Tables(Path(folder), limits)
    except ValueError as error:
        files[VOTES].kind = "unreadable"
        files[VOTES].problem("", "", str(error))
        report.files.append(files[VOTES])
        return plan_totals(ImportPlan(records={}, tasks={}, report=report))
    try:
        return _plan(tables, report=report, files=files, known=known)
    finally:
        tables.close()


def _plan(
    tables: _Tables, *, report: ImportReport, files: dict[str, FileReport], known: dict[str, set[str]]
) -> ImportPlan:
    votes, all_votes, not_main = _read_votes(tables, files[VOTES])
    if not_main:
        many = not_main > 1
        files[VOTES].problem(
            "",
            "is_main",
            f"{not_main:,} vote{'s' * many} {'are' if many else 'is'} not a main vote (amendments, "
            "procedure): not imported",
        )
    listed_groups = _read_groups(tables, files[GROUPS])
    counts = _read_member_votes(
        tables,
        files[MEMBER_VOTES],
        votes=votes,
        all_votes=all_votes,
        listed_groups=listed_groups,
        known_groups=known,
    )
    topics = _read_topics(tables, files[COMMITTEES], votes)

    records: dict[str, RecordPlan] = {}
    for vote in votes.values():
        stances = {}
        for (vote_id, code), positions in sorted(counts.items()):
            if vote_id != vote.id or (result := group_vote(positions)) is None:
                continue
            stances[code] = StancePlan(
                group=code,
                text=_stance_text(positions, vote.day),
                score=result[0],
                choice=result[1],
                origin=Problem(MEMBER_VOTES, vote.ref, code, ""),
            )
        total = group_vote(dict(zip(("FOR", "AGAINST", "ABSTENTION"), vote.total)))
        content_hash = record_content_hash(title=vote.title, background=vote.background, resolution="", term=vote.term)
        records[content_hash] = RecordPlan(
            content_hash=content_hash,
            title=vote.title,
            background=vote.background,
            resolution="",
            term=vote.term,
            topics=topics.get(vote.id) or [UNSORTED_TOPIC],
            total_score=total[0] if total else None,
            total_choice=total[1] if total else None,
            stances=stances,
            origin=(VOTES, vote.ref),
        )
    report.files = [file for name, file in files.items() if name != COMMITTEES or tables.has(COMMITTEES)]
    return plan_totals(ImportPlan(records=records, tasks={}, report=report))


def howtheyvote_import(
    *,
    folder: Path,
    name: str,
    description: str = "",
    mode: str = RecordSetVersion.Mode.EXTEND,
    note: str = "",
    created_by: AbstractBaseUser | None = None,
) -> ImportReport:
    """Import an export (folder or zip) into the record set `name`, as records_import imports EuroCon files."""
    plan = howtheyvote_plan(folder=folder, record_set=name, known_groups=known_group_codes(), limits=read_limits())
    return records_import_plan(
        plan=plan, name=name, description=description, mode=mode, note=note, created_by=created_by
    )
