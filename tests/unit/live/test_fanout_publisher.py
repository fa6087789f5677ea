"""live/fanout.py's publisher: sends from sync code leave in order, without the writer waiting."""

import asyncio
import random

from deliberation.live import fanout


class SlowLayer:
    """A channel layer whose sends take a while and could finish out of order if run together."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.sent: list[tuple[str, int]] = []
        self.fail_on = fail_on

    async def group_send(self, group: str, payload: dict) -> None:
        await asyncio.sleep(random.random() / 500)
        if payload["seq"] == self.fail_on:
            raise ConnectionError("layer down")
        self.sent.append((group, payload["seq"]))


def test_sends_leave_in_the_order_they_were_handed_over_and_the_writer_does_not_wait(monkeypatch):
    layer = SlowLayer(fail_on=7)
    monkeypatch.setattr(fanout, "get_channel_layer", lambda: layer)
    for seq in range(1, 41):
        fanout.group_send(f"run.{seq % 3}", {"seq": seq})
    assert len(layer.sent) < 40  # handed over, not yet sent: the writer went on
    assert fanout._flush_publisher(timeout=10)
    # Every send went out in order; the one that failed was logged and skipped.
    assert [seq for _, seq in layer.sent] == [seq for seq in range(1, 41) if seq != 7]
