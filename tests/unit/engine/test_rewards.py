from deliberation.engine.rewards import MoralReward, endorsements, moral_rewards


def vote(group: str, score: float, position: str) -> dict:
    return {"type": "vote", "data": {"group": group, "score": score, "position": position}}


def decision(group: str, accepted: bool) -> dict:
    return {"type": "amendment_decision", "data": {"group": group, "accepted": accepted}}


def test_parliament_group_whose_amendment_was_accepted_and_voted_against_breaks_the_norm():
    events = [
        decision("EPP", True),
        decision("S&D", True),
        decision("ECR", False),
        vote("EPP", 2, "against"),
        vote("S&D", 7, "for"),
        vote("ECR", 1, "against"),
        vote("RE", 5, "abstain"),
    ]
    rewards = moral_rewards(events)
    assert {group: reward.deontological for group, reward in rewards.items()} == {
        "EPP": -1.0,
        "S&D": 1.0,
        "ECR": 0.0,
        "RE": 0.0,
    }
    assert rewards["EPP"].utilitarian == (2 + 7 + 1 + 5) / 4


def test_abstaining_after_endorsing_keeps_the_norm():
    assert moral_rewards([decision("RE", True), vote("RE", 5, "abstain")])["RE"] == MoralReward(1.0, 5.0)


def test_a_rejected_amendment_is_no_endorsement():
    assert endorsements([decision("EPP", False)]) == set()


def test_negotiation_agreed_text_is_endorsed_by_both_sides_and_only_if_it_is_the_last_draft():
    turn = {"type": "turn", "data": {"turn": 3, "sides": {"A": ["EPP"], "B": ["S&D", "RE"]}}}
    agreed = {"type": "draft", "data": {"author": "negotiation", "text": "t", "agreed_turn": 3}}
    joint = {"type": "draft", "data": {"author": "negotiation", "text": "u"}}
    assert endorsements([turn, agreed]) == {"EPP", "S&D", "RE"}
    assert endorsements([turn, agreed, joint]) == set()
    rewards = moral_rewards([turn, agreed, vote("EPP", 6, "for"), vote("S&D", 3, "against"), vote("RE", 6, "for")])
    assert [rewards[g].deontological for g in ("EPP", "S&D", "RE")] == [1.0, -1.0, 1.0]


def test_mediator_groups_that_ranked_the_last_winner_first_endorsed_it():
    def ranking(round_: int, group: str, order: list[int]) -> dict:
        return {"type": "ranking", "data": {"round": round_, "group": group, "order": order}}

    def schulze(round_: int, winner: int) -> dict:
        return {"type": "schulze", "data": {"round": round_, "winner": winner}}

    events = [
        ranking(1, "EPP", [0, 1]),
        ranking(1, "S&D", [1, 0]),
        schulze(1, 0),
        ranking(2, "EPP", [1, 0]),
        ranking(2, "S&D", [0, 1]),
        schulze(2, 0),
    ]
    assert endorsements(events) == {"S&D"}  # the last round only
    judged = {"type": "ranking", "data": {"round": 2, "group": "ECR", "order": [0, 1], "scores": [7.0, 3.0]}}
    unparsed = {"type": "ranking", "data": {"round": 2, "group": "RE", "order": [0, 1], "fallback": "unparsed"}}
    assert endorsements([*events[:-1], judged, unparsed, events[-1]]) == {"S&D"}  # the agents' own choices only


def test_no_votes_no_rewards():
    assert moral_rewards([decision("EPP", True)]) == {}
