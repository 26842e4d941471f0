"""Follow-up questions made standalone before retrieval: the "condense question" step.

A chat is asked in follow-ups ("Who patented a steam engine in 1781?" "James Watt" / "What sort of
motion did his engine produce?").  Before anything is retrieved, the question and the conversation
become one standalone question (:class:`Condensed`): what the reader reads (``question``: the
pronoun or ellipsis resolved against the previous turn) and what the retriever searches for
(``query``: that question plus the previous turn's key terms not already in it).

The rules here work offline in well under a millisecond (no model):

* an ellipsis ("What about the NFC?", "And Kraków?") is the previous question with the matching
  phrase swapped for the new one;
* the first pronoun that points back (he, she, it, they, his, its, their, there, ...) becomes the
  entity it most likely means: the previous answer when it is a name of the right kind (a person
  for "he" after a "who" question, a thing for "it" after "what"/"which"/"where"), else the entity
  the previous question asked about (its first name, or its first "the ..." noun phrase);
* a question with no such pronoun, or one whose pronoun follows a name in the question itself
  ("What did Tesla say he wanted?"), names its own subject and comes out unchanged.

Earlier turns are resolved in order, so "he" two turns later still finds the name.  LangChain's
history-aware retrieval pattern puts this step at the head of the chain (:mod:`rag_qa.chain`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: turns (a question and its answer) of the conversation that a question is read against
MAX_TURNS = 3
#: characters kept of each history message (a pasted essay must not slow the rewrite down)
MAX_MESSAGE_CHARS = 2000
ROLES = ("user", "assistant")

WH = {"what", "who", "whom", "when", "where", "which", "why", "how", "whose"}
AUX = {"did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "can", "could", "will", "would",
       "should", "might", "must", "may"}
FUNCTION = {"of", "in", "on", "at", "to", "for", "with", "by", "from", "and", "or", "as", "than", "that", "which",
            "who", "during", "after", "before", "since", "until", "over", "into", "about", "against", "between",
            "when", "while", "the", "a", "an", "this", "these", "those", "its", "his", "her", "their", "first",
            "is", "was", "are", "were", "be", "been", "not", "it", "he", "she", "they"}
STOP = WH | AUX | FUNCTION | {"name", "many", "much", "long", "type", "kind", "year", "also", "there", "did", "do",
                              "does", "some", "other", "one", "any", "all", "most", "more", "called", "known", "s"}
MOTION = {"go", "went", "gone", "move", "moved", "travel", "traveled", "travelled", "return", "returned", "come",
          "came", "sent", "emigrated", "fled", "flee", "migrate", "migrated", "brought", "bring"}
PREPOSITIONS = {"from", "to", "near", "around", "toward", "towards", "through", "across", "into", "in", "at"}
PERSON = {"he", "she", "him", "his", "her", "hers"}
PLURAL = {"they", "them", "their", "theirs"}
THING = {"it", "its"}
POSSESSIVE = {"his", "its", "their", "hers", "theirs"}
PRONOUN = re.compile(r"\b(he|she|him|his|her|hers|it|its|they|them|their|theirs|there)\b", re.IGNORECASE)
# "How long did it take", "it costs": an "it" that points at nothing
DUMMY_IT = re.compile(r"\bit\s+(?:take|takes|took|cost|costs|rain|rains|rained|seems|seemed)\b"
                      r"|\b(?:is|was)\s+it\s+(?:possible|true|important|necessary|likely|difficult|easy)\b",
                      re.IGNORECASE)
# existential "there is/are/was/were", "are there"
EXISTENTIAL = re.compile(r"\bthere\s+(?:is|are|was|were|be|been|have|has|had|exist|exists|existed)\b"
                         r"|\b(?:is|are|was|were|be|been)\s+there\b", re.IGNORECASE)
ELLIPSIS = re.compile(r"^\s*(?:and|but|so)?\s*(?:(?:what|how)\s+about|and)\s+(?P<x>.+?)\s*[?.!]*\s*$", re.IGNORECASE)
LEADING_AND = re.compile(rf"^\s*(?:and|but|so|also|then)\s*,?\s+(?=(?:{'|'.join(sorted(WH | AUX))})\b)",
                         re.IGNORECASE)
NAME = r"[A-Z][\w\-&.]*(?:'s|’s)?"
NAMES = re.compile(rf"(?<![\w'’-]){NAME}(?:\s+(?:of\s+(?:the\s+)?|de\s+|von\s+|van\s+|del\s+)?{NAME})*(?:\s+\d+)?")
NUMBER = re.compile(r"\b\d[\d,.]*(?:\s*(?:st|nd|rd|th))?\b")
WORD = re.compile(r"[\w'’-]+")


class HistoryError(ValueError):
    """A history that is not a list of ``{"role": "user" | "assistant", "content": str}`` messages."""


@dataclass(frozen=True)
class Condensed:
    """A question made standalone: ``question`` for the reader, ``query`` for the retriever."""

    original: str
    question: str
    query: str

    @property
    def rewritten(self) -> bool:
        """Whether the conversation changed anything (a self-contained question: False)."""
        return self.question != self.original or self.query != self.original

    @classmethod
    def unchanged(cls, question: str) -> Condensed:
        return cls(question, question, question)


@dataclass(frozen=True)
class Turn:
    """One exchange: the user's question as resolved in its own context, and the plain answer."""

    question: str
    answer: str


