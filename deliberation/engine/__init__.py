"""The deliberation engine: pure Python, no Django, Celery or HTTP.

Plain data in and out (scenario.py), goals and seat structures as pure functions (goals.py,
seats.py), and small protocols with deterministic test doubles: a model client (models.py), judges
(judges.py) and strategies (strategies/). Randomness comes in as a seed; child seeds are derived
with seed_for so that every model call is reproducible and cacheable.
"""
