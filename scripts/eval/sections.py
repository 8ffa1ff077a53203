"""Sections of the Debian Reference chapters (bookworm `debian-reference-{en,es,pt}`).

A section starts at each `h1`–`h4 class="title"` inside `div.chapter`; its anchor is the id
of the first `<a id>` inside the heading (identical in every translation). Its *own text*
runs from the heading to the next heading of any level; the table of contents and the
footnote bodies belong to no section. Whitespace is collapsed.
"""
import re
from html.parser import HTMLParser

HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4}
SKIP_DIV_CLASSES = {"toc", "footnotes"}
WS = re.compile(r"\s+")


def collapse(text):
    return WS.sub(" ", text).strip()


class Section:
    __slots__ = ("anchor", "level", "chapter", "title", "own")

    def __init__(self, anchor, level, chapter):
        self.anchor, self.level, self.chapter = anchor, level, chapter
        self.title, self.own = [], []


class _ChapterParser(HTMLParser):
    def __init__(self, chapter):
        super().__init__(convert_charrefs=True)
        self.chapter = chapter
        self.stack = []
        self.in_chapter = None
        self.skip = None
        self.heading = None
        self.pending = None
        self.open = []
        self.sections = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append(tag)
        depth = len(self.stack)
        classes = set((attrs.get("class") or "").split())
        if tag == "div" and "chapter" in classes and self.in_chapter is None:
            self.in_chapter = depth
        if self.in_chapter is None or self.skip is not None:
            return
        if tag == "div" and classes & SKIP_DIV_CLASSES:
            self.skip = depth
            return
        if tag in HEADINGS and "title" in classes:
            self.heading, self.pending = (tag, depth), None
            return
        if self.heading and tag == "a" and "id" in attrs and self.pending is None:
            level = HEADINGS[self.heading[0]]
            while self.open and self.open[-1].level >= level:
                self.open.pop()
            section = Section(attrs["id"], level, self.chapter)
            self.open.append(section)
            self.sections.append(section)
            self.pending = section

    def handle_endtag(self, tag):
        depth = len(self.stack)
        while self.stack and self.stack.pop() != tag:
            pass
        if self.skip is not None and depth <= self.skip:
            self.skip = None
        if self.heading and depth <= self.heading[1]:
            self.heading = None
        if self.in_chapter is not None and depth <= self.in_chapter:
            self.in_chapter, self.open = None, []

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data):
        if self.in_chapter is None or self.skip is not None or not self.open:
            return
        if self.heading and self.pending is not None:
            self.pending.title.append(data)
        self.open[-1].own.append(data)


def chapter_sections(path, chapter):
    """The sections of one chapter file, in document order."""
    parser = _ChapterParser(chapter)
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    parser.close()
    for section in parser.sections:
        section.title = collapse("".join(section.title))
        section.own = collapse("".join(section.own))
    return parser.sections
