"""engine/judges.py: the paper's LLM judge (retries, fallback, one group at a time), the oracle
and the scripted double."""

import pytest

from deliberation.engine.judges import (
    SCALE,
    JudgeRefused,
    LLMJudge,
    RealVotesJudge,
    ScriptedJudge,
    judge_messages,
    parse_score,
)
from deliberation.engine.models import ScriptedModelClient

TEXT = "The European Parliament calls for a rural broadband fund of EUR 2 billion."


def answers(*replies: str):
    """A responder that gives the replies in order, then repeats the last one."""
    queue = list(replies)

    def respond(messages, params, seed):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


@pytest.fixture
def scenario(make_scenario):
    return make_scenario(seats={"EPP": 0.6, "SD": 0.4}, choices={"EPP": 7, "SD": 2})


def test_valid_digit_on_first_try_is_one_attempt_at_temperature_zero(scenario):
    client = ScriptedModelClient(responder=answers("7"))
    verdict = LLMJudge(client).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert (verdict.group, verdict.score, verdict.attempts, verdict.fallback) == ("EPP", 7, 1, False)
    assert len(client.calls) == 1
    _, params, _ = client.calls[0]
    assert params.temperature == 0.0
    assert params.max_tokens == 3


def test_invalid_answers_are_retried_each_a_tenth_warmer(scenario):
    client = ScriptedModelClient(responder=answers("Sure", "ten", "5"))
    verdict = LLMJudge(client).score(scenario=scenario, group="SD", text=TEXT, seed=1)
    assert (verdict.score, verdict.attempts, verdict.fallback) == (5, 3, False)
    assert [params.temperature for _, params, _ in client.calls] == [0.0, 0.1, 0.2]
    assert all(params.max_tokens == 3 for _, params, _ in client.calls)
    # each retry has its own seed, so a cache keyed on the seed does not replay the bad answer
    assert len({seed for _, _, seed in client.calls}) == 3


def test_retries_append_a_firmer_reminder(scenario):
    client = ScriptedModelClient(responder=answers("x", "y", "3"))
    LLMJudge(client).score(scenario=scenario, group="SD", text=TEXT, seed=1)
    first, second, third = (messages[-1]["content"] for messages, _, _ in client.calls)
    assert second.startswith(first) and len(second) > len(first)
    assert third.startswith(second) and len(third) > len(second)


def test_always_invalid_falls_back_to_four_after_ten_calls(scenario):
    client = ScriptedModelClient(responder=answers("I cannot score this."))
    verdict = LLMJudge(client).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert (verdict.score, verdict.fallback, verdict.attempts) == (4, True, 10)
    assert len(client.calls) == 10
    assert [params.temperature for _, params, _ in client.calls] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def test_fallback_score_and_attempts_are_configurable(scenario):
    client = ScriptedModelClient(responder=answers("?"))
    verdict = LLMJudge(client, max_attempts=2, fallback_score=0).score(
        scenario=scenario, group="EPP", text=TEXT, seed=1
    )
    assert (verdict.score, verdict.fallback, verdict.attempts, len(client.calls)) == (0, True, 2, 2)


def test_token_usage_adds_up_over_attempts(scenario):
    client = ScriptedModelClient(responder=answers("no", "6"))
    verdict = LLMJudge(client).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    prompt_words = [sum(len(m["content"].split()) for m in msgs) for msgs, _, _ in client.calls]
    assert verdict.prompt_tokens == sum(prompt_words)
    assert verdict.completion_tokens == 2  # "no" and "6"


def test_each_group_is_scored_alone(scenario):
    client = ScriptedModelClient(responder=answers("6"))
    judge = LLMJudge(client)
    judge.score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    judge.score(scenario=scenario, group="SD", text=TEXT, seed=1)
    epp_prompt = client.calls[0][0][-1]["content"]
    sd_prompt = client.calls[1][0][-1]["content"]
    epp_stance, sd_stance = scenario.group("EPP").stance, scenario.group("SD").stance
    assert epp_stance in epp_prompt and sd_stance not in epp_prompt
    assert sd_stance in sd_prompt and epp_stance not in sd_prompt
    assert TEXT in epp_prompt and scenario.record.background in epp_prompt


def test_prompt_has_the_papers_scale_and_resolution_rule(scenario):
    prompt = judge_messages(scenario=scenario, group="EPP", text=TEXT, attempt=0)[-1]["content"]
    assert SCALE == (
        "not at all",
        "very poorly",
        "poorly",
        "somewhat poorly",
        "somewhat",
        "moderately",
        "somewhat well",
        "well",
        "very well",
        "perfectly",
    )
    for number, label in enumerate(SCALE):
        assert f"{number} = {label}" in prompt
    assert '"The European Parliament"' in prompt
    assert "0-3" in prompt and "4-6" in prompt and "7-9" in prompt


