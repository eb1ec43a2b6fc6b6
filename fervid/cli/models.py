"""The commands that make and score emotion models: train, quantize, mirror, ensemble (the
``train`` extra), evaluate, explain."""

from __future__ import annotations

import shlex
import sys

import click

from fervid.cli.common import EXIT_USAGE, fail
from fervid.errors import FervidError
from fervid.labels import EMOTIONS


@click.command(short_help="Train a paper CNN on FER-2013 (needs fervid[train]).")
@click.option("--arch", type=click.Choice(["mini_xception", "mini_xception_52", "mini_xception_144", "fcn", "resnet_s", "resnet_m", "resnet18"]), required=True,
              help="Network: the paper's mini_xception (_144: its last block 144 wide, 64,599 parameters; _52: faces "
                   "enlarged to 52 pixels) and fcn; resnet18 (a teacher), resnet_m and resnet_s (students).")
@click.option("--data", required=True, type=click.Path(), help="fer2013.csv(.gz) or an image-folder tree (train/, test/).")
@click.option("--ferplus", type=click.Path(), default=None, help="FER+ votes (fer2013new.csv) to blend in as soft labels.")
@click.option("--out", required=True, type=click.Path(), help="ONNX file to write; checkpoints go to OUT.ckpt/.")
@click.option("--epochs", default=60, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="Peak learning rate of the one-cycle schedule (AdamW).")
@click.option("--weight-decay", default=1e-4, show_default=True)
@click.option("--label-smoothing", default=0.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:1 ...")
@click.option("--threads", default=0, help="torch CPU threads (0: torch's default).")
@click.option("--resume", type=click.Path(exists=True), default=None, help="Checkpoint (OUT.ckpt/last.pt) to go on from.")
@click.option("--init", type=click.Path(exists=True), default=None,
              help="Warm start: weights from a checkpoint or NAME.pt (of this network or a narrower copy of it, "
                   "widened to compute the same function); fresh optimiser and schedule.")
@click.option("--ema", default=0.0, show_default=True,
              help="Decay of an exponential moving average of the weights (e.g. 0.999); 0: off. The average is what is evaluated and exported.")
@click.option("--erase", default=0.0, show_default=True, help="Probability of random erasing per training face.")
@click.option("--mixup", default=0.0, show_default=True, help="Mixup Beta(a, a) parameter; 0: off.")
@click.option("--teacher", type=click.Path(exists=True), multiple=True,
              help="Distil from this trained network (NAME.pt or a checkpoint); repeated, from their average.")
@click.option("--distill", default=0.5, show_default=True, help="Weight of the teachers' soft targets in the loss.")
@click.option("--teacher-mirror", is_flag=True, help="The teachers' soft targets averaged over each face and its mirror image.")
@click.option("--teacher-once", is_flag=True,
              help="The teachers read each unaugmented training face once, before training: no teacher passes per step.")
@click.option("--temperature", default=4.0, show_default=True, help="Distillation temperature.")
@click.option("--private-test/--no-private-test", default=True, show_default=True,
              help="Measure PrivateTest for the chosen epoch at the end. Off for a run that may not be the "
                   "one you ship; measure it once later with fervid evaluate --split PrivateTest --record.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
def train(verbose: bool, **kwargs) -> None:
    """Train a paper CNN or a ResNet on FER-2013 and export it as an ONNX model (needs fervid[train]).

    Checkpoints are chosen on PublicTest; PrivateTest is measured once, for the chosen epoch.

    \b
    Examples:
      fervid train --arch mini_xception --data fer2013.csv.gz --out runs/mx/mini_xception.onnx --epochs 30 --lr 2e-3
      fervid train --arch resnet_s --data fer2013.csv.gz --out runs/rs/resnet_s.onnx --erase 0.5 --mixup 0.2 --ema 0.999
      fervid train --arch fcn --data fer2013.csv.gz --out runs/fcn/fcn.onnx --resume runs/fcn/fcn.ckpt/last.pt
    """
    try:
        from fervid.train import require

        require("torch", "onnx")
        from fervid.train.loop import TrainConfig
        from fervid.train.loop import train as run

        run(TrainConfig(command="fervid " + shlex.join(sys.argv[1:]), **kwargs))
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_USAGE)


def _derived_model(what: str):
    """Options shared by the commands that make a model from models (quantize, mirror, ensemble)."""
    opts = [
        click.option("--data", required=True, type=click.Path(),
                     help=f"fer2013.csv(.gz): its test splits score the {what}."),
        click.option("--out", required=True, type=click.Path(), help="ONNX file to write."),
        click.option("--final", is_flag=True, help=f"Also measure PrivateTest (do it once, for the {what} you ship)."),
        click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors."),
    ]

    def wrap(f):
        for opt in reversed(opts):
            f = opt(f)
        return f

    return wrap


def _train_module(name: str, *needs: str):
    """``fervid.train.NAME``, once the packages it needs are known to be there."""
    import importlib

    from fervid.train import require

    require(*needs)
    return importlib.import_module(f"fervid.train.{name}")


def _make_model(make, out: str, source: str, verbose: bool) -> None:
    """Run ``make(command)`` and report the scores it wrote into ``out``; ``source`` names the
    metadata entry with the accuracy of what it was made from."""
    try:
        meta = make("fervid " + shlex.join(sys.argv[1:]))
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_USAGE)
    click.echo(f"wrote {out}: PublicTest {meta['public_test_accuracy']} "
               f"({source.split('_')[0]} {meta[source]}), PrivateTest {meta['private_test_accuracy']}")


