"""engine/events_doc.py: docs/events.md is generated from the event models and kept current."""

from pathlib import Path

from deliberation.engine.events import EVENT_DATA, Usage, VoteData
from deliberation.engine.events_doc import (
    DOC_PATH,
    events_json_schema,
    events_markdown,
    type_text,
)

REPO = Path(__file__).resolve().parents[3]


def test_docs_events_md_is_current():
    """Fails when an event model changed and docs/events.md was not regenerated:
    run `python manage.py events_doc`."""
    assert (REPO / DOC_PATH).read_text(encoding="utf-8") == events_markdown()


def test_the_doc_has_a_section_with_every_key_of_every_type():
    text = events_markdown()
    for name, model in EVENT_DATA.items():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for key, field in model.model_fields.items():
            presence = "required" if field.is_required() else "optional"
            assert f"| `{key}` | {type_text(field.annotation)} | {presence} |" in section, (name, key)


def test_types_read_as_json_types():
    hints = {key: field.annotation for key, field in VoteData.model_fields.items()}
    assert type_text(hints["score"]) == "number"
    assert type_text(hints["position"]) == '`"for"` \\| `"abstain"` \\| `"against"`'
    assert type_text(hints["usage"]) == "[Usage](#usage)"
    assert type_text(Usage.model_fields["retries"].annotation) == "list of [RetryData](#retrydata)"
    assert type_text(str | None) == "string or null"


def test_the_json_schema_has_every_type_and_marks_the_required_keys():
    schema = events_json_schema()["types"]
    assert set(schema) == set(EVENT_DATA)
    assert set(schema["vote"]["required"]) == {"group", "score", "position", "fallback", "attempts", "usage"}
    assert schema["vote"]["additionalProperties"] is False
