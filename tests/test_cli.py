"""The command line: help on every command, exit code 2 with a clear message on bad flags
(in process, and through ``python -m fastrbm`` in a subprocess), ``info``, ``bench`` (its
table logic on a shrunken workload, run from the package without the repository's bench/
folder), ``bench/compare.py`` as a thin wrapper, and ``demo`` (pretrained against random
init, gradient norms, ``--out`` writing PNGs)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastrbm import _bench, cli

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", [[], ["demo"], ["bench"], ["info"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: fastrbm")
    if command:
        # A description beyond the usage line, and help for every option.
        parser = cli.build_parser()
        sub = parser._subparsers._group_actions[0].choices[command[0]]
        assert sub.description and sub.description.split()[0] in text
        for action in sub._actions:
            assert action.help, f"{command[0]} {action.option_strings} has no help"
        if command == ["bench"]:  # the help lists the peers without importing them
            assert ", ".join(_bench.PEERS) in " ".join(text.split())
    else:
        for name in ("demo", "bench", "info"):
            assert name in text


BAD_FLAGS = [
    (["demo", "--epochs", "many"], "argument --epochs: expected a positive integer, got 'many'"),
    (["demo", "--epochs", "0"], "argument --epochs: expected a positive integer"),
    (["demo", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["demo", "--data", "cifar"], "argument --data: invalid choice: 'cifar'"),
    (["demo", "--hidden", "0"], "argument --hidden: expected a positive integer"),
    (["demo", "--rnn-steps", "1"], "argument --rnn-steps: needs 0 or at least 2 steps"),
    (["bench", "--data", "cifar"], "argument --data: invalid choice: 'cifar'"),
    (["bench", "--peers", "sklearn,nope"], "argument --peers: unknown peer(s) nope"),
    (["bench", "--rounds", "-1"], "argument --rounds: expected a positive integer"),
    (["bench", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["info", "--verbose"], "unrecognized arguments: --verbose"),
    (["explode"], "invalid choice: 'explode'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize("args, message", BAD_FLAGS)
def test_bad_flags_exit_2_with_a_clear_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: fastrbm")
    assert message in captured.err


@pytest.mark.parametrize("args, message", [BAD_FLAGS[0], BAD_FLAGS[-1]])
def test_python_m_fastrbm_exits_2_on_bad_flags(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "fastrbm", *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: fastrbm") and message in result.stderr


def test_info_reports_versions_threads_and_blas(capsys):
    import numba
    import numpy

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fastrbm 0.1.0\n")
    assert f"numpy {numpy.__version__}" in out and f"numba {numba.__version__}" in out
    assert "cores: " in out and "compiled engine: loaded" in out
    from fastrbm._kernels._sampling import build_info
    assert f"built by {build_info()['compiler']}, " in out
    assert f"numba: threading layer {numba.threading_layer()}" in out
    # threadpoolctl finds the BLAS that NumPy / SciPy link and the engine's OpenMP runtime.
    assert "  blas: openblas" in out or "  blas: mkl" in out
    assert "  openmp: " in out


@pytest.fixture
def tiny_bench(monkeypatch):
    """Shrink the small workload so that the bench command runs in a fraction of a second."""
    X = np.ascontiguousarray(_bench.small_workload().X[:300])

    def tiny(dtype="float32"):
        return _bench.Workload(f"tiny digits 300x64, {dtype}", X.astype(dtype), n_hidden=16,
                               batch_size=10, n_iter=2)

    monkeypatch.setattr(_bench, "small_workload", tiny)


def table_rows(text):
    """{label: [cells]} of the Markdown table rows in ``text``."""
    rows = [line.strip("|").split(" | ") for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| peer ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_bench_table_compares_fastrbm_with_sklearn(tiny_bench, capsys):
    peers = "floor-numpy,sklearn,fastrbm-cd,fastrbm-pcd"
    assert cli.main(["bench", "--rounds", "2", "--peers", peers, "--dtype", "float32"]) == 0
    # The installed command runs from the package, not from the repository's bench/.
    assert "_peers" not in sys.modules and Path(_bench.__file__).parent.name == "fastrbm"
    captured = capsys.readouterr()
    assert "round 2/2" in captured.err  # progress on stderr, table on stdout
    assert "**tiny digits 300x64, float32**" in captured.out
    assert "tiny digits 300x64, float32:" in captured.err  # the workload's progress heading
    assert "tiny digits 300x64, float32:" not in captured.out
    rows = table_rows(captured.out)
    assert list(rows) == ["GEMM floor (NumPy matmul)", "scikit-learn BernoulliRBM (PCD-1)",
                          "fastrbm CD-1", "fastrbm PCD-1"]
    floor, sk, cd, pcd = (rows[label] for label in rows)
    assert floor[1:] == ["—", "1.00", "—"]  # the floor has no model
    assert float(sk[1]) > 0 and cd[1] == pcd[1] == "—"
    for error in (sk[3], cd[3], pcd[3]):
        assert 0 < float(error) < 0.25


def test_bench_times_each_dtype_in_its_own_table(tiny_bench, capsys):
    # Default: float32 then float64, one table each, every peer fed that dtype.
    assert cli.main(["bench", "--quick", "--peers", "sklearn,fastrbm-pcd"]) == 0
    out = capsys.readouterr().out
    titles = [line for line in out.splitlines() if line.startswith("**")]
    assert titles == ["**tiny digits 300x64, float32**", "**tiny digits 300x64, float64**"]
    assert cli.main(["bench", "--quick", "--peers", "fastrbm-cd", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("**")] == [
        "**tiny digits 300x64, float64**"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bench_peers_train_in_the_workload_dtype(dtype):
    X = np.ascontiguousarray(_bench.small_workload(dtype=dtype).X[:40])
    assert X.dtype == dtype
    workload = _bench.Workload("w", X, n_hidden=4, batch_size=10, n_iter=1)
    for key, peer in _bench.PEERS.items():
        if _bench.missing_requirement(key) is None:  # torch when installed, the rest always
            params = _bench.make_run(key, workload)()
            if peer.variant == "floor":
                assert params is None
            else:
                assert [np.asarray(p).dtype for p in params] == [np.dtype(dtype)] * 3, key
    with pytest.raises(ValueError, match="dtype must be one of"):
        _bench.small_workload(dtype="float16")


def test_markdown_table_ratios():
    workload = _bench.Workload("w", np.zeros((1, 1), np.float32), n_hidden=1, batch_size=1,
                               n_iter=1)
    rows = {"floor": (0.25, None), "sklearn": (2.0, 0.03), "torch-cd": (0.75, 0.02),
            "fastrbm-cd": (0.5, 0.021), "fastrbm-pcd": (1.0, 0.02)}
    table = table_rows(_bench.markdown_table(workload, rows, ["a note."]))
    assert table["scikit-learn BernoulliRBM (PCD-1)"] == ["2.000", "2.00", "8.00", "0.0300"]
    assert table["PyTorch CD-1"] == ["0.750", "1.50", "3.00", "0.0200"]  # against CD-1
    assert table["fastrbm CD-1"] == ["0.500", "—", "2.00", "0.0210"]
    assert _bench.markdown_table(workload, rows, ["a note."]).endswith("\n- a note.\n")


def test_bench_notes_what_it_could_not_run(tiny_bench, monkeypatch, capsys):
    monkeypatch.setattr(_bench, "import_torch", lambda: None)
    monkeypatch.setenv("FASTRBM_FASHION_MNIST", "/nonexistent")
    monkeypatch.setattr(_bench.datasets, "FASHION_MNIST_DEBIAN_PATH", "/nonexistent")
    assert cli.main(["bench", "--data", "all", "--quick", "--peers", "torch-cd,fastrbm-cd"]) == 0
    out = capsys.readouterr().out
    assert "PyTorch absent" in out
    assert "- Large workload skipped: Fashion-MNIST not found: apt-get install" in out
    assert "- PyTorch CD-1: not run (PyTorch is not installed)." in out
    assert list(table_rows(out)) == ["fastrbm CD-1"]


def test_bench_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown data"):
        _bench.compare(["cifar"])
    with pytest.raises(ValueError, match="unknown peers"):
        _bench.compare(["digits"], peers=["nope"])
    with pytest.raises(ValueError, match="unknown dtypes"):
        _bench.compare(["digits"], dtypes=["float16"])


def test_bench_compare_script_is_a_thin_wrapper(monkeypatch):
    # bench/compare.py runs both workloads through fastrbm._bench.compare.
    calls = []
    monkeypatch.setattr(_bench, "compare", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    for name in ("compare", "_peers"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import compare

    try:
        compare.main(["--quick"])
        with pytest.raises(SystemExit) as exit_info:
            compare.main(["--rounds", "x"])
        assert exit_info.value.code == 2
    finally:
        for name in ("compare", "_peers"):
            sys.modules.pop(name, None)
    assert calls == [((("fashion-mnist", "digits"),), {"quick": True, "rounds": None})]


def test_demo_compares_pretrained_and_random_init(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "pictures"
    assert cli.main(["demo", "--epochs", "3", "--pretrain-epochs", "3", "--hidden", "16",
                     "16", "--n-components", "16", "--rnn-steps", "8", "--out",
                     str(out)]) == 0
    text = capsys.readouterr().out
    assert "Deep logistic net 64-16-16-10: 3 fine-tuning epochs" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.startswith(("pretrained ", "random init "))}
    assert set(rows) == {"pretrained", "random"}
    for cells in rows.values():  # fit time, accuracy, two ratios: all numbers
        assert cells[-4].endswith("s") and 0 <= float(cells[-3]) <= 1
        float(cells[-2]), float(cells[-1])
    assert "Gradient norms per layer, pretrained:" in text
    assert "Gradient norms per layer, random init:" in text and "first/last ratio" in text
    assert "One RBM, 16 hidden units, PCD-1, 3 epochs" in text
    assert "Recurrent nets, adding problem with 8 steps" in text
    cells = {line.split()[0]: line.split() for line in text.splitlines()
             if line.startswith(("sigmoid ", "tanh ", "lstm "))}
    assert set(cells) == {"sigmoid", "tanh", "lstm"}
    for row in cells.values():  # fit time, test MSE, two ratios
        assert row[1].endswith("s") and 0 <= float(row[2]) and float(row[3]) > 0
    for name in ("gradient_norms.png", "learning_curve.png", "filters.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 2000, name
        assert f"wrote {out / name}" in text


def test_demo_fashion_mnist_says_how_to_get_the_data(monkeypatch):
    monkeypatch.setenv("FASTRBM_FASHION_MNIST", "/nonexistent")
    from fastrbm import datasets

    monkeypatch.setattr(datasets, "FASHION_MNIST_DEBIAN_PATH", "/nonexistent")
    with pytest.raises(SystemExit, match="apt-get install"):
        cli.main(["demo", "--data", "fashion-mnist"])


def test_demo_without_matplotlib_says_how_to_get_the_pngs(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    cli._write_demo_pngs(tmp_path / "pictures", {})
    assert 'PNGs not written: matplotlib is not installed (pip install "fastrbm[plot]")' in (
        capsys.readouterr().err)
    assert not (tmp_path / "pictures").exists()
