"""Plain-NumPy oracles for ``fastrbm._kernels.backprop``.

Readable, unoptimised re-implementations of every kernel, written against lists of per-layer
arrays (``coefs``, ``intercepts``, ``gammas``, ``betas``, ``running_means``,
``running_vars``), not the flat layout. Arithmetic stays in the dtype of the inputs (Python
float scalars do not upcast float32 arrays under NumPy 2's promotion rules).
"""
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


# --------------------------------------------------------------------------- activations
def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activate(z, name):
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "elu":  # alpha = 1 (Clevert et al. 2016)
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    if name == "softmax":
        return softmax(z)
    raise ValueError(name)


def derivative_from_output(h, name):
    """act'(z) expressed through h = act(z), as in scikit-learn's MLP."""
    if name == "identity":
        return np.ones_like(h)
    if name == "logistic":
        return h * (1 - h)
    if name == "tanh":
        return 1 - h * h
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "elu":  # 1 for z > 0, exp(z) = h + 1 otherwise
        return np.where(h > 0, np.ones_like(h), h + 1)
    raise ValueError(name)


# --------------------------------------------------------------------------- losses
def output_loss(z, y, output):
    """(mean loss over rows, network output P, delta P - Y) from the output pre-activation."""
    n = z.shape[0]
    if output == "softmax":
        m = z.max(axis=1, keepdims=True)
        lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        loss = float(np.sum(y * (lse - z), dtype=np.float64)) / n
        p = np.exp(z - lse)
    elif output == "logistic":
        terms = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
        loss = float(np.sum(terms, dtype=np.float64)) / n
        p = sigmoid(z)
    elif output == "identity":
        loss = 0.5 * float(np.sum((z - y) ** 2, dtype=np.float64)) / n
        p = z.copy()
    else:
        raise ValueError(output)
    return loss, p, p - y


