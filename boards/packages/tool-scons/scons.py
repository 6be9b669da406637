"""Entry point PlatformIO runs for its `tool-scons` core package.

PlatformIO normally downloads tool-scons from its registry, which this
project's machines cannot reach.  This stand-in runs the SCons installed
from PyPI in the same Python environment as PlatformIO instead, so pin both:
    pip install platformio==6.2.0 scons==4.11.1
"""
import sys

try:
    import SCons.Script.Main
except ImportError:
    sys.stderr.write(
        "tool-scons stand-in: the PyPI package 'scons' is missing from the Python "
        "environment that runs PlatformIO (%s).\n"
        "Install it with: %s -m pip install scons==4.11.1\n" % (sys.executable, sys.executable)
    )
    sys.exit(2)

if __name__ == "__main__":
    sys.exit(SCons.Script.Main.main())
