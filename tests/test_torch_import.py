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


class _RunsCode:
    """An object whose unpickling would call a function (here a harmless one)."""

    def __reduce__(self):
        return (print, ("this would have run",))


class MySequential(nn.Sequential):
    """A user's own class: not one of the standard layers."""


def test_unsafe_files_are_refused_unless_asked(tmp_path, capsys):
    torch.save({"0.weight": torch.zeros(2, 2), "x": _RunsCode()}, tmp_path / "code.pt")
    with pytest.raises(ANNError, match="refused to unpickle .*--unsafe-pickle") as e:
        load_ann(tmp_path / "code.pt")
    assert "\n" not in str(e.value) and "this would have run" not in capsys.readouterr().out
    torch.save(MySequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), tmp_path / "own.pt")
    with pytest.raises(ANNError, match="MySequential"):
        load_ann(tmp_path / "own.pt")
    assert load_ann(tmp_path / "own.pt", unsafe_pickle=True).n_inputs == 4   # asked for: unpickled, converted
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ANNError, match="not a PyTorch model file"):
        load_ann(tmp_path / "junk.pt")


def test_state_dicts_and_pruned_models_load_safely(tmp_path):
    from torch.nn.utils import prune

    torch.manual_seed(3)
    mlp = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10)).double().eval()
    with torch.no_grad():
        mlp[1].running_mean.uniform_(-1, 1)
    torch.save(mlp.state_dict(), tmp_path / "sd.pt")
    _same_function(mlp, load_ann(tmp_path / "sd.pt"), np.random.default_rng(3).random((4, 64)))
    prune.l1_unstructured(mlp[0], "weight", amount=0.5)
    torch.save(mlp, tmp_path / "pruned.pt")                 # the whole model, pruning hooks included
    torch.save(mlp.state_dict(), tmp_path / "pruned_sd.pt")  # weight_orig and weight_mask
    for name in ("pruned.pt", "pruned_sd.pt"):
        ann = load_ann(tmp_path / name)
        assert (ann.layers[0].weight == 0).sum() == 64 * 16 // 2
        _same_function(mlp, ann, np.random.default_rng(4).random((4, 64)))
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2))
    torch.save(conv.state_dict(), tmp_path / "conv_sd.pt")
    with pytest.raises(ANNError, match="save the whole model"):
        load_ann(tmp_path / "conv_sd.pt")


def test_cli_refuses_code_in_a_model_file(tmp_path, capsys):
    from cssnn.cli import main

    torch.save({"x": _RunsCode()}, tmp_path / "code.pt")
    code = main(["convert", str(tmp_path / "code.pt"), "--out", str(tmp_path / "snn.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "--unsafe-pickle" in err and err.count("\n") == 1 and not (tmp_path / "snn.npz").exists()
    model = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    torch.save(model, tmp_path / "m.pt")
    assert main(["convert", str(tmp_path / "m.pt"), "--out", str(tmp_path / "snn.npz"), "--unsafe-pickle"]) == 0


@pytest.mark.parametrize("model", [
    lambda: nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)),
    lambda: nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(64, 10)),
])
def test_ann_to_torch_round_trip(model):
    """ANN -> torch -> ANN is the identity, and the torch copy computes what the ANN computes."""
    from cssnn.sw.frontends.importers import ann_to_torch

    torch.manual_seed(2)
    ann = ann_from_torch(model().double())
    copy = ann_to_torch(ann)
    back = ann_from_torch(copy)
    assert back.input_shape == ann.input_shape
    for a, b in zip(ann.layers, back.layers, strict=True):
        assert a.shape == b.shape and np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    x = np.random.default_rng(2).random((5, 64))
    with torch.no_grad():
        np.testing.assert_allclose(copy(torch.from_numpy(x)).numpy(), ann.forward(x), rtol=1e-9, atol=1e-12)


def test_torch_file_and_npz_of_the_same_weights_give_identical_networks(tmp_path, digits):
    from cssnn.sw.frontends.convert import ConversionConfig, convert

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    arrays = {}
    for k, lin in enumerate((model[0], model[2])):
        arrays[f"W{k}"], arrays[f"b{k}"] = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    np.savez(tmp_path / "m.npz", **arrays)
    cfg = ConversionConfig(timesteps=4)
    a, b = (convert(load_ann(tmp_path / f), digits.x_train, cfg) for f in ("m.pt", "m.npz"))
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.threshold == lb.threshold
        np.testing.assert_array_equal(la.weight, lb.weight)
        np.testing.assert_array_equal(la.bias, lb.bias)
