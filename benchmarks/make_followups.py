"""Build the follow-up question set (issue 23) from SQuAD v1.1 dev: ``benchmarks/data/followups.json``.

    .venv/bin/python benchmarks/make_followups.py [--data dev-v1.1-public.json] [--out FILE]

Each item is a two-turn conversation made of two real SQuAD questions on one paragraph (``scope``
``paragraph``) or on two paragraphs of one article (``article``):

* turn 1: question Q1 and its gold answer (the assistant's reply);
* turn 2: Q2 with one mention of something only turn 1 names replaced by a pronoun or cut to an
  ellipsis -- ``question``; the original Q2 is kept as ``written_out``, with its gold ``answers``.

Three kinds, found by rules over the two questions (no model involved):

* ``answer``: Q2 names Q1's answer ("Who patented ...?" "James Watt" / "What did James Watt ...?"
  -> "What did he ...?");
* ``topic``: Q2 names an entity that Q1 also names ("How big is the Amazon rainforest?" / "When
  did the Amazon rainforest form?" -> "When did it form?");
* ``ellipsis``: Q2 is Q1 with one phrase swapped ("Which team represented the AFC?" / "... the NFC?"
  -> "What about the NFC?").

The pronoun follows the mention's use: possessive ("Watt's" -> "his"), subject or object, "there"
for a place after in/at/to, "they" for a plural name; a person's "he"/"she" comes from the pronouns
the article uses around that name.  Mentions used as modifiers ("the Huguenot farms"), inside a
longer name, or left half-named are skipped, and so are pairs whose answers overlap or whose
questions are paraphrases.  Every generated item was then read by hand: :data:`DROP` lists the ids
thrown out (with why) and :data:`FIX` the rewrites corrected by hand.  Deterministic: the same data
gives the same file.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad" / "dev-v1.1-public.json"
DEFAULT_OUT = HERE / "data" / "followups.json"

MODAL = {"did", "does", "do", "can", "could", "will", "would", "should", "might", "must", "may"}
PARTICIPLES = {"born", "known", "given", "made", "built", "founded", "named", "called", "used", "seen", "held",
               "chosen", "written", "taken", "located", "based", "considered", "formed", "created", "established"}
WH = {"what", "who", "whom", "when", "where", "which", "why", "how", "whose"}
MOTION = {"go", "went", "gone", "move", "moved", "travel", "traveled", "travelled", "return", "returned", "come",
          "came", "sent", "emigrated", "fled", "flee", "migrate", "migrated", "brought", "bring"}
AUX = {"did", "does", "do", "was", "were", "is", "are", "has", "have", "had", "can", "could", "will", "would",
       "should", "might", "must", "may"}
FUNCTION = {"of", "in", "on", "at", "to", "for", "with", "by", "from", "and", "or", "as", "than", "that", "which",
            "who", "during", "after", "before", "since", "until", "over", "into", "about", "against", "between",
            "when", "while", "use", "used", "get", "got", "make", "made", "become", "became", "first", "last",
            "originally", "eventually", "also", "later", "still", "ever", "never", "not", "begin", "began", "start",
            "started", "take", "took", "win", "won", "lose", "lost", "play", "played", "call", "called", "say",
            "said", "do", "want", "wanted", "need", "receive", "received", "consider", "considered", "believe",
            "believed", "think", "thought", "invent", "invented", "move", "moved", "work", "worked", "live",
            "lived", "die", "died", "write", "wrote", "create", "created", "build", "built", "own", "owned"}
PRONOUNS = {  # kind -> (subject, object, possessive)
    "male": ("he", "him", "his"), "female": ("she", "her", "her"), "plural": ("they", "them", "their"),
    "thing": ("it", "it", "its"),
}
NAME = r"[A-Z][\w\-'.&]*"
# a name: capitalised words, with "of"/"the"/"de" between them and a trailing number ("Super Bowl 50")
ENTITY = re.compile(rf"\b{NAME}(?:\s+(?:of\s+(?:the\s+)?|de\s+|del\s+)?{NAME})*(?:\s+\d+)?\b")
#: follow-ups kept per article, by kind and scope (spreads the set over the 40 articles)
PER_ARTICLE = {("answer", "paragraph"): 2, ("answer", "article"): 1, ("topic", "paragraph"): 2,
               ("topic", "article"): 2, ("ellipsis", "paragraph"): 1}

# Read by hand after generation (all 234): ids (of Q2) dropped, and why.
DROP: dict[str, str] = {
    "56d9b5ffdc89441400fdb720": "ambiguous: \"it\" reads as the sponsor named in the answer",
    "56de4a89cffd8e1900b4b7be": "\"Norman\" is an adjective there; no pronoun reads right",
    "56dddf4066d3e219004dad61": "ambiguous: \"they\" reads as the Saracens of the answer",
    "56e1e9dfe3433e14004231fe": "the replaced word is an adjective (\"is NP-complete\")",
    "56e1e9dfe3433e14004231ff": "the replaced word is an adjective (\"is NP-complete\")",
    "56e74af500c9c71400d76f66": "ambiguous: the first question names three texts",
    "5705e33f52bb89140068964d": "ambiguous: \"it\" reads as the port of the answer",
    "57097c8fed30961900e841f4": "ambiguous: \"it\" reads as ONdigital of the answer",
    "57097051ed30961900e84132": "ambiguous: \"its\" reads as VideoGuard of the answer",
    "57111ab8a58dae1900cd6c40": "\"Huguenot\" is an adjective there",
    "571117d4a58dae1900cd6c0a": "\"a prominent Huguenot\": no pronoun reads right",
    "571a53d410f8ca1400304fe5": "does not read as a question once rewritten",
    "571a484210f8ca1400304fbf": "ambiguous: the first question names the Sun and Earth",
    "572659535951b619008f7042": "ambiguous: \"it\" reads as the car of the answer",
    "57265a58dd62a815002e8271": "ambiguous: the first question names three car makers",
    "5725bcb6271a42140099d0ef": "ambiguous: \"it\" reads as Iran of the answer",
    "57269e80f1498d1400e8e521": "\"Newcastle native\": no pronoun reads right",
    "5726b9e15951b619008f7bf1": "ambiguous: the first turn names three men",
    "573330444776f4190066075b": "ambiguous: \"it\" reads as the district of the answer",
    "5726f0e35951b619008f82fb": "the rewrite broke the sentence (\"in it. to\")",
    "572a02483f37b3190047864c": "ambiguous: the first turn names two scientists",
    "5729f4b41d0469140077968d": "\"MHC:antigen\" is one term; no pronoun reads right",
    "5729f69caf94a219006aa6fb": "\"MHC:antigen\" is one term; no pronoun reads right",
    "5727dd2e4b864d1900163ebb": "\"Harvard - Yale Regatta\": a name inside a name",
    "5727cb4b2ca10214002d967a": "ambiguous: \"it\" reads as Miami",
    "572828383acd2414000df5c4": "\"Doctor Who play\": an adjective use",
    "57287c142ca10214002da3d2": "ambiguous: \"he\" reads as the astronomer of the answer",
    "572903d96aef0514001549a7": "ambiguous: \"it\" reads as Tanzania of the answer",
    "572967e31d046914007793b4": "\"Lepidodinium viride\": a name inside a name",
    "572968cf1d046914007793cc": "\"chloroplast DNA\": an adjective use",
    "57297ed93f37b31900478460": "\"Fermat primality test\": an adjective use",
    "57309564069b5314008321a6": "ambiguous: the first turn names two historians",
    "573088da069b53140083216b": "ambiguous: the first turn names two geographers",
    "5733d13e4776f419006612c6": "\"British operation\": an adjective use",
    "5733f410d058e614000b6664": "ambiguous: the first turn names William Shirley, not the French",
    "5733d13e4776f419006612c8": "does not read once rewritten (\"What order did it make of French?\")",
}
# Rewrites corrected by hand (mostly a person's "he"/"she" the rules took for "it"): id -> the follow-up.
FIX: dict[str, str] = {
    "5733a32bd058e614000b5f33": "When did it win the country's championship prior to 2000?",
    "56de15dbcffd8e1900b4b5ca": "To where did he flee?",
    "56e200e4cd28a01900c67c17": "In what year was his definitional model of a computing device received?",
    "5705eb3375f01819005e7765": "Which city does that district belong to?",
    "5705fc3a52bb89140068976b": "Other than many sunny days, what characteristic is typical for the climate there?",
    "5706143575f01819005e7953": "What is the other NHL team aside from the Anaheim Ducks to reside there?",
    "571093aba58dae1900cd6a60": "What religion did he renounce upon ascending the throne?",
    "5710f2e2a58dae1900cd6b75": "Those in Killeshandra and County Cavan expanded what agricultural industry?",
    "5725cb33271a42140099d1dd": "They are less complex than which other phylum?",
    "57264cc6dd62a815002e80e7": "What did his book blame the plague on?",
    "572683f95951b619008f7529": "What prompted him to believe the land was formed by erosion of the mountains?",
    "57269d745951b619008f77db": "Where does the station broadcast from during terms?",
    "5726f90b708984140094d760": "What do its photographs capture?",
    "5726fe95dd62a815002e9734": "In which year were his works given to the V&A?",
    "57277632f1498d1400e8f8c7": "It was a studio affiliated with what company?",
    "572685d1f1498d1400e8e2a2": "When did he leave ABC?",
    "5726c9b0dd62a815002e9049": "Where was the Kievian force that confronted his army defeated in 1223?",
    "5726db5add62a815002e92d6": "What is the name of the Latin translation of his book?",
    "572825a92ca10214002d9f01": "How long did she live in a tree?",
    "5728284e3acd2414000df5cd": "What was he arrested for?",
    "5727c3b02ca10214002d95bb": "What conviction motivated him to move towards secularization?",
    "5729e4291d04691400779651": "What is his profession?",
    "5728501aff5b5019007da169": "What is the name of its Chairman?",
    "572872822ca10214002da375": "Why did his successors lose control of the rest of the Mongol empire?",
    "572925491d046914007790c7": "How many cases of malaria did it report in 2006?",
    "5729a3716aef05140015506b": "What is one work by him?",
    "573099ee8ab72b1400f9c5dd": "What did chemists from there make that could be used in warfare?",
    "5730a951069b531400832217": "Where did they send a large number of settlers?",
    "5737a0acc3c5551400e51f47": "What did his mechanics affect?",
    "57373f80c3c5551400e51e90": "Whose work corrected his physics in the seventeenth century?",
    "57373d0cc3c5551400e51e89": "What did he refer to forced motion as?",
}


def norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+(?:'\w+)?|[^\w\s]", text)


def entities(question: str, article: str = "") -> list[str]:
    """Capitalised names in a question (its first word only when it is not a question word); a one-word
    name must also be written capitalised inside a sentence of the article (not "What", "Other")."""
    found = []
    for m in ENTITY.finditer(question):
        text = m.group().strip()
        if m.start() == 0 and text.split()[0].lower() in {"who", "what", "when", "where", "which", "why", "how",
                                                           "in", "on", "at", "the", "a", "an", "after", "during",
                                                           "for", "by", "from", "to", "as", "is", "was", "are",
                                                           "were", "did", "does", "do", "name", "along", "besides"}:
            rest = text.split(None, 1)
            if len(rest) < 2:
                continue
            text = rest[1]
        if not text or len(text) < 2 or text in {"I"}:
            continue
        if " " not in text and article and not re.search(rf"[a-z,;]\s+{re.escape(text)}\b", article):
            continue
        found.append(text)
    return found


_KINDS: dict[tuple[str, str, bool], str] = {}
SINGULAR_S = {"States", "Nations", "Netherlands", "Philippines", "Mathematics", "Physics", "News", "Wales", "Angeles",
              "Paris", "Texas", "Athens", "Brussels", "Marseilles", "Bahamas"}


def kind_of(name: str, article: str, with_the: bool, asked_who: bool = False) -> str:
    """male / female / plural / thing for a name, from the pronouns the article uses right after it.

    A person: the answer to a "who" question, or a name the article does not write with "the" and
    follows with "he"/"she" more than with "it".  Plural: a name ending in -s written with "the"
    ("the Normans") or followed by "they".
    """
    key = (name, article[:200], asked_who)
    if key not in _KINDS:
        last = name.split()[-1]
        counts: Counter = Counter()
        occurrences = with_article = 0
        for m in re.finditer(rf"\b{re.escape(last)}\b", article):
            occurrences += 1
            before = article[max(0, m.start() - 40):m.start()]
            with_article += bool(re.search(r"\b[Tt]he\s+(?:[A-Z][\w-]*\s+)*$", before))
            for w in re.findall(r"[a-z]+", article[m.end():m.end() + 60].lower())[:8]:
                counts["male"] += w in ("he", "his", "him", "himself")
                counts["female"] += w in ("she", "her", "hers", "herself")
                counts["thing"] += w in ("it", "its", "itself")
                counts["plural"] += w in ("they", "their", "them", "themselves")
        plural_name = (last.endswith("s") and not last.endswith(("ss", "us", "is", "'s")) and len(last) > 3
                       and last not in SINGULAR_S)
        the_name = with_the or with_article > 0.3 * max(occurrences, 1)
        if plural_name and (the_name or counts["plural"] > max(counts["male"], counts["female"], counts["thing"])):
            kind = "plural"
        elif not the_name and (asked_who or counts["male"] + counts["female"] >= 2) and \
                counts["male"] + counts["female"] > counts["thing"] or (asked_who and not the_name):
            kind = "female" if counts["female"] > counts["male"] else "male"
        else:
            kind = "thing"
        _KINDS[key] = kind
    return _KINDS[key]


def replace(question: str, mention: str, kind: str, place: bool) -> str | None:
    """``question`` with its one ``mention`` replaced by the right pronoun, or None when that would not read."""
    hits = [m for m in re.finditer(rf"(?<![\w-]){re.escape(mention)}(?![\w-])", question)]
    if len(hits) != 1:
        return None
    start, end = hits[0].span()
    before, after = question[:start], question[end:]
    if re.search(r"[\"“”«]\s*$", before) or re.match(r"^\s*[\"“”»]", after):
        return None  # inside a quoted title
    if re.search(r"(?:\band|\bor|,)\s+(?:the\s+)?$", before) or re.match(r"^\s*(?:,|and\b|or\b)", after):
        return None  # one of a list ("Honda, Toyota and Nissan")
    if re.match(r"^\s+of\s+(?:the\s+)?[A-Z]", after):
        return None  # "the Duchy of Normandy", "Article 102 of the Treaty": part of a longer name
    if re.search(r"\bthe\s+[a-z]+\s+$", before) or re.search(
            r"\b(?:southern|northern|eastern|western|central|modern|ancient|early|late|old|new|former)\s+$", before,
            re.IGNORECASE):
        return None  # "the word Norman", "southern California": the name is not the whole noun phrase
    if re.search(r"[A-Z][\w-]*\s*$", before) and not re.search(r"^\s*$", before):  # inside a longer name
        prev_word = re.findall(r"\w+", before)[-1]
        if prev_word[0].isupper() and start > 0 and prev_word.lower() not in AUX:
            return None
    if re.match(r"^\s+(?:[A-Z][\w-]*|\d)", after):  # a longer name or a number follows
        return None
    if re.search(r"\b(?:a|an|this|that|these|those|its|his|her|their|our|my|your|each|every|no)\s+$", before,
                 re.IGNORECASE):
        return None  # "nominate a First Minister": the name is not the whole noun phrase
    det = re.search(r"\b(the|The)\s+$", before)
    if det:
        before = before[: det.start()]
    prev = re.findall(r"\w+", before)
    prev_word = prev[-1].lower() if prev else ""
    possessive = re.match(r"^(?:'s|’s|')(?!\w)", after)
    subject, obj, poss = PRONOUNS[kind]
    if possessive:
        after = after[possessive.end():]
        word = poss
    else:
        nxt = re.match(r"^\s*([A-Za-z]+)", after)
        next_word = nxt.group(1).lower() if nxt else ""
        motion = len(prev) > 1 and prev[-2].lower() in MOTION
        if place and (prev_word in ("in", "at") or prev_word == "to" and motion) and \
                next_word in FUNCTION | {""} | AUX and not re.search(r"\bthere\b", question, re.IGNORECASE):
            before = before[: before.lower().rstrip().rfind(prev_word)]
            word = "there"
        elif prev_word in AUX or not prev:
            verb_next = prev_word in MODAL or next_word.endswith("ed") or next_word in PARTICIPLES
            if next_word and next_word not in AUX and next_word not in FUNCTION and not verb_next:
                return None  # "Which Panthers player ...", "was the New World aspect": a modifier
            word = subject
        else:
            if next_word and next_word not in FUNCTION and next_word not in AUX:
                return None  # "... the Huguenot farms": a modifier
            word = obj
    if not before.strip():
        word = word[0].upper() + word[1:]
    out = f"{before}{word}{after}"
    out = re.sub(r"\s+", " ", out).strip()
    return out if out != question else None


def ellipsis(q1: str, q2: str) -> str | None:
    """"What about X?" when Q2 is Q1 with one phrase X swapped in (and enough left in common)."""
    a, b = tokens(q1.rstrip(" ?.")), tokens(q2.rstrip(" ?."))
    ops = [op for op in difflib.SequenceMatcher(a=[w.lower() for w in a], b=[w.lower() for w in b],
                                                autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(ops) != 1 or ops[0][0] != "replace":
        return None
    _, i1, i2, j1, j2 = ops[0]
    same = len(b) - (j2 - j1)
    swapped = b[j1:j2]
    def named(words: list[str]) -> bool:
        return any((w[0].isupper() or w[0].isdigit()) and w.lower() not in WH for w in words)

    if same < 4 or not 1 <= len(swapped) <= 5 or not named(swapped) or not named(a[i1:i2]) or j1 == 0:
        return None
    if j1 > 0 and b[j1 - 1].lower() == "the":
        swapped = ["the", *swapped]
    phrase = re.sub(r"\s+([,.'’])", r"\1", " ".join(swapped))
    return f"What about {phrase}?"


def build(data: Path, seed: int = 0) -> list[dict]:
    """Every follow-up the rules find (one per paragraph and kind), minus :data:`DROP`, with :data:`FIX`."""
    articles = json.loads(data.read_text(encoding="utf-8"))["data"]
    rng = random.Random(seed)
    items: list[dict] = []
    for article in articles:
        title = article["title"]
        article_text = "\n\n".join(p["context"] for p in article["paragraphs"])
        questions = [(pi, q) for pi, p in enumerate(article["paragraphs"]) for q in p["qas"]]
        found: dict[tuple[str, str], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for pi, p in enumerate(article["paragraphs"]):
            qas = p["qas"]
            pairs = [(qas[i], qas[j], "paragraph") for i in range(len(qas)) for j in range(len(qas)) if i != j]
            others = [q for qi, q in questions if qi != pi]
            rng.shuffle(others)
            pairs += [(q1, q2, "article") for q1 in others[:12] for q2 in qas]
            for q1, q2, scope in pairs:
                item = make_item(title, article_text, q1, q2, scope)
                if item is not None:
                    found[(item["kind"], scope)][pi].append(item)
        for key, n in PER_ARTICLE.items():  # n paragraphs of the article, one follow-up from each
            paragraphs = sorted(found[key])
            for pi in rng.sample(paragraphs, min(n, len(paragraphs))):
                items.append(rng.choice(found[key][pi]))
    out = []
    seen: set[str] = set()
    for item in items:
        if item["id"] in DROP or item["id"] in seen:
            continue
        seen.add(item["id"])
        if item["id"] in FIX:
            item["question"], item["fixed_by_hand"] = FIX[item["id"]], True
        out.append(item)
    return out


def make_item(title: str, article_text: str, q1: dict, q2: dict, scope: str) -> dict | None:
    """The follow-up made from the pair (Q1, Q2), or None when none reads naturally."""
    one, two = q1["question"].strip(), q2["question"].strip()
    answers1 = {norm(a["text"]) for a in q1["answers"]}
    answers2 = [a["text"] for a in q2["answers"]]
    if answers1 & {norm(a) for a in answers2} or any(norm(a) in norm(one) for a in answers2):
        return None  # not a follow-up: the same answer, or Q1 gives Q2's answer away
    w1, w2 = set(norm(one).split()), set(norm(two).split())
    if len(w1 & w2) / max(len(w1 | w2), 1) > 0.6 and scope == "paragraph":
        rewrite, kind, mention = (ellipsis(one, two), "ellipsis", None)
        if rewrite is None:
            return None  # a paraphrase, not a follow-up
    else:
        rewrite = None
    answer1 = q1["answers"][0]["text"].strip()
    if rewrite is None:
        candidates = []
        if answer1[:1].isupper() and len(answer1.split()) <= 5 and answer1 not in ("The", "A"):
            candidates.append(("answer", answer1))
        candidates += [("topic", e) for e in entities(one, article_text) if e != answer1]
        for kind, mention in candidates:
            if mention not in two or len(mention) < 3:
                continue
            place = kind == "answer" and one.lower().startswith("where") or bool(
                re.search(rf"\b(?:in|at|to)\s+(?:the\s+)?{re.escape(mention)}\b", one))
            with_the = bool(re.search(rf"\b[Tt]he\s+{re.escape(mention)}\b", f"{one} {two}"))
            asked_who = kind == "answer" and bool(re.match(r"(?i)^\s*(?:who|whom)\b", one))
            rewrite = replace(two, mention, kind_of(mention, article_text, with_the, asked_who), place)
            if rewrite is not None:
                last = mention.split()[-1]
                if re.search(rf"\b{re.escape(last)}\b", rewrite):
                    rewrite = None  # still half-named ("Denver" left of "Denver Broncos")
                    continue
                break
        if rewrite is None:
            return None
    return {
        "id": q2["id"], "kind": kind, "scope": scope, "title": title,
        "history": [{"role": "user", "content": one}, {"role": "assistant", "content": answer1}],
        "history_id": q1["id"], "question": rewrite, "written_out": two, "answers": answers2,
        "replaced": mention,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"error: no data file {args.data} (pass --data)", file=sys.stderr)
        return 2
    items = build(args.data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"source": args.data.name, "made_by": "benchmarks/make_followups.py", "items": items}
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = Counter((i["kind"], i["scope"]) for i in items)
    summary = ", ".join(f"{k}/{s} {n}" for (k, s), n in sorted(counts.items()))
    print(f"{len(items)} follow-ups -> {args.out}: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