def test_default_scripted_client_answers_judge_prompts_with_a_digit(scenario):
    verdict = LLMJudge(ScriptedModelClient()).score(scenario=scenario, group="EPP", text=TEXT, seed=3)
    assert verdict.attempts == 1 and 0 <= verdict.score <= 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        (" 7.", 7),
        ("0", 0),
        ("9\n", 9),
        ("\n 3", 3),
        ("10", None),  # never read as 1
        ("07", None),
        ("", None),
        ("seven", None),
        ("Score: 7", None),
        ("-1", None),
    ],
)
def test_parse_score(text, expected):
    assert parse_score(text) == expected


# --- the oracle ---------------------------------------------------------------------------------


def test_real_votes_judge_scores_adopted_resolution_with_real_choices(scenario):
    judge = RealVotesJudge()
    text = scenario.record.resolution
    assert judge.score(scenario=scenario, group="EPP", text=text, seed=0).score == 7
    assert judge.score(scenario=scenario, group="SD", text=text, seed=0).score == 2


def test_real_votes_judge_ignores_whitespace(scenario):
    text = "\n  " + scenario.record.resolution.replace(" ", "  \n") + "  "
    assert RealVotesJudge().score(scenario=scenario, group="EPP", text=text, seed=0).score == 7


@pytest.mark.parametrize("text", [TEXT, "", "The European Parliament"])
def test_real_votes_judge_refuses_any_other_text(scenario, text):
    with pytest.raises(JudgeRefused):
        RealVotesJudge().score(scenario=scenario, group="EPP", text=text, seed=0)


def test_real_votes_judge_refuses_group_without_real_vote(make_scenario):
    scenario = make_scenario(seats={"EPP": 0.5, "SD": 0.5}, choices={"EPP": 7})
    with pytest.raises(JudgeRefused, match="SD"):
        RealVotesJudge().score(scenario=scenario, group="SD", text=scenario.record.resolution, seed=0)


# --- the scripted double ------------------------------------------------------------------------


def test_scripted_judge_is_deterministic(scenario):
    judge = ScriptedJudge()
    first = [judge.score(scenario=scenario, group=g, text=TEXT, seed=s).score for g in ("EPP", "SD") for s in range(20)]
    again = [
        ScriptedJudge().score(scenario=scenario, group=g, text=TEXT, seed=s).score
        for g in ("EPP", "SD")
        for s in range(20)
    ]
    assert first == again
    assert all(0 <= score <= 9 for score in first)
    assert len(set(first)) > 1  # derived from the inputs, not a constant


def test_scripted_judge_fixed_scores_win(scenario):
    judge = ScriptedJudge(scores={"SD": 8})
    assert judge.score(scenario=scenario, group="SD", text=TEXT, seed=5).score == 8
    assert judge.score(scenario=scenario, group="SD", text="other", seed=6).score == 8


# --- the expected-score judge (llm-expected) ---

import math  # noqa: E402

from deliberation.engine.judges import ExpectedJudge, JudgeUnavailable, digit_distribution  # noqa: E402

# p("7") .5 + p(" 7") .1 = .6 on 7, .2 on 6, .2 on a word: digit mass .8, p7 = .75, p6 = .25
FIXED = [("7", math.log(0.5)), (" 7", math.log(0.1)), ("6", math.log(0.2)), ("The", math.log(0.2))]


def test_digit_distribution_merges_variants_and_renormalises_over_digits():
    distribution = digit_distribution(FIXED)
    assert distribution.mass == pytest.approx(0.8)
    assert distribution.probabilities[7] == pytest.approx(0.75) and distribution.probabilities[6] == pytest.approx(0.25)
    assert sum(distribution.probabilities) == pytest.approx(1.0)
    assert distribution.expected == pytest.approx(6.75)
    assert distribution.argmax == 7
    assert distribution.sd == pytest.approx(math.sqrt(0.75 * 0.25**2 + 0.25 * 0.75**2))
    assert digit_distribution([("The", -0.1), ("10", -2.0)]) is None  # "10" is not a digit token


