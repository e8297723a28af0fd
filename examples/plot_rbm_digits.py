"""
An RBM on the digits: filters, samples and the log-likelihood
==============================================================

:class:`fastrbm.BernoulliRBM` at its defaults (scikit-learn's: PCD-1, learning rate 0.1,
batch 10, 10 epochs) learns scikit-learn's 8x8 digits (pixels scaled to [0, 1]). A model
with 16 hidden units is small enough for the exact log-likelihood: ``score(X,
method="exact")`` sums over all 2**16 hidden states, so the annealed importance sampling
estimate (``method="ais"``) that larger models need can be checked against it. Then block
Gibbs sampling generates new digits from a 64-unit model.
"""

# %%
# Train two RBMs: one small enough for the exact partition function, one larger.
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from fastrbm import BernoulliRBM
from fastrbm.datasets import load_digits
from fastrbm.plotting import plot_filters, plot_learning_curve, plot_samples

X, y = load_digits()
X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)

small = BernoulliRBM(n_components=16, random_state=0).fit(X_train)
exact = small.score(X_test, method="exact")
ais = small.score(X_test, method="ais", random_state=0)
print(f"16 hidden units: test log-likelihood {exact:.3f} exact, {ais:.3f} by AIS")

rbm = BernoulliRBM(n_components=64, random_state=0).fit(X_train)
print(f"64 hidden units: test log-likelihood "
      f"{rbm.score(X_test, method='ais', random_state=0):.3f} by AIS")

# %%
# What the hidden units respond to, and how the reconstruction error fell.
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
plot_filters(rbm, (8, 8), max_filters=64, ax=axes[0])
plot_learning_curve(rbm, ax=axes[1])
fig.tight_layout()

# %%
# New digits: 1000 steps of block Gibbs sampling, each chain started from the visible
# biases alone.
samples = rbm.sample(36, n_steps=1000)
plot_samples(samples, (8, 8), n_cols=9)
plt.show()
