"""The completion cache's rows (worker/models/cache.py keeps the logic, this app the table):
a hit is one UPDATE ... RETURNING (several hits at once: one too), a new row one INSERT ... ON
CONFLICT DO NOTHING (hotpath.py)."""

from collections.abc import Sequence

from deliberation.runs.hotpath import insert_all_or_ignore, insert_sql, update_returning, update_returning_many
from deliberation.runs.models import CachedCompletion


def completions_insert(completions: Sequence[dict]) -> tuple[str, list]:
    """The INSERT of new rows (each as worker.models.cache hands them over: the arguments of
    `keep`), leaving alone a key that another worker stored first: SQL and parameters, for a
    statement that writes them with a run's events (runs.services.events_store)."""
    return insert_sql([CachedCompletion(**completion) for completion in completions], conflict=["key"])


def completions_keep(completions: Sequence[dict]) -> None:
    """Store new rows in one statement, unless another worker stored the same key first."""
    if completions:
        insert_all_or_ignore([CachedCompletion(**completion) for completion in completions], conflict=["key"])


class DatabaseCompletionStore:
    def hit(self, key: str, *, fields: Sequence[str]) -> CachedCompletion | None:
        return update_returning(CachedCompletion, set_sql="hits = hits + 1", where={"key": key}, fields=fields)

    def hit_many(self, keys: Sequence[str], *, fields: Sequence[str]) -> dict[str, CachedCompletion]:
        rows = update_returning_many(
            CachedCompletion, set_sql="hits = hits + 1", key="key", values=keys, fields=[*fields, "key"]
        )
        return {row.key: row for row in rows}

    def keep(
        self,
        *,
        key: str,
        model: str,
        messages: list[dict],
        params: dict,
        seed: int,
        text: str,
        logprobs: list | None,
        prompt_tokens: int,
        completion_tokens: int,
        seconds: float,
    ) -> None:
        completions_keep(
            [
                {
                    "key": key,
                    "model": model,
                    "messages": messages,
                    "params": params,
                    "seed": seed,
                    "text": text,
                    "logprobs": logprobs,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "seconds": seconds,
                }
            ]
        )
