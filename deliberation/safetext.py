"""Text that may be stored: no NUL, no other control characters, no lone surrogates.

PostgreSQL refuses NUL in text and JSON columns (a 500 at the first write), a lone surrogate
cannot be encoded as UTF-8, and the other C0 controls and DEL mean nothing in a title, a stance
or a name. Tabs and line breaks are text. The API's schemas and the record importer both check
their text through here, so each refusal names its field.
"""

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def text_problem(value: str) -> str:
    """Why this text cannot be stored, or "" when it can."""
    found = _REFUSED.search(value)
    if found is None:
        return ""
    return f"contains the control character U+{ord(found.group()):04X} at position {found.start()}: not allowed"


def text_checked(value: str) -> str:
    """The text itself, or ValueError (pydantic reports it under the field's name)."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def json_checked(value: Any) -> Any:
    """A JSON value that can be stored: every string, keys included, passes text_checked, and
    every number is finite (PostgreSQL's jsonb has no Infinity or NaN)."""
    if isinstance(value, str):
        return text_checked(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if isinstance(value, Mapping):
        for key, item in value.items():
            text_checked(str(key))
            json_checked(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            json_checked(item)
    return value


# The rule for the OpenAPI schema, so clients (and schemathesis) know it; the validator above also
# refuses lone surrogates, which an ECMA pattern cannot name portably.
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"

SafeText = Annotated[str, AfterValidator(text_checked), Field(json_schema_extra={"pattern": TEXT_PATTERN})]
