"""`python -m tinycabac`: the same command line as the `tinycabac` script."""
import sys

from .cli import main

sys.exit(main())
