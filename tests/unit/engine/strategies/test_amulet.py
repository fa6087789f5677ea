"""The amulet strategy: beta, the closed form against the reference's iteration, the decoding loop,
events, seeds, parameters and the cost estimate (scripted model); the bundled model decoded both
through the strategy and by a direct two-prompt computation from full logits."""

import random

import pytest

from deliberation.engine.events import event_validate
from deliberation.engine.judges import ScriptedJudge
from deliberation.engine.models import (
    SCRIPTED_END_AFTER,
    ScriptedModelClient,
    TokenLogprob,
)
from deliberation.engine.strategies import RunContext, strategy_named
from deliberation.engine.strategies.amulet import (
    NEEDS,
    Amulet,
    AmuletParams,
    amulet_beta,
    amulet_choice,
    amulet_contexts,
    amulet_decode,
    amulet_iterate,
    amulet_scores,
    favoured_groups,
    log_softmax,
    preference_sentence,
)
from deliberation.engine.strategies.params import ParamsError, params_validate
from tests.unit.engine.conftest import build_scenario

DEFAULTS = {"iterations": 60, "alpha": 2.0, "lam": 2.0, "eta": 10.0}


@pytest.mark.parametrize(
    ("settings", "beta"),
    [
        ({}, 4.649),
        ({"iterations": 1}, 0.952),
        ({"iterations": 10}, 2.898),
        ({"iterations": 20}, 3.567),
        ({"iterations": 100}, 5.156),
        ({"iterations": 200}, 5.847),
        ({"eta": 1.0}, 4.436),
        ({"eta": 100.0}, 4.677),
        ({"alpha": 1.0}, 0.926),
    ],
)
def test_beta_matches_the_derived_table(settings, beta):
    assert amulet_beta(**{**DEFAULTS, **settings}) == pytest.approx(beta, abs=5e-4)


def test_beta_grows_without_bound_when_alpha_exceeds_lambda():
    assert amulet_beta(**{**DEFAULTS, "alpha": 2.5}) == pytest.approx(10.28, abs=5e-3)
    assert (
        amulet_beta(**{**DEFAULTS, "alpha": 2.5, "iterations": 120})
        > 13
        > amulet_beta(**{**DEFAULTS, "alpha": 1.0, "iterations": 1000}) * 13
    )


@pytest.mark.parametrize(
    "settings", [{}, {"iterations": 7, "alpha": 0.5, "lam": 3.0, "eta": 2.0}, {"iterations": 100, "alpha": 2.5}]
)
def test_closed_form_equals_the_reference_iteration_on_random_logits(settings):
    rng = random.Random(13)
    params = {**DEFAULTS, **settings}
    beta = amulet_beta(**params)
    for _ in range(20):
        size = rng.randint(2, 60)
        pref = [rng.gauss(0, 4) for _ in range(size)]
        base = [rng.gauss(0, 4) for _ in range(size)]
        iterated = log_softmax(amulet_iterate(pref, base, **params))
        closed = log_softmax(amulet_scores(pref, base, beta=beta))
        assert max(abs(a - b) for a, b in zip(iterated, closed)) < 1e-9


def candidates(pairs):
    """A TokenLogprob from (id, logprob) pairs, best first."""
    pairs = sorted(pairs, key=lambda pair: -pair[1])
    return TokenLogprob(
        token="", logprob=pairs[0][1], top=tuple((str(i), lp) for i, lp in pairs), top_ids=tuple(i for i, _ in pairs)
    )


def test_choice_pushes_away_from_the_base_over_the_preference_candidates():
    pref = candidates([(1, -0.5), (2, -1.0), (3, -3.0)])
    base = candidates([(1, -0.2), (2, -2.5), (9, -0.1)])
    choice = amulet_choice(pref, base, beta=1.0)
    # 1: 2*-0.5 + 0.2 = -0.8; 2: 2*-1.0 + 2.5 = 0.5; 3 (not in base): 2*-3.0 + 2.5 (floor) = -3.5
    assert (choice.id, choice.score) == (2, pytest.approx(0.5))
    assert choice.base_logprob == -2.5
    assert amulet_choice(pref, base, beta=0.0).id == 1  # beta 0: the preference's own argmax


def test_a_candidate_missing_from_the_base_gets_its_smallest_logprob_never_less():
    pref = candidates([(1, -0.1), (5, -0.3)])
    base = candidates([(1, -0.05), (2, -4.0)])
    choice = amulet_choice(pref, base, beta=4.649)
    assert choice.id == 5 and choice.base_logprob == -4.0


