"""Plain-NumPy oracle for ``fastrbm._kernels.recurrent``.

Batch-major, one step at a time, written from the equations (not from the kernels'
time-major stacking): weight gradients are summed step by step, every sequence runs all
n_steps, and the output gradient is placed at each row's last valid step. Parameters are
lists of per-layer arrays; arithmetic stays in the inputs' dtype.
"""
import numpy as np

from ._reference_network import clip_by_global_norm, output_loss, sigmoid


def _act(z, cell):
    if cell == "tanh":
        return np.tanh(z)
    if cell == "sigmoid":
        return sigmoid(z)
    if cell == "relu":
        return np.maximum(z, 0)
    raise ValueError(cell)


def _act_deriv(h, cell):
    if cell == "tanh":
        return 1 - h * h
    if cell == "sigmoid":
        return h * (1 - h)
    if cell == "relu":
        return (h > 0).astype(h.dtype)
    raise ValueError(cell)


class RNN:
    """W, U, b: lists per recurrent layer; cells: their cell names; W_out, b_out; output:
    "softmax" / "identity" / "logistic". LSTM gate blocks in the order i, f, g, o."""

    def __init__(self, W, U, b, cells, W_out, b_out, output):
        self.W, self.U, self.b, self.cells = W, U, b, cells
        self.W_out, self.b_out, self.output = W_out, b_out, output

    def params(self):
        out = []
        for l in range(len(self.W)):
            out += [self.W[l], self.U[l], self.b[l]]
        return out + [self.W_out, self.b_out]


def forward(X, lengths, net):
    """Returns (output pre-activation, cache). cache["layers"][l] holds per step the
    layer's input x_t, gates / pre-activations, h_t and c_t."""
    n, T, _ = X.shape
    seq = [X[:, t] for t in range(T)]
    layers = []
    for l, cell in enumerate(net.cells):
        W, U, b = net.W[l], net.U[l], net.b[l]
        H = U.shape[0]
        h = np.zeros((n, H), X.dtype)
        c = np.zeros((n, H), X.dtype)
        steps = []
        for t in range(T):
            x = seq[t]
            z = x @ W + h @ U + b
            if cell == "lstm":
                i, f = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H])
                g, o = np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
                c_prev = c
                c = f * c_prev + i * g
                h_prev = h
                h = o * np.tanh(c)
                steps.append({"x": x, "h_prev": h_prev, "c_prev": c_prev, "i": i, "f": f, "g": g, "o": o,
                                  "c": c, "h": h})
            else:
                h_prev = h
                h = _act(z, cell)
                steps.append({"x": x, "h_prev": h_prev, "h": h})
        layers.append(steps)
        seq = [s["h"] for s in steps]
    h_last = np.stack([seq[lengths[r] - 1][r] for r in range(n)])
    z_out = h_last @ net.W_out + net.b_out
    return z_out, {"layers": layers, "h_last": h_last}


def predict(X, lengths, net):
    z, _ = forward(X, lengths, net)
    if net.output == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if net.output == "logistic":
        return sigmoid(z)
    return z


def loss_grad(X, Y, lengths, net, alpha):
    """(loss, gradient list in the order of net.params(), step_norms (L, T),
    group_norms (L + 1, 2))."""
    n, T, _ = X.shape
    z_out, cache = forward(X, lengths, net)
    loss, _, D = output_loss(z_out, Y, net.output)
    D = D / np.asarray(n, D.dtype)
    weights = net.W + net.U + [net.W_out]
    loss += 0.5 * alpha * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in weights) / n
    a = np.asarray(alpha / n, X.dtype)
    gW_out = cache["h_last"].T @ D + a * net.W_out
    gb_out = D.sum(axis=0)
    L = len(net.cells)
    # gradient w.r.t. the top hidden state at every step: only at each row's last step
    dh_top = D @ net.W_out.T
    ext = [np.zeros_like(dh_top) for _ in range(T)]
    for r in range(n):
        ext[lengths[r] - 1][r] = dh_top[r]
    grads = [None] * L
    step_norms = np.zeros((L, T))
    for l in range(L - 1, -1, -1):
        cell, W, U = net.cells[l], net.W[l], net.U[l]
        H = U.shape[0]
        gW, gU, gb = np.zeros_like(W), np.zeros_like(U), np.zeros_like(net.b[l])
        dh_next = np.zeros((n, H), X.dtype)  # dL/dh_t through z_{t+1}
        dc_next = np.zeros((n, H), X.dtype)  # dL/dc_t through c_{t+1}
        dx = [None] * T
        for t in range(T - 1, -1, -1):
            s = cache["layers"][l][t]
            dh = ext[t] + dh_next
            step_norms[l, t] = np.linalg.norm(dh.astype(np.float64))
            if cell == "lstm":
                tc = np.tanh(s["c"])
                do = dh * tc
                dc = dc_next + dh * s["o"] * (1 - tc * tc)
                di, dg, df = dc * s["g"], dc * s["i"], dc * s["c_prev"]
                dc_next = dc * s["f"]
                dz = np.concatenate([di * s["i"] * (1 - s["i"]), df * s["f"] * (1 - s["f"]),
                                     dg * (1 - s["g"] ** 2), do * s["o"] * (1 - s["o"])],
                                    axis=1)
            else:
                dz = dh * _act_deriv(s["h"], cell)
            gW += s["x"].T @ dz
            gU += s["h_prev"].T @ dz
            gb += dz.sum(axis=0)
            dx[t] = dz @ W.T
            dh_next = dz @ U.T
        gW += a * W
        gU += a * U
        grads[l] = (gW, gU, gb)
        ext = dx
    flat = [g for triple in grads for g in triple] + [gW_out, gb_out]
    group_norms = np.zeros((L + 1, 2))
    for l in range(L):
        group_norms[l] = [np.linalg.norm(grads[l][0].astype(np.float64)),
                          np.linalg.norm(grads[l][1].astype(np.float64))]
    group_norms[L, 0] = np.linalg.norm(gW_out.astype(np.float64))
    return loss, flat, step_norms, group_norms


def run_epoch(X, Y, lengths, perm, batch_size, net, alpha, optimizer, max_norm):
    """One epoch; `optimizer` is scikit-learn's SGDOptimizer / AdamOptimizer over
    ``net.params()``. Returns (mean loss, mean step norms, mean group norms)."""
    n = perm.size
    total, steps, groups, batches = 0.0, 0.0, 0.0, 0
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        loss, grads, s, g = loss_grad(X[idx], Y[idx], lengths[idx], net, alpha)
        total += loss * idx.size
        steps, groups, batches = steps + s, groups + g, batches + 1
        clip_by_global_norm(grads, max_norm)
        optimizer.update_params(net.params(), grads)
    return total / n, steps / batches, groups / batches
