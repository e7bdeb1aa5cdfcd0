"""Example inputs for torchvision models, by family, for models torch.fx cannot trace.

`nnviz fasterrcnn_resnet50_fpn` and `nnviz raft_small` work without `-i`: when fx fails on a
torchvision model and no input was given, the eager tracer runs it on its family's example:

| family         | example input                                             |
|----------------|-----------------------------------------------------------|
| classification | `default` (1×3×224×224)                                   |
| quantization   | `default` (the float `quantize=False` model, run on CPU)  |
| segmentation   | `default`                                                 |
| detection      | `[torch.randn(3, 224, 224)]` — a list of one image        |
| video          | 1×3×16×112×112 (MViT and S3D: 1×3×16×224×224)             |
| optical_flow   | `image1` and `image2`, two 1×3×224×224 images             |
"""

from __future__ import annotations

from nnviz.tracers.inputs import InputSpec, parse_inputs

FAMILIES = ("detection", "segmentation", "video", "optical_flow", "quantization")
"""torchvision.models subpackages; every other model is a classification model."""

EXAMPLES: dict[str, str] = {
    "classification": "default",
    "quantization": "default",
    "segmentation": "default",
    "detection": "[torch.randn(3, 224, 224)]",
    "video": "tensor1x3x16x112x112",
    "optical_flow": "image1:image224;image2:image224",
}
"""The `-i` text of each family's example input."""

_BY_NAME: dict[str, str] = {
    # fixed positional embeddings (MViT) and a 7×7 final pooling (S3D) need full-size frames
    "mvit_v1_b": "tensor1x3x16x224x224",
    "mvit_v2_s": "tensor1x3x16x224x224",
    "s3d": "tensor1x3x16x224x224",
}


def family(name: str) -> str:
    """The torchvision family of model `name` (`detection`, ..., else `classification`)."""
    import torchvision.models as tvm

    module = tvm.get_model_builder(name).__module__
    for candidate in FAMILIES:
        if module.startswith(f"torchvision.models.{candidate}."):
            return candidate
    return "classification"


def example_text(name: str) -> str:
    """The `-i` text of the example input of torchvision model `name`."""
    return _BY_NAME.get(name) or EXAMPLES[family(name)]


def example_input(name: str) -> InputSpec:
    """The example input of torchvision model `name`, parsed (torch-free until materialised)."""
    return parse_inputs(example_text(name))
