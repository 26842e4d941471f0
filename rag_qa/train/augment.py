"""Data augmentation for the extractive reader (issue 24): four arms, chosen by measurement.

Each arm turns training examples into *new* examples whose ``answer_start`` points at the exact
answer text in the new context (``context[start:start + len(text)] == text``); the originals are
kept and the new ones are appended.  Every transform is a pure function of (example, rng); the
rng of one copy is seeded from (run seed, arm, example id, copy number), so an example's copy is
the same whatever else was drawn.

Arms (``TrainConfig.augment``: ``"context=0.5,long=0.3"``; a bare name takes
``TrainConfig.augment_ratio``; the ratio is new examples per original training question):

* ``context`` -- answer-preserving context changes (:func:`context_variant`): shuffle the order of
  the sentences with the answer's sentence(s) kept intact as one unit, or drop sentences that do
  not hold the answer (never the one sharing most words with the question: it usually names what
  the question is about), or both.  Teaches that the answer's own sentence, not its position,
  carries it.
* ``long`` -- longer contexts (:func:`longer_context`): the answer's paragraph joined with 1-2
  neighbouring paragraphs of its article, in article order, by a blank line (what an article's
  ingest chunks look like: the corpus joins paragraphs with ``\\n\\n`` and chunks cross them), at
  most ``max_words`` words (300 words ~ 400 tokens: one or two 384-token windows, stride 128).
* ``typed`` -- questions as people type them (:func:`typed_question`): lower case, no question
  mark, one or two small typos, keyword style (function words dropped).  The context and answers
  never change; typos avoid words that name things (capitalised or with digits: a typo there
  asks a different question), words the answer shares (the link between question and answer
  must survive) and short words.
* ``tables`` -- table-shaped examples (:func:`table_examples`): questions over rows written by
  ingest's own spreadsheet loaders, made by ``python -m ingest.table_questions`` into a file
  (``TrainConfig.augment_tables``).  ``rag_qa`` never imports ``ingest`` (tests/test_layout.py),
  hence the file; whole tables are drawn, so a question's distractors are the other rows of its
  table.

Augmented ids carry :data:`MARK` (``<source id>#aug-<arm>-<copy>``), which is how
:func:`arm_of` tells the trainer which pool a question's distractors come from.

A leaf module beside :mod:`rag_qa.qa_data` and :mod:`rag_qa.sentences`: standard library only.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from rag_qa.qa_data import DataError, QAExample
from rag_qa.sentences import sentence_spans

#: bump when an arm's output changes, so feature caches built from the old output are not reused
AUGMENT_VERSION = 1
ARMS = ("context", "long", "typed", "tables")
#: what an augmented example's id carries: ``<source id>#aug-<arm>-<copy>``
MARK = "#aug-"

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return text.split()


#: what keyword-style questions drop: articles, prepositions, auxiliaries, conjunctions (wh-words stay:
#: people keep them, "when normans conquer england", and they say what kind of answer is wanted)
FUNCTION_WORDS = frozenset(_words(
    "a an the of in on at to for from by with about into over under as and or but is are was were be been being "
    "am do does did has have had will would can could should shall may might must that this these those its "
    "their his her there"))
#: first words whose capital is only sentence case (any other capitalised first word may be a name)
_QUESTION_OPENERS = frozenset(_words("what which who whom whose when where why how in on at to for from by of during "
                                     "after before according is are was were do does did can name"))
#: abbreviations after which a full stop does not end a sentence ("U.S. Army", "Dr. Smith", "St. Louis")
_ABBREVIATIONS = frozenset(_words(
    "mr mrs ms dr st jr sr vs etc inc co ltd corp no nos fig gen col lt sgt capt mt ft gov sen rep rev prof "
    "jan feb mar apr jun jul aug sep sept oct nov dec approx ca cf al"))
#: keyboard neighbours (QWERTY) for substitution typos
_KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    c: "".join(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)) + "".join(
        other[j] for other in (_KEYS[r - 1] if r else "", _KEYS[r + 1] if r + 1 < len(_KEYS) else "")
        for j in (i, i + 1) if 0 <= j < len(other))
    for r, row in enumerate(_KEYS) for i, c in enumerate(row)
}


# ---------------------------------------------------------------------------- spans and sentences
def answer_spans(ex: QAExample) -> list[tuple[int, int]] | None:
    """The character spans of ``ex``'s answers; None when any answer is not at its stated offset
    (such an example is never augmented: its labels are already wrong)."""
    spans = []
    for a in ex.answers:
        start, text = int(a["answer_start"]), a["text"]
        if not text or ex.context[start:start + len(text)] != text:
            return None
        spans.append((start, start + len(text)))
    return spans


def sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` (:func:`rag_qa.sentences.sentence_spans`), with the splits that an
    abbreviation or initial made ("U.S. Army", "Dr. Smith") or that a lower-case or digit start shows
    to be mid-sentence joined back, so a shuffle never moves half a sentence."""
    out: list[tuple[int, int]] = []
    for a, b in sentence_spans(text):
        if out:
            last = text[out[-1][0]:out[-1][1]].rstrip("\"')]")
            word = last.rsplit(None, 1)[-1].rstrip(".").lower() if last.split() else ""
            nxt = text[a:b].lstrip("\"'([")
            if (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or "." in word
                    or (nxt[:1].islower() or nxt[:1].isdigit())):
                out[-1] = (out[-1][0], b)
                continue
        out.append((a, b))
    return out