# ---------------------------------------------------------------------------- history
def clean_history(history: Sequence[Mapping[str, object]] | None, max_turns: int = MAX_TURNS) -> list[dict[str, str]]:
    """The last ``max_turns`` exchanges of ``history`` as plain ``{"role", "content"}`` messages.

    Checks the shape (a one-line :class:`HistoryError` otherwise), drops empty messages and cuts
    each one to :data:`MAX_MESSAGE_CHARS`: a history comes from a client and is not trusted.
    """
    if history is None:
        return []
    if not isinstance(history, Sequence) or isinstance(history, str | bytes):
        raise HistoryError("history must be a list of {\"role\": \"user\"|\"assistant\", \"content\": text} messages")
    out: list[dict[str, str]] = []
    for n, message in enumerate(history):
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            raise HistoryError(f"history message {n} needs a role of \"user\" or \"assistant\" and a content text")
        content = message.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise HistoryError(f"history message {n}: content must be text")
        if content.strip():
            out.append({"role": str(message["role"]), "content": content.strip()[:MAX_MESSAGE_CHARS]})
    users = [i for i, m in enumerate(out) if m["role"] == "user"]
    if len(users) > max_turns:
        out = out[users[-max_turns]:]
    return out


def turns(history: Sequence[Mapping[str, str]]) -> list[Turn]:
    """Question/answer pairs from plain messages, each question resolved against the turns before it."""
    pairs: list[tuple[str, str]] = []
    for message in history:
        if message["role"] == "user":
            pairs.append((message["content"], ""))
        elif pairs and not pairs[-1][1]:
            pairs[-1] = (pairs[-1][0], message["content"])
    resolved: list[Turn] = []
    for question, answer in pairs:
        if resolved:
            question = resolve(question, resolved[-1])
        resolved.append(Turn(question, answer))
    return resolved


# ---------------------------------------------------------------------------- what the previous turn names
ORG = re.compile(r"\b(?:Council|Parliament|Committee|Company|Corporation|Church|Court|Party|Government|Union|"
                 r"Association|Society|Institute|University|College|School|Group|Team|Club|Agency|Board|Bank)\b")
OPENERS = {"although", "however", "some", "other", "many", "most", "during", "after", "before", "since", "while",
           "because", "if", "according", "besides", "along", "aside", "despite", "recently", "today", "currently",
           "originally", "eventually", "generally", "approximately", "about", "around", "also", "why", "both"}
DEMONYM = re.compile(r"^[A-Z][a-z]+(?:ish|ese|ian|ean|an|ch|ic|i)$")


