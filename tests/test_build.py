"""The build variants of the Cython extension and its C kernels.

What every build must keep (see docs/install.md):

* a serial build (no OpenMP) trains bit-identical models to the OpenMP build of the same
  compiler: CI saves the fingerprint of one build (``python -m tests.test_build save PATH``)
  and checks the other against it with ``FASTRBM_REFERENCE_MODEL=PATH``;
* the build is the variant CI meant to build (``FASTRBM_EXPECT_BUILD``, e.g.
  ``"compiler=clang openmp=1 portable=0"``), so a failed OpenMP probe or a wrong macro
  cannot pass as the variant under test;
* the portable path of the C kernels (FASTRBM_PORTABLE) uses no GNU extension, transposes
  exactly and draws the same uniforms as the dispatched path; its arithmetic differs from
  the AVX-512 / AVX2 clones only by FMA contraction, measured here.

The C tests compile the shipped headers with the C compilers found on PATH and skip where
there is none (an installed wheel on a machine without a compiler).
"""
import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastrbm._kernels import _sampling

KERNELS = Path(_sampling.__file__).resolve().parent
HEADERS = ("_simd.h", "_simd_rows.h", "_transpose.h")


# ---------------------------------------------------------------------------------------
# Which build this is
# ---------------------------------------------------------------------------------------

def describe(info):
    """One line for humans: compiler, OpenMP or serial, dispatched or portable."""
    threads = "OpenMP" if info["openmp"] else "serial (no OpenMP)"
    if info["portable"]:
        path = "portable C (no vector extensions, no dispatch)"
    elif info["dispatch"] == "none":
        path = "vector extensions, baseline ISA only (no dispatch)"
    else:
        path = f"dispatched ({info['dispatch']})"
    return f"{info['compiler']}, {threads}, {path}"


def test_build_info_is_consistent():
    info = _sampling.build_info()
    assert set(info) == {"compiler", "openmp", "portable", "dispatch"}
    assert re.fullmatch(r"(gcc|clang|msvc) [\d.]+|unknown", info["compiler"])
    if info["portable"]:
        assert info["dispatch"] == "none"
    assert describe(info)


def test_build_is_the_expected_variant():
    expected = os.environ.get("FASTRBM_EXPECT_BUILD")
    if not expected:
        pytest.skip("FASTRBM_EXPECT_BUILD not set (CI sets it for each variant it builds)")
    info = _sampling.build_info()
    got = {"compiler": info["compiler"].split()[0], "openmp": str(int(info["openmp"])),
           "portable": str(int(info["portable"])),
           "dispatch": "0" if info["dispatch"] == "none" else "1"}
    for item in expected.split():
        key, value = item.split("=")
        assert got[key] == value, f"{key}: built {got[key]!r}, expected {value!r} ({info})"


# ---------------------------------------------------------------------------------------
# Models: bit-identical across builds that share the arithmetic
# ---------------------------------------------------------------------------------------

def fingerprint():
    """Arrays of small models trained through every family of kernels: the transposed-W
    path (batch 10) and the plain one, CD-k and PCD, both precisions, Gaussian visible
    units with learned sigma, noisy rectified hidden units, parallel tempering, samples and
    an AIS estimate; two threads, so an OpenMP build splits the work."""
    from fastrbm import BernoulliRBM, GaussianBernoulliRBM
    from fastrbm.datasets import load_digits

    X = load_digits()[0][:600]
    Xs = (X - X.mean(0)) / (X.std(0) + 0.1)
    out = {}
    models = {
        "pcd_f32_b10": BernoulliRBM(64, batch_size=10, n_iter=3, dtype="float32"),
        "cd2_f64_b100": BernoulliRBM(48, batch_size=100, n_iter=3, k=2, persistent=False,
                                     momentum=0.5, sparsity_cost=0.1, dtype="float64"),
        "nrelu_f32": BernoulliRBM(32, learning_rate=0.01, batch_size=20, n_iter=2,
                                  hidden_units="nrelu", dtype="float32"),
        "tempered_f64": BernoulliRBM(24, batch_size=10, n_iter=2, n_temperatures=3,
                                     dtype="float64"),
    }
    for name, model in models.items():
        model.set_params(random_state=0, n_jobs=2).fit(X)
        out[name + "_W"] = model.components_
        out[name + "_c"] = model.intercept_hidden_
        out[name + "_b"] = model.intercept_visible_
    out["pcd_f32_b10_sample"] = models["pcd_f32_b10"].sample(5, n_steps=20)
    out["pcd_f32_b10_ais"] = models["pcd_f32_b10"].log_likelihood(
        X[:20], method="ais", n_chains=16, n_betas=200, random_state=0)
    gauss = GaussianBernoulliRBM(32, batch_size=10, n_iter=2, learn_sigma=True,
                                 dtype="float32", random_state=0, n_jobs=2).fit(Xs)
    out["gauss_f32_W"] = gauss.components_
    out["gauss_f32_b"] = gauss.intercept_visible_
    out["gauss_f32_sample"] = gauss.sample(5, n_steps=20)
    return {k: np.asarray(v) for k, v in out.items()}