def test_ties_go_to_the_lowest_id():
    pref = candidates([(7, -1.0), (3, -1.0)])
    base = candidates([(7, -1.0), (3, -1.0)])
    assert amulet_choice(pref, base, beta=4.649).id == 3


@pytest.mark.parametrize(
    ("goal", "veto", "favoured", "phrase"),
    [
        ("simple_majority", None, ["EPP", "SD"], "Write it so that EPP and SD can vote for it."),
        ("two_thirds_majority", None, ["EPP", "SD"], "Write it so that EPP and SD can vote for it."),
        ("veto_power", "GREEN_EFA", ["GREEN_EFA"], "GREEN_EFA must be able to accept it."),
        ("rawlsian", None, ["GREEN_EFA"], "Give priority to GREEN_EFA"),
        ("utilitarian", None, ["EPP", "SD", "GREEN_EFA"], "acceptable to every group at once"),
    ],
)
def test_the_preference_follows_the_goal(goal, veto, favoured, phrase):
    scenario = build_scenario(goal=goal, veto_group=veto)  # seats EPP 0.5, SD 0.3, GREEN_EFA 0.2
    assert favoured_groups(scenario) == favoured
    assert phrase in preference_sentence(scenario)
    base, preference = amulet_contexts(scenario)
    assert preference[1:] == base[1:] and preference[0]["content"].startswith(base[0]["content"])
    assert preference[0]["content"].endswith(preference_sentence(scenario))


def test_a_majority_of_one_group_needs_only_it():
    scenario = build_scenario(seats={"EPP": 0.6, "SD": 0.3, "RE": 0.1})
    assert favoured_groups(scenario) == ["EPP"]  # 0.6 x 9 = 5.4 >= 5


def run(model, *, params=None, seed=5, recorded=(), goal="simple_majority"):
    ctx = RunContext(model=model, judge=ScriptedJudge(), seed=seed, params=params or {}, recorded=recorded)
    return list(strategy_named("amulet").run(build_scenario(goal=goal), ctx))


def test_run_decodes_one_draft_from_two_contexts_and_then_votes():
    model = ScriptedModelClient()
    events = run(model)
    for event in events:
        event_validate(event)
    assert [e["type"] for e in events] == ["run_started", "amulet", "draft", "vote", "vote", "vote", "tally", "outcome"]
    setup, draft = events[1]["data"], events[2]["data"]
    assert setup["beta"] == pytest.approx(4.649, abs=5e-4) and setup["favoured"] == ["EPP", "SD"]
    assert draft["author"] == "amulet" and draft["decoding"]["stopped"] == "end"
    tokens = draft["decoding"]["tokens"]
    assert tokens == SCRIPTED_END_AFTER and draft["decoding"]["calls"] == 2 * (tokens + 1)  # + the end step
    assert draft["usage"]["completion_tokens"] == tokens and not draft["usage"]["cached"]
    assert model.calls == []  # no sampled completion: token steps only
    calls = model.token_id_calls
    assert len(calls) == draft["decoding"]["calls"]
    base, preference = amulet_contexts(build_scenario())
    assert [c[0] for c in calls[:2]] == [tuple(preference), tuple(base)]  # each step asks both, same ids
    assert all(calls[i][1] == calls[i + 1][1] for i in range(0, len(calls), 2))
    ids = list(calls[-1][1])
    assert draft["text"] == model.decode_ids(ids).strip() and all(c[2] == 20 for c in calls)


def test_the_decoded_ids_are_the_closed_form_argmax_at_every_step():
    model = ScriptedModelClient()
    base, preference = amulet_contexts(build_scenario())
    decoded = amulet_decode(model, base, preference, beta=4.649, top=24, max_tokens=30, seed=1)
    # with every token a candidate, each choice is the argmax of the closed form over the vocabulary
    from deliberation.engine.models import scripted_next_token_ids

    for step, chosen in enumerate(decoded.ids):
        scores = amulet_scores(
            scripted_next_token_ids(preference, decoded.ids[:step], 1),
            scripted_next_token_ids(base, decoded.ids[:step], 1),
            beta=4.649,
        )
        assert chosen == max(range(len(scores)), key=lambda i: (scores[i], -i))


