"""A finer body-site vocabulary (left/right, front/back) for the body map, as data.

Each region carries the model's anatomic site (data.schema.SITES) it maps onto, so assigning a region
fills the image's site. Shapes are polygons on a front/back diagram in diagram units: x 0-100 (body
centre at 50), y 0 (soles) to 200 (top of the head), y up. Both views are drawn as the viewer sees
them: on the front view the patient's right is on the viewer's left; on the back view it is on the
viewer's right. Keys are stored in the case store (Lesion.body_region): never rename one.

Mapping follows ISIC's general sites: palms and soles are "palms/soles", the back of the hand and the
top of the foot are extremities, the genitals "oral/genital", buttocks "torso" (as derm7pt), the
shoulder cap "upper extremity", ears, face, scalp and neck "head/neck".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Side = Literal["front", "back"]
Laterality = Literal["left", "right"] | None
Point = tuple[float, float]

DIAGRAM_WIDTH = 100.0
DIAGRAM_HEIGHT = 200.0
MAX_KEY_LENGTH = 48


@dataclass(frozen=True)
class BodyRegion:
    key: str
    label: str
    side: Side
    laterality: Laterality
    site: str  # one of data.schema.SITES, never "unknown"
    polygon: tuple[Point, ...]  # diagram units, in the view of `side`

    @property
    def centre(self) -> Point:
        """Area centroid of the polygon (inside it for the convex and L-shaped outlines used here)."""
        return polygon_centroid(self.polygon)

    def contains(self, point: Point) -> bool:
        """Whether a point of this region's view lies strictly inside it (even-odd rule)."""
        return polygon_contains(self.polygon, point)


def polygon_contains(polygon: tuple[Point, ...], point: Point) -> bool:
    x, y = point
    inside = False
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def polygon_centroid(points: tuple[Point, ...]) -> Point:
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if area == 0:
        xs, ys = zip(*points, strict=True)
        return sum(xs) / len(xs), sum(ys) / len(ys)
    return cx / (3 * area), cy / (3 * area)


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[Point, ...]:
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _mirror(polygon: tuple[Point, ...]) -> tuple[Point, ...]:
    return tuple((DIAGRAM_WIDTH - x, y) for x, y in polygon)


# Paired parts, drawn on the viewer's left half of the diagram: (part, label, side, site, polygon).
# The viewer's left is the patient's right on the front view and the patient's left on the back view.
_THIGH_FRONT = ((36.0, 58.0), (49.5, 58.0), (49.5, 94.0), (44.0, 94.0), (44.0, 104.0), (36.0, 104.0))
_PAIRED: tuple[tuple[str, str, Side, str, tuple[Point, ...]], ...] = (
    ("ear", "ear", "front", "head/neck", _box(38.5, 174, 41, 184)),
    ("shoulder_front", "shoulder (front)", "front", "upper extremity", _box(26, 146, 36, 158)),
    ("shoulder_back", "shoulder (back)", "back", "upper extremity", _box(26, 146, 36, 158)),
    ("upper_arm_front", "upper arm (front)", "front", "upper extremity", _box(26, 120, 35, 146)),
    ("upper_arm_back", "upper arm (back)", "back", "upper extremity", _box(26, 120, 35, 146)),
    ("forearm_front", "forearm (front)", "front", "upper extremity", _box(24, 96, 33, 120)),
    ("forearm_back", "forearm (back)", "back", "upper extremity", _box(24, 96, 33, 120)),
    ("palm", "palm", "front", "palms/soles", _box(22, 80, 32, 96)),
    ("hand_back", "back of hand", "back", "upper extremity", _box(22, 80, 32, 96)),
    ("buttock", "buttock", "back", "torso", _box(36, 88, 50, 108)),
    ("thigh_front", "thigh (front)", "front", "lower extremity", _THIGH_FRONT),
    ("thigh_back", "thigh (back)", "back", "lower extremity", _box(36, 58, 49.5, 88)),
    ("lower_leg_front", "shin", "front", "lower extremity", _box(37, 14, 49, 58)),
    ("lower_leg_back", "calf", "back", "lower extremity", _box(37, 14, 49, 58)),
    ("foot_top", "top of foot", "front", "lower extremity", _box(35, 3, 49, 14)),
    ("sole", "sole", "back", "palms/soles", _box(35, 3, 49, 14)),
)

_HEAD = (
    (44.0, 166.0),
    (56.0, 166.0),
    (59.0, 171.0),
    (59.0, 189.0),
    (56.0, 194.0),
    (44.0, 194.0),
    (41.0, 189.0),
    (41.0, 171.0),
)

# Midline parts: (key, label, side, site, polygon).
_MIDLINE: tuple[tuple[str, str, Side, str, tuple[Point, ...]], ...] = (
    ("face", "Face", "front", "head/neck", _HEAD),
    ("scalp", "Scalp", "back", "head/neck", _HEAD),
    ("neck_front", "Neck (front)", "front", "head/neck", _box(45, 158, 55, 166)),
    ("neck_back", "Neck (back)", "back", "head/neck", _box(45, 158, 55, 166)),
    ("chest", "Chest", "front", "torso", _box(36, 130, 64, 158)),
    ("abdomen", "Abdomen", "front", "torso", _box(36, 104, 64, 130)),
    ("genital", "Genital area", "front", "oral/genital", _box(44, 94, 56, 104)),
    ("upper_back", "Upper back", "back", "torso", _box(36, 128, 64, 158)),
    ("lower_back", "Lower back", "back", "torso", _box(36, 108, 64, 128)),
)


def _paired_regions() -> list[BodyRegion]:
    regions = []
    for part, label, side, site, polygon in _PAIRED:
        viewer_left = "right" if side == "front" else "left"
        for laterality, shape in ((viewer_left, polygon), ({"left": "right", "right": "left"}[viewer_left], None)):
            regions.append(
                BodyRegion(
                    key=f"{laterality}_{part}",
                    label=f"{laterality.capitalize()} {label}",
                    side=side,
                    laterality=laterality,
                    site=site,
                    polygon=shape if shape is not None else _mirror(polygon),
                )
            )
    return regions


def _build() -> dict[str, BodyRegion]:
    regions = [BodyRegion(key, label, side, None, site, polygon) for key, label, side, site, polygon in _MIDLINE]
    regions += _paired_regions()
    by_key: dict[str, BodyRegion] = {}
    for region in regions:
        if region.key in by_key:
            raise ValueError(f"body region key {region.key!r} defined twice")
        by_key[region.key] = region
    return by_key


REGIONS: dict[str, BodyRegion] = _build()


def region(key: str) -> BodyRegion:
    """The region for a key; an unknown key raises ValueError naming it."""
    try:
        return REGIONS[key]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown body region {key!r}: expected one of the {len(REGIONS)} keys in data.body_sites.REGIONS "
            f"(e.g. {', '.join(list(REGIONS)[:4])})"
        ) from None


def model_site(key: str) -> str:
    """The model's anatomic site (one of data.schema.SITES) for a body region key."""
    return region(key).site


def regions_on(side: Side) -> list[BodyRegion]:
    return [r for r in REGIONS.values() if r.side == side]
