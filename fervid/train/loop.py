"""Training on FER-2013: Training split to fit, PublicTest to choose, PrivateTest measured once at the end.

A run checkpoints every epoch next to ``--out`` (``NAME.ckpt/last.pt`` and ``best.pt``) and resumes
from ``last.pt`` bit-for-bit: shuffling and augmentation are seeded by (seed, epoch).
Resuming a run whose epochs are all done only finalises it (PrivateTest once, ONNX export).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fervid.train import datasets
from fervid.errors import ModelError
from fervid.train import export, guided, nets


@dataclass
class TrainConfig:
    arch: str
    data: str
    out: str
    ferplus: str | None = None
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    command: str = ""
    resume: str | None = None
    init: str | None = None
    ema: float = 0.0
    erase: float = 0.0  # probability of random erasing per face
    mixup: float = 0.0  # Beta(a, a) parameter of mixup; 0: off
    teacher: tuple[str, ...] = ()  # NAME.pt or checkpoints of trained networks to distil from (their average)
    distill: float = 0.5  # weight of the teachers' soft targets in the loss
    temperature: float = 4.0
    teacher_mirror: bool = False  # the teachers read each face and its mirror image (as the shipped default does)
    teacher_once: bool = False  # the teachers read each unaugmented face once, before training (no teacher passes per step)
    private_test: bool = True  # measure PrivateTest for the chosen epoch at the end (off for runs that may not be final)
    quiet: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.teacher, (str, Path)):  # one teacher given as a plain path
            self.teacher = (str(self.teacher),)

    @property
    def ckpt_dir(self) -> Path:
        return Path(self.out).with_suffix(".ckpt")


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flip, rotation (±10°), scale (0.9-1.1) and shift (±10%) of a batch, on the batch's device."""
    n = x.shape[0]
    u = lambda lo, hi: torch.rand(n, generator=gen) * (hi - lo) + lo  # noqa: E731
    angle = u(-10, 10) * math.pi / 180
    scale = u(0.9, 1.1)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = u(-0.1, 0.1), u(-0.1, 0.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def random_erase(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Fill one random rectangle (2-33% of the face, aspect 0.3-3.3) with noise in a share ``p`` of the batch."""
    n, _, h, w = x.shape
    r = lambda: torch.rand(n, generator=gen)  # noqa: E731
    area = (0.02 + 0.31 * r()) * h * w
    aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * r())
    eh = torch.sqrt(area * aspect).clamp(1, h)
    ew = torch.sqrt(area / aspect).clamp(1, w)
    y0, x0 = r() * (h - eh), r() * (w - ew)
    on = r() < p
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    mask = ((ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1)) & (xs >= x0.view(n, 1, 1))
            & (xs < (x0 + ew).view(n, 1, 1)) & on.view(n, 1, 1)).unsqueeze(1).to(x.device)
    noise = (torch.rand(x.shape, generator=gen) * 255).to(x.device)
    return torch.where(mask, noise, x)


def learning_rate(cfg: TrainConfig, epoch: float) -> float:
    """One-cycle shape as a pure function of progress, so a resumed run may also extend ``--epochs``."""
    warm = 0.1 * cfg.epochs
    if epoch < warm:
        return cfg.lr * (0.1 + 0.9 * epoch / warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (epoch - warm) / (cfg.epochs - warm)))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().unsqueeze(1)


@torch.no_grad()
def predict(net: torch.nn.Module, images: np.ndarray, device: str, batch: int = 512) -> np.ndarray:
    net.eval()
    out = []
    for i in range(0, len(images), batch):
        x = nets.normalise(to_tensor(images[i:i + batch]).to(device))
        out.append(torch.softmax(net(x), 1).cpu().numpy())
    return np.concatenate(out)


def evaluate(net: torch.nn.Module, split: datasets.FerData, device: str) -> tuple[float, float]:
    """(loss, accuracy) against the FER-2013 hard labels."""
    probs = predict(net, split.images, device)
    loss = float(-np.log(np.clip(probs[np.arange(len(probs)), split.labels], 1e-12, None)).mean())
    return loss, float((probs.argmax(1) == split.labels).mean())


def targets(split: datasets.FerData, idx: np.ndarray, smoothing: float) -> torch.Tensor:
    """Soft targets: FER+ votes where given (blended half-and-half with the FER-2013 label), else one-hot."""
    hard = np.eye(7, dtype=np.float32)[split.labels[idx]]
    if split.soft is not None:
        soft = split.soft[idx]
        has = soft.sum(1, keepdims=True) > 0
        hard = np.where(has, 0.5 * hard + 0.5 * soft, hard)
    t = torch.from_numpy(hard)
    return t * (1 - smoothing) + smoothing / 7


@torch.no_grad()
def update_ema(ema_net: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """Exponential moving average of weights and batch-norm statistics: a cheap, steadier final model."""
    for e, p in zip(ema_net.state_dict().values(), net.state_dict().values()):
        if e.is_floating_point():
            e.lerp_(p, 1 - decay)
        else:
            e.copy_(p)


def initial_weights(path: str) -> dict:
    """Weights to warm-start from: a training checkpoint (its averaged weights if it has them) or NAME.pt."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("ema", "model", "state_dict"):
        if saved.get(key) is not None:
            return saved[key]
    raise ValueError(f"{path}: no weights found (expected a checkpoint or a NAME.pt)")


def load_teacher(path: str, device: str) -> torch.nn.Module:
    """A trained network to distil from: NAME.pt (``{"arch", "state_dict"}``) or a training checkpoint."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    arch = saved.get("arch") or saved.get("config", {}).get("arch")
    if arch is None:
        raise ValueError(f"{path}: not a fervid NAME.pt or checkpoint (no architecture recorded)")
    net = nets.build(arch)
    net.load_state_dict(initial_weights(path))
    return net.to(device).eval()


def teacher_log_probs(teachers, x: torch.Tensor, temperature: float, mirror: bool, autocast) -> torch.Tensor:
    """Log of the teachers' mean probabilities at ``temperature`` (each also on the mirror image
    with ``mirror``): an ensemble teaches as one network, the way the shipped ensembles read."""
    views = [x, x.flip(-1)] if mirror else [x]
    with torch.no_grad(), autocast:
        logp = torch.stack([F.log_softmax(t(nets.normalise(v)).float() / temperature, 1)
                            for t in teachers for v in views])
    return torch.logsumexp(logp, 0) - math.log(len(logp))


def _autocast(device: torch.device):
    """bfloat16 on a GPU; a CPU stays in float32, where runs are tested bit-for-bit on resume."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def teacher_probs_once(teachers, images: torch.Tensor, cfg: TrainConfig, batch: int = 512) -> torch.Tensor:
    """The teachers' probabilities at the distillation temperature for every unaugmented training
    face, computed once: distillation then costs no teacher pass per step (a mirror-averaged
    teacher is unchanged by the flips of augmentation; shifts, turns and erasing it does not see)."""
    autocast = _autocast(images.device)
    return torch.cat([teacher_log_probs(teachers, images[i:i + batch].float().unsqueeze(1), cfg.temperature,
                                        cfg.teacher_mirror, autocast).exp()
                      for i in range(0, len(images), batch)])


def _cached_teacher_probs(cfg: TrainConfig, teachers, images: torch.Tensor) -> torch.Tensor:
    """``teacher_probs_once``, kept in the checkpoint folder so that a resumed run need not read
    the faces again (minutes on a CPU); recomputed when the teachers or their reading differ."""
    path = cfg.ckpt_dir / "teacher_probs.pt"
    key = {"teachers": list(cfg.teacher), "mirror": cfg.teacher_mirror, "temperature": cfg.temperature,
           "data": cfg.data, "faces": len(images)}
    if path.exists():
        saved = torch.load(path, map_location=cfg.device, weights_only=False)
        if saved.get("key") == key:
            return saved["probs"]
    t0 = time.time()
    probs = teacher_probs_once(teachers, images, cfg)
    _atomic_save({"key": key, "probs": probs}, path)
    log(cfg, f"the teachers read the {len(images)} training faces once ({time.time() - t0:.0f}s)")
    return probs


def train_epoch(cfg: TrainConfig, net, opt, images, soft_targets, labels, epoch: int, steps_per_epoch: int,
                ema_net=None, teachers=(), teacher_probs=None):
    """One pass over the training split; returns (summed loss, correct count). Seeded by (seed, epoch).
    Distils from ``teachers`` run on each augmented batch, or from ``teacher_probs`` read once."""
    net.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    order = torch.randperm(len(images), generator=gen).to(images.device)
    total_loss = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    autocast = _autocast(images.device)
    bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"epoch {epoch}/{cfg.epochs}",
               disable=cfg.quiet, leave=False, unit="batch")
    for step, i in enumerate(bar):
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, epoch - 1 + step / steps_per_epoch)
        idx = order[i:i + cfg.batch_size]
        x = augment(images[idx].float().unsqueeze(1), gen)
        y = soft_targets[idx]
        t = teacher_probs[idx] if teacher_probs is not None else None
        if cfg.erase:
            x = random_erase(x, cfg.erase, gen)
        if cfg.mixup:
            lam = float(np.random.default_rng([cfg.seed, epoch, step]).beta(cfg.mixup, cfg.mixup))
            perm = torch.randperm(len(idx), generator=gen).to(x.device)
            x, y = lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
            if t is not None:
                t = lam * t + (1 - lam) * t[perm]
        with autocast:
            logits = net(nets.normalise(x)).float()
        loss = torch.sum(-y * F.log_softmax(logits, 1), 1).mean()
        if teachers:
            t = teacher_log_probs(teachers, x, cfg.temperature, cfg.teacher_mirror, autocast)
        elif t is not None:
            t = t.clamp_min(1e-12).log()  # a probability rounded to 0 would make the loss nan
        if t is not None:
            soft = F.kl_div(F.log_softmax(logits / cfg.temperature, 1), t, log_target=True,
                            reduction="batchmean") * cfg.temperature ** 2
            loss = (1 - cfg.distill) * loss + cfg.distill * soft
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema_net is not None:
            update_ema(ema_net, net, cfg.ema)
        total_loss += loss.detach() * len(idx)
        correct += (logits.argmax(1) == labels[idx]).sum()
    return float(total_loss), int(correct)