def test_expected_judge_scores_the_expectation_from_one_next_token_call(scenario):
    client = ScriptedModelClient(next_token_responder=lambda messages, prefix, seed: FIXED)
    verdict = ExpectedJudge(client).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert verdict.score == pytest.approx(6.75) and not verdict.fallback
    assert verdict.detail["distribution"]["argmax"] == 7
    assert verdict.detail["distribution"]["probabilities"][7] == pytest.approx(0.75)
    assert client.calls == [] and len(client.next_token_calls) == 1  # no sampled reply at all
    messages, prefix, top, _ = client.next_token_calls[0]
    assert prefix == "" and top == 20
    assert list(messages) == judge_messages(scenario=scenario, group="EPP", text=TEXT, attempt=0)


def test_expected_judge_falls_back_to_the_papers_judge_when_digits_are_unlikely(scenario):
    words = [("The", math.log(0.7)), ("5", math.log(0.2))]  # digit mass .2 < .5
    client = ScriptedModelClient(responder=answers("3"), next_token_responder=lambda m, p, s: words)
    verdict = ExpectedJudge(client).score(scenario=scenario, group="SD", text=TEXT, seed=1)
    assert verdict.score == 3 and verdict.detail == {"expected_unavailable": True, "digit_mass": pytest.approx(0.2)}
    assert len(client.calls) == 1 and verdict.attempts == 2


def test_expected_judge_refuses_a_model_without_logprobs():
    with pytest.raises(JudgeUnavailable, match="next-token log-probabilities"):
        ExpectedJudge(ScriptedModelClient(next_token_responder=None))


# --- calibrated and ensemble judges ---

from deliberation.engine.calibration import IsotonicMap  # noqa: E402
from deliberation.engine.judges import CalibratedJudge, EnsembleJudge, Verdict  # noqa: E402


class Fixed:
    def __init__(self, score, fallback=False):
        self.verdict = Verdict("EPP", score, fallback, prompt_tokens=10, completion_tokens=1, detail={"x": 1})

    def score(self, *, scenario, group, text, seed):
        return self.verdict


def test_calibrated_judge_maps_the_raw_score_and_keeps_it(scenario):
    mapping = IsotonicMap((2.0, 6.0), (0.0, 8.0))  # 4 -> 4.0 by interpolation, 5 -> 6.0
    verdict = CalibratedJudge(Fixed(5), mapping).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert verdict.score == pytest.approx(6.0) and verdict.detail == {"x": 1, "raw_score": 5}
    assert verdict.prompt_tokens == 10
    fallback = CalibratedJudge(Fixed(4, fallback=True), mapping).score(
        scenario=scenario, group="EPP", text=TEXT, seed=1
    )
    assert fallback.score == 4 and fallback.fallback  # a fallback is not mapped


def test_ensemble_judge_takes_the_mean_or_median_and_stores_the_spread(scenario):
    members = {"a": Fixed(2), "b": Fixed(3), "c": Fixed(7)}
    mean = EnsembleJudge(members).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert mean.score == pytest.approx(4.0) and mean.prompt_tokens == 30
    assert mean.detail["members"] == {"a": 2, "b": 3, "c": 7}
    assert mean.detail["spread"] == pytest.approx(math.sqrt(((2 - 4) ** 2 + (3 - 4) ** 2 + (7 - 4) ** 2) / 3), abs=1e-4)
    median = EnsembleJudge(members, aggregate="median").score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert median.score == 3


def test_ensemble_leaves_out_members_that_fell_back(scenario):
    verdict = EnsembleJudge({"a": Fixed(4, fallback=True), "b": Fixed(8)}).score(
        scenario=scenario, group="EPP", text=TEXT, seed=1
    )
    assert verdict.score == 8 and not verdict.fallback and verdict.detail["spread"] == 0.0
    all_failed = EnsembleJudge({"a": Fixed(4, fallback=True)}).score(scenario=scenario, group="EPP", text=TEXT, seed=1)
    assert all_failed.fallback
    with pytest.raises(ValueError, match="aggregate"):
        EnsembleJudge({"a": Fixed(1)}, aggregate="mode")


# --- the similarity judge ---

from deliberation.engine.judges import SimilarityJudge, sentences, stance_coverage  # noqa: E402


def test_sentences_split_after_stops_and_at_line_breaks():
    assert sentences("We want more. Do it now!  \nAnd fund it?") == ["We want more.", "Do it now!", "And fund it?"]


def test_stance_coverage_is_the_mean_best_cosine_of_the_stance_sentences():
    stance = [[1.0, 0.0], [0.0, 1.0]]
    text = [[1.0, 0.0], [0.6, 0.8]]
    # first stance sentence: best 1.0; second: best 0.8 -> 0.9
    assert stance_coverage(stance, text) == pytest.approx(0.9)
    assert stance_coverage([], text) == 0.0


