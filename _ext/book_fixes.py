"""Sphinx fixes for the book's HTML.

sphinx-thebe and sphinx-togglebutton add their inline scripts on `env-before-read-docs`, which fires twice in
a Jupyter Book 1.x build, so every page declared `const THEBE_JS_URL` twice (a SyntaxError in the browser).
This keeps the first copy of every script. It also gives the theme a default colour mode, and adds the book's
own stylesheet (`_ext/static/book.css`).
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", None) or None, attributes)  # inline scripts: None or ""
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _default_mode(app, pagename, templatename, context, doctree) -> None:
    # The theme writes `dataset.mode = localStorage.getItem("mode") || "<default_mode>"`; an empty default
    # makes its script log "Got invalid theme mode" on a first visit.
    context.setdefault("default_mode", "light")
    if not context["default_mode"]:
        context["default_mode"] = "light"


def setup(app):
    # Run after the themes' own handlers, which may add scripts too.
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _default_mode, priority=900)
    app.add_css_file("book.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