def _names(text: str) -> list[str]:
    """Capitalised names in ``text`` ("the" kept where the text has it: "the IPCC"), without a sentence's
    opening word ("What", "Recently"), a trailing 's, or a nationality used as an adjective ("French composer")."""
    found = []
    for m in NAMES.finditer(text):
        name, start = m.group(), m.start()
        words = name.split()
        opening = start == 0 or bool(re.search(r"[.!?:;]\s*$", text[:start])) or not text[:start].strip()
        if opening:
            while words and (words[0].lower() in WH | AUX | FUNCTION | OPENERS | {"name", "in", "on", "at", "for"}
                             or words[0].lower().endswith("ly")):
                start += len(words[0]) + 1
                words = words[1:]
            if not words:
                continue
            name = " ".join(words)
        name = re.sub(r"(?:'s|’s)$", "", name).strip()
        after = text[m.end():]
        if len(words) == 1 and DEMONYM.match(name) and re.match(r"^\s+[a-z]", after):
            continue  # "Which French composer": an adjective, not what is talked about
        if len(name) < 2 or name.lower() in STOP:
            continue
        if re.search(r"\bthe\s+$", text[:start], re.IGNORECASE) and not re.search(r"(?:'s|’s)$", m.group()):
            name = f"the {name}"
        found.append(name)
    return found


def _bare(name: str) -> str:
    """A name without its leading "the"."""
    return re.sub(r"^the\s+", "", name)


def _noun_phrase(text: str) -> str | None:
    """The first "the/a ..." noun phrase of a question ("the steam engine"), for "it" without a name."""
    ends = "|".join(sorted(AUX | FUNCTION))
    m = re.search(rf"\b(?:the|a|an)\s+((?:[\w-]+\s+){{0,3}}?[\w-]+)(?=\s+(?:{ends})\b|\s*[?.,!]|$)", text,
                  re.IGNORECASE)
    if not m:
        return None
    words = m.group(1).split()
    while len(words) > 1 and re.search(r"(?:ed|en)$", words[-1]):  # "the telephone invented": a verb follows
        words.pop()
    return f"the {' '.join(words)}" if words and all(w.lower() not in STOP for w in words) else None


def _usable_answer(answer: str) -> bool:
    """An answer that can stand for a pronoun: short, and more than a number or a date."""
    words = answer.split()
    return 0 < len(words) <= 6 and bool(re.search(r"[A-Za-z]", answer)) and not NUMBER.fullmatch(answer)


def _asks(question: str) -> str:
    m = re.search(r"\b(who|whom|what|which|where|when|why|how)\b", question, re.IGNORECASE)
    return m.group(1).lower() if m else ""


def antecedent(pronoun: str, previous: Turn) -> str | None:
    """What ``pronoun`` most likely means after ``previous``: its answer or the entity it asked about."""
    pronoun = pronoun.lower()
    asks, answer = _asks(previous.question), previous.answer.strip().rstrip(".")
    named = _usable_answer(answer) and (answer[:1].isupper() or answer[:1].isdigit())
    names = [n for n in _names(previous.question) if _bare(n) != answer]
    if pronoun in PERSON:
        people = [n for n in names if not n.isupper() and not n.startswith("the ") and not re.search(
            rf"\b(?:in|at|to|from|of)\s+{re.escape(n)}", previous.question)]
        if named and (asks in ("who", "whom") or not people):
            return answer
        return people[0] if people else (names[0] if names else None)
    if pronoun in PLURAL:
        plural_answer = named and (answer.endswith("s") or " and " in answer or "," in answer or
                                   bool(DEMONYM.match(answer)))
        if plural_answer and asks in ("who", "whom", "what", "which", ""):
            return f"the {answer}" if DEMONYM.match(answer) else answer
        plural = [n for n in names if n.endswith("s")]
        if plural:
            return plural[0]
        return names[0] if names else (answer if named else _noun_phrase(previous.question))
    if pronoun == "there":
        if named and asks == "where":
            return answer
        placed = re.findall(rf"\b(?:in|at|to|from)\s+((?:the\s+)?{NAME}(?:\s+{NAME})*)", previous.question)
        places = [re.sub(r"(?:'s|’s)$", "", p) for p in placed if _bare(p).lower() not in STOP]
        return places[0] if places else (names[0] if names else None)
    # it / its: a thing -- the answer when it names one, else the first singular name asked about
    person = bool(re.fullmatch(r"(?:[A-Z][a-z]+\.?\s+){1,2}[A-Z][a-z]+", answer)) and not ORG.search(answer)
    if named and (asks in ("what", "which", "where", "") or asks == "who" and not person) and \
            not answer.lower().startswith(("a ", "an ")):
        return answer
    singular = [n for n in names if not n.endswith("s") or n.endswith(("ss", "us", "is"))]
    return (singular or names or [None])[0] or _noun_phrase(previous.question)


