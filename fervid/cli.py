"""The click layer: parse options into library calls; exit codes are decided only here."""

from __future__ import annotations

import shlex
import sys

import click

from fervid import __version__
from fervid.errors import FervidError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(err: Exception, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exc()
    click.echo(f"fervid: error: {err}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fervid")
def main() -> None:
    """Faces, stable IDs and the 7 FER-2013 emotions, frame by frame, from any video ffmpeg reads."""


@main.command()
@click.option("--arch", type=click.Choice(["mini_xception", "fcn"]), required=True, help="Network architecture.")
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
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
def train(verbose: bool, **kwargs) -> None:
    """Train a paper CNN on FER-2013 and export it as an ONNX model (needs fervid[train])."""
    try:
        from fervid.train.loop import TrainConfig, train as run

        run(TrainConfig(command="fervid " + shlex.join(sys.argv[1:]), **kwargs))
    except FervidError as err:
        _fail(err, verbose)
        sys.exit(EXIT_USAGE)
