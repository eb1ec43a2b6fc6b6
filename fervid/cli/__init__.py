"""The command line: click parses options into library calls, and exit codes are decided only here.

``common`` holds what every command shares; ``videos`` the commands on videos (annotate,
timeline, report); ``models`` those that make and score emotion models.
"""

from __future__ import annotations

import os

# Before numpy and OpenCV load (this package imports neither; the commands do): each brings
# OpenBLAS, whose worker threads busy-wait for work after start-up (about 0.1 CPU-s a process, on
# the core the decoder is working ahead on). fervid multiplies no matrices; its networks run in ONNX
# Runtime's own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from fervid import __version__  # noqa: E402
from fervid.cli import models, videos  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Exit codes: 0 all done, 1 some inputs failed (the rest are done), 2 usage error "
                    "(bad option, unusable model), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), "
                    "129 hung up (SIGHUP).")
@click.version_option(__version__, prog_name="fervid")
def main() -> None:
    """Faces, stable IDs and the 7 FER-2013 emotions, frame by frame, from any video ffmpeg reads."""


for command in (videos.annotate, videos.timeline, videos.report, models.evaluate, models.explain, models.train,
                models.quantize, models.mirror, models.ensemble):
    main.add_command(command)
