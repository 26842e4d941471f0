"""Citation parsing, refusal detection and checking generated answers against passages."""

from __future__ import annotations

import pytest

from rag_qa.readers.grounding import (
    clean_reply,
    ground_answer,
    is_refusal,
    parse_citations,
    strip_citations,
    supporting_passages,
)
from rag_qa.types import Passage

PASSAGES = [
    Passage("The Eiffel Tower was completed in 1889 in Paris.", "eiffel.txt", 3, 100, 148),
    Passage("Bananas are yellow and rich in potassium.", "fruit.txt", None, 0, 41),
    Passage("Gustave Eiffel's company designed and built the tower.", "eiffel.txt", 4, 300, 354),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris [1]", [1]),
        ("Paris [1, 3]", [1, 3]),
        ("Paris [1][2]", [1, 2]),
        ("Paris [3;1] and again [3]", [3, 1]),
        ("Paris [ 2 ]", [2]),
        ("Paris [0] [4] [99]", []),  # out of range
        ("Paris [a] [1-2] [2.5] [1,] [2", []),  # malformed
        ("Paris (1) 1] {2}", []),
        ("no citation at all", []),
    ],
)
def test_parse_citations(text: str, expected: list[int]) -> None:
    assert parse_citations(text, n_passages=3) == expected


def test_strip_citations_removes_valid_and_malformed_markers() -> None:
    assert strip_citations("in 1889 [1][3].") == "in 1889."
    assert strip_citations("in 1889 [1, 2] and Paris [x]") == "in 1889 and Paris"
    assert strip_citations("in 1889 [2") == "in 1889"


@pytest.mark.parametrize(
    "text",
    [
        "I cannot find the answer in the passages.",
        "I can't find that.",
        "The answer is not in the passages.",
        "The passages do not mention it.",
        "There is no information about this.",
        "Unknown.",
        "",
    ],
)
def test_refusals_are_detected(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize("text", ["1889 [1]", "Gustave Eiffel's company", "It was finished in 1889."])
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_supporting_passages_prefers_the_verbatim_span() -> None:
    assert supporting_passages("completed in 1889", PASSAGES) == [1]
    assert supporting_passages("the moon landing", PASSAGES) == []


def test_valid_citation_maps_to_the_cited_passage() -> None:
    answer = ground_answer("Gustave Eiffel's company [3]", PASSAGES, "generative")
    assert answer.answer == "Gustave Eiffel's company"
    assert answer.grounded is True and not answer.no_answer
    (citation,) = answer.citations
    assert (citation.source, citation.page, citation.start, citation.end) == ("eiffel.txt", 4, 300, 354)
    assert citation.text == PASSAGES[2].text
    assert answer.score == 1.0


def test_wrong_citation_is_replaced_by_the_passage_that_holds_the_words() -> None:
    answer = ground_answer("in 1889 [2]", PASSAGES, "generative")
    assert [c.source for c in answer.citations] == ["eiffel.txt"]
    assert answer.citations[0].page == 3
    assert answer.grounded is True
    assert answer.alternatives[0]["cited_by_model"] is False


def test_unsupported_answer_is_flagged_not_passed_off_as_cited() -> None:
    answer = ground_answer("Neil Armstrong [1]", PASSAGES, "generative")
    assert answer.answer == "Neil Armstrong"
    assert answer.citations == [] and answer.grounded is False
    assert answer.to_dict()["grounded"] is False


def test_refusal_is_no_answer() -> None:
    answer = ground_answer("I cannot find the answer in the passages.", PASSAGES, "generative")
    assert answer.no_answer and answer.answer == "" and answer.citations == []


def test_only_the_first_line_is_the_answer() -> None:
    answer = ground_answer("1889 [1]\nQuestion: something else the model made up", PASSAGES, "g")
    assert answer.answer == "1889"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The passage 1: completed in 1889", "completed in 1889"),
        ("Answer: According to passage 2, in 1889", "in 1889"),
        ("passage 3 says Gustave Eiffel's company", "Gustave Eiffel's company"),
        ('<passage id="1" source="eiffel.txt"> 1889 </passage>', "1889"),
        ("Answer is: 1889", "1889"),
        ("Paris", "Paris"),
        ("Textiles are made in Passage 1", "Textiles are made in Passage 1"),  # not a lead-in
        ("Context: Gustave Eiffel", "Gustave Eiffel"),
        ("Passage 2 - in 1889", "in 1889"),
        ("From the text, in 1889", "in 1889"),
        # answers that start with the words, not lead-ins
        ("Context-free grammar", "Context-free grammar"),
        ("Texts, letters and diaries", "Texts, letters and diaries"),
        ("Passages of the Bible", "Passages of the Bible"),
        ("In the text messages", "In the text messages"),
        ("Text statesmen wrote", "Text statesmen wrote"),
    ],
)
def test_clean_reply_drops_echoed_tags_and_lead_ins(raw: str, expected: str) -> None:
    assert clean_reply(raw) == expected