def train(cfg: TrainConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = datasets.load(cfg.data, cfg.ferplus)
    train_set = data.split("Training")
    public = data.split("PublicTest") if "PublicTest" in data.usage else data.split("Test")
    net = nets.build(cfg.arch).to(cfg.device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    state = {"epoch": 0, "best_acc": -1.0, "best_epoch": 0, "history": [], "seconds": 0.0}
    cfg.ckpt_dir.mkdir(parents=True, exist_ok=True)
    if cfg.init:
        try:
            nets.load_widened(net, initial_weights(cfg.init))
        except ValueError as err:
            raise ModelError(f"--init {cfg.init}: {err} (--arch {cfg.arch})") from None
        log(cfg, f"warm start from the weights in {cfg.init}")
    ema_net = copy.deepcopy(net) if cfg.ema else None
    teachers = [load_teacher(path, cfg.device) for path in cfg.teacher]
    if cfg.resume:
        ckpt = torch.load(cfg.resume, map_location=cfg.device, weights_only=False)
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if ema_net is not None:
            ema_net.load_state_dict(ckpt["ema"])
        state = ckpt["state"]
        log(cfg, f"resumed from {cfg.resume} after epoch {state['epoch']}")
    log(cfg, f"{cfg.arch}: {nets.count_parameters(net):,} parameters; train {len(train_set)}, "
             f"select on {public.usage[0] if len(set(public.usage)) == 1 else 'Test (PublicTest+PrivateTest mixed)'} {len(public)}")

    # The whole split lives on the device (66 MB as uint8): batches are gathered and augmented there.
    images = torch.from_numpy(train_set.images).to(cfg.device)
    soft_targets = targets(train_set, np.arange(len(train_set)), cfg.label_smoothing).to(cfg.device)
    labels = torch.from_numpy(train_set.labels).to(cfg.device)
    teacher_probs = None
    if teachers and cfg.teacher_once:
        teacher_probs, teachers = _cached_teacher_probs(cfg, teachers, images), []
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        t0 = time.time()
        total_loss, correct = train_epoch(cfg, net, opt, images, soft_targets, labels, epoch, steps_per_epoch,
                                          ema_net, teachers, teacher_probs)
        seen = len(train_set)
        val_loss, val_acc = evaluate(ema_net or net, public, cfg.device)
        secs = time.time() - t0
        state["epoch"], state["seconds"] = epoch, state["seconds"] + secs
        state["history"].append({"epoch": epoch, "train_loss": total_loss / seen, "train_acc": correct / seen,
                                 "public_loss": val_loss, "public_acc": val_acc, "seconds": secs})
        best = val_acc > state["best_acc"]
        if best:
            state["best_acc"], state["best_epoch"] = val_acc, epoch
        ckpt = {"model": net.state_dict(), "optimizer": opt.state_dict(), "state": state, "config": asdict(cfg),
                "ema": ema_net.state_dict() if ema_net is not None else None}
        _atomic_save(ckpt, cfg.ckpt_dir / "last.pt")
        if best:
            _atomic_save(ckpt, cfg.ckpt_dir / "best.pt")
        log(cfg, f"epoch {epoch:3d}/{cfg.epochs} train loss {total_loss / seen:.4f} acc {correct / seen:.4f} | "
                 f"PublicTest loss {val_loss:.4f} acc {val_acc:.4f}{' *' if best else ''} | {secs:.0f}s")
    return finalise(cfg, data)


def finalise(cfg: TrainConfig, data: datasets.FerData) -> dict:
    """Reload the checkpoint chosen on PublicTest, measure PrivateTest once, export the ONNX model."""
    ckpt = torch.load(cfg.ckpt_dir / "best.pt", map_location="cpu", weights_only=False)
    net = nets.build(cfg.arch)
    net.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    state = ckpt["state"]
    full = torch.load(cfg.ckpt_dir / "last.pt", map_location="cpu", weights_only=False)["state"]
    has_private = "PrivateTest" in data.usage
    measure = has_private and cfg.private_test
    private_acc = evaluate(net, data.split("PrivateTest"), "cpu")[1] if measure else None
    public_acc = state["best_acc"]
    meta = {
        "architecture": cfg.arch,
        "parameters": nets.count_parameters(net),
        "trained_on": f"{Path(cfg.data).name} Training split" + (" + FER+ soft labels" if cfg.ferplus else ""),
        "recipe": (f"AdamW lr {cfg.lr:g} wd {cfg.weight_decay:g}, one-cycle cosine, batch {cfg.batch_size}"
                   + (f", weight EMA {cfg.ema:g}" if cfg.ema else "")
                   + (f", random erasing {cfg.erase:g}" if cfg.erase else "")
                   + (f", mixup {cfg.mixup:g}" if cfg.mixup else "")
                   + (f", distilled from {_teacher_names(cfg.teacher)}"
                      f"{' mirror-averaged' if cfg.teacher_mirror else ''}"
                      f"{' read once' if cfg.teacher_once else ''} "
                         f"(weight {cfg.distill:g}, T {cfg.temperature:g})"
                      if cfg.teacher else "")
                   + (f", warm start from {cfg.init}" if cfg.init else "")),
        "selected_on": "PublicTest" if has_private else "Test (PublicTest+PrivateTest mixed)",
        "epochs": f"{state['best_epoch']} of {full['epoch']} (chosen on PublicTest)",
        "public_test_accuracy": f"{public_acc:.4f}",
        "private_test_accuracy": f"{private_acc:.4f}" if private_acc is not None else "not measured",
        "training_seconds": f"{full['seconds']:.0f}",
        "command": cfg.command,
    }
    export.export_onnx(net, cfg.out, meta)
    guided.save_weights(net, cfg.arch, cfg.out)  # for guided back-propagation (fervid explain)
    (cfg.ckpt_dir / "history.json").write_text(json.dumps(full["history"], indent=1))
    log(cfg, f"chose epoch {state['best_epoch']} (PublicTest {public_acc:.4f}); PrivateTest "
             f"{meta['private_test_accuracy']}; wrote {cfg.out}")
    return meta


def _teacher_names(paths: tuple[str, ...]) -> str:
    """Teachers in the recipe: their file names, or their paths where the names repeat (seeds of
    one architecture are all NAME.pt in their run folders)."""
    names = [Path(p).name for p in paths]
    return " + ".join(names if len(set(names)) == len(names) else paths)


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def log(cfg: TrainConfig, msg: str) -> None:
    tqdm.write(msg)
    with open(cfg.ckpt_dir / "train.log", "a") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
