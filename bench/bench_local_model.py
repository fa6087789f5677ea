"""Tokens per second of the bundled model: our local backend versus llama-cpp-python called directly.

Both sides load the same GGUF with the same n_ctx, threads and GPU layers, and get the same
messages, seed, temperature and max_tokens. Each round uses a new prompt (so prompt processing is
part of every call, as in real runs, instead of llama.cpp's prefix reuse), and the order of A and B
alternates between rounds so that machine drift hits both. Goal: backend >= 90% of direct.

Rates are given per wall-clock second and per CPU second of this process: on a shared machine the
wall-clock rate swings with other people's load, while CPU time counts only the work done.

    .venv/bin/python bench/bench_local_model.py [--rounds 9] [--max-tokens 128]

Writes bench/results/local_model.json and prints it.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local bench: the settings default to production

import django  # noqa: E402

django.setup()

import llama_cpp  # noqa: E402

from deliberation.engine.models import Params  # noqa: E402
from worker.models import model_client  # noqa: E402
from worker.models.local import LLAMA_RANDOM_SEED, gguf_path, local_model  # noqa: E402

MODEL = "local:smollm2-135m"
SEED = 1234
RESULTS = REPO_ROOT / "bench" / "results" / "local_model.json"
TOPICS = [
    "fisheries subsidies",
    "rail freight corridors",
    "digital services taxation",
    "asylum procedures",
    "agricultural water use",
    "cross-border healthcare",
    "critical raw materials",
    "youth unemployment",
    "wildfire prevention",
    "microplastics in rivers",
    "space debris",
    "vocational training",
]


def messages_for(round_no: int) -> list[dict]:
    topic = TOPICS[round_no % len(TOPICS)]
    return [
        {
            "role": "system",
            "content": "You draft motions for resolutions of the European Parliament. "
            "Write formal, numbered paragraphs.",
        },
        {
            "role": "user",
            "content": f"Draft a motion for a resolution on {topic}. Start with the "
            "recitals, then give at least eight numbered operative paragraphs "
            "that call on the Commission and the Member States to act.",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    params = Params(temperature=0.0, max_tokens=args.max_tokens)
    backend = model_client(MODEL, cache=False)
    local = local_model(MODEL.partition(":")[2])
    direct = llama_cpp.Llama(
        model_path=str(gguf_path(local.spec)),
        n_ctx=local.spec.n_ctx,
        n_threads=local.n_threads,
        n_threads_batch=local.n_threads,
        n_gpu_layers=-1 if llama_cpp.llama_supports_gpu_offload() else 0,
        verbose=False,
    )

    def run_backend(messages: list[dict]) -> int:
        return backend.complete(messages, params=params, seed=SEED).completion_tokens

    def run_direct(messages: list[dict]) -> int:
        response = direct.create_chat_completion(
            messages=messages,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=None,
            seed=SEED % LLAMA_RANDOM_SEED,
        )
        return response["usage"]["completion_tokens"]

    run_backend(messages_for(-1))  # load and warm both sides
    run_direct(messages_for(-1))
    sides = {"backend": run_backend, "direct": run_direct}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    tokens: dict[str, list[int]] = {name: [] for name in sides}
    for round_no in range(args.rounds):
        messages = messages_for(round_no)
        for name in list(sides) if round_no % 2 == 0 else list(sides)[::-1]:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            count = sides[name](messages)
            wall[name].append(count / (time.perf_counter() - wall_start))
            cpu[name].append(count / (time.process_time() - cpu_start))
            tokens[name].append(count)

    def summary(rates: dict[str, list[float]]) -> dict:
        median = {name: statistics.median(values) for name, values in rates.items()}
        paired = statistics.median(b / d for b, d in zip(rates["backend"], rates["direct"]))
        return {
            "backend_tok_s": [round(r, 1) for r in rates["backend"]],
            "direct_tok_s": [round(r, 1) for r in rates["direct"]],
            "median_backend_tok_s": round(median["backend"], 1),
            "median_direct_tok_s": round(median["direct"], 1),
            "ratio_of_medians": round(median["backend"] / median["direct"], 3),
            "median_paired_ratio": round(paired, 3),
        }

    per_wall_second, per_cpu_second = summary(wall), summary(cpu)
    result = {
        "what": "completion tokens per second of whole calls (prompt processing included)",
        "model": MODEL,
        "gguf": gguf_path(local.spec).name,
        "llama_cpp_python": llama_cpp.__version__,
        "gpu_offload": llama_cpp.llama_supports_gpu_offload(),
        "n_ctx": local.spec.n_ctx,
        "n_threads": local.n_threads,
        "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "rounds": args.rounds,
        "params": params.as_dict(),
        "seed": SEED,
        "same_tokens_both_sides": tokens["backend"] == tokens["direct"],
        "completion_tokens": tokens["backend"],
        "per_wall_second": per_wall_second,
        "per_cpu_second": per_cpu_second,
        "goal": "backend >= 0.90 x direct (median paired ratio)",
        "goal_met_wall": per_wall_second["median_paired_ratio"] >= 0.9,
        "goal_met_cpu": per_cpu_second["median_paired_ratio"] >= 0.9,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
