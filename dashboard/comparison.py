"""The same lesion at two visits, without Streamlit: both images at one display size, the later image
registered onto the earlier one, and an overlay or difference image of the aligned pair.

Registration (OpenCV): SIFT keypoints of the two images matched and a similarity transform (shift, one
scale, rotation) fitted with RANSAC. Skin texture, hairs and the lesion's own structure are the landmarks,
so the scale it finds is the change in magnification between the two photographs and a lesion that grew
still shows that growth. When too few points match (a plain image, very different photographs) it falls
back to the lesion outline: the centre of mass and area of a brightness-threshold mask are matched. That
fallback is approximate and makes the two lesions the same size by construction, so it cannot show growth;
``Alignment.note`` says which one was used and what it means.

Physical scale is unknown: the stored images carry no calibration (metadata is stripped on upload), so
"same size on screen" means "resampled to the same number of pixels", nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

COMPARE_PX = 420  # each image of a pair is shown in a COMPARE_PX × COMPARE_PX box
ALIGN_PX = 640  # registration works on images at most this size on a side
MIN_INLIERS = 12  # matched keypoints that must agree on one transform for the feature alignment
SCALE_RANGE = (1 / 3, 3.0)  # a magnification change outside this is not the same lesion photographed again
BACKGROUND = (238, 240, 243)  # letterbox and "no data" colour (the pages' light grey)
DIFFERENCE_FULL_SCALE = 80.0  # a grey-level change of this much (of 255) shows at full colour
MIN_LESION_CONTRAST = 0.08  # a lesion outline needs at least this relative darkening against the skin
MAX_LESION_SHARE = 0.8  # an "outline" covering more of the image than this is not one lesion

SCALE_CAVEAT = (
    "Both images are resampled to the same display size. Their true physical scale is unknown unless both "
    "come from the same dermatoscope at the same magnification: a lesion that looks larger may only have "
    "been photographed closer."
)


# ---------------------------------------------------------------- same display size


def fit_into_box(image: Image.Image, px: int = COMPARE_PX) -> Image.Image:
    """The image resampled (aspect kept) to fit a ``px`` × ``px`` box and centred on a neutral background:
    two images shown this way have the same size on screen whatever their resolution."""
    rgb = image.convert("RGB")
    scale = px / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    resampled = rgb.resize(size, Image.Resampling.LANCZOS)
    box = Image.new("RGB", (px, px), BACKGROUND)
    box.paste(resampled, ((px - size[0]) // 2, (px - size[1]) // 2))
    return box


def working_copy(image: Image.Image, px: int = ALIGN_PX) -> np.ndarray:
    """An RGB uint8 array at most ``px`` on a side (registration does not need more, and is faster)."""
    rgb = image.convert("RGB")
    if max(rgb.size) > px:
        scale = px / max(rgb.size)
        # BOX: area averaging, as OpenCV's INTER_AREA (Pillow has no Resampling.AREA: that raised AttributeError
        # for every image over ``px``, so the follow-up comparison failed on ordinary stored photographs).
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BOX)
    return np.asarray(rgb, dtype=np.uint8)


# ---------------------------------------------------------------- lesion mask


def lesion_mask(rgb: np.ndarray) -> np.ndarray:
    """A rough lesion outline (bool array): the darker-than-skin region found by Otsu's threshold once the
    slow shading of the photograph is divided out, the connected part that is large, central and clear of
    the border (a dermatoscope's dark corners touch it), holes filled. Good enough to centre and size a
    lesion for an approximate alignment, not to measure it."""
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) + 1
    smooth = cv2.GaussianBlur(grey, (0, 0), sigmaX=max(1.0, min(height, width) / 100))
    shading = cv2.GaussianBlur(grey, (0, 0), sigmaX=max(height, width) / 4)
    ratio = smooth / shading
    if float(ratio.max() - ratio.min()) < MIN_LESION_CONTRAST:
        return np.zeros((height, width), dtype=bool)  # nothing darker than the skin around it
    flat = cv2.normalize(ratio, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    _, dark = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if count <= 1:
        return np.zeros((height, width), dtype=bool)
    centre = np.array([width / 2, height / 2])
    best, best_score = 0, -math.inf
    for index in range(1, count):
        x, y, w, h, area = stats[index]
        touches = int(x == 0) + int(y == 0) + int(x + w >= width) + int(y + h >= height)
        distance = np.linalg.norm(centroids[index] - centre) / max(width, height)
        # Large and central wins; each border it runs along makes it more likely shading or vignette.
        score = math.log(area) - 6 * distance - 1.5 * touches
        if score > best_score:
            best, best_score = index, score
    mask = (labels == best).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    if filled.mean() > MAX_LESION_SHARE:
        return np.zeros((height, width), dtype=bool)  # "the lesion is the whole photograph": no outline found
    return filled.astype(bool)


# ---------------------------------------------------------------- registration


@dataclass(frozen=True)
class Alignment:
    """A similarity transform taking the later image's pixel coordinates onto the earlier image's."""

    matrix: np.ndarray = field(repr=False)  # 2 × 3, later (x, y) → earlier (x, y), both as passed to align()
    method: str  # "features" or "lesion outline"
    approximate: bool
    matched_points: int = 0  # keypoints that agreed on the transform (features only)

    @property
    def scale(self) -> float:
        """How much larger the later image would have to be drawn to match the earlier (1 = same)."""
        return float(math.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    @property
    def rotation_deg(self) -> float:
        return float(math.degrees(math.atan2(self.matrix[1, 0], self.matrix[0, 0])))

    @property
    def shift(self) -> tuple[float, float]:
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """Later-image (x, y) points → where they lie in the earlier image."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]

    def note(self) -> str:
        if not self.approximate:
            return (
                f"Aligned on {self.matched_points} matching skin and lesion landmarks (the later image resized "
                f"×{self.scale:.2f} and turned {self.rotation_deg:+.0f}° to match the earlier): a change in the "
                "lesion's own size or shape remains visible."
            )
        return (
            "Approximate alignment: too few matching landmarks, so the lesions' centres and areas (a rough "
            "brightness outline) were matched, without rotation. This makes both lesions the same size by "
            "construction: it cannot show growth, only changes in shape and colour."
        )


def align(earlier: np.ndarray, later: np.ndarray) -> Alignment | None:
    """Register ``later`` onto ``earlier`` (RGB uint8 arrays): landmarks first, the lesion outline if too few
    match; None when neither works (no lesion outline found in one of the images)."""
    return align_on_features(earlier, later) or align_on_outline(earlier, later)


def _grey(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # Local contrast: the two visits' exposure differs; CLAHE evens it before keypoints are found.
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey)


def align_on_features(earlier: np.ndarray, later: np.ndarray) -> Alignment | None:
    sift = cv2.SIFT_create(nfeatures=3000)
    kp_e, des_e = sift.detectAndCompute(_grey(earlier), None)
    kp_l, des_l = sift.detectAndCompute(_grey(later), None)
    if des_e is None or des_l is None or len(kp_e) < MIN_INLIERS or len(kp_l) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des_l, des_e, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]  # Lowe's ratio test
    if len(good) < MIN_INLIERS:
        return None
    src = np.float32([kp_l[m.queryIdx].pt for m in good])
    dst = np.float32([kp_e[m.trainIdx].pt for m in good])
    matrix, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0, maxIters=4000, confidence=0.995
    )
    if matrix is None or inliers is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    found = Alignment(matrix=matrix, method="features", approximate=False, matched_points=int(inliers.sum()))
    if not SCALE_RANGE[0] <= found.scale <= SCALE_RANGE[1]:
        return None
    return found


