"""Mentions of party groups masked out of a text, for the judge's anonymised prompt
(judges.PromptVariant(anonymous=True)): naming the group "the group" is not enough when its
stance says "EPP strongly supports ..." or "GREEN_EFA rejects ...", as EuroCon's stances do.

What is masked: the codes, short and long names, and the usual aliases of every European
Parliament group of the 7th to 10th terms (fixtures/ep_groups.json) and of the scenario's own
groups (an imported record set may have others), each replaced by MASK where it stands as a word
of its own: "EPP's" -> "[group]'s", "pro-ECR" -> "pro-[group]", but not "ECRs" or "EPPO". What
cannot be masked this way: national parties (CDU, PD, Fidesz), members' names, and a position so
typical of one family that it names the group without a name.
"""

import re
from collections.abc import Iterable
from functools import lru_cache

MASK = "[group]"

# Matched ignoring case: names no text uses for anything else.
EP_GROUP_NAMES = (
    # EPP
    "EPP",
    "EPP Group",
    "PPE",
    "European People's Party",
    "Group of the European People's Party (Christian Democrats)",
    # S&D
    "SD",
    "S&D",
    "S_D",
    "S+D",
    "S and D",
    "Socialists and Democrats",
    "Progressive Alliance of Socialists and Democrats",
    "Group of the Progressive Alliance of Socialists and Democrats in the European Parliament",
    # ALDE, Renew Europe
    "ALDE",
    "Alliance of Liberals and Democrats for Europe",
    "Group of the Alliance of Liberals and Democrats for Europe",
    "Renew Europe",  # RENEW and Renew: EP_GROUP_WORDS
    "Renew Europe Group",
    # Greens/EFA
    "GREEN_EFA",
    "GREENS_EFA",
    "Greens/EFA",
    "Greens-EFA",
    "Verts/ALE",
    "EFA",
    "European Free Alliance",
    "Group of the Greens/European Free Alliance",
    # ECR
    "ECR",
    "European Conservatives and Reformists",
    "European Conservatives and Reformists Group",
    # GUE/NGL, The Left
    "GUE_NGL",
    "GUE/NGL",
    "GUE-NGL",
    "GUE",
    "NGL",
    "European United Left",
    "Nordic Green Left",
    "Confederal Group of the European United Left - Nordic Green Left",
    "The Left in the European Parliament",
    "The Left in the European Parliament - GUE/NGL",
    # EFD, EFDD, ENF, ID, PfE, ESN
    "EFD",
    "Europe of Freedom and Democracy",
    "Europe of Freedom and Democracy Group",
    "EFDD",
    "Europe of Freedom and Direct Democracy",
    "Europe of Freedom and Direct Democracy Group",
    "ENF",
    "Europe of Nations and Freedom",
    "Europe of Nations and Freedom Group",
    "Identity and Democracy",
    "Identity and Democracy Group",
    "PFE",
    "PfE",
    "Patriots for Europe",
    "Patriots for Europe Group",
    "ESN",
    "Europe of Sovereign Nations",
    "Europe of Sovereign Nations Group",
)
# Matched as written or in capitals: names that are also ordinary words ("renew the programme",
# "the left bank"; an "ID card" is left alone only in lower case: "ID" is the group's code).
EP_GROUP_WORDS = ("Renew", "Greens", "The Left", "Patriots", "ID")


def group_mentions_mask(text: str, *, names: Iterable[str] = ()) -> str:
    """`text` with every mention of a group (EP_GROUP_NAMES ignoring case, EP_GROUP_WORDS as
    written, and `names`, a scenario's own codes and labels, ignoring case) replaced by MASK."""
    return _pattern(tuple(sorted({name.strip() for name in names if name.strip()}))).sub(MASK, text)


@lru_cache(maxsize=256)
def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    words = {word.casefold() for word in EP_GROUP_WORDS}  # as written, even as a scenario's label ("Renew")
    ignoring_case = {name.casefold(): name for name in (*EP_GROUP_NAMES, *names) if name.casefold() not in words}
    alternatives = [(name, f"(?i:{re.escape(name)})") for name in ignoring_case.values()]
    # as written, and in capitals as a code is written ("RENEW rejects ...")
    alternatives += [(word, re.escape(word)) for word in {*EP_GROUP_WORDS, *(w.upper() for w in EP_GROUP_WORDS)}]
    # The longest first, so that "Greens/EFA" is one mention, not "Greens" and "EFA".
    alternatives.sort(key=lambda pair: -len(pair[0]))
    return re.compile(r"(?<!\w)(?:" + "|".join(pattern for _, pattern in alternatives) + r")(?!\w)")