def save_fingerprint(path):
    np.savez(path, **fingerprint(), build=np.array(describe(_sampling.build_info())))


def test_model_matches_reference_build():
    path = os.environ.get("FASTRBM_REFERENCE_MODEL")
    if not path:
        pytest.skip("FASTRBM_REFERENCE_MODEL not set (CI compares the serial build's "
                    "models with the OpenMP build's)")
    with np.load(path) as ref:
        reference = {k: ref[k] for k in ref.files}
    other = str(reference.pop("build"))
    got = fingerprint()
    assert sorted(got) == sorted(reference)
    differ = [k for k in got if got[k].dtype != reference[k].dtype
              or got[k].tobytes() != reference[k].tobytes()]
    assert not differ, (f"{describe(_sampling.build_info())} differs from {other} in "
                        f"{differ}")


# ---------------------------------------------------------------------------------------
# The C kernels, compiled here: portable against dispatched
# ---------------------------------------------------------------------------------------

COMPILERS = [cc for cc in ("gcc", "clang") if shutil.which(cc)]
needs_cc = pytest.mark.skipif(not COMPILERS or sys.platform == "win32",
                              reason="no gcc or clang on PATH")

# A few kernels behind plain C entry points for ctypes.
DRIVER = r"""
#include "_transpose.h"
#include "_simd.h"
int portable(void) { return FRB_PORTABLE; }
void transpose_f32(const float *W, ptrdiff_t nh, ptrdiff_t nv, float *WT)
{ frb_transpose_rows_f32(W, 0, nh, nv, nh, WT); }
void transpose_f64(const double *W, ptrdiff_t nh, ptrdiff_t nv, double *WT)
{ frb_transpose_rows_f64(W, 0, nh, nv, nh, WT); }
void uniform_f32(float *out, ptrdiff_t n, uint64_t key) { frb_uniform_f32(out, n, key); }
void uniform_f64(double *out, ptrdiff_t n, uint64_t key) { frb_uniform_f64(out, n, key); }
void normal_f64(double *out, ptrdiff_t n, uint64_t key) { frb_normal_f64(out, n, key); }
void sigmoid_sample_f32(const float *acc, const float *bias, float *prob, float *sample,
                        ptrdiff_t n, uint64_t key)
{ frb_sigmoid_sample_f32(acc, 1.0f, bias, prob, sample, n, key, 0); }
void sigmoid_sample_f64(const double *acc, const double *bias, double *prob, double *sample,
                        ptrdiff_t n, uint64_t key)
{ frb_sigmoid_sample_f64(acc, 1.0, bias, prob, sample, n, key, 0); }
"""


def _preprocess_own_lines(cc, defines, tmp_path):
    """The lines of the preprocessed headers that come from fastrbm's own headers."""
    src = tmp_path / "headers.c"
    src.write_text('#include "_transpose.h"\n#include "_simd.h"\n')
    text = subprocess.run([cc, "-E", *defines, f"-I{KERNELS}", str(src)], check=True,
                          capture_output=True, text=True).stdout
    own, lines = False, []
    for line in text.splitlines():
        marker = re.match(r'# \d+ "([^"]+)"', line)
        if marker:
            own = Path(marker.group(1)).name in HEADERS
        elif own:
            lines.append(line)
    return "\n".join(lines)


GNU_EXTENSIONS = re.compile(r"__attribute__|__builtin_|vector_size|#\s*pragma|__typeof|\(\{")


@needs_cc
@pytest.mark.parametrize("cc", COMPILERS)
def test_portable_path_uses_no_gnu_extension(cc, tmp_path):
    portable = _preprocess_own_lines(cc, ["-DFASTRBM_PORTABLE"], tmp_path)
    assert "frb_transpose_rows_f32" in portable and "frb_sigmoid_sample_f64" in portable
    # math.h's INFINITY expands to a builtin of the C library's own choosing.
    portable = re.sub(r"__builtin_inff?\s*\(\s*\)", "INFINITY", portable)
    assert not GNU_EXTENSIONS.findall(portable)
    # The same scan finds the extensions of the dispatched path, so it can fail.
    if sys.platform.startswith("linux") and "x86_64" in os.uname().machine:
        assert GNU_EXTENSIONS.findall(_preprocess_own_lines(cc, [], tmp_path))


@needs_cc
@pytest.mark.parametrize("cc", COMPILERS)
def test_portable_path_compiles_as_strict_c99(cc, tmp_path):
    src = tmp_path / "strict.c"
    src.write_text(DRIVER)
    subprocess.run([cc, "-std=c99", "-pedantic-errors", "-Wall", "-Werror",
                    "-Wno-unused-function", "-DFASTRBM_PORTABLE", f"-I{KERNELS}", "-c",
                    str(src), "-o", str(tmp_path / "strict.o")], check=True)