def test_echoed_lead_in_does_not_reach_the_answer() -> None:
    answer = ground_answer("The passage 1: completed in 1889 [1]", PASSAGES, "generative")
    assert answer.answer == "completed in 1889"
    assert answer.grounded and [c.source for c in answer.citations] == ["eiffel.txt"]


def test_a_reply_that_only_echoes_a_tag_is_no_answer_not_a_tag() -> None:
    answer = ground_answer('<passage id="1" source="eiffel.txt">', PASSAGES, "generative")
    assert answer.no_answer and answer.answer == "" and not answer.grounded


class ScriptedModel:
    """A chat backend that replies with fixed pieces: the reader's own handling of the stream is under test."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces, self.sent = pieces, 0

    def load(self) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages, max_new_tokens: int, temperature: float):
        for piece in self.pieces:
            self.sent += 1
            yield piece

    def describe(self) -> dict:
        return {}


@pytest.mark.parametrize(
    ("pieces", "shown", "asked"),
    [
        (["\nEiffel", " Tower [1]", "\nQuestion: made up"], "Eiffel Tower [1]", 2),  # done at its citation
        (["\n\nParis\nQuestion: made up", " more"], "Paris", 1),  # the text after the line break is never shown
        (["1889", "\n", "Question: made up"], "1889", 2),
    ],
)
def test_streamed_text_is_the_answer_line_and_no_more(pieces: list[str], shown: str, asked: int) -> None:
    from rag_qa.readers.generative import GenerativeReader

    model = ScriptedModel(pieces)
    out = list(GenerativeReader(model).answer_stream("When was the tower completed?", PASSAGES))
    *streamed, answer = out
    assert "".join(streamed) == shown and all(streamed)
    assert model.sent == asked  # generation stopped there
    assert answer.answer == strip_citations(shown)


def test_llama_cpp_generations_take_turns_and_close_when_the_reader_stops() -> None:
    """A llama.cpp model holds one KV state (reused for a next prompt's matching start) and is not thread-safe:
    the UI's concurrent questions must generate one at a time.  ``llama_cpp`` is an optional extra, not
    installed for the tests; what stands in for it records overlapping generations and closed streams."""
    import threading
    import time

    from rag_qa.readers.llm_backends import LlamaCppChat

    seen = {"active": 0, "most": 0, "closed": 0}

    class OneContext:
        def create_chat_completion(self, **_: object):
            def chunks():
                seen["active"] += 1
                seen["most"] = max(seen["most"], seen["active"])
                try:
                    for word in ("Paul", " Baran", " [1]"):
                        time.sleep(0.02)
                        yield {"choices": [{"delta": {"content": word}}]}
                finally:
                    seen["active"] -= 1
                    seen["closed"] += 1
            return chunks()

    backend = LlamaCppChat("unused.gguf", 512)
    backend._llm = OneContext()
    replies: list[str] = []

    def ask() -> None:
        replies.append("".join(backend.stream([{"role": "user", "content": "q"}], 8, 0.0)))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    early = backend.stream([{"role": "user", "content": "q"}], 8, 0.0)
    assert next(early) == "Paul"
    early.close()  # the reader has its answer line: the generation ends, and the next one may start
    for t in threads:
        t.join(timeout=30)
    assert replies == ["Paul Baran [1]"] * 4
    assert seen == {"active": 0, "most": 1, "closed": 5}
