"""Plotly figures of an experiment's dashboard, as JSON for the vendored plotly.js (dashboard.js).

Built from the selectors' aggregates only: no query here. The figures are written as the plain
dicts plotly.js reads (what go.Figure(...).to_json() gives: tests check that plotly validates
them and writes them back unchanged), not built through plotly's graph objects: those validate
and copy the whole layout template on every update, about 100 ms a figure, most of the
dashboard's time at 100,000 runs (bench/bench_dashboard.py). The template is written once.
"""

import json
from collections import defaultdict
from collections.abc import Mapping
from functools import cache

from deliberation.dashboards.selectors import POWER_BINS, Cell, Table
from deliberation.engine.goals import GOALS

# One colour per strategy in every figure (baselines in greys), one bar pattern per model.
STRATEGY_COLOURS = {
    "random": "#9aa0a6",
    "greedy": "#5f6368",
    "real-resolution": "#b08d57",
    "one-shot": "#1f77b4",
    "parliament": "#d62728",
    "mediator": "#2ca02c",
    "forecast": "#9467bd",
    # the advisor's three arms in one hue, the no-signal arm palest
    "advisor": "#e6550d",
    "advisor-random": "#fd8d3c",
    "advisor-none": "#fdbe85",
}
EXTRA_COLOURS = ("#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#e377c2")
PATTERNS = ("", "/", "x", ".", "\\", "+")


def strategy_colour(strategy: str) -> str:
    if strategy in STRATEGY_COLOURS:
        return STRATEGY_COLOURS[strategy]
    return EXTRA_COLOURS[sum(map(ord, strategy)) % len(EXTRA_COLOURS)]


def _bar_style(strategy: str, model: str, models: list[str]) -> dict:
    return {"color": strategy_colour(strategy), "pattern": {"shape": PATTERNS[models.index(model) % len(PATTERNS)]}}


LAYOUT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 380, "legend": {"orientation": "h", "y": -0.2}}
TEMPLATE = "plotly_white"


@cache
def _template() -> dict:
    """The layout template as JSON (made once: plotly's own objects are slow to build)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    return json.loads(pio.to_json(go.Figure(layout={"template": TEMPLATE}), validate=False))["layout"]["template"]


def _figure(data: list[dict], *, title: str, xaxis: dict | None = None, yaxis: dict | None = None, **layout) -> dict:
    """A figure in plotly.js's JSON: the traces, and the layout with the shared template."""
    out = {"template": _template(), "title": {"text": title}, **LAYOUT, **layout}
    if xaxis:
        out["xaxis"] = xaxis
    if yaxis:
        out["yaxis"] = yaxis
    return {"data": data, "layout": out}


def _axis(title: str, **more) -> dict:
    return {"title": {"text": title}, **more}


def _axis_title(goal: str) -> str:
    return "pass rate" if GOALS[goal].kind == "pass" else "mean score (0–9)"


def _error(cells: list[Cell]) -> dict:
    return {
        "type": "data",
        "symmetric": False,
        "array": [cell.ci[1] - cell.mean if cell.ci else None for cell in cells],
        "arrayminus": [cell.mean - cell.ci[0] if cell.ci else None for cell in cells],
    }


def paper_table_figures(tables: list[Table]) -> list[dict]:
    """One grouped bar chart per judge and goal: x the party count, a bar per strategy x model,
    the 95% bootstrap interval as error bars."""
    figures = []
    for table in tables:
        by_goal: dict[str, list] = defaultdict(list)
        for row in table.rows:
            for goal_row in row.goals:
                by_goal[goal_row["goal"]].append((row, goal_row["cells"]))
        models = sorted({row.model for row in table.rows})
        for goal, series in by_goal.items():
            bars = [
                {
                    "type": "bar",
                    "name": f"{row.strategy} · {row.model}",
                    "x": [f"{p} parties" for p in table.party_counts],
                    "marker": _bar_style(row.strategy, row.model, models),
                    "y": [cell.mean for cell in cells],
                    "error_y": _error(cells),
                    "customdata": [cell.n for cell in cells],
                    "hovertemplate": "%{y:.2f} (%{customdata} runs)",
                }
                for row, cells in series
            ]
            fig = _figure(
                bars,
                title=f"{GOALS[goal].label} · judge {table.judge}",
                yaxis=_axis(_axis_title(goal)),
                barmode="group",
            )
            figures.append({"id": f"table-{table.judge}-{goal}", "figure": fig})
    return figures