def test_max_tokens_stops_the_decoding_and_matches_the_estimate():
    model = ScriptedModelClient()
    events = run(model, params={"max_tokens": 8})
    draft = next(e["data"] for e in events if e["type"] == "draft")
    assert draft["decoding"] == {"tokens": 8, "calls": 16, "stopped": "max_tokens"}
    cost = Amulet().estimated_cost(groups=3, params=AmuletParams(max_tokens=8), judge_uses_model=True)
    steps = [e for e in events if "usage" in e["data"]]
    assert cost.steps == len(steps) == 4  # the draft and three verdicts (judge calls counted as with a model)
    assert cost.completion_tokens >= draft["usage"]["completion_tokens"]


def test_same_seed_same_events_and_the_seed_keys_every_token_call():
    model, again = ScriptedModelClient(), ScriptedModelClient()
    first = run(model, seed=5)
    assert [e["data"] for e in run(again, seed=5)] == [e["data"] for e in first]
    other = ScriptedModelClient()
    run(other, seed=6)
    # the next-token distribution does not depend on the seed, but the cache key does: a run with
    # another seed is another run and does not share the first one's cached token steps
    assert {c[3] for c in model.token_id_calls} != {c[3] for c in other.token_id_calls}
    assert len({c[3] for c in model.token_id_calls}) == 1


def test_a_resumed_run_replays_the_draft_without_token_calls():
    first = run(ScriptedModelClient())
    model = ScriptedModelClient()
    resumed = run(model, recorded=first[:3])
    assert model.token_id_calls == [] and [e["data"] for e in resumed] == [e["data"] for e in first]


def test_parameters_are_validated_with_their_ranges():
    with pytest.raises(ParamsError, match="top_k: between 2 and 100"):
        params_validate(AmuletParams, {"top_k": 1}, strategy="amulet")
    with pytest.raises(ParamsError, match="amulet has no such parameter"):
        params_validate(AmuletParams, {"beta": 3}, strategy="amulet")
    assert params_validate(AmuletParams, {"iterations": "10"}, strategy="amulet").iterations == 10
    with pytest.raises(ParamsError, match="eta"):
        run(ScriptedModelClient(), params={"eta": 0})


def test_a_backend_without_token_ids_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="next-token log-probabilities by token id"):
        run(ScriptedModelClient(token_ids_responder=None))
    assert "amulet needs" in NEEDS


# --- the bundled model -----------------------------------------------------------------------


def full_logprobs(llama, new_ids):
    """Full-vocabulary log-softmax after evaluating `new_ids` on what the context holds."""
    import llama_cpp
    import numpy as np

    llama.eval(new_ids)
    last = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(llama.n_vocab(),))
    return llama_cpp.Llama.logits_to_logprobs(last.astype(np.float64))


def test_bundled_model_decodes_as_a_direct_two_prompt_computation():
    """amulet_decode through the local backend (its kept contexts, its top-k answers, the cache's
    shape) against the same rule computed here over the full vocabulary from two contexts of
    our own, one per prompt."""
    import numpy as np

    from worker.models.local import LOCAL_MODELS, chat_prompt, llama_load, local_model

    model = local_model("smollm2-135m")
    scenario = build_scenario(goal="veto_power", veto_group="SD")
    base, preference = amulet_contexts(scenario)
    beta, top, steps = amulet_beta(**DEFAULTS), 20, 5
    decoded = amulet_decode(model, base, preference, beta=beta, top=top, max_tokens=steps, seed=0)
    assert len(decoded.ids) == steps and decoded.calls == 2 * steps

    contexts = [llama_load(LOCAL_MODELS["smollm2-135m"], n_threads=1) for _ in range(2)]
    pending = [
        ctx.tokenize(chat_prompt(ctx, m).encode(), add_bos=True, special=True)
        for ctx, m in zip(contexts, (preference, base))
    ]
    expected = []
    for _ in range(steps):
        pref, base_lp = (full_logprobs(ctx, ids) for ctx, ids in zip(contexts, pending))
        pref_top = np.argsort(-pref, kind="stable")[:top]
        base_top = np.argsort(-base_lp, kind="stable")[:top]
        floor = base_lp[base_top].min()
        in_base = np.isin(pref_top, base_top)
        scores = (1 + beta) * pref[pref_top] - beta * np.where(in_base, base_lp[pref_top], floor)
        order = np.lexsort((pref_top, -scores))  # best score first, ties: the lowest id
        assert scores[order[0]] - scores[order[1]] > 1e-2, "a near tie: pick another prompt"
        expected.append(int(pref_top[order[0]]))
        pending = [[expected[-1]]] * 2
    for ctx in contexts:
        ctx.close()
    assert decoded.ids == expected
