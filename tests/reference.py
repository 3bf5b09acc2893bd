"""A slow, obviously-correct reference for docs/SEMANTICS.md.

Written from the specification, not from ``cssnn.sw.spec.golden``: plain Python loops, one neuron at a
time, Python ints (unbounded), saturation applied only where the spec says so (and not at all when
``saturate=False``). It reads only the raw fields of a network (weights, biases, masks, thresholds,
layer geometry); it does not use ``effective_weight``, ``expanded_bias``, ``fanout``, ``apply`` or
any other derived quantity of ``cssnn.sw``.

Entry point: :func:`reference_run` (one sample). Besides what the golden model reports it also
records, for the property tests, every pre-saturation value ``m``, every output-integrator value,
and every input current of every neuron.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RefLayer", "RefResult", "build_layer", "reference_run", "sat", "signed_bits"]


def sat(x: int, bits: int) -> int:
    """sat_B(x) = min(max(x, -2^(B-1)), 2^(B-1) - 1)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return lo if x < lo else hi if x > hi else x


def signed_bits(magnitude: int) -> int:
    """Smallest B with 2^(B-1) - 1 >= magnitude (so [-magnitude, magnitude] fits in B bits signed)."""
    b = 1
    while (1 << (b - 1)) - 1 < magnitude:
        b += 1
    return b


def _ints(a) -> list:
    """Nested Python ints from an array-like (no numpy arithmetic is used afterwards)."""
    if hasattr(a, "tolist"):
        a = a.tolist()
    if isinstance(a, list):
        return [_ints(v) for v in a]
    return int(a)


@dataclass
class RefLayer:
    """A weight layer as an explicit integer matrix: A[j][i] (masked entries 0), synapse bits
    P[j][i] (1 = an unmasked synapse exists from input i to output j), one bias per output neuron."""

    n_in: int
    n_out: int
    A: list  # n_out x n_in
    P: list  # n_out x n_in
    bias: list  # n_out
    threshold: int | None

    @property
    def fanout(self) -> list:
        return [sum(self.P[j][i] for j in range(self.n_out)) for i in range(self.n_in)]

    @property
    def imax(self) -> int:
        """max_j sum_i |A[j, i]|."""
        return max((sum(abs(a) for a in row) for row in self.A), default=0)

    def current(self, s: list) -> list:
        """I = A s, exact."""
        out = []
        for j in range(self.n_out):
            acc = 0
            row = self.A[j]
            for i in range(self.n_in):
                if s[i]:
                    acc += row[i] * s[i]
            out.append(acc)
        return out


