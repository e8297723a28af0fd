"""fastrbm.plotting with the Agg backend: figures are drawn from models and arrays, saved as
real PNGs, never shown; bad input and a missing matplotlib give clear errors. The
gradient-norm plots use stand-in objects with the DBN attributes, not the DBN itself."""
import sys
from types import SimpleNamespace

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastrbm import BernoulliRBM, plotting  # noqa: E402
from fastrbm.datasets import load_digits  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _no_show_and_close(monkeypatch):
    def show(*args, **kwargs):
        raise AssertionError("fastrbm.plotting must not call plt.show()")

    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rbm():
    X, _ = load_digits()
    return BernoulliRBM(n_components=16, n_iter=3, random_state=0).fit(X)


def assert_png(fig, path):
    """Save ``fig`` and check the file is a PNG of the figure's pixel size with content."""
    fig.savefig(path, dpi=50)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = (int.from_bytes(data[o:o + 4], "big") for o in (16, 20))  # IHDR
    assert (width, height) == tuple(round(v) for v in fig.get_size_inches() * 50)
    assert len(data) > 2000


def mosaic_of(fig):
    (image,) = fig.axes[0].get_images()
    return np.ma.filled(image.get_array().astype(float), np.nan)


def test_filters_from_a_model_and_from_an_array(rbm, tmp_path):
    fig = plotting.plot_filters(rbm)
    assert_png(fig, tmp_path / "filters.png")
    # 16 filters of 8x8 on a 4x4 grid with 1-pixel gaps.
    mosaic = mosaic_of(fig)
    assert mosaic.shape == (4 * 9 - 1, 4 * 9 - 1)
    first = rbm.components_[0].reshape(8, 8)
    np.testing.assert_allclose(mosaic[:8, :8], first / np.abs(first).max(), rtol=1e-6)
    assert np.isnan(mosaic[8, :]).all()  # the gap between tile rows
    # The same from the weight matrix, with an explicit shape, a column count and a cap.
    fig2 = plotting.plot_filters(rbm.components_, image_shape=(4, 16), max_filters=5,
                                 n_cols=5)
    assert mosaic_of(fig2).shape == (4, 5 * 17 - 1)


def test_filters_shape_errors(rbm):
    with pytest.raises(ValueError, match="cannot infer a square image shape for 10"):
        plotting.plot_filters(np.ones((3, 10)))
    with pytest.raises(ValueError, match=r"image_shape=\(3, 3\) does not hold 64"):
        plotting.plot_filters(rbm, image_shape=(3, 3))
    with pytest.raises(ValueError, match="2-D array"):
        plotting.plot_filters(np.ones(64))
    with pytest.raises(TypeError, match="has no components_"):
        plotting.plot_filters(BernoulliRBM())
    with pytest.raises(ValueError, match="NaN or infinite"):
        plotting.plot_filters(np.full((2, 4), np.nan))


def test_samples_grid_into_a_given_axes(rbm, tmp_path):
    fig, axes = plt.subplots(1, 2)
    samples = rbm.sample(n_samples=6, n_steps=10)
    assert plotting.plot_samples(samples, n_cols=3, ax=axes[1]) is fig
    assert not axes[0].get_images()
    (image,) = axes[1].get_images()
    assert image.get_array().shape == (2 * 9 - 1, 3 * 9 - 1)
    assert image.get_clim() == (0.0, 1.0)
    assert_png(fig, tmp_path / "samples.png")
    # 3-D input keeps its own shape; a constant grid still gets a usable colour range.
    fig3 = plotting.plot_samples(np.zeros((2, 3, 5)))
    (image3,) = fig3.axes[0].get_images()
    assert image3.get_array().shape == (3, 2 * 6 - 1)
    assert image3.get_clim() == (-0.5, 0.5)
    with pytest.raises(ValueError, match="does not match samples"):
        plotting.plot_samples(np.zeros((2, 3, 5)), image_shape=(5, 3))
    with pytest.raises(ValueError, match="no samples"):
        plotting.plot_samples(np.zeros((0, 64)))