def align_on_outline(earlier: np.ndarray, later: np.ndarray) -> Alignment | None:
    moments = []
    for rgb in (earlier, later):
        mask = lesion_mask(rgb)
        area = int(mask.sum())
        if area < 25:
            return None
        ys, xs = np.nonzero(mask)
        moments.append((np.array([xs.mean(), ys.mean()]), area))
    (centre_e, area_e), (centre_l, area_l) = moments
    scale = math.sqrt(area_e / area_l)
    shift = centre_e - scale * centre_l
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return None  # outlines this different in size are more likely a failed outline than the same lesion
    matrix = np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])
    return Alignment(matrix=matrix, method="lesion outline", approximate=True)


# ---------------------------------------------------------------- aligned views


@dataclass(frozen=True)
class AlignedPair:
    earlier: np.ndarray = field(repr=False)  # RGB uint8
    later: np.ndarray = field(repr=False)  # RGB uint8, warped into the earlier image's frame, brightness-matched
    valid: np.ndarray = field(repr=False)  # bool: where the warped later image has pixels
    alignment: Alignment


def aligned_pair(earlier_image: Image.Image, later_image: Image.Image, px: int = ALIGN_PX) -> AlignedPair | None:
    """Both images at working size, the later one registered onto the earlier; None if it cannot be."""
    earlier, later = working_copy(earlier_image, px), working_copy(later_image, px)
    alignment = align(earlier, later)
    if alignment is None:
        return None
    size = (earlier.shape[1], earlier.shape[0])
    warped = cv2.warpAffine(later, alignment.matrix, size, flags=cv2.INTER_LINEAR, borderValue=BACKGROUND)
    valid = cv2.warpAffine(np.ones(later.shape[:2], np.uint8), alignment.matrix, size, flags=cv2.INTER_NEAREST) > 0
    return AlignedPair(
        earlier=earlier, later=match_brightness(warped, earlier, valid), valid=valid, alignment=alignment
    )


