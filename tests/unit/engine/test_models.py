from deliberation.engine.models import ScriptedModelClient


def test_the_scripted_client_keeps_a_bounded_record_of_the_latest_calls():
    client = ScriptedModelClient(max_calls=50)
    for seed in range(10_000):
        client.complete([{"role": "user", "content": f"call {seed}"}], params={}, seed=seed)
    assert 50 <= len(client.calls) <= 100
    assert client.calls[-1][2] == 9_999
    assert [call[2] for call in client.calls] == list(range(10_000 - len(client.calls), 10_000))


def test_scripted_token_ids_depend_on_prompt_and_prefix_and_end_after_a_dozen_tokens():
    from deliberation.engine.models import SCRIPTED_END, SCRIPTED_END_AFTER, ScriptedModelClient

    client = ScriptedModelClient()
    messages = [{"role": "user", "content": "Draft."}]
    first = client.next_token_ids(messages, prefix_ids=[], top=5, seed=1).logprobs[0]
    assert first.top_ids == client.next_token_ids(messages, prefix_ids=[], top=5, seed=1).logprobs[0].top_ids
    assert [lp for _, lp in first.top] == sorted((lp for _, lp in first.top), reverse=True)
    other = client.next_token_ids([{"role": "user", "content": "Other."}], prefix_ids=[], top=5, seed=1).logprobs[0]
    assert other.top != first.top and SCRIPTED_END not in first.top_ids
    late = client.next_token_ids(messages, prefix_ids=[1] * SCRIPTED_END_AFTER, top=5, seed=1).logprobs[0]
    assert late.top_ids[0] == SCRIPTED_END and client.end_ids() == frozenset({SCRIPTED_END})
    assert ScriptedModelClient(token_ids_responder=None).gives_token_ids is False