def _content_words(text: str) -> set[str]:
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in FUNCTION_WORDS}


def _moved(ex: QAExample, context: str, pieces: Sequence[tuple[int, int, int]], suffix: str) -> QAExample:
    """``ex`` with ``context``; ``pieces`` are (old start, old end, new start) of the spans that moved,
    each answer carried into the piece holding it."""
    answers = []
    for a in ex.answers:
        start = int(a["answer_start"])
        old, _, new = next(p for p in pieces if p[0] <= start and start + len(a["text"]) <= p[1])
        answers.append({"text": a["text"], "answer_start": new + start - old})
    return QAExample(ex.id + suffix, ex.question, context, answers, ex.title)


# ---------------------------------------------------------------------------- arm 1: context changes
def context_variant(ex: QAExample, rng: random.Random, mode: str | None = None,
                    drop_share: float = 0.5) -> QAExample | None:
    """``ex`` with its sentences shuffled and/or some dropped, the answer's sentence(s) kept whole.

    ``mode``: ``shuffle``, ``drop`` or ``both`` (default: one of them at random).  The sentences from
    the first to the last that overlap an answer form one unit that is never split.  ``drop`` removes
    each other sentence with probability ``drop_share`` (at least one), sparing the one that shares
    most content words with the question.  None when the context is a single unit (nothing to move).
    """
    spans = answer_spans(ex)
    if not spans:
        return None
    lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
    sents = sentences(ex.context)
    inside = [i for i, (a, b) in enumerate(sents) if a < hi and b > lo]
    if not inside:
        return None
    first, last = inside[0], inside[-1]
    block = (min(sents[first][0], lo), max(sents[last][1], hi))
    others = [s for i, s in enumerate(sents) if i < first or i > last]
    if not others:
        return None
    mode = mode or rng.choice(("shuffle", "drop", "both"))
    units = sents[:first] + [block] + sents[last + 1:]
    if mode in ("drop", "both"):
        asked = _content_words(ex.question)
        overlap = [len(asked & _content_words(ex.context[a:b])) for a, b in others]
        spare = others[max(range(len(others)), key=overlap.__getitem__)] if max(overlap) else None
        droppable = [s for s in others if s != spare]
        if not droppable:
            if mode == "drop":
                return None
        else:
            dropped = {s for s in droppable if rng.random() < drop_share} or {rng.choice(droppable)}
            units = [u for u in units if u not in dropped]
    if mode in ("shuffle", "both") and len(units) > 1:
        order = units[:]
        rng.shuffle(order)
        if order == units:  # a shuffle that changed nothing: move the answer's unit instead
            i = order.index(block)
            order.insert((i + 1) % len(order), order.pop(i))
        units = order
    context, pieces, at = "", [], 0
    for a, b in units:
        if context:
            context += " "
            at += 1
        pieces.append((a, b, at))
        context += ex.context[a:b]
        at += b - a
    if context == ex.context:
        return None
    return _moved(ex, context, pieces, "")


