"""Build the Cython extension; all metadata lives in pyproject.toml.

OpenMP is probed, not assumed: a small OpenMP program is compiled and linked with the
compiler that will build the extension, with the flags of its kind (``-fopenmp`` for GCC
and clang, ``-Xpreprocessor -fopenmp -lomp`` for Apple clang with libomp, ``/openmp`` for
MSVC). When none works the extension is built serial, with a warning: a serial build gives
bit-identical results (the engine's blocks do not depend on the thread count), only
``n_jobs > 1`` no longer runs the Gibbs engine on several threads.

Environment variables:

- ``FASTRBM_OPENMP=0`` builds serial without probing; ``FASTRBM_OPENMP=1`` makes a failed
  probe an error (CI uses it so that a broken OpenMP set-up cannot pass as a serial build).
- ``FASTRBM_PORTABLE=1`` compiles the C kernels' portable path: plain C99, no GNU vector
  extensions and no target_clones dispatch (what MSVC and non-x86 targets get anyway).
- ``FASTRBM_DEBUG=1`` builds with Cython bounds and wraparound checks on (the debug build
  the test suite can run under).
- ``FASTRBM_PRECOMPILE=0`` skips compiling the Numba engine into its on-disk cache after an
  in-place build (``pip install -e .``; ``fastrbm._kernels.precompile``).

No -march=native and no -ffast-math: the wheel must run on any x86-64 machine, and fast-math
would flush denormals to zero for the whole process. The SIMD speed comes from
target_clones in _simd.h instead.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

debug = os.environ.get("FASTRBM_DEBUG", "0") == "1"
portable = os.environ.get("FASTRBM_PORTABLE", "0") == "1"
openmp_setting = os.environ.get("FASTRBM_OPENMP", "")
if openmp_setting not in ("", "0", "1"):
    sys.exit(f"FASTRBM_OPENMP must be 0, 1 or unset, got {openmp_setting!r}")

OPENMP_TEST = textwrap.dedent("""\
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d %d\\n", n, omp_get_max_threads());
        return n < 1;
    }
    """)

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
if portable:
    macros.append(("FASTRBM_PORTABLE", "1"))

extensions = [
    Extension(
        "fastrbm._kernels._sampling",
        ["fastrbm/_kernels/_sampling.pyx"],
        include_dirs=[np.get_include(), "fastrbm/_kernels"],
        define_macros=macros,
    ),
]


def _libomp_prefixes():
    """Where a macOS libomp may live: $OpenMP_ROOT, Homebrew's keg (not linked into the
    default search paths), then MacPorts."""
    found = [os.environ.get("OpenMP_ROOT", "")]
    brew = shutil.which("brew")
    if brew:
        done = subprocess.run([brew, "--prefix", "libomp"], capture_output=True, text=True)
        found.append(done.stdout.strip() if done.returncode == 0 else "")
    found += ["/opt/homebrew/opt/libomp", "/usr/local/opt/libomp", "/opt/local"]
    return [p for p in dict.fromkeys(found) if p and os.path.isdir(os.path.join(p, "include"))]


def _openmp_candidates(compiler_type):
    """(description, compile args, link args) to try, in order."""
    if compiler_type == "msvc":
        return [("/openmp", ["/openmp"], [])]
    candidates = [("-fopenmp", ["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":  # Apple clang: the preprocessor flag and libomp by hand
        for prefix in _libomp_prefixes():
            inc, lib = os.path.join(prefix, "include"), os.path.join(prefix, "lib")
            candidates.append((f"-Xpreprocessor -fopenmp -lomp ({prefix})",
                               ["-Xpreprocessor", "-fopenmp", f"-I{inc}"],
                               [f"-L{lib}", "-lomp", f"-Wl,-rpath,{lib}"]))
        candidates.append(("-Xpreprocessor -fopenmp -lomp",
                           ["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    return candidates


def _compiles_and_links(compiler, compile_args, link_args):
    """Whether OPENMP_TEST compiles and links with these flags (not run: a cross build
    could not run it)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp_probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objects, "omp_probe", output_dir=tmp,
                                     extra_postargs=link_args)
        except Exception:  # CompileError, LinkError, or the compiler missing altogether
            return False
    return True


class BuildExt(build_ext):
    """build_ext with the compiler's flags and the OpenMP probe, then (in-place builds only,
    where the cache lands beside the sources the installed package runs) the Numba engine's
    compilation, in a child process so that a failure there only costs the first fit its
    compile time."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        compile_args = ["/O2"] if msvc else ["-O3"]
        link_args = []
        flags = self._openmp_flags()
        if flags is not None:
            compile_args += flags[0]
            link_args += flags[1]
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + list(ext.extra_compile_args)
            ext.extra_link_args = link_args + list(ext.extra_link_args)
        super().build_extensions()

    def _openmp_flags(self):
        if openmp_setting == "0":
            print("fastrbm: FASTRBM_OPENMP=0: building the serial extension", file=sys.stderr)
            return None
        tried = []
        for name, compile_args, link_args in _openmp_candidates(self.compiler.compiler_type):
            if _compiles_and_links(self.compiler, compile_args, link_args):
                print(f"fastrbm: OpenMP found ({name})", file=sys.stderr)
                return compile_args, link_args
            tried.append(name)
        message = (
            f"fastrbm: no working OpenMP for this compiler (tried: {'; '.join(tried)}).")
        if openmp_setting == "1":
            sys.exit(message + " FASTRBM_OPENMP=1 requires it.")
        print("\n" + "*" * 88 + f"\nWARNING: {message}\nBuilding the serial extension: results "
              "are bit-identical, but the Gibbs engine runs on one thread whatever n_jobs "
              "says.\nFor threads install OpenMP (GCC's libgomp, or libomp for clang: "
              "'apt-get install libomp-dev',\n'brew install libomp') and reinstall; "
              "FASTRBM_OPENMP=0 silences this.\n" + "*" * 88 + "\n", file=sys.stderr)
        return None

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
    cmdclass={"build_ext": BuildExt},
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
