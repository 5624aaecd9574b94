"""The ugly-duckling map: the patient's lesions as thumbnails where the model's 2-D embedding places them.

Thumbnails (plotly layout images, in data units so they keep their place when zooming) replace the text
labels that overlapped when lesions sat close together; each carries its rank in a small box at its corner.
A marker at the opposite corner carries the score band's colour (above / near / below the threshold, as in the
gallery), the hover text and the legend; an outlier ("ugly duckling") gets a violet frame. Tiles are drawn from
the last rank to the first, so the higher-ranked lesion lies on top where two overlap.
Earlier visits' lesions that were compared against (model.triage references) are grey rings.
With fewer than MIN_LESIONS lesions in the comparison there is no map, only the reason.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

from dashboard.figures import BAND_COLOURS, GREY, SCORE_SCALE, empty_figure, plotly_text, style_figure
from dashboard.wording import pct, rank_label, score_band
from data.images import jpeg_bytes

MIN_LESIONS = 3  # the ugly-duckling comparison's own minimum (model/ugly_duckling.py)
THUMB_PX = 96  # thumbnail edge in pixels, sent as JPEG in the figure
THUMB_SHARE = 0.14  # thumbnail edge as a share of the map's larger extent
OUTLIER_FRAME = "#7b3fa0"


def thumbnail_uri(image: Image.Image, px: int = THUMB_PX) -> str:
    """A small JPEG data URI of the image, for a layout image (the figure travels to the browser as JSON)."""
    thumb = image.convert("RGB")
    thumb.thumbnail((px, px))
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(thumb, quality=80)).decode("ascii")


def too_few_message(count: int) -> str:
    return (
        f"No map with {count} lesion{'s' if count != 1 else ''}: the ugly-duckling comparison needs at least "
        f"{MIN_LESIONS}, because with fewer there are no “other lesions” for one to stand apart from."
    )


def _marker_groups(data: pd.DataFrame, threshold: float | None) -> list[tuple[str, object, np.ndarray]]:
    """(legend name, colour, row mask) per marker trace: one per score band (above / near / below the
    threshold, the gallery's colours) when the threshold is known, else one trace coloured by P(melanoma)."""
    if threshold is None:
        return [("P(melanoma)", data["p_melanoma"].to_numpy(float), np.ones(len(data), dtype=bool))]
    bands = [score_band(p, threshold, s) for p, s in zip(data["p_melanoma"], data["p_spread"].fillna(0), strict=True)]
    names = np.array([band.name for band in bands])
    colours = {band.name: BAND_COLOURS[band.colour] for band in bands}
    return [
        (f"{name} threshold", colours[name], names == name) for name in ("above", "near", "below") if name in colours
    ]


def _score_colour_scale(colour: object) -> dict:
    """Colour-scale settings when the markers are coloured by P(melanoma) itself (no threshold known)."""
    if isinstance(colour, str):
        return {}
    scale = {"title": {"text": "P(melanoma)"}, "tickformat": ".0%", "len": 0.8}
    return {"colorscale": SCORE_SCALE, "cmin": 0, "cmax": 1, "showscale": True, "colorbar": scale}


def ugly_duckling_map(
    table: pd.DataFrame,
    thumbnails: Mapping[str, str] | None = None,
    references: np.ndarray | None = None,
    threshold: float | None = None,
) -> go.Figure:
    """table: the triage table (image_id, label, rank, p_melanoma, p_spread, ugly_duckling, outlier, x, y);
    thumbnails: image_id -> image source (thumbnail_uri); references: (m, 2) map places of earlier lesions;
    threshold: the operating threshold, which colours each marker by its score band."""
    earlier = np.zeros((0, 2)) if references is None else np.asarray(references, dtype=float).reshape(-1, 2)
    if table.empty or not {"x", "y"} <= set(table.columns):
        return empty_figure("No lesions to map yet.")
    if len(table) + len(earlier) < MIN_LESIONS:
        return empty_figure(too_few_message(len(table) + len(earlier)))
    thumbnails = thumbnails or {}
    xs = np.concatenate([table["x"].to_numpy(float), earlier[:, 0]])
    ys = np.concatenate([table["y"].to_numpy(float), earlier[:, 1]])
    extent = max(float(np.ptp(xs)), float(np.ptp(ys)), 1e-6)
    size = THUMB_SHARE * extent
    fig = go.Figure()
    if len(earlier):
        fig.add_trace(
            go.Scatter(
                x=earlier[:, 0],
                y=earlier[:, 1],
                mode="markers",
                name="earlier visits' lesions (compared, not ranked)",
                marker={"size": 14, "symbol": "circle-open", "color": GREY, "line": {"width": 2}},
                hovertemplate="lesion known from an earlier visit<extra></extra>",
            )
        )
    # Drawn from the last rank to the first: where tiles overlap, the higher-ranked lesion lies on top.
    data = table.sort_values("rank", ascending=False).reset_index(drop=True)
    data["ud_text"] = [
        "n/a (fewer than 3 lesions)" if pd.isna(v) else f"{v:.2f}" for v in data.get("ugly_duckling", np.nan)
    ]
    for row in data.itertuples():
        source = thumbnails.get(row.image_id)
        if source:
            fig.add_layout_image(
                source=source,
                x=row.x,
                y=row.y,
                xref="x",
                yref="y",
                sizex=size,
                sizey=size,
                xanchor="center",
                yanchor="middle",
                sizing="contain",
                layer="above",
            )
        if bool(row.outlier):
            half = 0.56 * size
            fig.add_shape(
                type="rect",
                x0=row.x - half,
                x1=row.x + half,
                y0=row.y - half,
                y1=row.y + half,
                line={"color": OUTLIER_FRAME, "width": 3},
                layer="above",
            )
    for row in data.itertuples():  # the rank on each tile: the map is read against the ranked gallery
        fig.add_annotation(
            x=row.x - 0.5 * size,
            y=row.y + 0.5 * size,
            text=f"<b>{rank_label(row.rank)}</b>",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"size": 12, "color": "#1b2733"},
            bgcolor="rgba(255,255,255,0.85)",
            borderpad=1,
        )
    customdata = np.stack(
        [
            data["label"].map(plotly_text),
            data["image_id"].str[:10],
            data["p_melanoma"].map(pct),  # as the score bar and the reasons word it
            data["ud_text"],
            data["rank"],
        ],
        axis=1,
    )
    hover = (
        "<b>#%{customdata[4]} %{customdata[0]}</b><br>image %{customdata[1]}<br>"
        "P(melanoma) %{customdata[2]}<br>ugly-duckling score %{customdata[3]}<extra></extra>"
    )
    outlier = data["outlier"].astype(bool).to_numpy()
    for name, colour, members in _marker_groups(data, threshold):
        fig.add_trace(
            go.Scatter(  # the corner marker: colour = where the score lies against the threshold; hover; legend
                x=data["x"][members] + 0.5 * size,
                y=data["y"][members] - 0.5 * size,
                mode="markers",
                name=name,
                marker={
                    "size": 16,
                    "color": colour,
                    "line": {"width": 1.5, "color": "white"},
                    **_score_colour_scale(colour),
                },
                customdata=customdata[members],
                hovertemplate=hover,
            )
        )
    if outlier.any():
        fig.add_trace(  # a legend entry only: what the violet frame means
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name="ugly duckling (violet frame)",
                marker={"size": 14, "symbol": "square-open", "color": OUTLIER_FRAME, "line": {"width": 3}},
            )
        )
    pad = 0.7 * size
    fig.update_xaxes(showticklabels=False, title=None, range=[xs.min() - pad, xs.max() + pad])
    fig.update_yaxes(
        showticklabels=False, title=None, scaleanchor="x", scaleratio=1, range=[ys.min() - pad, ys.max() + pad]
    )
    return style_figure(fig, height=520)