class LetterEmbedder:
    """Unit vectors by first letter: sentences that start alike are identical, others orthogonal."""

    def embed(self, texts):
        return [[1.0 if t[:1].lower() == letter else 0.0 for letter in "abcdefghijklmnopqrstuvwxyz"] for t in texts]


def test_similarity_judge_scores_nine_times_the_coverage(make_scenario):
    scenario = make_scenario(seats={"EPP": 0.5, "SD": 0.5})
    # the stance is one sentence starting "EPP stance: ..." -> covered by a text sentence starting with "e"
    verdict = SimilarityJudge(LetterEmbedder()).score(
        scenario=scenario, group="EPP", text="Extra funds. Nothing else.", seed=0
    )
    assert verdict.score == 9.0 and verdict.detail == {"coverage": 1.0}
    verdict = SimilarityJudge(LetterEmbedder()).score(scenario=scenario, group="EPP", text="Nothing. Zero.", seed=0)
    assert verdict.score == 0.0


# --- the reason check ---

from deliberation.engine.judges import ReasonCheck, parse_reasoned, reasoned_messages  # noqa: E402


def test_reasoned_answer_is_parsed_and_bad_ones_are_none():
    assert parse_reasoned("Reason: it funds every point.\nScore: 8") == ("it funds every point.", 8)
    assert parse_reasoned("8") is None and parse_reasoned("Reason: x Score: 10") is None


def test_reason_check_scores_the_reason_without_the_draft(scenario):
    def respond(messages, params, seed):
        ask = messages[-1]["content"]
        return "Reason: it ignores the fund. Score: 7" if "Reason: <one sentence>" in ask else "2"

    client = ScriptedModelClient(responder=respond)
    verdict = ReasonCheck(client).check(scenario=scenario, group="EPP", text=TEXT, seed=3)
    assert (verdict.score, verdict.reason, verdict.reason_score) == (7, "it ignores the fund.", 2)
    (reasoned, _, _), (reason_only, _, _) = client.calls
    assert TEXT in reasoned[-1]["content"] and "Answer with one number" not in reasoned[-1]["content"]
    assert TEXT not in reason_only[-1]["content"] and "it ignores the fund." in reason_only[-1]["content"]
    assert scenario.group("EPP").stance in reason_only[-1]["content"]
    assert reasoned_messages(scenario=scenario, group="EPP", text=TEXT)[0]["role"] == "system"


def test_reason_check_without_a_reasoned_answer_has_no_scores(scenario):
    verdict = ReasonCheck(ScriptedModelClient(responder=answers("7"))).check(
        scenario=scenario, group="EPP", text=TEXT, seed=3
    )
    assert verdict.score is None and verdict.reason_score is None


class PrefetchRecorder(ScriptedModelClient):
    """A scripted client that records what it was told ahead and what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple] = []
        self.asked: list[tuple] = []

    def prefetch(self, requests):
        self.told.extend((tuple(map(str, m)), p, s) for m, p, s in requests)

    def complete(self, messages, *, params, seed):
        self.asked.append((tuple(map(str, messages)), params, seed))
        return super().complete(messages, params=params, seed=seed)


def test_a_prefetch_names_exactly_the_first_call_of_each_group_s_vote(scenario):
    client = PrefetchRecorder()
    judge = LLMJudge(client)
    judge.prefetch(scenario=scenario, groups=["EPP", "SD"], text=TEXT, seed=5)
    for group in ("EPP", "SD"):
        judge.score(scenario=scenario, group=group, text=TEXT, seed=5)
    assert len(client.told) == 2 and client.told == client.asked  # the scripted judge answers at once


def test_a_vote_tells_its_judge_every_group_before_the_first_call(scenario):
    from deliberation.engine.strategies import RunContext
    from deliberation.engine.strategies.base import vote_on

    client = PrefetchRecorder()
    ctx = RunContext(model=None, judge=LLMJudge(client), seed=3)
    events = list(vote_on(scenario, ctx, TEXT))
    assert [event["type"] for event in events] == ["vote", "vote", "tally", "outcome"]
    assert client.told == client.asked and len(client.told) == 2
    # Replayed votes ask nothing, and tell nothing either.
    replay = PrefetchRecorder()
    list(vote_on(scenario, RunContext(model=None, judge=LLMJudge(replay), seed=3, recorded=events), TEXT))
    assert replay.told == replay.asked == []
