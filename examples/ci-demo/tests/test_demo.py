"""The demo's architecture snapshot test: fails because TinyNet drifted from its snapshot."""

from ci_demo_model import TinyNet


def test_tinynet_architecture(nnviz_snapshot):
    nnviz_snapshot(TinyNet())
