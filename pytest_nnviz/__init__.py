"""pytest-nnviz: snapshot tests for model architectures (the `nnviz_snapshot` fixture)."""
