"""Drawing a CAM heatmap over a lesion image so the lesion stays visible, and the colour scale beside it.

Pure image functions (numpy, OpenCV, Pillow): no network. A plain alpha blend (show_cam_on_image) tints the
whole frame, so the lesion is seen through a blue wash even where the map says nothing. Here each pixel's
colour weight follows the map's own value: where the map is 0 the pixel is the original image, exactly;
at the map's maximum it carries the full overlay colour at `opacity`.

    attribution_overlay(image, heat, opacity=0.6)   # colour weight proportional to the CAM value
    contour_overlay(image, heat, levels=(0.5, 0.8)) # iso-lines only: every pixel between lines untouched
    colour_scale(width=320)                         # the "low → high contribution" bar drawn the same way
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORMAP = cv2.COLORMAP_JET  # the colours clinicians know from Grad-CAM figures
FLOOR = 0.15  # map values at or below this share of the maximum leave the pixel untouched (faint noise)
SCALE_LABELS = ("low", "high contribution")


def _heat_at(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32), nan=0.0).clip(0.0, 1.0)
    if heat.ndim != 2:
        raise ValueError(f"a heatmap is (H, W); got shape {heat.shape}")
    width, height = size
    if heat.shape != (height, width):
        heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR).clip(0.0, 1.0)
    return heat


def _check_opacity(opacity: float) -> float:
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")
    return float(opacity)


def colours(values: np.ndarray, colormap: int = COLORMAP) -> np.ndarray:
    """RGB float (…, 3) in [0, 255] of map values in [0, 1] under an OpenCV colormap."""
    index = np.round(np.asarray(values, dtype=np.float32).clip(0.0, 1.0) * 255).astype(np.uint8)
    bgr = cv2.applyColorMap(index.reshape(-1, 1), colormap).reshape(*index.shape, 3)
    return bgr[..., ::-1].astype(np.float32)


def colour_weight(heat: np.ndarray, opacity: float, floor: float = FLOOR) -> np.ndarray:
    """Per-pixel weight of the overlay colour: 0 up to `floor`, rising linearly to `opacity` at 1."""
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must be within [0, 1), got {floor}")
    return _check_opacity(opacity) * ((np.asarray(heat, dtype=np.float32) - floor) / (1.0 - floor)).clip(0.0, 1.0)


def attribution_overlay(
    image: Image.Image, heat: np.ndarray, opacity: float = 0.6, floor: float = FLOOR, colormap: int = COLORMAP
) -> Image.Image:
    """The image with the map's colours blended in proportion to the map's value (see colour_weight)."""
    rgb = image.convert("RGB")
    heat = _heat_at(heat, rgb.size)
    weight = colour_weight(heat, opacity, floor)[..., None]
    original = np.asarray(rgb, dtype=np.float32)
    blended = original * (1.0 - weight) + colours(heat, colormap) * weight
    out = np.where(weight > 0, np.round(blended), original)  # untouched pixels are the original bytes
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def contour_overlay(
    image: Image.Image,
    heat: np.ndarray,
    levels: Sequence[float] = (0.5, 0.8),
    colormap: int = COLORMAP,
    thickness: int | None = None,
) -> Image.Image:
    """Iso-lines of the map at `levels` (shares of its maximum), each in its colour; nothing else drawn."""
    rgb = image.convert("RGB")
    heat = _heat_at(heat, rgb.size)
    out = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).copy())
    line = thickness or max(1, round(min(rgb.size) / 160))
    for level in sorted(levels):
        if not 0.0 < level < 1.0:
            raise ValueError(f"contour levels are shares of the maximum within (0, 1), got {level}")
        contours, _ = cv2.findContours((heat >= level).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        colour = tuple(int(c) for c in colours(np.array([level]), colormap)[0])
        cv2.drawContours(out, contours, -1, colour, thickness=line, lineType=cv2.LINE_AA)
    return Image.fromarray(out)


OVERLAY_STYLES: dict[str, Callable[..., Image.Image]] = {
    "blend": attribution_overlay,
    "contours": contour_overlay,
}
OVERLAY_STYLE_LABELS: dict[str, str] = {
    "blend": "Colour where the map is high",
    "contours": "Contour lines only",
}


def colour_scale(
    width: int = 320,
    height: int = 56,
    opacity: float = 0.6,
    floor: float = FLOOR,
    colormap: int = COLORMAP,
    background: tuple[int, int, int] = (214, 176, 152),  # a skin tone, so the bar shows what a pixel becomes
    labels: tuple[str, str] = SCALE_LABELS,
) -> Image.Image:
    """A horizontal "low → high contribution" bar: the overlay's colours over a plain skin tone, with labels.

    Drawn with the same colour_weight as attribution_overlay, so the left end is the untouched background.
    """
    if width < 64 or height < 24:
        raise ValueError(f"a colour scale needs at least 64 x 24 pixels, got {width} x {height}")
    bar_height = max(8, height // 2 - 2)
    values = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :].repeat(bar_height, axis=0)
    weight = colour_weight(values, opacity, floor)[..., None]
    bar = np.asarray(background, dtype=np.float32) * (1.0 - weight) + colours(values, colormap) * weight
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(np.round(bar).astype(np.uint8)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, width - 1, bar_height - 1], outline=(120, 120, 120))
    font = ImageFont.load_default(size=max(10, height - bar_height - 8))
    low, high = labels
    top = bar_height + 3
    draw.text((0, top), low, fill=(40, 40, 40), font=font)
    draw.text((width - 1, top), high, fill=(40, 40, 40), font=font, anchor="ra")
    arrow_x = draw.textlength(low, font=font) + 6
    end_x = width - draw.textlength(high, font=font) - 6
    if end_x - arrow_x > 16:
        mid = top + font.size // 2 + 1
        draw.line([(arrow_x, mid), (end_x, mid)], fill=(90, 90, 90), width=1)
        draw.polygon([(end_x, mid), (end_x - 6, mid - 4), (end_x - 6, mid + 4)], fill=(90, 90, 90))
    return canvas