def test_learning_curve_of_an_rbm_with_likelihood_series(rbm, tmp_path):
    pll = [-30.0, -25.0, -22.0]
    fig = plotting.plot_learning_curve(rbm, pseudo_likelihood=pll,
                                       log_likelihood=([1, 3], [-40.0, -35.0]))
    assert_png(fig, tmp_path / "curve.png")
    left, right = fig.axes  # error on the left, likelihoods on the twin axis
    (error_line,) = left.get_lines()
    np.testing.assert_array_equal(error_line.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(error_line.get_ydata(),
                                  rbm.history_["reconstruction_error"])
    lines = {line.get_label(): line for line in right.get_lines()}
    assert set(lines) == {"pseudo-likelihood", "log-likelihood"}
    np.testing.assert_array_equal(lines["log-likelihood"].get_xdata(), [1, 3])
    legend = [t.get_text() for t in left.get_legend().get_texts()]
    assert legend == ["reconstruction error", "pseudo-likelihood", "log-likelihood"]
    # A plain history dict works too ("time" is not a curve).
    fig2 = plotting.plot_learning_curve(dict(rbm.history_))
    assert len(fig2.axes) == 1 and len(fig2.axes[0].get_lines()) == 1


def test_learning_curve_of_a_classifier():
    clf = SimpleNamespace(loss_curve_=[2.3, 1.1, 0.7, 0.6],
                          validation_scores_=[0.5, 0.8, 0.85, 0.86])
    fig = plotting.plot_learning_curve(clf)
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == ["training loss"]
    assert [line.get_label() for line in right.get_lines()] == ["validation score"]
    # Without early stopping scikit-learn leaves validation_scores_ None: one axis only.
    fig2 = plotting.plot_learning_curve(SimpleNamespace(loss_curve_=[1.0, 0.5],
                                                        validation_scores_=None))
    assert len(fig2.axes) == 1


def test_learning_curve_errors():
    with pytest.raises(TypeError, match="neither history_ .* nor loss_curve_"):
        plotting.plot_learning_curve(BernoulliRBM())
    with pytest.raises(ValueError, match="history is empty"):
        plotting.plot_learning_curve({"time": [0.1]})
    with pytest.raises(ValueError, match="pseudo-likelihood is empty"):
        plotting.plot_learning_curve({"reconstruction_error": [0.1]}, pseudo_likelihood=[])
    with pytest.raises(ValueError, match="log-likelihood: expected a 1-D"):
        plotting.plot_learning_curve({"reconstruction_error": [0.1]},
                                     log_likelihood=([1, 2, 3], [1.0, 2.0]))


def fake_network(norms, initial=None):
    """A stand-in for a fine-tuned DBN: only the attributes the plot reads."""
    net = SimpleNamespace(gradient_norms_=np.asarray(norms))
    if initial is not None:
        net.initial_gradient_norms_ = np.asarray(initial)
    return net


def test_gradient_norms_of_one_model_with_initial_norms(tmp_path):
    norms = np.array([[1e-5, 1e-3, 1e-1], [2e-5, 2e-3, 5e-2]])
    fig = plotting.plot_gradient_norms(fake_network(norms, initial=[1e-6, 1e-4, 1e-1]))
    assert_png(fig, tmp_path / "norms.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["layer 1", "layer 2", "layer 3"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [0, 1, 2])  # epoch 0: initial
    np.testing.assert_array_equal(lines[0].get_ydata(), [1e-6, 1e-5, 2e-5])
    # A bare array starts at epoch 1.
    fig2 = plotting.plot_gradient_norms(norms, layer_names=["in", "hidden", "out"])
    first = fig2.axes[0].get_lines()[0]
    assert first.get_label() == "in"
    np.testing.assert_array_equal(first.get_xdata(), [1, 2])


def test_gradient_norms_compare_several_models():
    rng = np.random.default_rng(0)
    pretrained = fake_network(rng.uniform(1e-2, 1, (5, 4)), initial=np.full(4, 0.1))
    random_init = fake_network(rng.uniform(1e-6, 1e-3, (5, 4)))
    fig = plotting.plot_gradient_norms([pretrained, random_init],
                                       labels=["pretrained", "random init"])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 8
    assert lines[0].get_label() == "pretrained: layer 1"
    assert lines[4].get_label() == "random init: layer 1"
    assert lines[0].get_color() == lines[4].get_color()          # a layer keeps its colour
    assert lines[0].get_linestyle() != lines[4].get_linestyle()  # models differ by style
    # A dict names the models by its keys; arrays mix with models.
    fig2 = plotting.plot_gradient_norms({"a": pretrained, "b": np.ones((3, 4))})
    labels = [line.get_label() for line in fig2.axes[0].get_lines()]
    assert labels[0] == "a: layer 1" and labels[4] == "b: layer 1"


@pytest.mark.parametrize("bad, kwargs, error, match", [
    (np.ones(3), {}, ValueError, r"2-D array of shape \(n_epochs, n_layers\)"),
    (np.ones((2, 2, 2)), {}, ValueError, "2-D array"),
    (np.array([[1.0, -1.0]]), {}, ValueError, "finite and >= 0"),
    (np.array([[1.0, np.inf]]), {}, ValueError, "finite and >= 0"),
    (fake_network(np.ones((2, 3)), initial=np.ones(2)), {}, ValueError,
     r"initial_gradient_norms_ has shape \(2,\), expected \(3,\)"),
    ([np.ones((2, 3)), np.ones((2, 3))], {"labels": ["only one"]}, ValueError,
     "1 labels for 2 models"),
    ({"a": np.ones((2, 3))}, {"labels": ["a"]}, ValueError, "dict keys"),
    (np.ones((2, 3)), {"layer_names": ["a", "b"]}, ValueError, "2 layer_names for 3 layers"),
    (BernoulliRBM(), {}, TypeError, "has no gradient_norms_"),
])
def test_gradient_norms_bad_input(bad, kwargs, error, match):
    with pytest.raises(error, match=match):
        plotting.plot_gradient_norms(bad, **kwargs)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "fastrbm\[plot\]"'):
        plotting.plot_samples(np.zeros((1, 4)))


def test_plotting_is_a_lazy_submodule():
    import fastrbm

    assert fastrbm.plotting is plotting
    assert "plotting" in dir(fastrbm)