def breakdown_figures(cells: dict[tuple, Cell], *, by: str, title: str, order: list[str] | None = None) -> list[dict]:
    """Per goal, the breakdown's mean by bucket (x), a bar per strategy x model x judge, the 95%
    bootstrap interval as error bars; buckets in `order`, else by name."""
    by_goal: dict[str, dict[tuple, dict[str, Cell]]] = defaultdict(lambda: defaultdict(dict))
    for (strategy, model, judge, goal, bucket), cell in cells.items():
        by_goal[goal][(strategy, model, judge)][bucket] = cell
    buckets = order or sorted({key[4] for key in cells}, key=str)
    models = sorted({key[1] for key in cells})
    figures = []
    for goal in (key for key in GOALS if key in by_goal):
        bars = []
        for (strategy, model, judge), bins in sorted(by_goal[goal].items()):
            present = [bucket for bucket in buckets if bucket in bins]
            bars.append(
                {
                    "type": "bar",
                    "name": f"{strategy} · {model} · {judge}",
                    "x": present,
                    "y": [bins[bucket].mean for bucket in present],
                    "marker": _bar_style(strategy, model, models),
                    "error_y": _error([bins[bucket] for bucket in present]),
                    "customdata": [bins[bucket].n for bucket in present],
                    "hovertemplate": "%{x}: %{y:.2f} (%{customdata} runs)",
                }
            )
        fig = _figure(bars, title=f"{GOALS[goal].label} by {title}", yaxis=_axis(_axis_title(goal)), barmode="group")
        figures.append({"id": f"{by}-{goal}", "figure": fig})
    return figures


def power_figures(cells: dict[tuple, Cell]) -> list[dict]:
    """Per goal, the mean by bin of the largest group's seat share, a bar per strategy x model."""
    return breakdown_figures(cells, by="power", title="power structure", order=[label for _, label in POWER_BINS])


def topic_figures(cells: dict[tuple, Cell]) -> list[dict]:
    """Per goal, the mean by topic, a bar per strategy x model (topics by name)."""
    return breakdown_figures(cells, by="topic", title="topic")


def dominant_group_figure(points: list[dict], *, labels: Mapping[str, str] | None = None) -> dict | None:
    """Each group's mean score against its seat share, a marker series per strategy (size: runs);
    groups named by `labels` (code -> label) where given."""
    labels = labels or {}
    if not points:
        return None
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for point in points:
        by_strategy[point["strategy"]].append(point)
    markers = [
        {
            "type": "scatter",
            "name": strategy,
            "mode": "markers",
            "x": [p["share"] for p in items],
            "y": [p["mean"] for p in items],
            "text": [f"{labels.get(p['group'], p['group'])}: {p['n']} runs" for p in items],
            "marker": {
                "size": [min(30, 6 + p["n"] ** 0.5 * 2) for p in items],
                "opacity": 0.75,
                "color": strategy_colour(strategy),
            },
            "hovertemplate": "%{text}<br>share %{x:.0%}, score %{y:.2f}",
        }
        for strategy, items in sorted(by_strategy.items())
    ]
    fig = _figure(
        markers,
        title="Group score against seat share",
        xaxis=_axis("seat share", tickformat=".0%"),
        yaxis=_axis("mean judge score (0–9)", range=[0, 9.3]),
    )
    return {"id": "dominant", "figure": fig}


