from deliberation.engine.models import ScriptedModelClient


def test_the_scripted_client_keeps_a_bounded_record_of_the_latest_calls():
    client = ScriptedModelClient(max_calls=50)
    for seed in range(10_000):
        client.complete([{"role": "user", "content": f"call {seed}"}], params={}, seed=seed)
    assert 50 <= len(client.calls) <= 100
    assert client.calls[-1][2] == 9_999
    assert [call[2] for call in client.calls] == list(range(10_000 - len(client.calls), 10_000))
