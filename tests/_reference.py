"""Plain-NumPy oracles for the Gibbs sampling engine (fastrbm/_kernels/_sampling.pyx).

Written for clarity, not speed: loops over mini-batches and phases in the order the
engine documents, with the same counter-based uniforms, so each compiled kernel can be
checked against it value by value.
"""
import numpy as np
from scipy.special import expit

_U64 = np.uint64
_U32 = np.uint32


def _splitmix64(x):
    x = np.asarray(x, dtype=_U64) + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _lowbias32(x):
    x = x ^ (x >> _U32(16))
    x = x * _U32(0x7FEB352D)
    x = x ^ (x >> _U32(15))
    x = x * _U32(0x846CA68B)
    return x ^ (x >> _U32(16))


def uniforms(seed, counter, shape):
    """The engine's uniform at (seed, counter, row, column) for a block of the given shape."""
    rows, cols = shape
    keys = _splitmix64(
        _splitmix64(_U64(seed) ^ _splitmix64(np.array([counter], _U64)))
        + np.arange(rows, dtype=_U64)
    )
    klo = (keys & _U64(0xFFFFFFFF)).astype(_U32)[:, None]
    khi = (keys >> _U64(32)).astype(_U32)[:, None]
    j = np.arange(cols, dtype=_U32)[None, :]
    bits = _lowbias32(_lowbias32(klo ^ (j * _U32(0x9E3779B9))) ^ khi)
    return (bits >> _U32(8)).astype(np.float64) * 2.0**-24


def normals(seed, counter, shape):
    """The engine's standard normal at (seed, counter, row, column): Box-Muller on the
    uniforms at columns 2j and 2j + 1 of the row."""
    rows, cols = shape
    u = uniforms(seed, counter, (rows, 2 * cols))
    return np.sqrt(-2 * np.log1p(-u[:, 0::2])) * np.cos(2 * np.pi * u[:, 1::2])


def sigmoid(x):
    return expit(x)


def unit_mean(x, units):
    """The mean-field value of units with total input x: sigmoid, identity (Gaussian) or
    max(0, x) (noisy rectified linear)."""
    if units == "bernoulli":
        return sigmoid(x)
    if units == "gaussian":
        return x
    if units == "nrelu":
        return np.maximum(x, 0)
    raise ValueError(units)


def sample_units(pre, bias, units, seed, counter, sigma=None):
    """(mean, sample) of a layer of ``units`` with pre-activations ``pre``: Bernoulli as
    sample_layer; Gaussian N(pre + bias, sigma^2) (sigma None: 1, Gaussian hidden units);
    noisy rectified linear max(0, x + sqrt(sigmoid(x)) N(0, 1)), x = pre + bias (Nair &
    Hinton 2010)."""
    if units == "bernoulli":
        return sample_layer(pre, bias, seed, counter)
    x = pre + bias
    noise = normals(seed, counter, x.shape)
    if units == "gaussian":
        return x, x + (1.0 if sigma is None else sigma) * noise
    return np.maximum(x, 0), np.maximum(x + np.sqrt(sigmoid(x)) * noise, 0)


def sample_layer(pre, bias, seed, counter):
    """(probabilities, Bernoulli samples) of a layer with pre-activations ``pre``."""
    p = sigmoid(pre + bias)
    return p, (uniforms(seed, counter, p.shape) < p).astype(p.dtype)


def gibbs_chain(v, W, b, c, n_steps, seed, counter, visible="bernoulli", hidden="bernoulli",
                log_var=None):
    """n_steps of v -> h -> v; returns (v, h, v_prob, next counter). Gaussian visible units
    have variances exp(log_var), and the hidden layer sees v / sigma^2."""
    h = vp = None
    inv_var = np.exp(-log_var) if visible == "gaussian" else 1.0
    sigma = np.exp(0.5 * log_var) if visible == "gaussian" else None
    for _ in range(n_steps):
        _, h = sample_units((v * inv_var) @ W.T, c, hidden, seed, counter)
        vp, v = sample_units(h @ W, b, visible, seed, counter + 1, sigma)
        counter += 2
    return v, h, vp, counter


