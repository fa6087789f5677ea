"""docs/events.md and the events' JSON Schema, generated from the models in engine/events.py.

`python manage.py events_doc` writes docs/events.md; tests/unit/engine/test_events_doc.py fails
when the file differs from `events_markdown()`, so the published schema cannot drift from the
one event_append enforces.
"""

import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel

from deliberation.engine.events import EVENT_DATA, SERVICE_EVENT_TYPES

DOC_PATH = "docs/events.md"

INTRO = """\
# Events

<!-- Generated from deliberation/engine/events.py by `python manage.py events_doc`: edit the models, not this file. -->

A run's log is a list of events, numbered from 1 per run:

```json
{{"seq": 4, "type": "speech", "at": "2025-05-26T10:00:00+00:00", "data": {{...}}}}
```

Each `type` has one shape of `data`, below. The run service validates every event against it before
it is written (`event_append`), for every strategy and for classroom sessions; an event of an unknown
type or with an unknown, missing or mistyped key is refused and nothing is stored. A key marked
*optional* may be absent; it is `null` only where its type says so. The same shapes, as JSON Schema,
are served at `/api/v1/events/schema`.

Types a strategy yields: {strategy_types}. Types the run service (or the classroom) writes around
the strategy: {service_types}; a resumed strategy skips those when it replays the log.

A run's state (status, drafts, votes, tally, outcome, error, tokens) follows from its events alone:
`deliberation/engine/run_state.py` rebuilds it as a client would, and
`tests/unit/runs/test_event_rebuild.py` checks, for every strategy, that it equals what the run
services record (a classroom session's state: `engine/classroom.py`, `sitting_state`).

A new event type is a pydantic model in `deliberation/engine/events.py` registered in `EVENT_DATA`
(the module's docstring says how); then `python manage.py events_doc` rewrites this file.
"""


def type_text(hint: Any) -> str:
    """A field's type as a reader of the JSON sees it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "null"
    if origin is typing.Literal:
        return " \\| ".join(f'`"{arg}"`' for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in args)
    if origin is list:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return f"object: {type_text(args[0])} -> {type_text(args[1])}"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return f"[{hint.__name__}](#{hint.__name__.lower()})"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]


def _first_paragraph(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())


def model_table(model: type[BaseModel]) -> list[str]:
    lines = [_first_paragraph(model), "", "| key | type | presence | meaning |", "|---|---|---|---|"]
    own = [name for name in model.model_fields if name in model.__annotations__]
    inherited = [name for name in model.model_fields if name not in own]  # the shared keys last
    for name in own + inherited:
        field = model.model_fields[name]
        required = "required" if field.is_required() else "optional"
        meaning = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {type_text(field.annotation)} | {required} | {meaning} |")
    return lines


def _nested(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> None:
    for field in model.model_fields.values():
        for hint in _hints(field.annotation):
            if isinstance(hint, type) and issubclass(hint, BaseModel) and hint.__name__ not in seen:
                seen[hint.__name__] = hint
                _nested(hint, seen)


def _hints(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    return [hint] if not args else [inner for arg in args for inner in _hints(arg)]


def events_markdown() -> str:
    """The whole of docs/events.md."""
    strategy_types = [name for name in EVENT_DATA if name not in SERVICE_EVENT_TYPES]
    service_types = [name for name in EVENT_DATA if name in SERVICE_EVENT_TYPES]
    lines = [
        INTRO.format(
            strategy_types=", ".join(f"`{name}`" for name in strategy_types),
            service_types=", ".join(f"`{name}`" for name in service_types),
        )
    ]
    shared: dict[str, type[BaseModel]] = {}
    for name, model in EVENT_DATA.items():
        lines += [f"## {name}", "", *model_table(model), ""]
        _nested(model, shared)
    lines += ["# Shapes inside events", ""]
    for name, model in shared.items():
        lines += [f"## {name}", "", *model_table(model), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


@cache  # the models are fixed once imported
def events_json_schema() -> dict[str, Any]:
    """Every event type's data as JSON Schema: {"types": {type: schema}}. Shared: do not mutate."""
    return {"types": {name: model.model_json_schema() for name, model in EVENT_DATA.items()}}
