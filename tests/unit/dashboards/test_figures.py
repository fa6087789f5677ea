"""The dashboard's figures are written as plain dicts (figures.py): plotly itself must accept
each one and write it back unchanged, so plotly.js reads what plotly's own objects would give."""

import json

import plotly.graph_objects as go
import plotly.io as pio

from deliberation.dashboards import figures
from deliberation.dashboards.institutions import power_support
from deliberation.dashboards.selectors import breakdown, group_views, paper_tables


def _all_figures(experiment) -> list[dict]:
    groups = group_views(experiment=experiment)
    return [
        *figures.paper_table_figures(paper_tables(experiment=experiment)),
        *figures.power_figures(breakdown(experiment=experiment, by="power")),
        figures.dominant_group_figure(groups.by_share),
        figures.support_figure(groups.by_real_vote),
        figures.power_support_figure(power_support(experiment=experiment)),
    ]


def test_every_figure_is_what_plotly_writes_for_it(made):
    charts = _all_figures(made.experiment)
    assert {chart["id"] for chart in charts} >= {
        "table-llm-simple_majority",
        "power-rawlsian",
        "dominant",
        "support",
        "power-support",
    }
    for chart in charts:
        figure = chart["figure"]
        assert json.loads(pio.to_json(go.Figure(figure), validate=True)) == figure, chart["id"]
        assert (
            figure["layout"]["template"]
            == json.loads(pio.to_json(go.Figure(layout={"template": "plotly_white"})))["layout"]["template"]
        )


def test_a_bar_carries_its_cells_means_intervals_and_runs(made):
    (chart,) = [c for c in _all_figures(made.experiment) if c["id"] == "table-llm-rawlsian"]
    (bar,) = [trace for trace in chart["figure"]["data"] if trace["name"] == "one-shot · m1"]
    assert bar["x"] == ["2 parties", "4 parties", "6 parties"]
    assert bar["y"] == [4.0, None, None] and bar["customdata"] == [2, 0, 0]
    assert chart["figure"]["layout"]["title"] == {"text": "Rawlsian · judge llm"}