CROSS_AARCH64 = shutil.which("aarch64-linux-gnu-gcc")


@pytest.mark.skipif(not CROSS_AARCH64, reason="no aarch64-linux-gnu-gcc (Debian's "
                    "gcc-aarch64-linux-gnu; CI installs it)")
def test_non_x86_build_takes_the_portable_path(tmp_path):
    """The x86 dispatch and vector transposes are guarded: an aarch64 build compiles the
    portable path by itself, and an x86-64 one does not."""
    src = tmp_path / "cross.c"
    for cc, portable in ((CROSS_AARCH64, 1), *((cc, 0) for cc in COMPILERS)):
        if portable == 0 and "x86_64" not in os.uname().machine:
            continue
        src.write_text(DRIVER + f'_Static_assert(FRB_PORTABLE == {portable}, "path");\n')
        subprocess.run([cc, "-std=c11", "-O3", "-Wall", "-Werror", "-Wno-unused-function",
                        f"-I{KERNELS}", "-c", str(src), "-o", str(tmp_path / "cross.o")],
                       check=True)


_LIBS = {}


def _driver(cc, portable, tmp_path_factory):
    key = (cc, portable)
    if key not in _LIBS:
        tmp = tmp_path_factory.mktemp(f"{cc}_{'portable' if portable else 'dispatched'}")
        (tmp / "driver.c").write_text(DRIVER)
        lib = tmp / "driver.so"
        subprocess.run([cc, "-O3", "-shared", "-fPIC", *(["-DFASTRBM_PORTABLE"] * portable),
                        f"-I{KERNELS}", str(tmp / "driver.c"), "-o", str(lib), "-lm"],
                       check=True)
        dll = ctypes.CDLL(str(lib))
        assert dll.portable() == portable or not portable and dll.portable()
        _LIBS[key] = dll
    return _LIBS[key]


def _call(dll, name, *args):
    conv = [a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray)
            else ctypes.c_ssize_t(a) if isinstance(a, int) and a < 2**62
            else ctypes.c_uint64(a) for a in args]
    getattr(dll, name)(*conv)


@needs_cc
@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_c_transposes_are_exact(cc, portable, dtype, tmp_path_factory):
    dll = _driver(cc, portable, tmp_path_factory)
    rng = np.random.default_rng(0)
    for nh, nv in [(64, 48), (37, 53), (16, 16), (5, 70)]:  # whole tiles and edges
        W = rng.standard_normal((nh, nv)).astype(dtype)
        WT = np.full((nv, nh), np.nan, dtype)
        _call(dll, f"transpose_f{dtype[-2:]}", W, nh, nv, WT)
        assert WT.tobytes() == np.ascontiguousarray(W.T).tobytes()


@needs_cc
@pytest.mark.parametrize("cc", COMPILERS)
def test_c_portable_path_against_dispatched(cc, tmp_path_factory):
    """Uniforms are integer arithmetic: equal. The sigmoid and the normal draws are float
    arithmetic that the AVX-512 / AVX2 clones contract into FMAs: within a few ulps, and a
    Bernoulli sample differs only where the uniform falls between the two probabilities."""
    dis = _driver(cc, False, tmp_path_factory)
    por = _driver(cc, True, tmp_path_factory)
    n, key = 4099, 0x9E3779B97F4A7C15
    rng = np.random.default_rng(1)
    for dtype, ulps in (("float32", 4), ("float64", 4)):
        suffix = f"f{dtype[-2:]}"
        u = [np.empty(n, dtype) for _ in range(2)]
        for dll, arr in zip((dis, por), u):
            _call(dll, f"uniform_{suffix}", arr, n, key)
        assert u[0].tobytes() == u[1].tobytes()

        acc = (4 * rng.standard_normal(n)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        prob = [np.empty(n, dtype) for _ in range(2)]
        sample = [np.empty(n, dtype) for _ in range(2)]
        for dll, p, s in zip((dis, por), prob, sample):
            _call(dll, f"sigmoid_sample_{suffix}", acc, bias, p, s, n, key)
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(prob[0], prob[1], rtol=ulps * eps, atol=0)
        flips = sample[0] != sample[1]
        lo, hi = np.minimum(prob[0], prob[1]), np.maximum(prob[0], prob[1])
        assert np.all((u[0][flips] >= lo[flips]) & (u[0][flips] < hi[flips]))

    z = [np.empty(n, np.float64) for _ in range(2)]
    for dll, arr in zip((dis, por), z):
        _call(dll, "normal_f64", arr, n, key)
    np.testing.assert_allclose(z[0], z[1], rtol=1e-13, atol=1e-15)


if __name__ == "__main__":  # python -m tests.test_build save PATH
    if len(sys.argv) != 3 or sys.argv[1] != "save":
        sys.exit("usage: python -m tests.test_build save PATH")
    save_fingerprint(sys.argv[2])
    print(f"saved {sys.argv[2]} ({describe(_sampling.build_info())})")
