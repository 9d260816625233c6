"""The model zoo: the networks of the classic MNIST tutorials, exactly as they define them, and mnistlab's own.

Each builder returns a plain `nn.Module` from normalized images (N, 1, H, W) to logits (N, num_classes);
`create_model` puts the normalization in front. Classes first, then one short builder per registered name.
"""

from __future__ import annotations

import torch
from torch import nn

from mnistlab.errors import ConfigError
from mnistlab.models.registry import register_model

# mnistlab's default settings (one-cycle SGD peaking at lr 0.8) are tuned for nets with batch norm; without
# it, the tutorial nets diverge at that rate (the vanilla CNN, LeNet-5) and train well at 0.1.
NO_BATCH_NORM = {"lr": 0.1}

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU, "tanh": nn.Tanh,
               "sigmoid": nn.Sigmoid}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def _dropout(p: float) -> list[nn.Module]:
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {p}")
    return [nn.Dropout(p)] if p > 0 else []


def _flat_size(features: nn.Module, image_shape: tuple[int, int]) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, 1, *image_shape)).numel()


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut (He et al., 2016), ReLU after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv_bn_relu(channels, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(self.conv1(x))))


class SpaceToDepth(nn.Module):
    """(N, C, H, W) -> (N, C*r*r, H/r, W/r): each r x r patch becomes channels, so the first convolution
    sees 2r x 2r pixels while running at 1/r^2 of the positions (H and W are cropped to multiples of r)."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.factor
        h, w = x.shape[-2] // r * r, x.shape[-1] // r * r
        return nn.functional.pixel_unshuffle(x[..., :h, :w], r)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


@register_model("linear", train_settings=NO_BATCH_NORM, normalize="standardize",
                description="logistic regression on the 784 pixels")
def linear(num_classes: int, image_shape: tuple[int, int]) -> nn.Module:
    """Logistic regression (softmax) on the flattened pixels."""
    h, w = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(h * w, num_classes))


@register_model("mlp-128", train_settings=NO_BATCH_NORM, normalize="scale", preset={"hidden": (128,), "dropout": 0.2},
                description="one hidden layer of 128 with dropout 0.2 (TensorFlow beginner tutorial)")
@register_model("mlp-128-32", train_settings=NO_BATCH_NORM, normalize="standardize", preset={"hidden": (128, 32)},
                description="MLP 128-32 (ReLU), the TensorFlow tutorial's dense net")
@register_model("mlp", train_settings=NO_BATCH_NORM, normalize="standardize",
                description="MLP, two hidden layers of 256 (ReLU)")
def mlp(num_classes: int, image_shape: tuple[int, int], hidden: tuple[int, ...] = (256, 256),
        activation: str = "relu", dropout: float = 0.0) -> nn.Module:
    """Multi-layer perceptron: Dense(hidden[i]) + activation (+ dropout) per hidden layer, then Dense(classes)."""
    h, w = image_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = h * w
    for size in hidden:
        layers += [nn.Linear(width, int(size)), make_activation(activation), *_dropout(dropout)]
        width = int(size)
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


@register_model("cnn-dropout", train_settings=NO_BATCH_NORM, preset={"input_dropout": 0.2, "dense_dropout": 0.5},
                description="vanilla CNN with dropout after the input and before the dense layers")
@register_model("cnn", train_settings=NO_BATCH_NORM,
                description="vanilla CNN: 3 x Conv5x5(16/32/64)-ReLU-MaxPool, Dense 128-64")
def cnn(num_classes: int, image_shape: tuple[int, int], input_dropout: float = 0.0,
        dense_dropout: float = 0.0) -> nn.Module:
    """The vanilla CNN of the tutorials: 'same' 5x5 convolutions, each block halving the image."""
    features = nn.Sequential(*_dropout(input_dropout))
    c_in = 1
    for c_out in (16, 32, 64):
        features.extend([nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)])
        c_in = c_out
    flat = _flat_size(features, image_shape)
    head = [nn.Flatten(), *_dropout(dense_dropout), nn.Linear(flat, 128), nn.ReLU(), *_dropout(dense_dropout),
            nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, num_classes)]
    return nn.Sequential(*features, *head)


@register_model("keras-cnn-dense", train_settings=NO_BATCH_NORM, preset={"hidden": 64},
                description="Keras tutorial CNN with a Dense(64) hidden layer")
@register_model("keras-cnn", train_settings=NO_BATCH_NORM,
                description="Keras tutorial CNN: Conv32-MaxPool-Conv64-MaxPool-Dropout(0.5)-Dense")
def keras_cnn(num_classes: int, image_shape: tuple[int, int], hidden: int = 0, dropout: float = 0.5) -> nn.Module:
    """The Keras 'simple MNIST convnet': valid 3x3 convolutions; `hidden` > 0 adds Dense(hidden, ReLU)."""
    features = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2))
    flat = _flat_size(features, image_shape)
    head: list[nn.Module] = [nn.Flatten()]
    if hidden:
        head += [nn.Linear(flat, hidden), nn.ReLU(), *_dropout(dropout), nn.Linear(hidden, num_classes)]
    else:
        head += [*_dropout(dropout), nn.Linear(flat, num_classes)]
    return nn.Sequential(*features, *head)


@register_model("lenet5", train_settings=NO_BATCH_NORM, normalize="global",
                description="LeNet-5: Conv6-Pool-Conv16-Pool-Dense 120-84, Xavier init")
def lenet5(num_classes: int, image_shape: tuple[int, int], activation: str = "relu", padding: int = 0) -> nn.Module:
    """LeNet-5: Conv6(5x5)-MaxPool-Conv16(3x3)-MaxPool-Dense120-Dense84-Dense, Xavier initialisation.
    `padding=2` on the first convolution sees the 28x28 image as the original's 32x32 input."""
    features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=padding), make_activation(activation), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 3), make_activation(activation), nn.MaxPool2d(2))
    flat = _flat_size(features, image_shape)
    net = nn.Sequential(*features, nn.Flatten(), nn.Linear(flat, 120), make_activation(activation),
                        nn.Linear(120, 84), make_activation(activation), nn.Linear(84, num_classes))
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return net


