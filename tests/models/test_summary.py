"""The Keras-style summary of any module: a zoo model, or a user's own (with an RNN's tuple output)."""

import torch
from torch import nn

import mnistlab
from mnistlab.models import create_model


class OwnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.rnn = nn.LSTM(26, 16, batch_first=True)
        self.head = nn.Linear(8 * 26 * 16, 10)

    def forward(self, x):  # (B, 1, 28, 28) -> (B, 10)
        y = self.conv(x)
        b, c, h, w = y.shape
        z, _ = self.rnn(y.reshape(b * c, h, w))
        return self.head(z.reshape(b, -1))


def test_a_users_own_module_is_summarized_with_its_shapes_and_totals():
    text = mnistlab.summary(OwnNet())
    assert text.startswith('Model: "OwnNet"')
    assert any(line.split() == ["conv", "(Conv2d)", "(None,", "8,", "26,", "26)", "80"] for line in text.splitlines())
    assert "rnn (LSTM)" in text and "(None, 26, 16)" in text
    assert f"Total params: {sum(p.numel() for p in OwnNet().parameters()):,}" in text
    assert repr(text) == str(text) and text._repr_html_().startswith("<pre>Model:")
    wide = mnistlab.summary(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)), input_shape=(3, 32, 32))
    assert "(None, 3072)" in wide and "Total params: 30,730" in wide


def test_a_zoo_model_is_summarized_under_its_name_with_its_input():
    text = mnistlab.summary(create_model("lenet5"))
    assert text.startswith('Model: "lenet5"') and "Total params: 60,170" in text
    assert "normalized inside the model" in text
    assert torch.is_grad_enabled()