def support_figure(points: list[dict]) -> dict | None:
    """Mean simulated support against the group's real vote on the record; the diagonal is
    agreement."""
    if not points:
        return None
    lines = [
        {
            "type": "scatter",
            "name": "agreement",
            "mode": "lines",
            "x": [0, 9],
            "y": [0, 9],
            "line": {"dash": "dot", "color": "#999"},
        }
    ]
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for point in points:
        by_strategy[point["strategy"]].append(point)
    for strategy, items in sorted(by_strategy.items()):
        lines.append(
            {
                "type": "scatter",
                "name": strategy,
                "mode": "lines+markers",
                "x": [p["real"] for p in items],
                "y": [p["mean"] for p in items],
                "customdata": [p["n"] for p in items],
                "line": {"color": strategy_colour(strategy)},
                "hovertemplate": "real %{x}: simulated %{y:.2f} (%{customdata} group-runs)",
            }
        )
    fig = _figure(
        lines,
        title="Simulated support against the real vote",
        xaxis=_axis("real vote (0–9)"),
        yaxis=_axis("mean judge score (0–9)"),
    )
    return {"id": "support", "figure": fig}


def power_support_figure(points: list[dict]) -> dict | None:
    """Mean judged support against seat share, Shapley-Shubik and Banzhaf (one panel each, bins of
    tenths), a line per strategy: if drafts follow power rather than seats, the lines rise more
    steeply on the index panels."""
    if not points:
        return None
    measures = ("seat share", "Shapley-Shubik", "Banzhaf")
    width = 0.3
    traces = []
    for index, measure in enumerate(measures):
        axis = "" if index == 0 else str(index + 1)
        by_strategy: dict[str, list[dict]] = defaultdict(list)
        for point in points:
            if point["measure"] == measure:
                by_strategy[point["strategy"]].append(point)
        for strategy, items in sorted(by_strategy.items()):
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": strategy,
                    "legendgroup": strategy,
                    "showlegend": index == 0,
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                    "x": [p["x"] for p in items],
                    "y": [p["mean"] for p in items],
                    "customdata": [p["n"] for p in items],
                    "line": {"color": strategy_colour(strategy)},
                    "hovertemplate": f"{measure} %{{x:.0%}}: support %{{y:.2f}} (%{{customdata}} group-runs)",
                }
            )
    axes = {}
    for index, measure in enumerate(measures):
        axis = "" if index == 0 else str(index + 1)
        start = index * (width + 0.05)
        axes[f"xaxis{axis}"] = _axis(
            measure, tickformat=".0%", range=[0, 1], domain=[start, start + width], anchor=f"y{axis}"
        )
        axes[f"yaxis{axis}"] = _axis(
            "mean judged support (0–9)" if index == 0 else "",
            range=[0, 9.3],
            anchor=f"x{axis}",
            **({} if index == 0 else {"matches": "y"}),
        )
    fig = _figure(traces, title="Judged support against seats and voting power (voting goals)", **axes)
    return {"id": "power-support", "figure": fig}


def moral_rewards_figure(rows: list[dict]) -> dict | None:
    """Mean deontological against mean utilitarian reward, a point per strategy and model: up is
    kept commitments, right is welfare."""
    if not rows:
        return None
    models = sorted({row["model"] for row in rows})
    symbols = ["circle", "square", "diamond", "triangle-up", "cross", "x"]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"{row['strategy']} · {row['model']}",
            "x": [row["utilitarian"]],
            "y": [row["deontological"]],
            "customdata": [row["n"]],
            "marker": {
                "size": 12,
                "color": strategy_colour(row["strategy"]),
                "symbol": symbols[models.index(row["model"]) % len(symbols)],
            },
            "hovertemplate": "utilitarian %{x:.2f}, deontological %{y:.2f} (%{customdata} group-runs)",
        }
        for row in rows
    ]
    fig = _figure(
        data,
        title="Moral rewards per strategy and model",
        xaxis=_axis("utilitarian: mean support (0–9)"),
        yaxis=_axis("deontological (−1 broken … +1 kept)", range=[-1.05, 1.05]),
    )
    return {"id": "moral-rewards", "figure": fig}
