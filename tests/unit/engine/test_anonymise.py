"""engine/anonymise.py: group mentions masked out of a stance for the judge's anonymised prompt."""

import dataclasses

import pytest

from deliberation.engine.anonymise import MASK, group_mentions_mask
from deliberation.engine.judges import PromptVariant, judge_messages
from tests.unit.engine.conftest import build_scenario


@pytest.mark.parametrize(
    "text, masked",
    [
        # codes as EuroCon's stances write them, and their labels
        ("GREEN_EFA rejects Article 12.", "[group] rejects Article 12."),
        ("SD and S&D are one group.", "[group] and [group] are one group."),
        ("The S&D's amendment", "The [group]'s amendment"),
        ("Greens/EFA back it; Verts/ALE too.", "[group] back it; [group] too."),
        ("GUE/NGL and The Left abstain.", "[group] and [group] abstain."),
        ("Renew Europe and ALDE differ.", "[group] and [group] differ."),
        ("the Greens oppose it", "the [group] oppose it"),
        # case ignored for names that mean nothing else
        ("epp and ecr and gue_ngl", "[group] and [group] and [group]"),
        ("the European People's Party", "the [group]"),
        # a word of its own only: ECRs, EPPO, SDG and ALDEBARAN are other words
        ("ECRs, EPPO, SDGs and ALDEBARAN stay.", "ECRs, EPPO, SDGs and ALDEBARAN stay."),
        ("pro-ECR and EPP-led motions", "pro-[group] and [group]-led motions"),
        # words with an ordinary meaning are masked only as written
        ("Renew calls to renew the programme.", "[group] calls to renew the programme."),
        ("RENEW and GREENS, as codes", "[group] and [group], as codes"),
        ("ID backs the ID card, not the id.", "[group] backs the [group] card, not the id."),
        ("the left bank; greens in salads", "the left bank; greens in salads"),
        # national parties cannot be masked this way
        ("The CDU and Fidesz members", "The CDU and Fidesz members"),
    ],
)
def test_group_mentions_are_masked_as_words(text, masked):
    assert group_mentions_mask(text) == masked


def test_a_scenarios_own_group_names_are_masked_but_not_its_ordinary_words():
    text = "The Pirates (PIR) and Renew want to renew it."
    assert group_mentions_mask(text, names=["PIR", "Pirates", "Renew"]) == (
        f"The {MASK} ({MASK}) and {MASK} want to renew it."
    )
    assert group_mentions_mask("The pirates", names=["Pirates"]) == f"The {MASK}"


def test_the_anonymised_prompt_masks_the_stance_and_the_paper_prompt_keeps_it():
    scenario = build_scenario()
    epp = dataclasses.replace(scenario.groups[0], stance="EPP supports it, unlike S&D and the Greens/EFA.")
    scenario = dataclasses.replace(scenario, groups=(epp, *scenario.groups[1:]))

    def prompt(variant: PromptVariant) -> str:
        return judge_messages(scenario=scenario, group="EPP", text="EPP text", attempt=0, variant=variant)[-1][
            "content"
        ]

    anonymous = prompt(PromptVariant(anonymous=True))
    assert "'''[group] supports it, unlike [group] and the [group].'''" in anonymous
    assert "EPP supports" not in anonymous and "S&D" not in anonymous
    assert "Statement to score: '''EPP text'''" in anonymous  # the judged text is left as it is
    assert "'''EPP supports it, unlike S&D and the Greens/EFA.'''" in prompt(PromptVariant())
