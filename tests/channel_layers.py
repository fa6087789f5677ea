"""Channel layers in tests: each test gets fresh ones (tests/conftest.py's fresh_channel_layers)."""


def channel_layers_reset() -> None:
    """Drop the process's channel layers; the next get_channel_layer() builds new ones.

    A layer is made for a server's one event loop, and a test runs its sockets on a loop of its
    own. channels_redis keeps receive state across calls that is bound to the loop that used it:
    a receive cancelled while it waits for the per-process clean-up lock (a socket that closes as
    a message arrives) leaves that lock's waiter count up, so the lock outlives the test, bound to
    its closed loop, and the next test that waits on it fails with "<asyncio.locks.Lock [locked]>
    is bound to a different event loop" inside receive (issue 19). The in-memory layer's queues are
    bound to a loop the same way. Sends already handed to the publisher go out first, and the old
    layer's connections on the publisher's loop are closed (a test loop's close with its loop)."""
    from channels.layers import channel_layers

    from deliberation.live.fanout import publisher_close

    layers = list(channel_layers.backends.values())
    channel_layers.backends.clear()
    for layer in layers:
        assert publisher_close(layer), "sends to the channel layer still pending after the test"
