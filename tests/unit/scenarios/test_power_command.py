"""manage.py power: the issue's example, JSON, the veto and the EP convention, and bad input."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def power(*args: str) -> str:
    out = StringIO()
    call_command("power", *args, stdout=out)
    return out.getvalue()


def test_power_prints_the_issue_example():
    text = power("--seats", "EPP=0.5", "SD=0.3", "RENEW=0.2", "--goal", "simple_majority")
    lines = {line.split()[0]: line.split() for line in text.splitlines()[2:]}
    assert lines["EPP"][1:] == ["0.500", "0.6667", "2/3", "0.6000", "3/5"]
    assert lines["SD"][1:] == ["0.300", "0.1667", "1/6", "0.2000", "1/5"]
    assert lines["RENEW"][1:] == ["0.200", "0.1667", "1/6", "0.2000", "1/5"]
    assert "at least 5/9 of the seats" in text


def test_power_json_with_veto():
    data = json.loads(power("--seats", "A=0.5", "B=0.3", "C=0.2", "--goal", "veto_power", "--veto", "C", "--json"))
    by_code = {group["code"]: group for group in data["groups"]}
    assert by_code["C"]["shapley_shubik_fraction"] == "1/2" and by_code["B"]["banzhaf"] == 0
    assert data["quota"]["veto"] == "C"


def test_power_seat_counts_and_ep_quota():
    # 50/50 seat counts: more than half needs both groups.
    data = json.loads(power("--seats", "A=100", "B=100", "--quota", "ep", "--json"))
    assert data["quota"]["strict"] is True
    assert [group["shapley_shubik"] for group in data["groups"]] == [0.5, 0.5]


def test_power_numeric_quota():
    # At least 0.3 of the seats: A and B win alone, C (0.2) never pivots; more than 0.3: B does not.
    data = json.loads(power("--seats", "A=0.5", "B=0.3", "C=0.2", "--quota", "3/10", "--json"))
    assert [group["shapley_shubik_fraction"] for group in data["groups"]] == ["1/2", "1/2", "0"]
    data = json.loads(power("--seats", "A=0.5", "B=0.3", "C=0.2", "--quota", "3/10", "--strict", "--json"))
    assert [group["shapley_shubik_fraction"] for group in data["groups"]] == ["2/3", "1/6", "1/6"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seats", "A=0.5", "B=0.5", "--goal", "veto_power"], "veto group"),
        (["--seats", "A", "B=0.5"], "CODE=SHARE"),
        (["--seats", "A=x", "B=0.5"], "not a number"),
        (["--seats", "A=0.5", "B=0.5", "--veto", "C", "--goal", "veto_power"], "does not take part"),
    ],
)
def test_power_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        power(*args)
