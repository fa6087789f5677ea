"""Many websockets on the Redis channel layer at once: the guard of the channels-redis / redis-py pin.

channels-redis 4.3.0 with redis-py 8.x broke under concurrent sockets ("Too many connections",
"Timeout reading from ..." on group_add and receive with 100 viewers; DESIGN.md), and 7.4.1 is
pinned for it. Here 150 sockets of one experiment's owner (ExperimentConsumer: a layer channel of
its own per socket, in the experiment's group) connect at once through uvicorn, each receives a
snapshot pushed to the group, and all close, with no error in the server's log.
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from channels.layers import get_channel_layer
from websockets.asyncio.client import connect

from deliberation.live.fanout import encode, experiment_group
from deliberation.runs.experiments import experiment_create
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, make_user, scenario_config
from tests.integration import servers
from tests.integration.test_production_stack import signed_in_session

SOCKETS = 150


def test_150_sockets_join_one_group_at_once_and_each_gets_what_is_pushed_to_it(asgi_server):
    owner = make_user()
    scenario = scenario_save(owner=owner, name="s", config=scenario_config(make_record()))
    experiment = experiment_create(
        owner=owner,
        name="watched",
        scenario_ids=[scenario.pk],
        goals=["simple_majority"],
        strategies=["greedy"],
        models=["scripted:default"],
        judges=["scripted"],
        seeds=[0],
    )
    cookie = f"sessionid={signed_in_session(asgi_server, owner.username).cookies['sessionid']}"
    log_size = asgi_server.log_path.stat().st_size
    url = f"{asgi_server.ws_url}/ws/experiments/{experiment.pk}/"

    async def scenario():
        async def open_socket():
            return await connect(
                url, origin=asgi_server.url, additional_headers={"Cookie": cookie}, open_timeout=120, ping_interval=None
            )

        sockets = await asyncio.gather(*(open_socket() for _ in range(SOCKETS)))
        try:
            # The snapshot at connect comes after the socket's group_add: all of them are in the group.
            first = await asyncio.gather(*(asyncio.wait_for(socket.recv(), 120) for socket in sockets))
            await get_channel_layer().group_send(
                experiment_group(experiment.pk), {"type": "experiment.progress", "frame": encode({"pushed": 1})}
            )
            pushed = await asyncio.gather(*(asyncio.wait_for(socket.recv(), 120) for socket in sockets))
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
        return first, pushed

    with ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own, in a thread of its own
        first, pushed = pool.submit(asyncio.run, scenario()).result()

    assert {json.loads(frame)["status"] for frame in first} == {"draft"}
    assert [json.loads(frame) for frame in pushed] == [{"pushed": 1}] * SOCKETS
    log = servers.read_tail(asgi_server.log_path, lines=10**6, since=log_size)
    assert "Traceback" not in log and "Too many connections" not in log, log[-3000:]
