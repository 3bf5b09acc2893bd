"""PyTorch import (optional extra): the imported ANN computes what the torch model computes."""

import numpy as np
import pytest

from cssnn.sw.frontends.importers import ann_from_torch, load_ann
from cssnn.sw.spec.ann import ANNError

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
nn = torch.nn


def _same_function(model, ann, x):
    with torch.no_grad():
        expected = model(torch.tensor(x.reshape(len(x), *ann.input_shape), dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ann.forward(x.reshape(len(x), -1)), expected.reshape(len(x), -1), rtol=1e-9, atol=1e-9)


def test_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).double()
    ann = ann_from_torch(model)
    _same_function(model, ann, np.random.default_rng(0).random((5, 64)))


def test_conv_batchnorm_pool():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(64, 10)).double()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    model.eval()
    ann = ann_from_torch(model, input_shape=(1, 8, 8))
    assert [l.shape.kind for l in ann.layers] == ["conv2d", "pool2d", "dense"]
    _same_function(model, ann, np.random.default_rng(1).random((5, 64)))


@pytest.mark.parametrize("model, message", [
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), "followed by a ReLU"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "unsupported module Sigmoid"),
    (lambda: nn.Sequential(nn.Linear(4, 2), nn.ReLU()), "must end in a Linear"),
    (lambda: nn.Linear(4, 2), "expected an nn.Sequential"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2)), "pass input_shape"),
])
def test_unsupported_models(model, message):
    with pytest.raises(ANNError, match=message):
        ann_from_torch(model())


def test_load_saved_model_file(tmp_path):
    model = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    torch.save(model, tmp_path / "m.pt")
    ann = load_ann(tmp_path / "m.pt")
    assert ann.n_inputs == 64 and ann.n_outputs == 10


def test_pruned_weights_become_absent_synapses(tmp_path, digits):
    """torch.nn.utils.prune: the effective weight (weight_orig * weight_mask) is imported, so its
    zeros are absent synapses once converted, also after an optimiser step left ``weight`` stale."""
    from torch.nn.utils import prune

    from cssnn.sw.frontends.convert import convert

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 16), nn.ReLU(),
                          nn.Linear(16, 10)).double()
    for m, amount in ((model[0], 0.5), (model[3], 0.8), (model[5], 0.3)):
        prune.l1_unstructured(m, "weight", amount=amount)
    with torch.no_grad():  # an optimiser step: weight_orig moves, the cached weight does not until forward
        for m in (model[0], model[3], model[5]):
            m.weight_orig.add_(0.01 * torch.sign(m.weight_orig))
    torch.save(model, tmp_path / "pruned.pt")
    ann = ann_from_torch(torch.load(tmp_path / "pruned.pt", weights_only=False), input_shape=(1, 8, 8))
    _same_function(model, ann, np.random.default_rng(2).random((5, 64)))  # forward recomputes weight
    net = convert(ann, digits.x_train)
    for m, al, sl in zip((model[0], model[3], model[5]), ann.layers, net.layers):
        pruned = (m.weight_mask == 0).numpy()
        assert pruned.sum() == round({4 * 9: 0.5, 256 * 16: 0.8, 160: 0.3}[pruned.size] * pruned.size)
        assert (al.weight[pruned] == 0).all() and sl.mask is not None and not sl.mask[pruned].any()
        expected = (m.weight_orig * m.weight_mask).detach().numpy()
        np.testing.assert_array_equal(al.weight, expected)
