"""Fixtures of the RBM benchmarks: threads pinned, workloads, the GEMM floor of each workload
measured once per run, and a closing table of ratios between everything timed in the run."""

import pytest

import _peers

# (workload name, peer key) -> minimum seconds, filled by the benchmarks of this run.
RESULTS = {}


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads():
    with _peers.pinned_threads(_peers.THREADS):
        yield


@pytest.fixture(scope="session")
def large():
    try:
        return _peers.large_workload()
    except FileNotFoundError:
        pytest.skip(_peers.FASHION_MNIST_HELP)


@pytest.fixture(scope="session")
def large64():
    """The large workload in float64: every peer fed float64 data."""
    try:
        return _peers.large_workload(dtype="float64")
    except FileNotFoundError:
        pytest.skip(_peers.FASHION_MNIST_HELP)


@pytest.fixture(scope="session")
def small():
    return _peers.small_workload()


@pytest.fixture(scope="session")
def floor_seconds():
    """``floor_seconds(workload)``: the workload's GEMM floor, timed once per run (best of 3
    after a warm-up)."""
    cache = {}

    def get(workload):
        if workload.name not in cache:
            key, run = _peers.floor_run(workload)
            cache[workload.name] = _peers.best_time(run, rounds=3)[0]
            RESULTS.setdefault((workload.name, key), cache[workload.name])
        return cache[workload.name]

    return get


@pytest.fixture(scope="session")
def results():
    return RESULTS


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("RBM benchmark ratios (minimum times of this run)")
    for workload in dict.fromkeys(name for name, _ in RESULTS):
        times = {key: t for (name, key), t in RESULTS.items() if name == workload}
        floor = times.get("floor", times.get("floor-numpy"))
        write(f"{workload}:")
        for key, t in times.items():
            peer = _peers.PEERS[key]
            line = f"  {peer.label:<36} {t:8.3f} s   {t / floor:6.2f} x floor"
            fast = times.get(f"fastrbm-{peer.variant}")
            if fast and not key.startswith("fastrbm"):
                line += f"   {t / fast:6.2f} x fastrbm {peer.variant.upper()}-1"
            write(line)
