"""hirfast.cpu_linear: fp32 CPU linear layers on oneDNN-packed weights, switched on and off."""
import pytest
import torch
import torch.nn.functional as F

from hirfast import cpu_linear

needs_onednn = pytest.mark.skipif(not cpu_linear.available(), reason="this torch build has no oneDNN linear ops")


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(24, 40)                  # with bias
        self.b = torch.nn.Linear(40, 8, bias=False)
        self.half = torch.nn.Linear(8, 8).to(torch.bfloat16)  # not fp32: left alone

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


@needs_onednn
@pytest.mark.parametrize("shape", [(5, 24), (3, 1, 24), (2, 7, 24)])
def test_packed_layers_compute_the_linear_layers_and_are_restored(shape):
    net = _Net()
    x = torch.randn(*shape)
    with torch.inference_mode():
        want = net(x)
        with cpu_linear.packed_linears(net, rows=4) as switched:
            assert switched == 2
            assert "forward" in net.a.__dict__ and "forward" not in net.half.__dict__
            got = net(x)
            inner = net.a(x)
        after = net(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inner, F.linear(x, net.a.weight, net.a.bias), atol=1e-5, rtol=1e-5)
    assert torch.equal(after, want)
    assert not any("forward" in m.__dict__ for m in net.modules())


@needs_onednn
def test_layers_are_restored_when_the_body_raises():
    net = _Net()
    with pytest.raises(RuntimeError, match="boom"):
        with cpu_linear.packed_linears(net, rows=1):
            raise RuntimeError("boom")
    assert not any("forward" in m.__dict__ for m in net.modules())


def test_without_the_ops_nothing_is_switched(monkeypatch):
    monkeypatch.setattr(cpu_linear, "available", lambda: False)
    net = _Net()
    x = torch.randn(3, 24)
    with torch.inference_mode():
        want = net(x)
        with cpu_linear.packed_linears(net, rows=3) as switched:
            assert switched == 0
            assert torch.equal(net(x), want)
