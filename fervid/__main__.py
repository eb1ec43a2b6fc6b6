"""python -m fervid"""

from fervid.cli import main

main()
