"""Normal forms of what the EuroCon / PoliCon files spell loosely, and the content identities.

Files disagree on small things ("foreign and security policy" beside "foreign & security
policy", "7th_datas" for a term, stray non-breaking spaces), so everything that identifies a
record or a task is compared in its normal form. A record is identified by its content, never by
a file's `id`: ids are unique only within one file, and one issue can appear under two topics.
"""

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence

# The policy areas of EuroCon / PoliCon (19), as the data spells them.
CANONICAL_TOPICS = (
    "agriculture",
    "budget",
    "budgetary control",
    "civil liberties, justice & home affairs",
    "constitutional and inter-institutional affairs",
    "culture & education",
    "development",
    "economic & monetary affairs",
    "employment & social affairs",
    "environment & public health",
    "fisheries",
    "foreign & security policy",
    "gender equality",
    "industry, research & energy",
    "internal market & consumer protection",
    "international trade",
    "legal affairs",
    "regional development",
    "transport & tourism",
)

TERMS = ("7th", "8th", "9th", "10th")

_TERM = re.compile(r"^(7|8|9|10)(?:th)?(?:[ _-]?(?:datas?|term))?$")
_GROUP_ALIASES = {"S&D": "SD", "S_D": "SD", "GREENS_EFA": "GREEN_EFA", "GREENS": "GREEN_EFA", "RE": "RENEW"}


def collapse_whitespace(text: str) -> str:
    """NFC, every run of whitespace (non-breaking spaces and newlines included) one space, trimmed."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())  # str.split() splits on Unicode whitespace, far faster than re


def stance_text(text: str | Sequence[str]) -> str:
    """One stance as lines joined by "\\n": a string ("  \\n"-joined in EuroCon) or a list of
    sentences (the later PoliCon release). Blank lines go; each line is whitespace-collapsed."""
    lines = text.splitlines() if isinstance(text, str) else list(text)
    return "\n".join(line for line in map(collapse_whitespace, lines) if line)


def _topic_key(name: str) -> str:
    return collapse_whitespace(name).lower().replace(" and ", " & ")


_CANONICAL_BY_KEY = {_topic_key(topic): topic for topic in CANONICAL_TOPICS}


def normalise_topic(name: str) -> str:
    """Lowercase, whitespace collapsed, "and"/"&" spelled as the canonical list spells the topic.

    A topic outside the canonical list keeps its (lowercased, collapsed) spelling: a later
    release may add policy areas.
    """
    cleaned = collapse_whitespace(name).lower()
    return _CANONICAL_BY_KEY.get(_topic_key(cleaned), cleaned)


def normalise_term(value: str) -> str:
    """ "7th_datas", "7th", "7" -> "7th" (and "10th" for HowTheyVote imports). Raises ValueError for anything else."""
    match = _TERM.match(collapse_whitespace(str(value)).lower())
    if not match:
        raise ValueError(f"unknown parliament term {value!r} (expected 7th, 8th, 9th or 10th)")
    return f"{match.group(1)}th"


def normalise_group_code(value: str) -> str:
    """ "sd", " S&D ", "Greens/EFA" -> "SD", "SD", "GREEN_EFA": the codes the data uses."""
    code = re.sub(r"[\s/-]+", "_", collapse_whitespace(value).upper())
    return _GROUP_ALIASES.get(code, code)


def _sha256(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def record_content_hash(*, title: str, background: str, resolution: str, term: str) -> str:
    """The identity of a record: its normalised title, background, resolution and term."""
    return _sha256(
        [
            collapse_whitespace(title),
            collapse_whitespace(background),
            collapse_whitespace(resolution),
            normalise_term(term),
        ]
    )


def task_content_hash(
    *,
    record_hash: str,
    party_count: int,
    groups: Sequence[str],
    seat_weights: Sequence[float],
    veto_group: str,
    topic: str,
) -> str:
    """The identity of a benchmark task: its record, groups in order, weights, veto and topic."""
    return _sha256(
        [
            record_hash,
            party_count,
            list(groups),
            [round(weight, 9) for weight in seat_weights],
            veto_group,
            normalise_topic(topic),
        ]
    )
