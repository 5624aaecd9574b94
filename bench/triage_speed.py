"""Triage speed on this machine's CPU: one patient of N real lesions, end to end, optimised vs naive.

    python -m bench.triage_speed [--lesions 50] [--repeats 3] [--checkpoint DIR] [--write bench/RESULTS.md]

* optimised: model.triage.triage_patient — JPEG decoding in a thread pool overlapping the network,
  batches, torch.inference_mode, conv+BN folded and channels_last on CPU; 2x TTA, embedding, ugly duckling,
  ranking.
* naive (the original app): one image at a time, batch 1, torch.no_grad only, no threads, the network as
  loaded; same 2x TTA, same ugly-duckling and ranking code.
Runs are interleaved (naive, optimised, naive, …) and the median is reported, because other processes
may share the CPU; the best run is shown too. Grad-CAM is timed per lesion, one lesion per call (what the
dashboard does on a click) and batched. Figures are printed, never asserted in a test.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from data.datasets import datasets_root
from model.checkpoint import DEFAULT_CHECKPOINT, REPO_ROOT
from model.predictor import TTA_VIEWS, Predictor
from model.triage import LesionInput, PatientInfo, triage_patient
from model.ugly_duckling import rank_descending, ugly_duckling

SECTION = "## Triage speed (CPU)"
GOAL_SPEEDUP, GOAL_SECONDS, GOAL_CAM = 3.0, 10.0, 0.5


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "torch": torch.__version__,
        "load": load,
        "torch_threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
    }


def load_predictor(checkpoint: Path | None) -> tuple[Predictor, str]:
    folder = checkpoint or DEFAULT_CHECKPOINT
    if (folder / "config.json").is_file():
        predictor = Predictor.from_checkpoint(folder, device="cpu")
        shown = folder.resolve().relative_to(REPO_ROOT) if folder.resolve().is_relative_to(REPO_ROOT) else folder
        return predictor, f"checkpoint {shown} ({predictor.model_id}, {predictor.network.image_size} px)"
    from model.checkpoint import save_checkpoint
    from model.network import NetworkConfig
    from model.pretrained import build_network

    tmp = Path(tempfile.mkdtemp(prefix="bench-ckpt-"))
    net = build_network(NetworkConfig(image_size=224)).eval()
    save_checkpoint(tmp, net, {"model_id": "fresh-imagenet-lite0-224", "operating_point": {"threshold": 0.5}})
    return (
        Predictor.from_checkpoint(tmp, device="cpu"),
        f"no trained model at {folder.name}: a fresh ImageNet tf_efficientnet_lite0 checkpoint at 224 px "
        "(untrained heads: timing only)",
    )


def naive_triage(predictor: Predictor, blobs: list[bytes], tta: int, patient: PatientInfo) -> pd.DataFrame:
    """The original app's loop: decode, transform and run each image alone; no_grad; no threads."""
    record = pd.DataFrame({"site": ["unknown"], "sex": [patient.sex], "age": [patient.age]})
    meta = torch.from_numpy(predictor.encoder.encode(record))
    p, emb = [], []
    for blob in blobs:
        x = predictor.transform(Image.open(io.BytesIO(blob)).convert("RGB")).unsqueeze(0)
        probs, embeds = [], []
        with torch.no_grad():
            for view in TTA_VIEWS[:tta]:
                out = predictor.model(view(x), meta)
                probs.append(torch.sigmoid(out["logit"]).item())
                embeds.append(out["embedding"][0].numpy())
        p.append(float(np.mean(probs)))
        emb.append(np.mean(embeds, axis=0))
    ud = ugly_duckling(np.stack(emb))
    return pd.DataFrame({"p_melanoma": p, "ugly_duckling": ud, "rank": rank_descending(np.asarray(p))})


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    before = machine()
    predictor, model_text = load_predictor(args.checkpoint)
    folder = datasets_root() / "isic2020" / "train"
    paths = sorted(folder.glob("*.jpg"))[: args.lesions]
    if len(paths) < args.lesions:
        raise SystemExit(f"need {args.lesions} JPEGs in {folder}, found {len(paths)}")
    blobs = [p.read_bytes() for p in paths]  # uploads arrive as bytes; decoding is part of the timing
    sizes = sorted({Image.open(io.BytesIO(b)).size for b in blobs})
    lesions = [LesionInput(p.stem, b, filename=p.name) for p, b in zip(paths, blobs, strict=True)]
    patient = PatientInfo(age=55, sex="female")

    variants = {
        "naive: batch 1, no_grad, no threads": lambda: naive_triage(predictor, blobs, args.tta, patient),
        "batched + threads + inference_mode (network as loaded)": lambda: triage_patient(
            predictor, lesions, patient, tta=args.tta, fast_model=False, batch_size=args.batch_size
        ),
        "optimised (+ conv+BN folded, channels_last) = triage_patient": lambda: triage_patient(
            predictor, lesions, patient, tta=args.tta, batch_size=args.batch_size
        ),
    }
    first_call = timed(variants["optimised (+ conv+BN folded, channels_last) = triage_patient"])  # builds the twin
    for fn in variants.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            times[name].append(timed(fn))

    # Same answers? (optimised vs naive)
    fast = triage_patient(predictor, lesions, patient, tta=args.tta, batch_size=args.batch_size).table
    slow = naive_triage(predictor, blobs, args.tta, patient)
    agree = float(np.abs(fast["p_melanoma"].to_numpy() - slow["p_melanoma"].to_numpy()).max())

    # Grad-CAM: what a click costs (one lesion, cold cache) and batched over lesions.
    from model import cam, cam_methods
    from model.triage import decode_lesion

    images = [decode_lesion(les) for les in lesions[: args.cam_lesions]]
    cam.explain(predictor, images[0])  # builds the CAM copy once
    cam_single: dict[str, float] = {}
    for method in cam_methods.CAM_METHODS:
        cam.clear_cache()
        elapsed = timed(lambda m=method: [cam.explain(predictor, im, method=m) for im in images])
        cam_single[method] = elapsed / len(images)
    cam.clear_cache()
    cam_batched = timed(lambda: cam.explain_many(predictor, images, method="gradcam")) / len(images)
    cam_cached = timed(lambda: cam.explain_many(predictor, images, method="gradcam")) / len(images)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    best = {name: min(ts) for name, ts in times.items()}
    names = list(variants)
    return {
        "machine": before,
        "model": model_text,
        "lesions": args.lesions,
        "tta": args.tta,
        "sizes": sizes,
        "repeats": args.repeats,
        "median": med,
        "best": best,
        "names": names,
        "first_call": first_call,
        "agree": agree,
        "speedup": med[names[0]] / med[names[-1]],
        "speedup_best": best[names[0]] / best[names[-1]],
        "cam_single": cam_single,
        "cam_batched": cam_batched,
        "cam_cached": cam_cached,
        "cam_lesions": len(images),
        "date": time.strftime("%Y-%m-%d"),
        "load_after": machine()["load"],
    }


