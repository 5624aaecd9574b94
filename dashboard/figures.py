"""Plotly figure builders (no Streamlit): ugly-duckling map, ranked scores, validation curves, trends."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.services import SCREENING_PREVALENCE, OperatingPoint, pct, score_band

RED = "#c0392b"
ORANGE = "#d9822b"
GREEN = "#2e8b57"
BLUE = "#1f5f8b"
GREY = "#8a94a0"
BAND_COLOURS = {"red": RED, "orange": ORANGE, "green": GREEN}
# Green (low) -> amber -> red (high) for P(melanoma).
SCORE_SCALE = [[0.0, "#2e8b57"], [0.35, "#a8b64a"], [0.55, "#e0a030"], [1.0, "#c0392b"]]


def plotly_text(value: object) -> str:
    """User text in a plotly label or hover: plotly reads a subset of HTML (links, styles), so escape it."""
    return html.escape(str(value), quote=False)


# Plotly's toolbar (mode bar) sits in the top ~30 px of the chart: titles start below it, never under it.
MODEBAR_PX = 32


def _layout(fig: go.Figure, title: str | None = None, height: int = 380, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        title={
            "text": title,
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": MODEBAR_PX},
            "font": {"size": 15},
        }
        if title
        else None,
        height=height,
        margin={"l": 10, "r": 10, "t": MODEBAR_PX + 40 if title else MODEBAR_PX + 6, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0},
        plot_bgcolor="white",
        **kwargs,
    )
    fig.update_xaxes(showgrid=True, gridcolor="#eef0f3", zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor="#eef0f3", zeroline=False)
    return fig


def _empty(message: str, height: int = 260) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": GREY},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=height)


# ---------------------------------------------------------------- review


def ugly_duckling_map(table: pd.DataFrame, threshold: float) -> go.Figure:
    """The patient's lesions in the model's 2-D embedding: outliers (ugly ducklings) sit apart."""
    if table.empty or not {"x", "y"} <= set(table.columns):
        return _empty("No lesions to map yet.")
    data = table.copy()
    data["ud_text"] = [
        "n/a (fewer than 3 lesions)" if pd.isna(v) else f"{v:.2f}" for v in data.get("ugly_duckling", np.nan)
    ]
    fig = go.Figure()
    for outlier, name, symbol, line_colour, size in (
        (False, "typical for this patient", "circle", "white", 16),
        (True, "ugly duckling (outlier)", "diamond", "#1b1b1b", 22),
    ):
        part = data[data["outlier"].astype(bool) == outlier]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["x"],
                y=part["y"],
                mode="markers+text",
                name=name,
                text=[f"#{int(r)}" for r in part["rank"]],
                textposition="top center",
                textfont={"size": 11, "color": "#333"},
                marker={
                    "size": size,
                    "symbol": symbol,
                    "color": part["p_melanoma"],
                    "colorscale": SCORE_SCALE,
                    "cmin": 0,
                    "cmax": 1,
                    "line": {"width": 2, "color": line_colour},
                    "showscale": not outlier,
                    "colorbar": {"title": {"text": "P(melanoma)"}, "tickformat": ".0%", "len": 0.8},
                },
                customdata=np.stack(
                    [
                        part["label"].map(plotly_text),
                        part["image_id"].str[:10],
                        part["p_melanoma"],
                        part["ud_text"],
                        part["rank"],
                    ],
                    axis=1,
                ),
                hovertemplate=(
                    "<b>#%{customdata[4]} %{customdata[0]}</b><br>image %{customdata[1]}<br>"
                    "P(melanoma) %{customdata[2]:.1%}<br>ugly-duckling score %{customdata[3]}<extra></extra>"
                ),
            )
        )
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None, scaleanchor="x", scaleratio=1)
    return _layout(fig, height=430)


def ranked_scores(table: pd.DataFrame, threshold: float) -> go.Figure:
    """P(melanoma) per lesion, ranked, with its TTA spread and the operating threshold."""
    if table.empty:
        return _empty("No scores yet.")
    data = table.sort_values("rank", ascending=False)
    colours = [
        BAND_COLOURS[score_band(p, threshold, s).colour]
        for p, s in zip(data["p_melanoma"], data["p_spread"].fillna(0), strict=True)
    ]
    names = [f"#{int(r)} {plotly_text(lab)}" for r, lab in zip(data["rank"], data["label"], strict=True)]
    fig = go.Figure(
        go.Bar(
            x=data["p_melanoma"],
            y=names,
            orientation="h",
            marker={"color": colours},
            error_x={
                "type": "data",
                "array": 2 * data["p_spread"].fillna(0),
                "color": "#555",
                "thickness": 1.2,
            },
            hovertemplate="%{y}<br>P(melanoma) %{x:.1%}<extra></extra>",
        )
    )
    fig.add_vline(
        x=threshold,
        line={"color": "#333", "dash": "dash"},
        annotation_text=f"threshold {pct(threshold)}",
        annotation_position="top",
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="P(melanoma) ± 2 × TTA spread")
    return _layout(fig, height=max(220, 60 + 28 * len(data)), showlegend=False)


# ---------------------------------------------------------------- model card


def roc_figure(validation: dict[str, Any] | None, op: OperatingPoint | None) -> go.Figure | None:
    roc = (validation or {}).get("roc") or {}
    if not roc.get("fpr") or not roc.get("tpr"):
        return None
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance",
            line={"color": GREY, "dash": "dot"},
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=roc["fpr"],
            y=roc["tpr"],
            mode="lines",
            name="model",
            line={"color": BLUE, "width": 2.5},
            hovertemplate="1 − specificity %{x:.2f}<br>sensitivity %{y:.2f}<extra></extra>",
        )
    )
    if op and op.sensitivity is not None and op.specificity is not None:
        fig.add_trace(
            go.Scatter(
                x=[1 - op.specificity],
                y=[op.sensitivity],
                mode="markers",
                name="operating point",
                marker={"size": 13, "color": RED, "symbol": "x"},
                hovertemplate=f"threshold {pct(op.threshold)}<br>sensitivity %{{y:.1%}}<br>"
                f"specificity {pct(op.specificity, 1)}<extra></extra>",
            )
        )
    fig.update_xaxes(range=[0, 1], title="1 − specificity (benign lesions flagged)")
    fig.update_yaxes(range=[0, 1.02], title="sensitivity (melanomas found)")
    return _layout(fig, "ROC curve", height=400)


def pr_figure(
    validation: dict[str, Any] | None, op: OperatingPoint | None, prevalence: float = SCREENING_PREVALENCE
) -> go.Figure | None:
    """Precision-recall on the validation set, plus the same curve re-weighted to screening prevalence."""
    pr = (validation or {}).get("pr") or {}
    roc = (validation or {}).get("roc") or {}
    if not pr.get("recall") or not pr.get("precision"):
        return None
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=pr["recall"],
            y=pr["precision"],
            mode="lines",
            name="validation set",
            line={"color": BLUE, "width": 2.5},
            hovertemplate="recall %{x:.2f}<br>precision %{y:.2f}<extra></extra>",
        )
    )
    if roc.get("fpr") and roc.get("tpr"):
        tpr = np.asarray(roc["tpr"], dtype=float)
        fpr = np.asarray(roc["fpr"], dtype=float)
        denom = tpr * prevalence + fpr * (1 - prevalence)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(denom > 0, tpr * prevalence / denom, np.nan)
        keep = tpr > 0
        fig.add_trace(
            go.Scatter(
                x=tpr[keep],
                y=precision[keep],
                mode="lines",
                name=f"at {pct(prevalence, 2)} screening prevalence",
                line={"color": ORANGE, "width": 2.5},
                hovertemplate="recall %{x:.2f}<br>precision %{y:.3f}<extra></extra>",
            )
        )
    if op and op.sensitivity is not None and op.ppv is not None:
        fig.add_trace(
            go.Scatter(
                x=[op.sensitivity],
                y=[op.ppv],
                mode="markers",
                name="operating point",
                marker={"size": 13, "color": RED, "symbol": "x"},
                hovertemplate="sensitivity %{x:.1%}<br>PPV %{y:.1%}<extra></extra>",
            )
        )
    fig.add_hline(
        y=prevalence,
        line={"color": GREY, "dash": "dot"},
        annotation_text="chance at screening prevalence",
        annotation_position="bottom right",
    )
    fig.update_xaxes(range=[0, 1], title="recall = sensitivity")
    fig.update_yaxes(range=[0, 1.02], title="precision = PPV")
    return _layout(fig, "Precision–recall", height=400)


def calibration_figure(validation: dict[str, Any] | None) -> go.Figure | None:
    cal = (validation or {}).get("calibration") or {}
    mean_pred = cal.get("mean_predicted")
    frac_pos = cal.get("fraction_positive")
    if not mean_pred or not frac_pos:
        return None
    counts = cal.get("count") or [None] * len(mean_pred)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": GREY, "dash": "dot"},
            hoverinfo="skip",
        )
    )
    sizes = None
    if all(c is not None for c in counts):
        c = np.asarray(counts, dtype=float)
        sizes = 8 + 18 * np.sqrt(c / c.max()) if c.max() > 0 else None
    fig.add_trace(
        go.Scatter(
            x=mean_pred,
            y=frac_pos,
            mode="lines+markers",
            name="model",
            line={"color": BLUE, "width": 2},
            marker={"size": sizes if sizes is not None else 9, "color": BLUE},
            customdata=np.asarray([c if c is not None else -1 for c in counts]),
            hovertemplate=("predicted %{x:.2f}<br>observed %{y:.2f}<br>lesions in bin %{customdata}<extra></extra>"),
        )
    )
    fig.update_xaxes(range=[0, 1], title="mean predicted P(melanoma)")
    fig.update_yaxes(range=[0, 1.02], title="observed fraction melanoma")
    return _layout(fig, "Calibration (validation set)", height=400)


# ---------------------------------------------------------------- history


def score_trend(points: Sequence[Any], threshold: float | None, title: str | None = None) -> go.Figure:
    """A lesion's P(melanoma) across visits (TrendPoint list, oldest first)."""
    if not points:
        return _empty("No scores recorded for this lesion.")
    times = [p.visit_time for p in points]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=times,
            y=[p.p_melanoma for p in points],
            mode="lines+markers",
            name="P(melanoma)",
            line={"color": BLUE, "width": 2.5},
            marker={"size": 10},
            customdata=np.asarray(
                [[getattr(p, "visit_number", 0) or p.visit_id, p.model_id, p.rank] for p in points], dtype=object
            ),
            hovertemplate="%{x|%Y-%m-%d}<br>P(melanoma) %{y:.1%}<br>visit %{customdata[0]} · rank "
            "%{customdata[2]}<br>model %{customdata[1]}<extra></extra>",
        )
    )
    ud_values = [float(p.ugly_duckling) for p in points if p.ugly_duckling is not None]
    if ud_values:
        fig.add_trace(
            go.Scatter(
                x=times,
                y=[p.ugly_duckling for p in points],
                mode="lines+markers",
                name="ugly-duckling score",
                line={"color": ORANGE, "dash": "dot"},
                marker={"symbol": "diamond"},
                yaxis="y2",
                hovertemplate="%{x|%Y-%m-%d}<br>ugly-duckling %{y:.2f}<extra></extra>",
            )
        )
        # Its own axis, in its own unit (a robust z, not a probability): every value drawn, 0 always shown.
        low, high = min(0.0, *ud_values), max(1.0, *ud_values)
        pad = 0.1 * (high - low)
        fig.update_layout(
            yaxis2={
                "overlaying": "y",
                "side": "right",
                "title": {"text": "ugly-duckling score (robust z)"},
                "showgrid": False,
                "zeroline": False,
                "range": [low - pad, high + pad],
                "tickformat": ".1f",
            }
        )
    if threshold is not None:
        fig.add_hline(
            y=threshold,
            line={"color": RED, "dash": "dash"},
            annotation_text=f"current threshold {pct(threshold)}",
            annotation_position="top left",
        )
    models = {p.model_id for p in points}
    if len(models) > 1:
        fig.add_annotation(
            text="Scores come from different model versions: compare with care.",
            xref="paper",
            yref="paper",
            x=0,
            y=1.08,
            showarrow=False,
            font={"color": ORANGE, "size": 12},
        )
    # Only the left axis is P(melanoma) (update_yaxes would also relabel the ugly-duckling axis).
    fig.update_layout(yaxis={"range": [0, 1], "tickformat": ".0%", "title": {"text": "P(melanoma)"}})
    fig.update_xaxes(title="visit date")
    _layout(fig, title, height=360)
    if ud_values:
        fig.update_layout(yaxis2_showgrid=False)  # one grid, the left axis's
    return fig
