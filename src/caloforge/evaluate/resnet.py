"""The 3D ResNet classifier of the official CaloChallenge ``cls-resnet`` mode (ds2, ds3).

A residual network (He et al., arXiv:1512.03385) with 3D convolutions (Hara et al.,
arXiv:1711.09577) over the voxel image (layers, alpha bins, radial bins) of a geometry whose
layers are all binned alike, as the official evaluation defines it:

* input row: [log10 E_inc, voxels / E_inc] (the ``low`` classifier input), the voxels reshaped
  to one channel of shape (n_layers, n_alpha, n_radial), radial index fastest;
* stem: 7x7x7 convolution to 32 channels, stride 2, padding 3, no bias; batch norm; ReLU;
  3x3x3 max pooling, stride 2, padding 1;
* four stages of basic blocks (two 3x3x3 convolutions without bias, each followed by batch
  norm, ReLU after the first and after the residual sum) with 32, 64, 64, 128 channels and
  strides 1, 2, 2, 2; a block that changes stride or width adds a 1x1x1 convolution + batch
  norm on its shortcut; blocks per stage by depth: 10: 1-1-1-1, 18: 2-2-2-2, 34: 3-4-6-3;
* global average pooling, then one linear layer on [the 128 pooled features, batch-normed
  log10 E_inc] to one logit;
* convolution weights He-normal (fan out, ReLU gain), batch-norm weights 1 and biases 0.

Modules are created and registered in the order the official model creates them, so the same
torch seed gives the same initial weights (tests/test_evaluate_official.py). Training and
scoring are the official procedure (:func:`~caloforge.evaluate.classifier.
official_classifier_test` with ``network="resnet"``).
"""

from __future__ import annotations

from caloforge.errors import ConfigError
from caloforge.geometry import CylindricalLayer, Geometry

#: basic blocks per stage, by network depth
BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
#: channels per stage
WIDTHS = (32, 64, 64, 128)


def image_shape(geometry: Geometry) -> tuple[int, int, int]:
    """(n_layers, n_alpha, n_radial) of a cylindrical geometry whose layers share their
    binning (ds2: (45, 16, 9), ds3: (45, 50, 18)).

    Raises:
        ConfigError: the layers differ (e.g. dataset 1) or are Cartesian.
    """
    layers = geometry.layers
    if not all(isinstance(layer, CylindricalLayer) for layer in layers):
        raise ConfigError("the ResNet classifier needs a cylindrical geometry")
    shapes = {(layer.n_alpha, layer.n_radial) for layer in layers}  # type: ignore[union-attr]
    if len(shapes) != 1:
        raise ConfigError(
            f"the ResNet classifier needs layers binned alike (as ds2 and ds3); geometry "
            f"{geometry.name!r} has {len(shapes)} different layer binnings"
        )
    (n_alpha, n_radial) = shapes.pop()
    return (len(layers), n_alpha, n_radial)


def build_resnet(shape: tuple[int, int, int], depth: int = 18, dtype=None):
    """The network (a ``torch.nn.Module``) for inputs (N, 1 + prod(shape)) -> logits (N, 1).

    Args:
        shape: the voxel image (n_layers, n_alpha, n_radial).
        depth: 10, 18 (the official default) or 34.
        dtype: parameter dtype (the official code runs in float64).
    """
    import torch
    from torch import nn

    if depth not in BLOCKS:
        raise ConfigError(f"ResNet depth must be one of {sorted(BLOCKS)}, got {depth}")
    kw = {"dtype": dtype} if dtype is not None else {}

    def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv3d:
        return nn.Conv3d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False, **kw)

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int, shortcut: nn.Module | None):
            super().__init__()
            self.conv1 = conv(c_in, c_out, 3, stride)
            self.bn1 = nn.BatchNorm3d(c_out, **kw)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv(c_out, c_out, 3)
            self.bn2 = nn.BatchNorm3d(c_out, **kw)
            self.shortcut = shortcut

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out = out + (x if self.shortcut is None else self.shortcut(x))
            return self.relu(out)

    class ResNet3D(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.shape = tuple(shape)
            self.conv1 = conv(1, WIDTHS[0], 7, 2)
            self.bn1 = nn.BatchNorm3d(WIDTHS[0], **kw)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
            c_in = WIDTHS[0]
            stages = []
            for i, (width, n_blocks) in enumerate(zip(WIDTHS, BLOCKS[depth], strict=True)):
                stride = 1 if i == 0 else 2
                shortcut = None
                if stride != 1 or c_in != width:  # created before the block, as officially
                    shortcut = nn.Sequential(
                        conv(c_in, width, 1, stride), nn.BatchNorm3d(width, **kw)
                    )
                blocks = [Block(c_in, width, stride, shortcut)]
                blocks += [Block(width, width, 1, None) for _ in range(1, n_blocks)]
                stages.append(nn.Sequential(*blocks))
                c_in = width
            self.stages = nn.Sequential(*stages)
            self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
            self.fc = nn.Linear(WIDTHS[-1] + 1, 1, **kw)
            self.e_norm = nn.BatchNorm1d(1, **kw)
            for m in self.modules():
                if isinstance(m, nn.Conv3d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm3d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            e_inc = self.e_norm(x[:, :1])
            img = x[:, 1:].reshape((-1, 1, *self.shape))
            img = self.maxpool(self.relu(self.bn1(self.conv1(img))))
            img = self.avgpool(self.stages(img)).flatten(1)
            return self.fc(torch.cat([img, e_inc], dim=1))

    return ResNet3D()