def match_brightness(image: np.ndarray, reference: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each channel's mean and contrast matched to the reference over the shared area: two visits' lighting
    differs, and a difference image should show the lesion, not the exposure."""
    if valid.sum() < 16:
        return image
    out = image.astype(np.float32).copy()
    for c in range(3):
        src, ref = out[..., c][valid], reference[..., c][valid].astype(np.float32)
        gain = ref.std() / src.std() if src.std() > 1e-3 else 1.0
        out[..., c][valid] = (src - src.mean()) * gain + ref.mean()
    return np.clip(out, 0, 255).astype(np.uint8)


def blend(pair: AlignedPair, weight_later: float = 0.5) -> Image.Image:
    """The aligned later image laid over the earlier one (``weight_later`` 0 = earlier only, 1 = later only)."""
    w = float(np.clip(weight_later, 0.0, 1.0))
    mixed = pair.earlier.astype(np.float32) * (1 - w) + pair.later.astype(np.float32) * w
    mixed[~pair.valid] = pair.earlier[~pair.valid]
    return Image.fromarray(np.clip(mixed, 0, 255).astype(np.uint8))


def difference(pair: AlignedPair) -> Image.Image:
    """Where the aligned images differ: grey-level change on a fixed scale (DIFFERENCE_FULL_SCALE at full
    colour, so small noise stays dark rather than being stretched), outside the shared area grey."""
    grey_e = cv2.cvtColor(pair.earlier, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey_l = cv2.cvtColor(pair.later, cv2.COLOR_RGB2GRAY).astype(np.float32)
    change = cv2.GaussianBlur(np.abs(grey_l - grey_e), (0, 0), sigmaX=1.5)
    level = np.clip(change / DIFFERENCE_FULL_SCALE * 255, 0, 255).astype(np.uint8)
    coloured = cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_MAGMA), cv2.COLOR_BGR2RGB)
    coloured[~pair.valid] = BACKGROUND
    return Image.fromarray(coloured)
