import hashlib
import random


def seed_for(run_seed: int, *parts: object) -> int:
    """A child seed derived from the run's seed and a path such as ("judge", "EPP")."""
    digest = hashlib.sha256(repr((run_seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def rng_for(run_seed: int, *parts: object) -> random.Random:
    return random.Random(seed_for(run_seed, *parts))
