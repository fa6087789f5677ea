"""worker/models/embeddings.py: the bundled embedding model answers offline and reads meaning."""

from worker.models.embeddings import LocalEmbedder


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def test_bundled_embedder_gives_unit_vectors_that_rank_related_sentences_first():
    fisheries, quotas, cats = LocalEmbedder(threads=1).embed(
        [
            "The European Parliament calls for lower fishing quotas to protect cod stocks.",
            "Catch limits for cod in the North Sea must be cut.",
            "My cat sleeps on the sofa all afternoon.",
        ]
    )
    assert len(fisheries) == 384
    assert abs(dot(fisheries, fisheries) - 1) < 1e-3
    assert dot(fisheries, quotas) > dot(fisheries, cats)
    assert LocalEmbedder().embed([]) == []