def cd_epoch(X, W, b, c, chain, vel, q_hidden, *, batch_size, k, persistent,
             learning_rate, momentum=0.0, weight_decay=0.0, sparsity_target=0.1,
             sparsity_cost=0.0, seed, counter, visible="bernoulli", hidden="bernoulli",
             log_var=None, log_var_vel=None, learn_log_var=False, log_var_min=-10,
             log_var_max=10, centered=False, offset_rate=0.01, fast_learning_rate=0.0,
             fast_weight_decay=0.05, betas=None, swap_every=1, extra=None):
    """One epoch of CD-k / PCD-k, as documented in ``GibbsEngine.epoch``.

    Works on copies and returns (W, b, c, chain, vel, q_hidden, counter), and with
    Gaussian visible units also (log_var, log_var_vel). The state of the other samplers
    is in the dict ``extra``, whose entries are replaced by their new values:
    ``visible_offset`` and ``hidden_offset`` with ``centered``, ``W_fast``, ``b_fast``,
    ``c_fast`` with ``fast_learning_rate`` > 0, ``tempered_chains``, ``tempering_step``,
    ``swap_accepted`` and ``swap_proposed`` with more than one of ``betas``."""
    extra = {} if extra is None else extra
    fast = fast_learning_rate > 0
    tempered = betas is not None and len(betas) > 1
    if tempered:
        extra["swap_accepted"] = np.zeros(len(betas) - 1)
        extra["swap_proposed"] = np.zeros(len(betas) - 1)
    W, b, c = W.copy(), b.copy(), c.copy()
    chain = chain.copy()
    vel = [v.copy() for v in vel]
    q_hidden = q_hidden.copy()
    gaussian = visible == "gaussian"
    learn = gaussian and learn_log_var
    z = log_var.copy() if gaussian else np.zeros(X.shape[1])
    z_vel = log_var_vel.copy() if learn else None
    plain = (momentum == 0 and weight_decay == 0 and sparsity_cost == 0 and not learn
             and not centered and not fast)
    for start in range(0, X.shape[0], batch_size):
        inv_var, sigma = np.exp(-z), np.exp(0.5 * z)
        V0 = X[start:start + batch_size]
        V0s = V0 * inv_var if gaussian else V0
        n = V0.shape[0]
        if persistent:
            Hpos = unit_mean(V0s @ W.T + c, hidden)
            Hs = chain
        else:
            Hpos, Hs = sample_units(V0s @ W.T, c, hidden, seed, counter)
            counter += 1
        # the negative chains' model: with fast weights, the sum of both sets
        Wn, bn, cn = ((W + extra["W_fast"], b + extra["b_fast"], c + extra["c_fast"])
                      if fast else (W, b, c))
        if tempered:
            Vneg, Hneg, chain, counter = tempered_steps(
                chain, extra, Wn, bn, cn, betas, k, swap_every, seed, counter)
            Vnegs = Vneg
        for step in range(k if not tempered else 0):
            _, Vneg = sample_units(Hs @ Wn, bn, visible, seed, counter, sigma)
            Vnegs = Vneg * inv_var if gaussian else Vneg
            counter += 1
            if persistent or step < k - 1:
                Hneg, Hs = sample_units(Vnegs @ Wn.T, cn, hidden, seed, counter)
                counter += 1
            else:
                Hneg = unit_mean(Vnegs @ Wn.T + cn, hidden)
        if persistent and not tempered:
            chain = Hs
        n_neg = Vneg.shape[0]
        gW = Hpos.T @ V0s / n - Hneg.T @ Vnegs / n_neg
        gb = V0s.mean(axis=0) - Vnegs.mean(axis=0)
        gc = Hpos.mean(axis=0) - Hneg.mean(axis=0)
        if learn:  # Cho et al. (2011), from W and b before this update
            gz = (0.5 * inv_var * (((V0 - b) ** 2).mean(axis=0) - ((Vneg - b) ** 2).mean(axis=0))
                  - (W * gW).sum(axis=0))
        if centered:  # Melchior et al. (2016): slide the offsets, then the centred gradient
            mu = (1 - offset_rate) * extra["visible_offset"] + offset_rate * V0s.mean(axis=0)
            lam = (1 - offset_rate) * extra["hidden_offset"] + offset_rate * Hpos.mean(axis=0)
            extra["visible_offset"], extra["hidden_offset"] = mu, lam
            gW = (Hpos - lam).T @ (V0s - mu) / n - (Hneg - lam).T @ (Vnegs - mu) / n_neg
        V0 = V0s
        if plain:
            W += learning_rate * gW
            b += learning_rate * gb
            c += learning_rate * gc
        else:
            q_hidden = 0.9 * q_hidden + 0.1 * Hpos.mean(axis=0)
            sparse_push = sparsity_cost * (sparsity_target - q_hidden)
            vel[0] = momentum * vel[0] + learning_rate * (
                gW - weight_decay * W + sparse_push[:, None] * V0.mean(axis=0)[None, :])
            vel[1] = momentum * vel[1] + learning_rate * gb
            vel[2] = momentum * vel[2] + learning_rate * (gc + sparse_push)
            W += vel[0]
            b += vel[1]
            c += vel[2]
            if centered:  # b = b' - W^T lambda, c = c' - W mu at the new offsets
                b -= vel[0].T @ lam
                c -= vel[0] @ mu
        if fast:  # Tieleman & Hinton (2009): the same gradient, a decay of its own
            keep = 1 - fast_weight_decay
            extra["W_fast"] = keep * extra["W_fast"] + fast_learning_rate * gW
            b_step, c_step = fast_learning_rate * gb, fast_learning_rate * gc
            if centered:
                b_step = b_step - fast_learning_rate * gW.T @ lam
                c_step = c_step - fast_learning_rate * gW @ mu
            extra["b_fast"] = keep * extra["b_fast"] + b_step
            extra["c_fast"] = keep * extra["c_fast"] + c_step
        if learn:
            z_vel = momentum * z_vel + learning_rate * gz
            z = np.clip(z + z_vel, log_var_min, log_var_max)
    if gaussian:
        return W, b, c, chain, vel, q_hidden, counter, z, z_vel
    return W, b, c, chain, vel, q_hidden, counter


