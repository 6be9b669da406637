# The C extension is declared here because setuptools takes cffi_modules only
# through setup(); everything else lives in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["host/tinycabac/_build_native.py:ffibuilder"])
