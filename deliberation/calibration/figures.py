"""Plotly figures of a calibration, as the plain JSON plotly.js reads (frontend/static/js/calibration.js)."""

import random

from deliberation.engine.calibration import SCORE_LEVELS

LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "height": 400,
    "paper_bgcolor": "#ffffff",
    "plot_bgcolor": "#ffffff",
}
LEVELS = list(range(SCORE_LEVELS))
# The scatter draws at most this many points (a seeded sample): the page stays light at 9,000 pairs.
MAX_POINTS = 3000
JITTER = 0.18


def _figure(data: list[dict], *, title: str, xaxis: dict, yaxis: dict) -> dict:
    return {"data": data, "layout": {**LAYOUT, "title": {"text": title}, "xaxis": xaxis, "yaxis": yaxis}}


def _axis(title: str, **more) -> dict:
    return {"title": {"text": title}, "gridcolor": "#e5e5e5", **more}


def confusion_figure(confusion: list[list[int]]) -> dict:
    """Counts of (real choice, judge's rounded score): a perfect judge fills the diagonal."""
    return _figure(
        [
            {
                "type": "heatmap",
                "x": LEVELS,
                "y": LEVELS,
                "z": confusion,
                "colorscale": "Blues",
                "text": confusion,
                "texttemplate": "%{text}",
                "hovertemplate": "real %{y}, judge %{x}: %{z}<extra></extra>",
            }
        ],
        title="Confusion: real choice (rows) vs judge score (columns)",
        xaxis=_axis("judge score (rounded)", dtick=1),
        yaxis=_axis("real choice", dtick=1),
    )


def scatter_figure(pairs: list[dict], *, seed: int = 0) -> dict:
    """Each pair a point, jittered so that the many equal integer pairs show as a cloud."""
    rng = random.Random(seed)
    shown = pairs if len(pairs) <= MAX_POINTS else rng.sample(pairs, MAX_POINTS)
    scored = [p for p in shown if not p["fallback"]]
    fallbacks = [p for p in shown if p["fallback"]]

    def trace(points: list[dict], name: str, colour: str) -> dict:
        return {
            "type": "scattergl" if len(points) > 1000 else "scatter",
            "mode": "markers",
            "name": name,
            "x": [p["real"] + rng.uniform(-JITTER, JITTER) for p in points],
            "y": [p["predicted"] + rng.uniform(-JITTER, JITTER) for p in points],
            "text": [f"record {p['record']} · {p['group']}" for p in points],
            "marker": {"size": 6, "opacity": 0.6, "color": colour},
        }

    data = [trace(scored, "scored", "#1f77b4")]
    if fallbacks:
        data.append(trace(fallbacks, "fallback (not in the metrics)", "#d62728"))
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "judge = real",
            "x": [0, 9],
            "y": [0, 9],
            "line": {"color": "#888888", "dash": "dot"},
        }
    )
    return _figure(
        data,
        title="Judge score vs real choice (jittered)",
        xaxis=_axis("real choice", range=[-0.5, 9.5], dtick=1),
        yaxis=_axis("judge score", range=[-0.5, 9.5], dtick=1),
    )


def bias_figure(bias_by_group: dict[str, dict]) -> dict:
    """Mean signed error per group: above zero the judge scores the group higher than it voted.
    Groups in code order: a stored calibration's keys come back in PostgreSQL's jsonb order."""
    groups = sorted(bias_by_group)
    return _figure(
        [
            {
                "type": "bar",
                "x": groups,
                "y": [bias_by_group[g]["bias"] for g in groups],
                "customdata": [[bias_by_group[g]["mae"], bias_by_group[g]["n"]] for g in groups],
                "hovertemplate": "%{x}: bias %{y:.2f}, MAE %{customdata[0]:.2f}, n %{customdata[1]}<extra></extra>",
                "marker": {"color": ["#d62728" if (bias_by_group[g]["bias"] or 0) > 0 else "#1f77b4" for g in groups]},
            }
        ],
        title="Bias per group (judge − real)",
        xaxis=_axis("group"),
        yaxis=_axis("mean signed error", zeroline=True),
    )


def calibration_figures(*, results: dict, pairs: list[dict], seed: int) -> list[dict]:
    figures = [
        ("scatter", scatter_figure(pairs, seed=seed)),
        ("confusion", confusion_figure(results["confusion"])),
        ("bias", bias_figure(results["bias_by_group"])),
    ]
    return [{"id": f"calibration-figure-{name}", "figure": figure} for name, figure in figures]