def tempered_steps(chain, extra, W, b, c, betas, k, swap_every, seed, counter):
    """k Gibbs steps of parallel tempering (Bernoulli units), as documented in
    ``GibbsEngine.epoch``: the chains at betas[0] = 1 are ``chain``, those at the others
    ``extra["tempered_chains"]`` (in order); returns (V, H_prob, chain at beta 1, counter)
    for the statistics and updates ``extra``."""
    M, nc = len(betas), chain.shape[0]
    H = np.vstack([chain, extra["tempered_chains"]])
    beta_rows = np.repeat(np.asarray(betas, dtype=np.float64), nc)[:, None]

    def log_p(beta, h, a):  # the hidden marginal at beta, a = h W
        return beta * c @ h + np.logaddexp(0, beta * (a + b)).sum()

    for _ in range(k):
        A = H @ W
        if extra["tempering_step"] % swap_every == 0:
            u = uniforms(seed, counter, (nc, M - 1))
            counter += 1
            for r in range(nc):
                for m in range(M - 1):  # coldest pair first
                    i, j = m * nc + r, (m + 1) * nc + r
                    bi, bj = betas[m], betas[m + 1]
                    log_ratio = (log_p(bi, H[j], A[j]) + log_p(bj, H[i], A[i])
                                 - log_p(bi, H[i], A[i]) - log_p(bj, H[j], A[j]))
                    if log_ratio >= 0 or u[r, m] < np.exp(log_ratio):
                        H[[i, j]], A[[i, j]] = H[[j, i]], A[[j, i]]
                        extra["swap_accepted"][m] += 1
                    extra["swap_proposed"][m] += 1
        extra["tempering_step"] += 1
        P = sigmoid(beta_rows * (A + b))
        V = (uniforms(seed, counter, P.shape) < P).astype(np.float64)
        counter += 1
        Hp = sigmoid(beta_rows * (V @ W.T + c))
        H = (uniforms(seed, counter, Hp.shape) < Hp).astype(np.float64)
        counter += 1
    extra["tempered_chains"] = H[nc:]
    return V[:nc], Hp[:nc], H[:nc], counter


def free_energy(X, W, b, c):
    return -X @ b - np.logaddexp(0, X @ W.T + c).sum(axis=1)


def gaussian_free_energy(X, W, b, c, log_var):
    """F(v) = sum_j (v_j - b_j)^2 / (2 sigma_j^2) - sum_i softplus(c_i + W_i.(v / sigma^2))."""
    inv_var = np.exp(-log_var)
    return (0.5 * ((X - b) ** 2 * inv_var).sum(axis=1)
            - np.logaddexp(0, (X * inv_var) @ W.T + c).sum(axis=1))