# ---------------------------------------------------------------------------- the rewrite
BOUNDARY = re.compile(r"\b(?:that|say|says|said|claim|claimed|believe|believed|think|thought|when|while|after|"
                      r"before|because|if|and|but|who|which)\b|,")


PLURAL_NOUN = re.compile(r"\b(?i:which|what)\s+([a-z][a-z-]+)\b|\b([a-z][a-z-]{2,}s)\b")
FIRST_VERB = re.compile(rf"(?<!\bto )\b(?:{'|'.join(sorted(AUX))})\b", re.IGNORECASE)  # not "to have"


def _plural_nouns(text: str, pronoun: str) -> list[str]:
    """Common nouns in ``text`` that a following "their" or "them" (``pronoun``) can point back to: plurals
    ("maidens", "customers") and the noun a "which"/"what" asks about ("Which company won ... their ad").

    Not a noun before the question's first auxiliary: that is the question's own object ("How many titles
    did their coach win?" asks about someone else's coach) or, for "them", the subject ("Tumor antigens
    are complexed with them" cannot mean themselves; "schedules with 16 games in them" are the games).
    """
    verb = FIRST_VERB.search(text)
    found = []
    for m in PLURAL_NOUN.finditer(text):
        noun = m.group(1) or m.group(2)
        if noun in STOP or (m.group(2) and noun.endswith(("ss", "us", "is", "'s", "’s"))):
            continue
        if (verb is not None and m.start() < verb.start()) or (verb is None and pronoun == "them"):
            continue
        found.append(noun)
    return found


def _first_anaphor(question: str) -> re.Match[str] | None:
    """The first pronoun of ``question`` that points outside it, or None when every one has its
    antecedent in the question itself (the question names its own subject)."""
    for m in PRONOUN.finditer(question):
        word = m.group(1).lower()
        if word == "there" and EXISTENTIAL.search(question[max(0, m.start() - 12): m.end() + 12]):
            continue
        if word in THING and DUMMY_IT.search(question[max(0, m.start() - 12): m.end() + 14]):
            continue
        before = question[: m.start()]
        own, nouns = _names(before), []
        if word in PERSON:
            own = [n for n in own if not n.isupper()]
        elif word in PLURAL:
            own = [n for n in own if n.endswith("s")] + re.findall(r"\bthe\s+\w+s\b", before, re.IGNORECASE)
            if word != "they":  # "viewers ... on their phones", "schedules with 16 games in them"
                nouns = _plural_nouns(before, word)
                own += nouns
        elif word == "there":
            own = re.findall(rf"\b(?:in|at|to)\s+(?:the\s+)?{NAME}", before)
        if not own:
            return m
        prev_words = WORD.findall(before)
        prev = prev_words[-1].lower() if prev_words else ""
        objective = word in ("him", "them", "it", "her") and prev not in AUX | WH and not BOUNDARY.search(
            before[before.rfind(own[-1]) + len(own[-1]):] if own[-1] in before else before)
        if objective and own[-1] not in nouns:
            # "What did Sasse proclaim him to be?": an object is not its own clause's subject (but "games
            # in them" are the games)
            return m
        # bound to a name in the question ("What did Tesla say he wanted?"): look at the next pronoun
    return None


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") and not name.endswith("ss") else f"{name}'s"


