"""Build the Cython extensions; all metadata lives in pyproject.toml.

FASTRBM_DEBUG=1 builds with Cython bounds and wraparound checks on (the debug build the
test suite can run under). An in-place build (``pip install -e .``) then compiles the Numba
engine into its on-disk cache beside the sources, so the first fit does not wait for it
(``fastrbm._kernels.precompile``; FASTRBM_PRECOMPILE=0 skips it). No -march=native and no -ffast-math: the wheel must run on any
x86-64 machine, and fast-math would flush denormals to zero for the whole process. The SIMD
speed comes from target_clones in _simd.h instead.
"""
import os
import subprocess
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

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



class BuildExtThenPrecompile(build_ext):
    """build_ext, then (in-place builds only, where the cache lands beside the sources the
    installed package runs) the Numba engine's compilation, in a child process so that a
    failure there only costs the first fit its compile time."""

    def run(self):
        super().run()
        if not self.inplace or os.environ.get("FASTRBM_PRECOMPILE", "1") == "0":
            return
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [HERE, *filter(None, [os.environ.get("PYTHONPATH")])]))
        done = subprocess.run([sys.executable, "-m", "fastrbm._kernels.precompile"],
                              cwd=HERE, env=env, check=False)
        if done.returncode != 0:
            print("fastrbm: the Numba engine was not precompiled; it compiles on first use",
                  file=sys.stderr)


setup(
    cmdclass={"build_ext": BuildExtThenPrecompile},
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
