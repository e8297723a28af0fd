"""Build the Cython extensions; all metadata lives in pyproject.toml.

FASTRBM_DEBUG=1 builds with Cython bounds and wraparound checks on (the debug build the
test suite can run under). No -march=native and no -ffast-math: the wheel must run on any
x86-64 machine, and fast-math would flush denormals to zero for the whole process. The SIMD
speed comes from target_clones in _simd.h instead.
"""
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("FASTRBM_DEBUG", "0") == "1"

if sys.platform == "win32":
    compile_args, link_args = ["/O2", "/openmp"], []
elif sys.platform == "darwin":  # Apple clang has no bundled OpenMP; build serial there.
    compile_args, link_args = ["-O3"], []
else:
    compile_args, link_args = ["-O3", "-fopenmp"], ["-fopenmp"]

extensions = [
    Extension(
        "fastrbm._kernels._sampling",
        ["fastrbm/_kernels/_sampling.pyx"],
        include_dirs=[np.get_include(), "fastrbm/_kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        # Regenerate the C even when the .pyx is unchanged: the directives below depend on
        # FASTRBM_DEBUG, which cythonize's timestamp check cannot see.
        force=True,
        compiler_directives={
            "language_level": "3",
            "boundscheck": debug,
            "wraparound": debug,
            "initializedcheck": debug,
            "cdivision": True,
        },
    ),
)