# ---------------------------------------------------------------------------- arm 2: longer contexts
def article_paragraphs(examples: Sequence[QAExample]) -> dict[str, list[str]]:
    """Each article's distinct paragraphs in the order they first appear (a SQuAD file's order)."""
    out: dict[str, list[str]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for ex in examples:
        key = (ex.title, ex.context)
        if key not in seen:
            seen.add(key)
            out[ex.title].append(ex.context)
    return dict(out)


def longer_context(ex: QAExample, paragraphs: Sequence[str], rng: random.Random, max_words: int = 300,
                   separator: str = "\n\n") -> QAExample | None:
    """``ex``'s paragraph joined with 1-2 neighbouring ``paragraphs`` of its article (in order, by
    ``separator``), at most ``max_words`` words: 3 paragraphs when they fit and a coin says so,
    else 2.  Where the answer's paragraph stands in the run (first, middle, last) is drawn too.
    None when the article has no neighbour that fits."""
    try:
        i = list(paragraphs).index(ex.context)
    except ValueError:
        return None
    if answer_spans(ex) is None:
        return None
    words = [len(p.split()) for p in paragraphs]
    sizes = [3, 2] if rng.random() < 0.5 else [2]
    for n in sizes:
        runs = [s for s in range(max(0, i - n + 1), min(i, len(paragraphs) - n) + 1)
                if sum(words[s:s + n]) <= max_words]
        if runs:
            s = rng.choice(runs)
            break
    else:
        return None
    offset = sum(len(p) + len(separator) for p in paragraphs[s:i])
    context = separator.join(paragraphs[s:s + n])
    return _moved(ex, context, [(0, len(ex.context), offset)], "")


# ---------------------------------------------------------------------------- arm 3: typed questions
def _answer_words(ex: QAExample) -> set[str]:
    return {w for a in ex.answers for w in (m.group(0).lower() for m in _WORD.finditer(a["text"]))}


def typo(word: str, rng: random.Random) -> str:
    """One small typing slip inside ``word``, its first letter kept: two neighbouring letters swapped,
    one left out, one doubled, or one replaced by a neighbouring key.  A word of fewer than 3 letters
    comes back unchanged."""
    letters = [i for i, c in enumerate(word) if c.isalpha()]
    if len(letters) < 3:
        return word
    kind = rng.choice(("swap", "drop", "double", "key"))
    if kind == "swap":
        pairs = [(i, j) for i, j in zip(letters[1:], letters[2:], strict=False) if j == i + 1 and word[i] != word[j]]
        if pairs:
            i, j = rng.choice(pairs)
            return word[:i] + word[j] + word[i] + word[j + 1:]
        kind = "drop"
    i = rng.choice(letters[1:])
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower(), "")
    c = rng.choice(near) if near else ""
    return word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1:]


def typed_question(ex: QAExample, rng: random.Random, lower: float = 0.7, no_mark: float = 0.7,
                   typos: float = 0.5, keywords: float = 0.25) -> QAExample | None:
    """``ex`` asked the way people type: each change drawn with its probability (lower case, no
    question mark, one or two typos, keyword style); at least one applies.  The context and the
    answers are copied unchanged: only the question differs.

    Words never typo'd or dropped: those the answer shares (the question's link to it), those with a
    capital after the first word or with a digit (names, years: a typo there asks something else),
    and words of fewer than 4 letters.  Keyword style keeps at least two words.
    """
    answer = _answer_words(ex)
    tokens = ex.question.split()
    if not tokens:
        return None

    def key(tok: str) -> str:
        return re.sub(r"\W+", "", tok).lower()

    def keep(i: int, tok: str) -> bool:
        """Shares a word with the answer, or names something (a capital after the first word, a digit)."""
        body = tok[1:] if i == 0 and key(tok) in _QUESTION_OPENERS else tok
        return (bool(set(_WORD.findall(tok.lower())) & answer) or any(c.isupper() for c in body)
                or any(c.isdigit() for c in tok))

    protected = [keep(i, t) for i, t in enumerate(tokens)]
    do_kw, do_typo = rng.random() < keywords, rng.random() < typos
    do_lower, do_mark = rng.random() < lower, rng.random() < no_mark
    if do_kw:
        kept = [(t, p) for t, p in zip(tokens, protected, strict=True) if p or key(t) not in FUNCTION_WORDS]
        if len(kept) >= 2 and any(key(t) not in FUNCTION_WORDS for t, _ in kept):
            tokens, protected = [t for t, _ in kept], [p for _, p in kept]
    if do_typo:
        eligible = [i for i, (t, p) in enumerate(zip(tokens, protected, strict=True))
                    if not p and sum(c.isalpha() for c in t) >= 4]
        for i in rng.sample(eligible, min(len(eligible), 2 if rng.random() < 0.3 else 1)):
            tokens[i] = typo(tokens[i], rng)
    question = " ".join(tokens)
    if do_lower:
        question = question.lower()
    if do_mark:
        question = question.rstrip("? ").rstrip()
    if question == ex.question or not question:  # nothing drawn changed it: lower case, no mark
        question = ex.question.lower().rstrip("? ").rstrip()
        if question == ex.question or not question:
            return None
    return QAExample(ex.id, question, ex.context, [dict(a) for a in ex.answers], ex.title)


