import pytest

from deliberation.records.normalise import (
    CANONICAL_TOPICS,
    collapse_whitespace,
    normalise_group_code,
    normalise_term,
    normalise_topic,
    record_content_hash,
    stance_text,
    task_content_hash,
)

RECORD = {
    "title": "Cod stocks",
    "background": "Stocks fell.",
    "resolution": "The European Parliament acts.",
    "term": "7th",
}
TASK = {
    "record_hash": "r" * 64,
    "party_count": 2,
    "groups": ["EPP", "SD"],
    "seat_weights": [0.4, 0.6],
    "veto_group": "SD",
    "topic": "fisheries",
}


def test_topic_spelled_with_and_becomes_the_canonical_ampersand():
    assert normalise_topic("Foreign  and Security\tPolicy ") == "foreign & security policy"
    assert normalise_topic("civil liberties, justice and home affairs") == "civil liberties, justice & home affairs"


def test_topic_keeps_and_where_the_canonical_list_spells_and():
    assert (
        normalise_topic("constitutional and inter-institutional affairs")
        == "constitutional and inter-institutional affairs"
    )
    assert (
        normalise_topic("Constitutional & Inter-institutional Affairs")
        == "constitutional and inter-institutional affairs"
    )


def test_unknown_topic_is_only_trimmed_collapsed_and_lowercased():
    assert normalise_topic("  Research   And Innovation ") == "research and innovation"


def test_every_canonical_topic_is_its_own_normal_form():
    assert len(CANONICAL_TOPICS) == 19
    assert all(normalise_topic(topic) == topic for topic in CANONICAL_TOPICS)


@pytest.mark.parametrize("value", ["7th_datas", "7th", "7", " 7TH ", "7th term"])
def test_term_forms_normalise_to_the_short_form(value):
    assert normalise_term(value) == "7th"


@pytest.mark.parametrize("value", ["11th_datas", "6th", "seventh", "", "7th_data_x"])
def test_unknown_terms_are_rejected(value):
    with pytest.raises(ValueError, match="unknown parliament term"):
        normalise_term(value)


def test_the_tenth_term_is_known_for_howtheyvote_imports():
    assert normalise_term("10th") == normalise_term("10") == "10th"


@pytest.mark.parametrize(
    ("value", "code"),
    [("sd", "SD"), (" S&D ", "SD"), ("Greens/EFA", "GREEN_EFA"), ("gue/ngl", "GUE_NGL"), ("Renew", "RENEW")],
)
def test_group_codes_normalise_to_the_data_codes(value, code):
    assert normalise_group_code(value) == code


def test_collapse_whitespace_handles_non_breaking_spaces_newlines_and_composition():
    assert collapse_whitespace(" REPORT\xa0on  the\n\tproposal ") == "REPORT on the proposal"
    assert collapse_whitespace("caf" + "e\u0301") == "caf\u00e9"


def test_stance_string_and_list_forms_give_the_same_text():
    joined = "EPP supports it.  \nEPP wants more.  \n"
    assert (
        stance_text(joined)
        == stance_text(["EPP supports it.", " EPP wants  more."])
        == "EPP supports it.\nEPP wants more."
    )


def test_record_hash_ignores_whitespace_and_term_spelling():
    spaced = {**RECORD, "title": " Cod\xa0 stocks\n", "term": "7th_datas"}
    assert record_content_hash(**spaced) == record_content_hash(**RECORD)


@pytest.mark.parametrize("field", ["title", "background", "resolution"])
def test_record_hash_changes_with_each_text_field(field):
    assert record_content_hash(**{**RECORD, field: RECORD[field] + " More."}) != record_content_hash(**RECORD)


def test_record_hash_changes_with_the_term():
    assert record_content_hash(**{**RECORD, "term": "8th"}) != record_content_hash(**RECORD)


@pytest.mark.parametrize(
    "change",
    [
        {"groups": ["SD", "EPP"]},
        {"seat_weights": [0.6, 0.4]},
        {"veto_group": "EPP"},
        {"topic": "agriculture"},
        {"party_count": 4},
        {"record_hash": "s" * 64},
    ],
)
def test_task_hash_changes_with_each_part_of_its_identity(change):
    assert task_content_hash(**{**TASK, **change}) != task_content_hash(**TASK)


def test_task_hash_reads_the_topic_in_its_normal_form():
    assert task_content_hash(**{**TASK, "topic": " Fisheries "}) == task_content_hash(**TASK)