@register_model("allconv", description="all-conv net: 16-32-64 Conv3x3-BN-ReLU pairs, GAP, Dense (72,890 params)")
def allconv(num_classes: int, image_shape: tuple[int, int]) -> nn.Module:
    """All-convolutional net: 2 x (Conv3x3-BN-ReLU) per block of 16, 32, 64, MaxPool between, GAP, Dense.

    72,890 trainable parameters, as the tutorial's Keras summary shows (convolutions keep their bias).
    """
    layers: list[nn.Module] = []
    c_in = 1
    for i, c_out in enumerate((16, 32, 64)):
        for _ in range(2):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        if i < 2:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


@register_model("resnet", normalize="global", description="mnistlab residual CNN (32-64-128), for accuracy records")
def resnet(num_classes: int, image_shape: tuple[int, int], width: int = 32, dropout: float = 0.0) -> nn.Module:
    """mnistlab's small residual CNN: stem, then per stage (width, 2x, 4x) a conv-BN-ReLU that widens, a
    residual block and a max-pool (28 -> 14 -> 7 -> 3), global max+avg pooling, dropout, Dense."""
    layers: list[nn.Module] = [conv_bn_relu(1, width)]
    c_in = width
    for mult in (1, 2, 4):
        c_out = width * mult
        layers += [conv_bn_relu(c_in, c_out), ResidualBlock(c_out), nn.MaxPool2d(2)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), *_dropout(dropout),
                         nn.Linear(c_in, num_classes))


# The default model trains with augmentation: on MNIST's validation split it is as accurate with it as without
# (99.32% against 99.34%, 2 seeds), and on real handwriting from outside MNIST (uci-digits) it holds far better
# (89.5% against 83.3%); bench/robustness.py, docs/records.md. `--augment none` trains it without.
DEFAULT_MODEL_SETTINGS = {"augment": {"rotate": 10.0, "zoom": 0.1, "shift": 0.08}}


@register_model("fastnet-wide", normalize="global", preset={"widths": (32, 64, 128)},
                train_settings=DEFAULT_MODEL_SETTINGS,
                description="fastnet with blocks 32-64-128, trained with augmentation: the default (99.5%)")
@register_model("fastnet", normalize="global",
                description="mnistlab's fastest net: space-to-depth stem, conv-pool-BN-ReLU blocks 16-32-64")
def fastnet(num_classes: int, image_shape: tuple[int, int], widths: tuple[int, ...] = (16, 32, 64),
            depth: int = 1) -> nn.Module:
    """mnistlab's net for the records on CPU: 2x2 space-to-depth, then per width `depth - 1` conv-BN-ReLU
    layers and a 3x3 convolution, max-pool, BN and ReLU (pooling before BN/ReLU does their work on a quarter
    of the positions), then Dense. Widths that are multiples of 16 keep oneDNN on its fast bf16 kernels
    (24 runs at half the speed)."""
    if depth < 1:
        raise ConfigError(f"fastnet: depth must be at least 1, got {depth}")
    layers: list[nn.Module] = [SpaceToDepth(2)]
    c_in, h, w = 4, image_shape[0] // 2, image_shape[1] // 2
    for c_out in widths:
        if min(h, w) < 2:
            raise ConfigError(f"fastnet: {len(widths)} blocks pool a {image_shape[0]}x{image_shape[1]} image "
                              f"to nothing; give fewer widths")
        for _ in range(depth - 1):
            layers.append(conv_bn_relu(c_in, c_out))
            c_in = c_out
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
        c_in, h, w = c_out, h // 2, w // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * h * w, num_classes))


@register_model("speednet", normalize="global",
                description="mnistlab small BN CNN that pools early (5x5 stem at full resolution)")
def speednet(num_classes: int, image_shape: tuple[int, int], width: int = 24) -> nn.Module:
    """mnistlab's first speed net (the default before fastnet): three conv-BN-ReLU blocks that pool early
    (28 -> 14 -> 7 -> 3), so most work is done on small images, then a Dense head."""
    return nn.Sequential(
        conv_bn_relu(1, width, 5), nn.MaxPool2d(2),
        conv_bn_relu(width, 2 * width), nn.MaxPool2d(2),
        conv_bn_relu(2 * width, 4 * width), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * width * (image_shape[0] // 8) * (image_shape[1] // 8), num_classes),
    )
