"""A problem statement (authored Markdown) as HTML a page may insert: rendered by Python-Markdown,
then cleaned by nh3 (Ammonia) so no authored or imported HTML can run script or style in a
learner's page."""

from __future__ import annotations

from functools import lru_cache

import markdown
import nh3

_TAGS = frozenset(
    {"p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h3", "h4", "h5", "h6"}
    | {"table", "thead", "tbody", "tr", "th", "td", "sub", "sup", "del"}
)
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


@lru_cache(maxsize=1024)
def statement_html(text: str) -> str:
    """Statements repeat across requests; the cache keeps the rendering off the hot path."""
    rendered = markdown.markdown(text, extensions=["fenced_code", "tables", "sane_lists"], output_format="html")
    return nh3.clean(
        rendered,
        tags=set(_TAGS),
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
