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


def test_an_original_bundle_asks_inference_for_nothing(tmp_path):
    from training.bundle import original_manifest

    write_manifest(tmp_path, original_manifest(["isic2020"]))
    assert inference_preprocess(tmp_path / DATASETS) is None


def test_shards_stay_under_the_limit_and_keep_every_byte(tmp_path, monkeypatch):
    import hashlib
    import tarfile

    from bench import bundle_data

    files = []
    for i, size in enumerate([300_000, 500_000, 200_000, 700_000, 50_000]):
        path = tmp_path / "src" / f"img_{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes([i]) * size)
        files.append((path, f"{DATASETS}/toy/train/img_{i}.jpg"))
    monkeypatch.setattr(bundle_data, "original_files", lambda: files)
    monkeypatch.setattr(bundle_data, "imagenet_weights", lambda: b"weights")
    shards = bundle_data.bundle_original(tmp_path / "out", shard_mib=1.0)
    assert len(shards) >= 2
    assert all(p.stat().st_size <= 2**20 for p in shards)
    unpacked = tmp_path / "unpacked"
    for shard in shards:
        with tarfile.open(shard) as tar:
            tar.extractall(unpacked, filter="data")
    for path, name in files:
        assert hashlib.sha256((unpacked / name).read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()
    assert inference_preprocess(unpacked / DATASETS) is None  # bundle.json travelled in the first shard
    assert (unpacked / "imagenet" / bundle_data.IMAGENET_FILE).read_bytes() == b"weights"


def test_a_file_larger_than_a_shard_is_refused(tmp_path):
    import pytest

    from bench.bundle_data import plan_shards

    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(ValueError, match="larger than a shard"):
        plan_shards([(big, "datasets/a/big.jpg", None)], limit=4096)
