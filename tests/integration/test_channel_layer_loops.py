"""The Redis channel layer across tests that each run their own event loop (issue 19, section 5).

channels_redis keeps a per-process clean-up lock for its receives; a receive cancelled while it
waits for that lock (a socket closing as a message arrives) leaves the lock behind, bound to the
loop it waited on. The next loop that has to wait for it failed with "<asyncio.locks.Lock
[locked]> is bound to a different event loop" inside receive: three tests failed so, at random.
Each test now gets fresh layers (tests/channel_layers.py); these tests replay the sequence.
"""

import asyncio

from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from tests.channel_layers import channel_layers_reset


async def a_receive_is_cancelled_while_it_waits_for_the_clean_up_lock() -> None:
    layer = get_channel_layer()
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.send(first, {"type": "x"})
    await layer.receive(first)  # its clean-up task now holds the lock
    waiting = asyncio.create_task(layer.receive(second))
    while not any(lock._waiters for lock in layer.receive_clean_locks.locks.values()):
        assert not waiting.done()
        await asyncio.sleep(0)
    waiting.cancel()  # the socket closed
    await asyncio.gather(waiting, return_exceptions=True)
    await layer.wait_received()


async def two_messages_received_back_to_back() -> list[dict]:
    """The second receive waits for the first one's clean-up: the lock is waited on."""
    layer = get_channel_layer()
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.send(first, {"type": "one"})
    await layer.send(second, {"type": "two"})
    return [await layer.receive(first), await layer.receive(second)]


def test_a_fresh_layer_per_loop_receives_after_a_loop_that_left_the_clean_up_lock_behind(redis_server):
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    asyncio.run(a_receive_is_cancelled_while_it_waits_for_the_clean_up_lock())
    channel_layers_reset()  # what tests/conftest.py does between tests
    assert asyncio.run(two_messages_received_back_to_back()) == [{"type": "one"}, {"type": "two"}]


def test_the_same_layer_on_the_next_loop_fails_as_the_flaky_tests_did(redis_server):
    """The cause, shown: without a fresh layer the next loop meets the old loop's lock. If
    channels_redis stops leaving it behind, this test fails and the reset can go."""
    asyncio.run(a_receive_is_cancelled_while_it_waits_for_the_clean_up_lock())
    try:
        asyncio.run(two_messages_received_back_to_back())
    except RuntimeError as error:
        assert "is bound to a different event loop" in str(error)
    else:
        raise AssertionError("the layer's clean-up lock no longer outlives its loop")