def build_layer(layer) -> RefLayer:
    """The integer matrix a SpikingLayer stands for, by explicit index loops over its geometry."""
    shape = layer.shape
    kind = shape.kind
    w = _ints(layer.weight)
    b = _ints(layer.bias)
    mask = None if layer.mask is None else _ints(layer.mask)
    thr = None if layer.threshold is None else int(layer.threshold)
    if kind == "dense":
        n_in, n_out = int(shape.in_features), int(shape.out_features)
        A = [[0] * n_in for _ in range(n_out)]
        P = [[0] * n_in for _ in range(n_out)]
        for j in range(n_out):
            for i in range(n_in):
                on = 1 if mask is None else (1 if mask[j][i] else 0)
                P[j][i] = on
                A[j][i] = w[j][i] if on else 0
        return RefLayer(n_in, n_out, A, P, list(b), thr)
    if kind == "conv2d":
        c_in, h, wd = (int(v) for v in shape.in_shape)
        c_out = int(shape.out_channels)
        kh, kw = (int(v) for v in shape.kernel)
        sh, sw = (int(v) for v in shape.stride)
        ph, pw = (int(v) for v in shape.padding)
        oh = (h + 2 * ph - kh) // sh + 1
        ow = (wd + 2 * pw - kw) // sw + 1
        n_in, n_out = c_in * h * wd, c_out * oh * ow
        A = [[0] * n_in for _ in range(n_out)]
        P = [[0] * n_in for _ in range(n_out)]
        bias = [0] * n_out
        for oc in range(c_out):
            for oy in range(oh):
                for ox in range(ow):
                    j = (oc * oh + oy) * ow + ox
                    bias[j] = b[oc]
                    for ic in range(c_in):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy = oy * sh + ky - ph
                                ix = ox * sw + kx - pw
                                if not (0 <= iy < h and 0 <= ix < wd):
                                    continue  # zero padding: no neuron, no synapse
                                i = (ic * h + iy) * wd + ix
                                assert P[j][i] == 0 and A[j][i] == 0, "two kernel taps on one synapse"
                                on = 1 if mask is None else (1 if mask[oc][ic][ky][kx] else 0)
                                P[j][i] = on
                                A[j][i] = w[oc][ic][ky][kx] if on else 0
        return RefLayer(n_in, n_out, A, P, bias, thr)
    if kind == "pool2d":
        c, h, wd = (int(v) for v in shape.in_shape)
        kh, kw = (int(v) for v in shape.kernel)
        assert h % kh == 0 and wd % kw == 0
        oh, ow = h // kh, wd // kw
        n_in, n_out = c * h * wd, c * oh * ow
        on = 1 if mask is None else (1 if mask else 0)
        A = [[0] * n_in for _ in range(n_out)]
        P = [[0] * n_in for _ in range(n_out)]
        for ch in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    j = (ch * oh + oy) * ow + ox
                    for dy in range(kh):
                        for dx in range(kw):
                            i = (ch * h + oy * kh + dy) * wd + ox * kw + dx
                            P[j][i] = on
                            A[j][i] = w if on else 0
        return RefLayer(n_in, n_out, A, P, [0] * n_out, thr)
    raise ValueError(f"unknown layer kind {kind!r}")


@dataclass
class RefResult:
    logits: list
    spikes: list  # spikes[l][k][i] for spiking layer l, firing step k (rate: hidden layer l, step k)
    membranes: list  # final membranes, every layer (CSS: encoder first), output integrators last
    spike_counts: list  # per spiking layer
    synaptic_ops: int
    analog_ops: int
    timesteps: int
    # extra records for the property tests
    m_values: list = field(default_factory=list)  # m_values[l]: every pre-saturation m of spiking layer l
    output_values: list = field(default_factory=list)  # every value the output integrators took
    hidden_values: list = field(default_factory=list)  # rate: every hidden membrane value
    inputs: list = field(default_factory=list)  # CSS: inputs[l][i] = [J_0, .., J_T] (J_0 = I + b at silent step)


def reference_run(net, x, *, membrane_bits: int | None = None, saturate: bool = True) -> RefResult:
    """Run one sample ``x`` (a flat sequence of ints) through ``net`` per SEMANTICS.md.

    ``saturate=False`` runs with unbounded arithmetic everywhere (no sat_Bv, no sat_Bo).
    """
    layers = [build_layer(layer) for layer in net.layers]
    x = [int(v) for v in x]
    assert len(x) == layers[0].n_in
    if net.coding == "css":
        return _css(net, layers, x, membrane_bits or int(net.membrane_bits), saturate)
    if net.coding == "rate":
        return _rate(net, layers, x)
    raise ValueError(net.coding)