def _substitute(question: str, m: re.Match[str], name: str) -> str:
    """``question`` with the pronoun at ``m`` replaced by ``name`` in the form its place needs."""
    word = m.group(1)
    low = word.lower()
    before, after = question[: m.start()], question[m.end():]
    prev_words = WORD.findall(before)
    prev = prev_words[-1].lower() if prev_words else ""
    nxt = WORD.match(after.strip())
    next_word = nxt.group().lower() if nxt else ""
    if low in POSSESSIVE or (low == "her" and next_word and next_word not in FUNCTION | AUX and
                              not re.match(r"^\s*[?.,!]", after)):
        text = _possessive(name)
    elif low == "there":
        text = name if prev in PREPOSITIONS else (f"to {name}" if prev in MOTION else f"in {name}")
    else:
        text = name
    if not before.strip():
        text = text[:1].upper() + text[1:]
    return f"{before}{text}{after}"


ORDINALS = {"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"}


def _kind(text: str) -> str:
    """What sort of phrase this is, for matching an ellipsis to the slot it fills."""
    low = text.lower().strip()
    if low in ORDINALS or re.fullmatch(r"\d+(?:st|nd|rd|th)", low):
        return "ordinal"
    if NUMBER.fullmatch(low):
        return "number"
    if DEMONYM.match(text.strip()) or low in ("french", "dutch", "greek", "swiss", "thai", "welsh", "irish"):
        return "demonym"
    return "name"


#: words that make an ellipsis no phrase to put anywhere ("And then?", "What about now?")
EMPTY_ELLIPSIS = STOP | {"then", "now", "here", "again", "too", "else", "that", "this", "so", "why", "how"}
LEADING_PREPOSITION = re.compile(r"^(?P<p>in|on|at|from|to|during|after|before|since|for|by)\s+(?P<x>.+)$",
                                 re.IGNORECASE)


def _swap(previous: str, phrase: str) -> str | None:
    """The previous question with the phrase that best matches ``phrase`` replaced by it (an ellipsis).

    A leading preposition ("And in 1990?") is set aside: the phrase replaces one of its kind ("1985" in
    "... in 1985?"), or, where the previous question has none, goes at its end with the preposition."""
    phrase = phrase.strip()
    prep = LEADING_PREPOSITION.match(phrase)
    if prep:
        phrase = prep.group("x")
    bare = re.sub(r"^(?:the|a|an)\s+", "", phrase, flags=re.IGNORECASE)
    new_words = bare.split()
    if not new_words or len(new_words) > 6 or all(w.lower() in EMPTY_ELLIPSIS for w in new_words):
        return None
    pool = _candidates(previous, numeric=bool(NUMBER.fullmatch(bare)))
    if prep and not any(_kind(text) == _kind(bare) for _, _, text in pool):
        return re.sub(r"\s*[?.!]*\s*$", "", previous) + f" {prep.group('p')} {phrase}?"
    spans: list[tuple[float, int, int, str]] = []  # (score, start, end, text) of candidate phrases in previous
    wholes = [(m.start(), m.end()) for m in NAMES.finditer(previous)]
    for a, b, text in pool:
        if not all(w[:1].isupper() or w[:1].isdigit() for w in text.split() if w.lower() not in ("of", "the")):
            continue
        ratio = difflib.SequenceMatcher(None, text.lower(), bare.lower()).ratio()
        score = ratio + (0.2 if (a, b) in wholes else 0.0) + 0.1 * (len(text.split()) == len(new_words))
        score += 0.5 * (_kind(text) == _kind(bare)) - 0.2 * abs(len(text) - len(bare)) / max(len(text), len(bare))
        spans.append((score, a, b, text))
    if not spans:
        return None
    best = max(spans, key=lambda s: (round(s[0], 3), -s[1]))
    _, a, b, text = best
    if best[0] < 0.35 and len(spans) > 1:  # nothing alike: the last name is the slot most often swapped
        names = [(m.start(), m.end()) for m in NAMES.finditer(previous) if m.start() > 0]
        if names:
            a, b = names[-1]
    replacement = bare
    if re.match(r"^(?:the)\s+", phrase, re.IGNORECASE) and not re.search(r"\bthe\s+$", previous[:a], re.IGNORECASE):
        replacement = phrase
    return f"{previous[:a]}{replacement}{previous[b:]}"


