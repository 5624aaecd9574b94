"""training.bundle: the format of a data bundle's bundle.json, read by the trainer, written by bench."""

import json

from training.bundle import DATASETS, MANIFEST, inference_preprocess, manifest, read_manifest, write_manifest


def test_manifest_round_trip_and_what_the_trainer_reads(tmp_path):
    content = manifest("WEBP", 75, {"isic2020": 384, "ham10000": None}, inference_max_side=384)
    write_manifest(tmp_path, content)
    assert json.loads((tmp_path / MANIFEST).read_text()) == content == read_manifest(tmp_path)
    assert content["codec"] == {"format": "WEBP", "quality": 75}
    # the trainer is given BUNDLE/datasets as --data-root and finds the re-encoding beside it
    assert inference_preprocess(tmp_path / DATASETS) == {"reencode": {"format": "WEBP", "quality": 75, "max_side": 384}}


def test_original_images_need_no_preprocessing(tmp_path):
    assert inference_preprocess(None) is None
    assert inference_preprocess(tmp_path / "datasets") is None  # no bundle.json: original files
    assert read_manifest(tmp_path) is None


def test_bench_writes_the_bundle_format_of_training():
    from bench import bundle_data

    content = manifest("WEBP", bundle_data.QUALITY, bundle_data.SIZES, bundle_data.SIZES["isic2020"])
    assert content == {
        "codec": {"format": "WEBP", "quality": 75},
        "max_side": {"isic2020": 384, "isic2017": 224, "ham10000": None},
        "inference_preprocess": {"reencode": {"format": "WEBP", "quality": 75, "max_side": 384}},
    }