@click.command(short_help="Make an 8-bit copy of an emotion model (needs fervid[train]).")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--calibration", default=1024, show_default=True, help="Training faces used to calibrate activations.")
@_derived_model("copy")
def quantize(model, data, out, calibration, final, verbose):
    """Static 8-bit quantisation of MODEL: about twice the crops per second on a CPU.

    Activations are calibrated on Training faces; the copy's PublicTest accuracy (and with --final
    its PrivateTest accuracy) is measured and written into its metadata.

    \b
    Example:
      fervid quantize runs/rs/resnet_s.onnx --data fer2013.csv.gz --out models/resnet_s_int8.onnx
    """
    _make_model(lambda command: _train_module("quantize", "onnx").quantize(model, data, out, calibration, final=final, command=command), out,
                "source_public_test_accuracy", verbose)


@click.command(short_help="Make a copy of an emotion model that also reads mirror images (needs fervid[train]).")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@_derived_model("copy")
def mirror(model, data, out, final, verbose):
    """Flip test-time augmentation inside the graph: MODEL run on each face and its mirror image,
    the two answers averaged. Twice the classifier work; PublicTest (and with --final PrivateTest)
    accuracy measured and written into the copy's metadata.

    \b
    Example:
      fervid mirror models/resnet_s_int8.onnx --data fer2013.csv.gz --out runs/resnet_s_int8_mirror.onnx
    """
    _make_model(lambda command: _train_module("mirror", "onnx").mirror(model, data, out, final=final, command=command), out,
                "source_public_test_accuracy", verbose)


@click.command(short_help="Make one model that averages several emotion models (needs fervid[train]).")
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_derived_model("ensemble")
def ensemble(models, data, out, final, verbose):
    """One ONNX file in which MODELS all read each face and their probabilities are averaged; its
    PublicTest (and with --final PrivateTest) accuracy is measured and written into its metadata.

    \b
    Example:
      fervid ensemble a_int8.onnx b_int8.onnx c_int8.onnx --data fer2013.csv.gz --out runs/abc.onnx
    """
    _make_model(lambda command: _train_module("ensemble", "onnx").ensemble(list(models), data, out, final=final, command=command), out,
                "member_public_test_accuracy", verbose)