def gaussian_exact_log_partition(W, b, c, log_var):
    """log Z of a Gaussian-Bernoulli RBM: each hidden state's Gaussian integral over v in
    closed form, the hidden states enumerated (n_hidden <= ~20)."""
    nh = W.shape[0]
    H = ((np.arange(2**nh)[:, None] >> np.arange(nh)[None, :]) & 1).astype(np.float64)
    mean = H @ W + b
    log_terms = H @ c + 0.5 * ((mean ** 2 - b ** 2) * np.exp(-log_var)).sum(axis=1)
    return np.logaddexp.reduce(log_terms) + 0.5 * (np.log(2 * np.pi) + log_var).sum()


def exact_log_partition(W, b, c):
    """log Z of a Bernoulli RBM by enumerating every hidden state (n_hidden <= ~20)."""
    nh = W.shape[0]
    H = ((np.arange(2**nh)[:, None] >> np.arange(nh)[None, :]) & 1).astype(np.float64)
    log_terms = H @ c + np.logaddexp(0, H @ W + b).sum(axis=1)
    return np.logaddexp.reduce(log_terms)



def ais_log_weights(W, b, c, b_base, betas, n_chains, seed, counter):
    """The log importance weights of ``n_chains`` AIS runs of a Bernoulli RBM from the
    base-rate model (visible biases ``b_base``, hidden units uniform), as documented in
    ``_sampling.ais_log_weights``; returns (log_w, next counter).

    log p*_beta(v) = ((1 - beta) b_base + beta b).v + sum_j softplus(beta (W_j.v + c_j))."""
    _, V = sample_layer(np.zeros((n_chains, W.shape[1])), b_base, seed, counter)
    counter += 1
    log_w = np.zeros(n_chains)
    for step in range(1, len(betas)):
        beta, beta_old = betas[step], betas[step - 1]
        x = V @ W.T + c
        log_w += ((beta - beta_old) * V @ (b - b_base)
                  + (np.logaddexp(0, beta * x) - np.logaddexp(0, beta_old * x)).sum(axis=1))
        H = (uniforms(seed, counter, x.shape) < sigmoid(beta * x)).astype(np.float64)
        counter += 1
        if step == len(betas) - 1:
            break
        _, V = sample_layer(beta * (H @ W), beta * b + (1 - beta) * b_base, seed, counter)
        counter += 1
    return log_w, counter


def logistic_noise(seed, counter, shape):
    """log(u / (1 - u)) of the engine's uniforms: x > noise is the event u < sigmoid(x)."""
    u = uniforms(seed, counter, shape)
    with np.errstate(divide="ignore"):
        return np.log(u) - np.log1p(-u)


def ais_hidden_log_weights(W, b, c, b_base, log_var, betas, n_chains, seed, counter):
    """AIS of a Gaussian-Bernoulli RBM on its hidden marginal, as documented in
    ``_sampling.ais_hidden_log_weights``; returns (log_w, next counter).

    Written from the first form of the marginal: with mu = (1 - beta) b_base + beta (b +
    W^T h), log p*_beta(h) = beta c.h + sum_i (mu_i^2 - (1 - beta) b_base_i^2 - beta
    b_i^2) / (2 s_i^2) (the constant sum_i log(sqrt(2 pi) s_i) left out), each unit's
    conditional recomputed from h at its turn in the sweep."""
    inv_var = np.exp(-log_var)

    def log_p(beta, H):
        mu = (1 - beta) * b_base + beta * (b + H @ W)
        return beta * H @ c + 0.5 * ((mu ** 2 - (1 - beta) * b_base ** 2 - beta * b ** 2)
                                     * inv_var).sum(axis=1)

    nh = W.shape[0]
    H = (logistic_noise(seed, counter, (n_chains, nh)) < 0).astype(np.float64)
    log_w = np.zeros(n_chains)
    for step in range(1, len(betas)):
        beta, beta_old = betas[step], betas[step - 1]
        log_w += log_p(beta, H) - log_p(beta_old, H)
        if step == len(betas) - 1:
            break
        noise = logistic_noise(seed, counter + step, (n_chains, nh))
        for j in range(nh):
            on, off = H.copy(), H.copy()
            on[:, j], off[:, j] = 1, 0
            H[:, j] = (log_p(beta, on) - log_p(beta, off) > noise[:, j]).astype(np.float64)
    return log_w, counter + len(betas) - 1
