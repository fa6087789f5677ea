"""One DPO step with TRL on a tiny randomly initialised model, from a Hemicycle dpo export.

Not part of the suite, and TRL is not a requirement of the product: without `trl` (and its
`transformers`, `torch`) this says so and exits 0. With them:

    python bench/bench_dpo_step.py                 # plays a small scripted experiment on the sample
                                                   # records in a throwaway SQLite, exports dpo
    python bench/bench_dpo_step.py --data DIR      # DIR from `manage.py export_training --format dpo`

The interpreter running this script needs trl; the experiment is played with the repository's
.venv (Django), so a separate environment with trl can run it. It checks what the export promises
a trainer: `datasets` loads train.jsonl, TRL's DPOTrainer accepts the conversational prompt /
chosen / rejected columns as they are, and one optimiser step gives a finite loss. Writes
bench/results/dpo_step.json.
"""

import argparse
import copy
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "fixtures" / "sample_records"
RESULTS = REPO / "bench" / "results" / "dpo_step.json"
NEEDED = ("trl", "transformers", "torch", "datasets", "tokenizers")


def django_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def export_dpo(folder: Path) -> Path:
    """A scripted experiment (4 sample tasks, 2 parties, 3 drafting strategies, 2 seeds) exported as dpo."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3", "DJANGO_DEBUG": "1"}

    def manage(*args: str) -> None:
        subprocess.run([django_python(), "manage.py", *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)

    manage("migrate", "-v0")
    manage("import_records", str(SAMPLE), "--name", "Sample EP issues")
    manage(
        "experiment",
        "create",
        "--name",
        "dpo-bench",
        "--record-set",
        "Sample EP issues",
        "--parties",
        "2",
        "--sample",
        "4",
        "--goals",
        "simple_majority",
        "--strategies",
        "one-shot",
        "greedy",
        "random",
        "--models",
        "scripted:default",
        "--judges",
        "scripted",
        "--seeds",
        "0",
        "1",
    )
    manage("experiment", "run", "dpo-bench", "--wait")
    out = folder / "dpo"
    manage("export_training", "--experiment", "dpo-bench", "--format", "dpo", "--out", str(out), "--split", "0.75")
    return out


def tiny_tokenizer(texts: list[str]):
    """A byte-level BPE trained on the dataset's own texts, with a plain chat template: nothing
    downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=1000,
            special_tokens=["<pad>", "<eos>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = (
        "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}{{ eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return fast


def dpo_step(data: Path) -> dict:
    import datasets
    import torch
    import trl
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(0)
    train = datasets.load_dataset("json", data_files={"train": str(data / "train.jsonl")})["train"]
    missing = {"prompt", "chosen", "rejected"} - set(train.column_names)
    if missing:
        raise SystemExit(f"{data}: no {', '.join(sorted(missing))} column")
    texts = [m["content"] for row in train for column in ("prompt", "chosen", "rejected") for m in row[column]]
    tokenizer = tiny_tokenizer(texts)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=4096,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    with tempfile.TemporaryDirectory() as out:
        config = DPOConfig(
            output_dir=out,
            max_steps=1,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=1,
            learning_rate=1e-3,
            max_length=1024,
            logging_steps=1,
            report_to=[],
            save_strategy="no",
            use_cpu=not torch.cuda.is_available(),
        )
        # The reference is a frozen copy: TRL would otherwise load one by the model's hub name.
        trainer = DPOTrainer(
            model=model,
            ref_model=copy.deepcopy(model).eval(),
            args=config,
            processing_class=tokenizer,
            train_dataset=train.select_columns(["prompt", "chosen", "rejected"]),
        )
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    loss = logged[0]["loss"] if logged else result.training_loss
    if not math.isfinite(loss):
        raise SystemExit(f"the DPO step's loss is {loss}")
    return {
        "rows": train.num_rows,
        "loss": loss,
        "step_seconds": round(seconds, 2),
        "trl": trl.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "logged": {
            key: value for key, value in (logged[0] if logged else {}).items() if isinstance(value, (int, float))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="a dpo export folder (default: make one)")
    args = parser.parse_args()
    absent = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if absent:
        print(
            f"skipped: {', '.join(absent)} not installed in {sys.executable} (TRL is not a requirement of "
            "Hemicycle; install trl in an environment of your own to run this bench)"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or export_dpo(Path(tmp))
        result = dpo_step(data)
    result = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(), **result}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
