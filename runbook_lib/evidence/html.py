"""An executed notebook exported to HTML that opens offline, plotly embedded, no CDN fetched."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

# the lab template, minus every script it would fetch: require.js, MathJax, mermaid, widgets
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


# plotly's notebook renderer adds a MathJax <script src="https://cdn..."> to every figure
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.IGNORECASE
)


def export_html(notebook: Path) -> Path:
    """An HTML copy of an executed notebook that makes no network request when opened.

    plotly.js travels inside it (embedded once by the notebook renderer); the template's CDN
    scripts are left out and the per-figure MathJax script tags are dropped from the copy.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    for cell in node.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html:
                text = "".join(html) if isinstance(html, list) else html
                output["data"]["text/html"] = _EXTERNAL_SCRIPT.sub("", text)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"runbook_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="runbook_offline.html.j2",
    )
    with warnings.catch_warnings():
        # scrapbook's own mimetype has no HTML form; the glued values are shown by the cells
        warnings.filterwarnings("ignore", message=".*is not able to be represented")
        body, _resources = exporter.from_notebook_node(node)
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target