# --------------------------------------------------------------------------- dropout RNG
def _splitmix64(z):
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def dropout_mask(seed, stream, p, shape, dtype):
    """SplitMix64 counter-based inverted-dropout mask (uint64 arrays wrap silently)."""
    s = np.array([stream + 1], dtype=np.uint64) * _GOLDEN
    key = _splitmix64(np.array([seed], dtype=np.uint64) ^ _splitmix64(s))
    k = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    u = (_splitmix64(key + k * _GOLDEN) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    scale = np.asarray(1.0 / (1.0 - p), dtype=dtype)
    return np.where(u < p, np.zeros((), dtype), scale).astype(dtype).reshape(shape)


# --------------------------------------------------------------------------- network
class Net:
    """A dense network as lists of per-layer arrays (``None`` where a layer has no BN)."""

    def __init__(self, coefs, intercepts, gammas, betas, running_means, running_vars,
                 activation, output):
        self.coefs, self.intercepts = coefs, intercepts
        self.gammas, self.betas = gammas, betas
        self.running_means, self.running_vars = running_means, running_vars
        self.activation, self.output = activation, output

    @property
    def n_layers(self):
        return len(self.coefs)

    def act(self, l):
        """Layer l's activation: the output's, or the hidden one (`activation` is one name
        for all hidden layers or a list of one per hidden layer)."""
        if l == self.n_layers - 1:
            return self.output
        return self.activation if isinstance(self.activation, str) else self.activation[l]


def forward_infer(X, net, bn_eps):
    """Inference mode: BN with running statistics, no dropout; returns the network output."""
    A = X
    for l in range(net.n_layers):
        Z = A @ net.coefs[l]
        if net.gammas[l] is not None:
            inv = 1 / np.sqrt(net.running_vars[l] + bn_eps)
            Z = net.gammas[l] * ((Z - net.running_means[l]) * inv) + net.betas[l]
        else:
            Z = Z + net.intercepts[l]
        A = activate(Z, net.act(l))
    return A


def forward_train(X, net, dropout, bn_eps, bn_momentum, seed, step):
    """Training mode; updates the running statistics in place. Returns a cache dict."""
    L = net.n_layers
    cache = {"Z": [], "H": [], "M": [], "A": [X], "xhat": [], "inv_std": []}
    A = X
    for l in range(L):
        Z = A @ net.coefs[l]
        xhat = inv_std = None
        if net.gammas[l] is not None:
            n = Z.shape[0]
            mean = Z.mean(axis=0)
            var = ((Z - mean) ** 2).mean(axis=0)
            net.running_means[l][:] = ((1 - bn_momentum) * net.running_means[l]
                                       + bn_momentum * mean)
            net.running_vars[l][:] = ((1 - bn_momentum) * net.running_vars[l]
                                      + bn_momentum * var * (n / max(n - 1, 1)))
            inv_std = 1 / np.sqrt(var + bn_eps)
            xhat = (Z - mean) * inv_std
            Z = net.gammas[l] * xhat + net.betas[l]
        else:
            Z = Z + net.intercepts[l]
        cache["xhat"].append(xhat)
        cache["inv_std"].append(inv_std)
        if l == L - 1:
            cache["Z_out"] = Z
            break
        cache["Z"].append(Z)  # hidden pre-activation
        H = activate(Z, net.act(l))
        M = None
        if dropout[l] > 0:
            M = dropout_mask(seed, step * L + l, dropout[l], H.shape, H.dtype)
            A = H * M
        else:
            A = H
        cache["H"].append(H)
        cache["M"].append(M)
        cache["A"].append(A)
    return cache


def loss_grad(X, Y, net, dropout, alpha, bn_eps, bn_momentum, seed, step):
    """Returns loss, (gW, gb, ggamma, gbeta) lists, per-layer ||gW||_F."""
    L = net.n_layers
    n = X.shape[0]
    c = forward_train(X, net, dropout, bn_eps, bn_momentum, seed, step)
    loss, _, D = output_loss(c["Z_out"], Y, net.output)
    loss += 0.5 * alpha * sum(float(np.sum(W.astype(np.float64) ** 2)) for W in net.coefs) / n
    gW, gb, gg, gbeta = [None] * L, [None] * L, [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        W = net.coefs[l]
        gW[l] = (c["A"][l].T @ D + alpha * W) / n
        if net.gammas[l] is None:
            gb[l] = D.sum(axis=0) / n
        else:
            gb[l] = np.zeros_like(net.intercepts[l])
        if l == 0:
            break
        k = l - 1
        D = D @ W.T
        if c["M"][k] is not None:
            D = D * c["M"][k]
        D = D * derivative_from_output(c["H"][k], net.act(k))
        if net.gammas[k] is not None:
            xhat, inv_std = c["xhat"][k], c["inv_std"][k]
            dgamma = (D * xhat).sum(axis=0)
            dbeta = D.sum(axis=0)
            gg[k], gbeta[k] = dgamma / n, dbeta / n
            D = net.gammas[k] * inv_std * (D - (dbeta + xhat * dgamma) / n)
    norms = np.array([np.linalg.norm(g.astype(np.float64)) for g in gW])
    return loss, (gW, gb, gg, gbeta), norms


def params_list(net):
    """The trainable arrays in a fixed order (for scikit-learn's optimizers)."""
    out = []
    for l in range(net.n_layers):
        out += [net.coefs[l], net.intercepts[l]]
        if net.gammas[l] is not None:
            out += [net.gammas[l], net.betas[l]]
    return out


def grads_list(net, grads):
    gW, gb, gg, gbeta = grads
    out = []
    for l in range(net.n_layers):
        out += [gW[l], gb[l]]
        if net.gammas[l] is not None:
            out += [gg[l], gbeta[l]]
    return out


def clip_by_global_norm(grads, max_norm):
    """Scale a list of gradient arrays in place to global L2 norm <= max_norm."""
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    if max_norm > 0 and norm > max_norm:
        for g in grads:
            g *= g.dtype.type(max_norm / norm)
    return norm


def run_epoch(X, Y, perm, batch_size, net, dropout, alpha, bn_eps, bn_momentum, seed,
              optimizer, max_norm, t):
    """One epoch; `optimizer` is a scikit-learn SGDOptimizer/AdamOptimizer over
    ``params_list(net)`` (Adam's own ``t`` is advanced by update_params)."""
    n = perm.size
    total, norms_sum, n_batches = 0.0, np.zeros(net.n_layers), 0
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        t += 1
        loss, grads, norms = loss_grad(X[idx], Y[idx], net, dropout, alpha, bn_eps,
                                       bn_momentum, seed, t)
        total += loss * idx.size
        norms_sum += norms
        n_batches += 1
        g = grads_list(net, grads)
        clip_by_global_norm(g, max_norm)
        optimizer.update_params(params_list(net), g)
    return total / n, norms_sum / n_batches, t