def render(r: dict) -> str:
    m = r["machine"]
    n = r["lesions"]
    names = r["names"]
    opt = names[-1]
    size_text = ", ".join(f"{w}×{h}" for w, h in r["sizes"])
    lines = [
        SECTION,
        "",
        f"Measured {r['date']} with `python -m bench.triage_speed` on {m['nproc']} CPU core(s) ({m['cpu']}), "
        f"torch {m['torch']} ({m['torch_threads']} threads), Python {m['python']}, no GPU; load average "
        f"{m['load']} (1/5/15 min) when it started, {r['load_after']} when it ended.",
        f"Model: {r['model']}.",
        f"Patient: {n} real ISIC 2020 JPEGs ({size_text}) passed as bytes, {r['tta']}× TTA, decoded, scored, "
        f"embedded, ugly-duckling scored and ranked. Median of {r['repeats']} interleaved runs (best in brackets); "
        "other processes may share this CPU, so single runs vary.",
        "",
        "| pipeline | seconds for the patient | images/s |",
        "|---|---|---|",
    ]
    for name in names:
        lines.append(f"| {name} | {r['median'][name]:.2f} ({r['best'][name]:.2f}) | {n / r['median'][name]:.1f} |")
    goal_speed = "met" if r["speedup"] >= GOAL_SPEEDUP else "NOT met"
    goal_time = "met" if r["median"][opt] <= GOAL_SECONDS else "NOT met"
    cam_click = r["cam_single"]["gradcam"]
    goal_cam = "met" if cam_click <= GOAL_CAM else "NOT met"
    lines += [
        "",
        f"- Speed-up optimised vs naive: **{r['speedup']:.1f}×** (best runs: {r['speedup_best']:.1f}×); goal ≥ "
        f"{GOAL_SPEEDUP:g}×: {goal_speed}.",
        f"- {n} lesions end to end: **{r['median'][opt]:.2f} s**; goal ≤ {GOAL_SECONDS:g} s: {goal_time}. The first "
        f"call of a session also builds the folded twin: {r['first_call']:.2f} s.",
        f"- Same answers: max |ΔP(melanoma)| optimised vs naive = {r['agree']:.1e}.",
        f"- Grad-CAM per lesion (one lesion per call, cold cache, overlay-ready heatmap at the original "
        f"{size_text}): "
        + ", ".join(f"{k} {v:.3f} s" for k, v in r["cam_single"].items())
        + f"; batched Grad-CAM {r['cam_batched']:.3f} s/lesion; cached {r['cam_cached'] * 1000:.1f} ms/lesion. "
        f"Goal ≤ {GOAL_CAM:g} s: {goal_cam}.",
        "",
        "What helped (measured on this machine, lite0 at 224 px): folding conv+BN and channels_last memory "
        "cut the network from ~14 ms per image-view at batch 1 to ~5 ms at batch 4 (model.fast_cpu.CPU_BATCH); "
        "larger batches are slower here (9 ms at 16, 12 ms at 32: the activations leave the cache), and plain "
        "NCHW batches are slower than batch 1 (middle row). Decoding in threads overlaps the network, but on "
        "2 cores its ~3.5 ms per 512 px JPEG (decode + resize) still adds up, and it is the same work in both "
        "pipelines, so the end-to-end ratio is well below the network's own 2.7×; it also varies run to run "
        "with what else is using this shared CPU.",
        "",
        "Tried and not used: bf16 autocast (~25% faster, but P(melanoma) moved by up to 0.09, mean 0.014, on 40 "
        "ISIC 2020 images, so the dashboard would no longer match the CLI); TorchScript trace+freeze "
        "(2.5× slower than the folded eager model); torch.compile (25 s to compile, then only ~10% faster); "
        "flush-denormal (no effect); JPEG draft decoding (changes the pixels the model sees: up to 0.03 in "
        "P(melanoma) for photos ≥ 8× the input, so the dashboard would no longer match the CLI). The remaining "
        "time is convolution arithmetic: ≥ 3× over batch-1 no_grad would need lower precision (bf16, int8) "
        "or a smaller/lower-resolution model, which changes the scores and needs the model re-validated.",
        "",
        "Grad-CAM runs on a frozen copy and back-propagates only from the logit to the last feature map, so a "
        "click costs about one forward pass.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this benchmark's own section; other sections of the file are left alone."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + (old[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(new.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.triage_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lesions", type=int, default=50)
    parser.add_argument("--tta", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: model.fast_cpu.CPU_BATCH")
    parser.add_argument("--cam-lesions", type=int, default=10)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: model/weights/default if present")
    parser.add_argument("--write", type=Path, default=None, help="update this file's '## Triage speed (CPU)' section")
    args = parser.parse_args(argv)
    text = render(run(args))
    print(text)
    if args.write:
        write_section(args.write, text)
        print(f"-> {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
