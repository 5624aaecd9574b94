"""An image from another camera or resolution than the patient's others is named (real ISIC images)."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from PIL import Image

from data.image_source import ImageSource, camera_model, describe_source, fine_detail, source_caveats


@pytest.fixture(scope="module")
def patient_images(datasets_dir) -> list[Image.Image]:
    """Six images of one complete ISIC 2020 patient (one pipeline: 384 px JPEG q90)."""
    frame = pd.read_csv(datasets_dir / "isic2020_patients" / "train.csv")
    names = frame[frame.patient_id == frame.patient_id.value_counts().index[0]].image_name.sort_values()[:6]
    return [Image.open(datasets_dir / "isic2020_patients" / "train" / f"{n}.jpg").convert("RGB") for n in names]


@pytest.fixture(scope="module")
def small_photo(datasets_dir) -> Image.Image:
    return Image.open(sorted((datasets_dir / "ham10000" / "images").glob("*.jpg"))[0]).convert("RGB")


def test_one_pipeline_raises_no_caveat(patient_images):
    assert source_caveats([describe_source(im) for im in patient_images]) == [None] * len(patient_images)


def test_a_200x150_image_among_384px_dermoscopy_is_named(patient_images, small_photo):
    sources = [describe_source(im) for im in [*patient_images[:4], small_photo]]
    caveats = source_caveats(sources)
    assert caveats[:4] == [None] * 4
    assert "200×150 px" in caveats[4] and "about 384×384 px" in caveats[4]
    assert "camera or resolution, not the lesion" in caveats[4]


def test_an_upscaled_image_of_the_usual_size_is_named_by_its_missing_detail(patient_images):
    w, h = patient_images[0].size
    upscaled = patient_images[0].resize((w // 3, h // 3), Image.BILINEAR).resize((w, h), Image.BICUBIC)
    assert upscaled.size == patient_images[0].size
    assert fine_detail(upscaled) < 0.6 * fine_detail(patient_images[0])
    caveats = source_caveats([describe_source(im) for im in [*patient_images[1:5], upscaled]])
    assert caveats[:4] == [None] * 4
    assert "less fine detail" in caveats[4] and "px" not in caveats[4]


def test_earlier_images_count_as_the_patients_usual_source(patient_images, small_photo):
    """With only two new images nothing can be said; the earlier visits' images make the comparison."""
    new = [describe_source(patient_images[0]), describe_source(small_photo)]
    assert source_caveats(new) == [None, None]
    earlier = [describe_source(im) for im in patient_images[1:4]]
    caveats = source_caveats(new, references=earlier)
    assert len(caveats) == 2 and caveats[0] is None and "200×150" in caveats[1]


def test_a_different_exif_camera_is_named():
    def shot(camera):
        return ImageSource(1024, 768, 0.5, camera)

    caveats = source_caveats([shot("Canon EOS 5D"), shot("Canon EOS 5D"), shot(None), shot("Apple iPhone 12")])
    assert caveats[:3] == [None, None, None]
    assert "taken with Apple iPhone 12, the others with Canon EOS 5D" in caveats[3]


def test_camera_model_reads_the_upload_exif():
    image = Image.new("RGB", (32, 32))
    exif = Image.Exif()
    exif[271], exif[272] = "Canon", "Canon EOS 5D"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert camera_model(Image.open(io.BytesIO(buffer.getvalue()))) == "Canon EOS 5D"
    assert camera_model(image) is None


def test_too_small_to_measure_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        fine_detail(Image.new("RGB", (4, 40)))