# ---------------------------------------------------------------------------- arm 4: tables
def table_examples(tables: Sequence[QAExample], n: int, rng: random.Random) -> list[QAExample]:
    """``n`` questions from ``tables`` (made by ``python -m ingest.table_questions``), whole tables at
    a time in a seeded order (a question's table-mates are its distractors), the last one cut short.
    When the file holds fewer than ``n``, all of them."""
    by_table: dict[str, list[QAExample]] = defaultdict(list)
    for ex in tables:
        if answer_spans(ex):
            by_table[ex.title].append(ex)
    order = sorted(by_table)
    rng.shuffle(order)
    out: list[QAExample] = []
    for title in order:
        if len(out) >= n:
            break
        out.extend(by_table[title][: n - len(out)])
    return out


# ---------------------------------------------------------------------------- spec and application
def parse_spec(spec: str | None, default_ratio: float) -> dict[str, float]:
    """``"context=0.5, long, typed=0.2"`` -> {arm: ratio}; a bare arm takes ``default_ratio``.
    :class:`~rag_qa.qa_data.DataError` (one line, a ``ValueError``) for an unknown arm or a ratio
    that is not a number >= 0."""
    out: dict[str, float] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item or item.lower() == "none":
            continue
        name, _, ratio = item.partition("=")
        name = name.strip().lower()
        if name not in ARMS:
            raise DataError(f"unknown augmentation arm '{name}' (arms: {', '.join(ARMS)})")
        try:
            value = float(ratio) if ratio.strip() else default_ratio
        except ValueError:
            raise DataError(f"augmentation '{item}': the ratio must be a number") from None
        if value < 0:
            raise DataError(f"augmentation '{item}': the ratio must be >= 0")
        out[name] = value
    return {k: v for k, v in out.items() if v > 0}


def canonical_spec(arms: dict[str, float]) -> str:
    """One spelling of a parsed spec (arms in :data:`ARMS` order), for cache keys and cards."""
    return ",".join(f"{a}={arms[a]:g}" for a in ARMS if a in arms)


def arm_of(ex: QAExample) -> str | None:
    """The arm that made ``ex`` (from its id), None for an original example."""
    if MARK not in ex.id:
        return None
    return ex.id.rsplit(MARK, 1)[1].split("-", 1)[0]


def _copies(examples: Sequence[QAExample], ratio: float, seed: int, arm: str,
            make: Callable[[QAExample, random.Random], QAExample | None]) -> list[QAExample]:
    """``ratio`` x len(examples) new examples of ``arm``: examples drawn without replacement (again
    for each whole multiple of ``ratio``), ones the transform cannot change skipped."""
    rng = random.Random(f"{seed}/{arm}")
    out: list[QAExample] = []
    target = round(ratio * len(examples))
    copy = 0
    while len(out) < target and copy <= int(ratio) + 1:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for i in order:
            if len(out) >= target:
                break
            ex = examples[i]
            new = make(ex, random.Random(f"{seed}/{arm}/{ex.id}/{copy}"))
            if new is not None:
                out.append(replace(new, id=f"{ex.id}{MARK}{arm}-{copy}"))
        copy += 1
    return out


def _with_article(paragraphs: dict[str, list[str]]) -> Callable[[QAExample, random.Random], QAExample | None]:
    return lambda ex, rng: longer_context(ex, paragraphs.get(ex.title, []), rng)


def augment_examples(examples: Sequence[QAExample], arms: dict[str, float], seed: int,
                     paragraphs: dict[str, list[str]] | None = None,
                     tables: Sequence[QAExample] = ()) -> tuple[list[QAExample], dict[str, int]]:
    """``examples`` followed by each arm's new examples (arms in :data:`ARMS` order), and how many
    each arm added.  Only answerable examples are transformed; ``paragraphs`` (article -> its
    paragraphs in order, :func:`article_paragraphs` of the whole training file) serve ``long``,
    ``tables`` (the table-question file's examples) serve ``tables``."""
    base = [ex for ex in examples if ex.answers and MARK not in ex.id]
    out, added = list(examples), {}
    for arm in ARMS:
        ratio = arms.get(arm, 0.0)
        if ratio <= 0:
            continue
        if arm == "context":
            new = _copies(base, ratio, seed, arm, context_variant)
        elif arm == "long":
            if paragraphs is None:
                paragraphs = article_paragraphs(examples)
            new = _copies(base, ratio, seed, arm, _with_article(paragraphs))
        elif arm == "typed":
            new = _copies(base, ratio, seed, arm, typed_question)
        else:
            if not tables:
                raise DataError("the tables arm needs table questions (TrainConfig.augment_tables: make them with "
                                 "`python -m ingest.table_questions --out FILE`)")
            picked = table_examples(tables, round(ratio * len(base)), random.Random(f"{seed}/tables"))
            new = [replace(ex, id=f"{ex.id}{MARK}tables-0") for ex in picked]
        added[arm] = len(new)
        out.extend(new)
    return out, added