def _css(net, layers, x, bv, do_sat) -> RefResult:
    L = len(layers)
    T = int(net.timesteps)
    bo = int(net.output_bits)
    sv = (lambda v: sat(v, bv)) if do_sat else (lambda v: v)
    so = (lambda v: sat(v, bo)) if do_sat else (lambda v: v)
    theta = [1 << (int(net.input_bits) - 1)] + [lay.threshold for lay in layers[:-1]]
    sizes = [len(x)] + [lay.n_out for lay in layers]
    v = [[0] * n for n in sizes]
    f = [[False] * n for n in sizes[:-1]]
    spikes = [[[0] * sizes[l] for _ in range(T)] for l in range(L)]
    counts = [0] * L
    synops = 0
    m_values = [[] for _ in range(L)]
    out_values = []
    inputs = [[[] for _ in range(sizes[l])] for l in range(L)]
    fanouts = [lay.fanout for lay in layers]

    for t in range(T + L):
        emitted = None  # spikes layer l-1 emitted at this step (None: it did not fire at this step)
        for l in range(L + 1):
            # the input of layer l at step t
            if l == 0:
                I = list(x) if t == 0 else [0] * sizes[0]
            else:
                prev = emitted if emitted is not None else [0] * sizes[l - 1]
                I = layers[l - 1].current(prev)
                for i, s in enumerate(prev):
                    if s != 0:
                        synops += fanouts[l - 1][i]
            emitted = None
            if l < L:  # TSA layer (the encoder for l = 0)
                b = [0] * sizes[0] if l == 0 else layers[l - 1].bias
                if t == l:  # silent
                    for i in range(sizes[l]):
                        inputs[l][i].append(I[i] + b[i])
                        v[l][i] = sv(I[i] + b[i])
                elif l < t <= l + T:  # firing step k
                    k = t - l - 1
                    th = theta[l]
                    out = [0] * sizes[l]
                    for i in range(sizes[l]):
                        inputs[l][i].append(I[i])
                        m = 2 * v[l][i] + I[i]
                        m_values[l].append(m)
                        if m >= th:
                            s = 1
                        elif m <= -th and f[l][i]:
                            s = -1
                        else:
                            s = 0
                        if s == 1:
                            f[l][i] = True
                        v[l][i] = sv(m - 2 * th * s)
                        out[i] = s
                        if s:
                            counts[l] += 1
                    spikes[l][k] = out
                    emitted = out
                else:
                    assert all(c == 0 for c in I), "input reached an inactive layer"
            else:  # output integrator
                b = layers[L - 1].bias
                if t == L:
                    for j in range(sizes[L]):
                        v[L][j] = so(I[j] + b[j])
                        out_values.append(v[L][j])
                elif L < t < L + T:
                    for j in range(sizes[L]):
                        pre = 2 * v[L][j] + I[j]
                        out_values.append(pre)
                        v[L][j] = so(pre)
                else:
                    assert all(c == 0 for c in I), "input reached an inactive output layer"
    return RefResult(logits=list(v[L]), spikes=spikes, membranes=[list(m) for m in v], spike_counts=counts,
                     synaptic_ops=synops, analog_ops=0, timesteps=T + L, m_values=m_values,
                     output_values=out_values, inputs=inputs)


def _rate(net, layers, x) -> RefResult:
    L = len(layers)
    T = int(net.timesteps)
    v = [[0] * lay.n_out for lay in layers]
    spikes = [[[0] * layers[l].n_out for _ in range(T)] for l in range(L - 1)]
    counts = [0] * (L - 1)
    synops = 0
    fanouts = [lay.fanout for lay in layers]
    analog = layers[0].current(x)
    # every step, every unmasked synapse from a nonzero input multiplies-accumulates once
    analog_ops = T * sum(fanouts[0][i] for i in range(len(x)) if x[i] != 0)
    out_values, hidden_values = [], []
    for t in range(T):
        s_prev = None
        for l in range(L):
            lay = layers[l]
            if l == 0:
                I = analog
            else:
                I = lay.current(s_prev)
                synops += sum(fanouts[l][i] for i in range(lay.n_in) if s_prev[i])
            for j in range(lay.n_out):
                v[l][j] = v[l][j] + I[j] + lay.bias[j]
            if l < L - 1:
                out = [0] * lay.n_out
                for j in range(lay.n_out):
                    hidden_values.append(v[l][j])
                    if v[l][j] >= lay.threshold:
                        out[j] = 1
                        v[l][j] -= lay.threshold
                        counts[l] += 1
                    hidden_values.append(v[l][j])
                spikes[l][t] = out
                s_prev = out
            else:
                out_values.extend(v[l])
    return RefResult(logits=list(v[L - 1]), spikes=spikes, membranes=[list(m) for m in v], spike_counts=counts,
                     synaptic_ops=synops, analog_ops=analog_ops, timesteps=T, output_values=out_values,
                     hidden_values=hidden_values)
