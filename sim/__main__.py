"""``python -m sim`` is ``bwcsim``."""

from .cli import main

main()