@click.command(short_help="Score an ONNX model on FER-2013.")
@click.argument("model")
@click.option("--data", required=True, type=click.Path(), help="fer2013.csv(.gz) or an image-folder tree.")
@click.option("--split", default="PrivateTest", show_default=True,
              help="Training, PublicTest, PrivateTest, or Test (image folders: PublicTest+PrivateTest mixed).")
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Directory for report.txt, confusion.csv and confusion.png [default: print only].")
@click.option("--tta", is_flag=True, help="Average each face with its mirror image.")
@click.option("--record", is_flag=True,
              help="Write the accuracy into MODEL's metadata (PublicTest or PrivateTest; PrivateTest only once). Needs onnx.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
def evaluate(model, data, split, out_dir, tta, record, verbose):
    """Accuracy, per-class precision/recall/F1, confusion matrix and crops/s of an ONNX MODEL on FER-2013.

    MODEL is a shipped name (mini_xception) or a path to an .onnx file.

    \b
    Examples:
      fervid evaluate mini_xception --data fer2013.csv.gz --split PublicTest
      fervid evaluate models/fcn.onnx --data fer2013.csv.gz --split PrivateTest --out eval/fcn
    """
    from pathlib import Path

    from fervid.train.evaluate import crops_per_second, format_report, write_report
    from fervid.train.evaluate import evaluate as run

    try:
        scores, clf = run(model, data, split, tta)
        report = format_report(scores, split, clf.info.name)
        click.echo(report)
        speed = {b: crops_per_second(clf, b, seconds=1.0) for b in (1, 64)}
        click.echo("speed: " + ", ".join(f"{v:,.0f} crops/s at batch {b}" for b, v in speed.items()))
        if record:
            from fervid.train.evaluate import record_accuracy

            record_accuracy(clf.info.path, split, scores.accuracy)
            click.echo(f"recorded {split} accuracy in {clf.info.path}")
        if out_dir:
            command = "fervid " + " ".join(sys.argv[1:])
            written = write_report(Path(out_dir), scores, report, split, clf.info.name, command)
            click.echo("wrote " + ", ".join(str(p) for p in written))
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_USAGE)


@click.command(short_help="Guided back-propagation maps of what a model looks at.")
@click.argument("source", required=False, type=click.Path())
@click.option("--model", "models", multiple=True, help="Model name or .onnx path with its NAME.pt beside it; repeat "
              "for a column per model. [default: mini_xception]")
@click.option("--frame", type=int, default=None, help="For a video: the frame index to explain.")
@click.option("--time", "time_s", type=float, default=None, help="For a video: the time in seconds to explain.")
@click.option("--data", type=click.Path(), default=None, help="FER-2013 data instead of SOURCE (fer2013.csv or folders).")
@click.option("--split", default="PublicTest", show_default=True, help="With --data: the split to draw faces from.")
@click.option("--per-class", default=1, show_default=True, help="With --data: faces per class.")
@click.option("--classes", default=",".join(EMOTIONS), show_default=True, help="With --data: which classes, in row order.")
@click.option("--class", "target", type=click.Choice(EMOTIONS), default=None,
              help="Also show the map for this class, beside the predicted one.")
@click.option("-o", "--output", type=click.Path(), default="explain.png", show_default=True, help="PNG to write.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
def explain(source, models, frame, time_s, data, split, per_class, classes, target, output, verbose):
    """What the model looks at: guided back-propagation maps for each face of SOURCE.

    SOURCE is an image, or a video with --frame N or --time T; or give --data for FER-2013 faces.
    Gradients need the torch network: this command needs the fervid[train] extra (torch), and
    rebuilds each model from the weights saved beside its ONNX file (models/NAME.pt).

    \b
    Example (the paper's Fig. 10):
      fervid explain --data fer2013.csv --classes angry,happy,sad,surprise \\
          --model mini_xception --model fcn -o fig10.png
    """
    from pathlib import Path

    try:
        from fervid.train import require

        require("torch")
        from fervid.analysis.classify import resolve_model
        from fervid.outputs.plots import saliency_grid_png
        from fervid.train import explain as ex
        from fervid.train import guided

        paths = [resolve_model(m) for m in (models or ("mini_xception",))]
        size = 48
        if data:
            names = [c.strip() for c in classes.split(",") if c.strip()]
            bad = [c for c in names if c not in EMOTIONS]
            if bad:
                raise click.UsageError(f"--classes: unknown {', '.join(bad)} (choose from {', '.join(EMOTIONS)})")
            crops = ex.from_fer(data, split, per_class, names, size)
        elif source is None:
            raise click.UsageError("give an image or video, or --data")
        elif Path(source).suffix.lower() in ex.IMAGE_SUFFIXES:
            crops = ex.from_image(Path(source), size)
        else:
            crops = ex.from_video(Path(source), size, frame, time_s)
        target_k = EMOTIONS.index(target) if target else None
        saliency_grid_png(Path(output), crops.images, crops.captions, guided.columns(paths, crops.images, target_k))
        click.echo(f"wrote {output} ({len(crops.images)} faces, {len(paths)} model(s))")
    except FervidError as err:
        fail(err, verbose)
        sys.exit(EXIT_USAGE)
