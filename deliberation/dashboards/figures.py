"""Plotly figures of an experiment's dashboard, as JSON for the vendored plotly.js (dashboard.js).

Built from the selectors' aggregates only: no query here.
"""

import json
from collections import defaultdict

import plotly.graph_objects as go
import plotly.io as pio

from deliberation.dashboards.selectors import POWER_BINS, Cell, Table
from deliberation.engine.goals import GOALS

LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 380,
          "legend": {"orientation": "h", "y": -0.2}}


def _axis_title(goal: str) -> str:
    return "pass rate" if GOALS[goal].kind == "pass" else "mean score (0–9)"


def _error(cells: list[Cell]) -> dict:
    return {
        "type": "data", "symmetric": False,
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
        for goal, series in by_goal.items():
            fig = go.Figure()
            for row, cells in series:
                fig.add_bar(
                    name=f"{row.strategy} · {row.model}", x=[f"{p} parties" for p in table.party_counts],
                    y=[cell.mean for cell in cells], error_y=_error(cells),
                    customdata=[cell.n for cell in cells], hovertemplate="%{y:.2f} (%{customdata} runs)",
                )
            fig.update_layout(title=f"{GOALS[goal].label} · judge {table.judge}", yaxis_title=_axis_title(goal),
                              barmode="group", **LAYOUT)
            figures.append({"id": f"table-{table.judge}-{goal}", "figure": _json(fig)})
    return figures


def power_figures(cells: dict[tuple, Cell]) -> list[dict]:
    """Per goal, the mean by bin of the largest group's seat share, a bar per strategy x model."""
    labels = [label for _, label in POWER_BINS]
    by_goal: dict[str, dict[str, dict[str, Cell]]] = defaultdict(lambda: defaultdict(dict))
    for (strategy, model, judge, goal, bucket), cell in cells.items():
        by_goal[goal][f"{strategy} · {model} · {judge}"][bucket] = cell
    figures = []
    for goal in (key for key in GOALS if key in by_goal):
        fig = go.Figure()
        for name, bins in sorted(by_goal[goal].items()):
            present = [label for label in labels if label in bins]
            fig.add_bar(name=name, x=present, y=[bins[label].mean for label in present],
                        error_y=_error([bins[label] for label in present]))
        fig.update_layout(title=f"{GOALS[goal].label} by power structure", yaxis_title=_axis_title(goal),
                          barmode="group", **LAYOUT)
        figures.append({"id": f"power-{goal}", "figure": _json(fig)})
    return figures


def dominant_group_figure(points: list[dict]) -> dict | None:
    """Each group's mean score against its seat share, a marker series per strategy (size: runs)."""
    if not points:
        return None
    fig = go.Figure()
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for point in points:
        by_strategy[point["strategy"]].append(point)
    for strategy, items in sorted(by_strategy.items()):
        fig.add_scatter(
            name=strategy, mode="markers", x=[p["share"] for p in items], y=[p["mean"] for p in items],
            text=[f"{p['group']}: {p['n']} runs" for p in items],
            marker={"size": [min(30, 6 + p["n"] ** 0.5 * 2) for p in items], "opacity": 0.75},
            hovertemplate="%{text}<br>share %{x:.0%}, score %{y:.2f}",
        )
    fig.update_layout(title="Group score against seat share", xaxis_title="seat share", xaxis_tickformat=".0%",
                      yaxis_title="mean judge score (0–9)", yaxis_range=[0, 9.3], **LAYOUT)
    return {"id": "dominant", "figure": _json(fig)}


def support_figure(points: list[dict]) -> dict | None:
    """Mean simulated support against the group's real vote on the record; the diagonal is
    agreement."""
    if not points:
        return None
    fig = go.Figure()
    fig.add_scatter(name="agreement", mode="lines", x=[0, 9], y=[0, 9], line={"dash": "dot", "color": "#999"})
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for point in points:
        by_strategy[point["strategy"]].append(point)
    for strategy, items in sorted(by_strategy.items()):
        fig.add_scatter(name=strategy, mode="lines+markers", x=[p["real"] for p in items],
                        y=[p["mean"] for p in items], customdata=[p["n"] for p in items],
                        hovertemplate="real %{x}: simulated %{y:.2f} (%{customdata} group-runs)")
    fig.update_layout(title="Simulated support against the real vote", xaxis_title="real vote (0–9)",
                      yaxis_title="mean judge score (0–9)", **LAYOUT)
    return {"id": "support", "figure": _json(fig)}


def _json(fig: go.Figure) -> dict:
    return json.loads(pio.to_json(fig, validate=False))
