"""amulet on the bundled model: tokens per second against one-shot decoding of the same prompt.

Three ways to write the same resolution on the bundled SmolLM2 (local backend, uncached, greedy):
  one-shot   the backend's complete() on the base prompt (llama.cpp's own generation loop)
  ids-greedy one next_token_ids call per token on the base prompt alone, argmax: our per-token
             loop with one context, which separates the loop's overhead from the second context
  amulet     amulet_decode: two next_token_ids calls per token (preference and base context),
             the closed form over the top 20 (engine/strategies/amulet.py)
The issue's goal: amulet's cost close to 2x one-shot's per token, not worse.

Every call gets a prompt head of its own (round, arm and length first in the system prompt, so
llama.cpp's prefix reuse cannot carry a prompt from one measurement into another), and the order
of the arms rotates between rounds so that machine drift hits each alike. Each arm writes once 1
token and once --max-tokens tokens: the difference is the decoding alone (`decode_*`: tokens
after the first per second), the first is the prompt processing (`prompt_s`: 2 prompts for
amulet). Rates per wall-clock second and per CPU second of this process (a shared machine's wall
clock swings with other people's load; CPU time counts only the work done).

    .venv/bin/python bench/bench_amulet.py [--rounds 6] [--max-tokens 96]

Writes bench/results/amulet.json and prints it.
"""

import argparse
import ast
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from deliberation.engine.models import Params  # noqa: E402
from deliberation.engine.scenario import Group, RecordView, Scenario  # noqa: E402
from deliberation.engine.strategies.amulet import amulet_beta, amulet_contexts, amulet_decode  # noqa: E402
from worker.models.local import LOCAL_MODELS, LocalModel  # noqa: E402

RECORD = REPO_ROOT / "fixtures" / "sample_records" / "task_datas" / "2" / "agriculture.json"
TOP = 20


def sample_scenario() -> Scenario:
    """The sample set's first two-group agriculture task, veto goal (so the preference names a group)."""
    task = json.loads(RECORD.read_text())[0]
    stances = ast.literal_eval(task["stances"]) if isinstance(task["stances"], str) else task["stances"]
    groups = tuple(Group(code=s["party_name"], stance=s["stance"]) for s in stances)
    record = RecordView(
        key=str(task["id"]),
        title=task["title"],
        background=task["background"],
        resolution=task["resolution"],
        topic=task["topic"],
        term=task["parliament_terms"],
    )
    seats = dict(zip((g.code for g in groups), task["seat_weights"]))
    return Scenario(record=record, groups=groups, seats=seats, goal="veto_power", veto_group=task["veto_party_name"])


def headed(messages, head: str):
    return [{"role": messages[0]["role"], "content": f"{head}. {messages[0]['content']}"}, *messages[1:]]


def timed(call):
    wall, cpu = time.perf_counter(), time.process_time()
    tokens = call()
    return {"tokens": tokens, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()

    model = LocalModel(LOCAL_MODELS["smollm2-135m"])
    base, preference = amulet_contexts(sample_scenario())
    beta = amulet_beta(iterations=60, alpha=2.0, lam=2.0, eta=10.0)
    ends = model.end_ids()

    def one_shot(head, n):
        return model.complete(
            headed(base, head), params=Params(temperature=0.0, max_tokens=n), seed=0
        ).completion_tokens

    def ids_greedy(head, n):
        ids: list[int] = []
        messages = headed(base, head)
        for _ in range(n):
            best = model.next_token_ids(messages, prefix_ids=ids, top=TOP, seed=0).logprobs[0].top_ids[0]
            if best in ends:
                break
            ids.append(best)
        return len(ids)

    def amulet(head, n):
        return len(
            amulet_decode(
                model, headed(base, head), headed(preference, head), beta=beta, top=TOP, max_tokens=n, seed=0
            ).ids
        )

    arms = {"one-shot": one_shot, "ids-greedy": ids_greedy, "amulet": amulet}
    model.complete(headed(base, "warm-up"), params=Params(max_tokens=1), seed=0)  # load outside the clock
    amulet("warm-up", 1)  # the second context too
    samples: dict[str, list[dict]] = {name: [] for name in arms}
    firsts: dict[str, list[dict]] = {name: [] for name in arms}
    for r in range(1, args.rounds + 1):
        names = list(arms)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            firsts[name].append(timed(lambda name=name: arms[name](f"Round {r} {name} short", 1)))
            samples[name].append(timed(lambda name=name: arms[name](f"Round {r} {name} long", args.max_tokens)))

    def rate(name, clock):
        return sum(s["tokens"] for s in samples[name]) / sum(s[clock] for s in samples[name])

    def decode_rate(name, clock):
        tokens = sum(s["tokens"] - 1 for s in samples[name])
        return tokens / (sum(s[clock] for s in samples[name]) - sum(f[clock] for f in firsts[name]))

    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m": round(os.getloadavg()[0], 2),
            "threads": model.n_threads,
        },
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "top_k": TOP,
        "beta": round(beta, 4),
        "arms": {
            name: {
                "tokens_per_round": statistics.mean(s["tokens"] for s in samples[name]),
                "tokens_per_wall_s": round(rate(name, "wall_s"), 2),
                "tokens_per_cpu_s": round(rate(name, "cpu_s"), 2),
                "wall_s_per_round": round(statistics.mean(s["wall_s"] for s in samples[name]), 3),
                "prompt_s": round(statistics.mean(f["wall_s"] for f in firsts[name]), 3),
                "decode_tokens_per_wall_s": round(decode_rate(name, "wall_s"), 2),
                "decode_tokens_per_cpu_s": round(decode_rate(name, "cpu_s"), 2),
            }
            for name in arms
        },
    }
    for clock in ("wall", "cpu"):
        per_token = {name: 1 / result["arms"][name][f"decode_tokens_per_{clock}_s"] for name in arms}
        result[f"amulet_decode_cost_per_token_vs_one_shot_{clock}"] = round(
            per_token["amulet"] / per_token["one-shot"], 2
        )
        result[f"amulet_decode_cost_per_token_vs_ids_greedy_{clock}"] = round(
            per_token["amulet"] / per_token["ids-greedy"], 2
        )
    out = REPO_ROOT / "bench" / "results" / "amulet.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
