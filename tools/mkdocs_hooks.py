"""MkDocs hooks of the documentation site (mkdocs.yml `hooks:`); not part of the cellmoa package.

Docstring examples written as bare doctest lines (``>>> ...`` and their output, outside a numpydoc
``Examples`` section) are plain text to Markdown: ``[a][b]`` in them reads as a reference link and
``>>>`` as a block quote. This hook adds a Markdown preprocessor that fences every such block as
``pycon`` code, for the pages and for the docstrings mkdocstrings renders.
"""

from __future__ import annotations

import re

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

FENCE = re.compile(r"^\s*(```|~~~)")
PROMPT = re.compile(r"^(\s*)>>> ?")


class DoctestFences(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        fenced = None  # the fence marker of the code block we are in
        block = False
        indent = ""
        for line in lines:
            if block:
                if line.strip():
                    out.append(line)
                    continue
                out.append(indent + "```")
                block = False
            match = FENCE.match(line)
            if fenced is not None:
                if match and match.group(1) == fenced:
                    fenced = None
                out.append(line)
                continue
            if match:
                fenced = match.group(1)
                out.append(line)
                continue
            prompt = PROMPT.match(line)
            if prompt:
                indent = prompt.group(1)
                if out and out[-1].strip():
                    out.append("")
                out += [indent + "```pycon", line]
                block = True
                continue
            out.append(line)
        if block:
            out.append(indent + "```")
        return out


class DoctestExtension(Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Markdown's API)
        # Before the fenced-code preprocessor (priority 25) so that superfences sees the fences.
        md.preprocessors.register(DoctestFences(md), "cellmoa_doctest_fences", 40)


@event_priority(100)  # before mkdocstrings reads the Markdown extensions
def on_config(config, **kwargs):
    config.markdown_extensions.append(DoctestExtension())
    return config
