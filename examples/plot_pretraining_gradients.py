"""
Pretraining and the vanishing gradient, on the digits
=====================================================

The same deep logistic net, 64-200-200-200-200-10, fine-tuned by backprop at the
estimator's defaults (Adam) twice: from random (Glorot-style) weights and from a greedily
pretrained RBM stack (``pretrain=False`` / ``True``). Every fitted net records the norm of
the loss gradient with respect to each layer's weights, epoch by epoch
(``gradient_norms_``), at no extra cost. From random weights the layers nearest the input
start with gradients orders of magnitude smaller than the top layer's; Adam, which scales
each weight's step by its own gradient history, still trains them; with plain SGD
(``solver="sgd"``) the same random-init net does not learn at all in 30 epochs. The
vanishing-gradient study measures this on Fashion-MNIST with seven remedies.
"""

# %%
import warnings

import matplotlib.pyplot as plt
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastrbm import DBNClassifier
from fastrbm.datasets import load_digits
from fastrbm.diagnostics import format_gradient_norms
from fastrbm.plotting import plot_gradient_norms

X, y = load_digits()
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)

nets = {}
for pretrain in (False, True):
    net = DBNClassifier(hidden_layer_sizes=(200, 200, 200, 200), pretrain=pretrain,
                        max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed 30 epochs
        net.fit(X_train, y_train)
    name = "pretrained" if pretrain else "random init"
    nets[name] = net
    print(f"{name}: validation accuracy {net.score(X_val, y_val):.3f}")
    print(format_gradient_norms(net))

# %%
# Gradient norm per layer over the epochs (epoch 0: the initial weights).
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (name, net) in zip(axes, nets.items()):
    plot_gradient_norms(net, ax=ax, title=name)
fig.tight_layout()
plt.show()
