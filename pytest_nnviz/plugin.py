"""The pytest plugin's surface: options and the `nnviz_snapshot` fixture."""
