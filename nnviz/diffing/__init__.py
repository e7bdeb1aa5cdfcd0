"""The structural diff of two graphs: matching, the union with its causes, the `GraphDiff` value,
its JSON document and the document's text, markdown and Mermaid renderings.

The package is named `diffing` so that the public function `nnviz.diff` never shares a name with
a module (`import nnviz.diffing.model as m` always gives a module).
"""