def _candidates(previous: str, numeric: bool) -> list[tuple[int, int, str]]:
    """(start, end, text) of the phrases of ``previous`` an ellipsis may replace: names and their sub-phrases
    ("Super Bowl XLVIII" -> "XLVIII"), and numbers when the new phrase is one."""
    pool = [(m.start(), m.end(), m.group()) for m in (NUMBER.finditer(previous) if numeric else ())]
    for m in NAMES.finditer(previous):
        if m.start() == 0 and m.group().split()[0].lower() in WH | AUX | FUNCTION | OPENERS | {"there"}:
            continue
        words = list(re.finditer(r"\S+", m.group()))
        pool.append((m.start(), m.end(), m.group()))
        for size in range(1, len(words)):
            for i in range(len(words) - size + 1):
                a, b = m.start() + words[i].start(), m.start() + words[i + size - 1].end()
                pool.append((a, b, previous[a:b]))
    return pool


def resolve(question: str, previous: Turn) -> str:
    """``question`` with its ellipsis or first outward pronoun resolved against ``previous``;
    unchanged when it names its own subject or nothing fits."""
    question = question.strip()
    m = ELLIPSIS.match(question)
    if m and not re.match(rf"(?:{'|'.join(sorted(WH | AUX))})\b", m.group("x"), re.IGNORECASE):
        swapped = _swap(previous.question, m.group("x"))
        return swapped if swapped else question
    body = LEADING_AND.sub("", question)
    found = _first_anaphor(body)
    if found is None:
        return question
    name = antecedent(found.group(1), previous)
    if not name or _bare(name).lower() in body.lower():
        return question  # nothing fits, or it is named already ("O2 instead of it" is not "O2 instead of O2")
    resolved = _substitute(body, found, name)
    return resolved[:1].upper() + resolved[1:]


def key_terms(previous: Turn) -> list[str]:
    """The previous turn's names and (short) answer: what a follow-up's search should keep."""
    terms = _names(previous.question)
    answer = previous.answer.strip().rstrip(".")
    if _usable_answer(answer):
        terms.append(answer)
    if not terms and (phrase := _noun_phrase(previous.question)):
        terms.append(phrase[4:])
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(term, None)
    return list(seen)


def _words(text: str) -> set[str]:
    return {re.sub(r"(?:'s|’s|')$", "", w.lower()) for w in WORD.findall(text)}


def condense(question: str, history: Sequence[Mapping[str, str]] | None, *, rewrite: bool = True,
             expand: bool = True) -> Condensed:
    """``question`` read against ``history`` (plain ``{"role", "content"}`` messages).

    ``rewrite``: the reader reads the resolved question; ``expand``: the retriever also gets the
    previous turn's key terms that the (resolved) question lacks.  Both only for a question that
    points back (a pronoun or an ellipsis): a self-contained one comes back unchanged.
    """
    typed, question = question, question.strip()
    past = turns(clean_history(history)) if history else []
    if not past:
        return Condensed.unchanged(typed)
    previous = past[-1]
    resolved = resolve(question, previous)
    follow_up = resolved != question or (
        _first_anaphor(LEADING_AND.sub("", question)) is not None or bool(ELLIPSIS.match(question)))
    if not follow_up:
        return Condensed.unchanged(typed)  # self-contained: exactly as typed
    read = resolved if rewrite else question
    query = read
    if expand:
        have = _words(query)
        extra = [t for t in key_terms(previous) if not _words(t) <= have]
        if extra:
            query = f"{query} ({'; '.join(extra)})"
    return Condensed(typed, read, query)
