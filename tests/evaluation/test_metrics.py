"""Metric functions against hand-computed values."""

from __future__ import annotations

import math

import pytest

from chatbot.evaluation import metrics as m
from chatbot.evaluation.metrics import Passage, Span


def test_english_normalisation_is_squad_style() -> None:
    assert m.normalize_tokens("The Cat, a hat & AN apple!", "en") == ["cat", "hat", "apple"]


def test_chinese_normalisation_is_character_level_without_punctuation() -> None:
    assert m.normalize_tokens("“黑金”，北京。", "zh") == ["黑", "金", "北", "京"]
    # runs of latin letters and digits stay whole tokens (CMRC's mixed segmentation)
    assert m.normalize_tokens("iPhone 15发布于2023年", "zh") == [
        "iphone", "15", "发", "布", "于", "2023", "年",
    ]  # fmt: skip


def test_token_f1_english() -> None:
    # [cat sat on mat] vs [cat sat on hat]: 3 common, P = R = 3/4
    assert m.token_f1("The cat sat on the mat", ["a cat sat on a hat"], "en") == pytest.approx(0.75)
    assert m.token_f1("nothing", ["cat"], "en") == 0.0
    # best over the references
    assert m.token_f1("cat", ["dog", "the cat"], "en") == 1.0


def test_token_f1_chinese() -> None:
    # 8 characters vs 4, all 4 shared: P = 1/2, R = 1 -> 2/3
    assert m.token_f1("北京是中国的首都。", ["首都北京"], "zh") == pytest.approx(2 / 3)


def test_rouge_l_english() -> None:
    # [quick brown fox jumps] vs [brown quick fox jumps high]: LCS 3, P = 3/4, R = 3/5
    value = m.rouge_l("the quick brown fox jumps", ["a brown quick fox jumps high"], "en")
    assert value == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_rouge_l_chinese() -> None:
    # LCS of 北京是中国的首都 and 首都北京 is 2: P = 2/8, R = 2/4 -> 1/3
    assert m.rouge_l("北京是中国的首都", ["首都北京"], "zh") == pytest.approx(1 / 3)


def test_lcs_length() -> None:
    assert m.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert m.lcs_length([], ["a"]) == 0


def test_exact_match_and_containment() -> None:
    assert m.exact_match("The 50/30/20 rule.", ["503020 rule"], "en") == 1.0  # '/' is removed
    assert m.exact_match("the 50/30/20 rule applies", ["50/30/20 rule"], "en") == 0.0
    assert m.exact_match("the Rule!", ["rule"], "en") == 1.0
    answer = "Seedlings are moved when 15–20 cm tall [1]."
    assert m.contains_answer(m.strip_citations(answer), ["15–20 cm tall"], "en") == 1.0
    assert m.contains_answer("cm 15–20 tall", ["15–20 cm tall"], "en") == 0.0
    assert m.contains_answer("答案是六个月。", ["六个月"], "zh") == 1.0


def test_token_recall_does_not_penalise_a_whole_sentence() -> None:
    answer = "Gamma- and delta-CoVs mainly infect birds."
    assert m.token_recall(answer, ["birds"], "en") == 1.0
    assert m.token_f1(answer, ["birds"], "en") < 0.4
    # best reference; repeated reference tokens count only as often as the answer has them
    assert m.token_recall("it was 50 50", ["fifty", "50 50 50 percent"], "en") == 0.5
    assert m.token_recall("60.8%", ["50.4%"], "en") == 0.0
    assert m.token_recall("anything", [""], "en") == 0.0
    # Chinese: characters, as for F1 (首都 = 2 of the 4 characters of 中国首都)
    assert m.token_recall("首都是北京", ["中国首都"], "zh") == pytest.approx(0.5)
    assert m.token_recall("中国的首都", ["中国首都"], "zh") == 1.0


def test_strip_citations() -> None:
    assert m.strip_citations("Yes [1], and no [2, 3].") == "Yes , and no ."


def test_hit_and_mrr() -> None:
    files = ["x", "y", "g", "g"]
    assert m.hit_at_k(files, ["g"], 1) == 0.0
    assert m.hit_at_k(files, ["g"], 5) == 1.0
    assert m.mrr_at_k(files, ["g"], 10) == pytest.approx(1 / 3)
    assert m.mrr_at_k(files, ["g"], 2) == 0.0
    assert m.all_gold_at_k(["a", "b", "c"], ["a", "c"], 3) == 1.0
    assert m.all_gold_at_k(["a", "b", "c"], ["a", "c"], 2) == 0.0


def test_ndcg_over_distinct_documents() -> None:
    # documents in order a, b, c; relevant b (rank 2) and c (rank 3); ideal ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3)
    assert m.ndcg_at_k(["a", "b", "a", "c"], ["c", "b"], 10) == pytest.approx(dcg / ideal)
    assert m.ndcg_at_k(["g"], ["g"], 10) == 1.0
    assert m.ndcg_at_k(["a"], ["g"], 10) == 0.0


def test_span_hit_by_text_and_by_offsets() -> None:
    span = Span(file="f.txt", start=100, end=120, text="twenty characters!!")
    inside = Passage("f.txt", "... Twenty  characters!! ...", 90, 130)
    assert m.passage_supports(inside, [span])  # white space and case do not matter
    half = Passage("f.txt", "cut text", 110, 200)  # covers 10 of the 20 characters
    assert m.passage_supports(half, [span])
    little = Passage("f.txt", "cut text", 115, 200)  # covers 5 of 20
    assert not m.passage_supports(little, [span])
    other_file = Passage("g.txt", "twenty characters!!", 100, 120)
    assert not m.passage_supports(other_file, [span])
    no_offsets = Passage("f.txt", "unrelated", None, None)
    assert m.span_hit_at_k([no_offsets, inside], [span], [], None, 1) == 0.0
    assert m.span_hit_at_k([no_offsets, inside], [span], [], None, 2) == 1.0


def test_span_hit_without_spans_uses_contexts_or_answer() -> None:
    p = Passage("f.txt", "The answer is forty-two, said the computer.")
    assert m.span_hit_at_k([p], [], ["the answer is forty-two"], None, 5) == 1.0
    assert m.span_hit_at_k([p], [], ["something else"], "forty-two", 5) == 1.0
    assert m.span_hit_at_k([p], [], [], "forty-two", 5) is None  # no evidence label at all


def test_grounding_counts_answer_words_missing_from_question_and_passages() -> None:
    shown = [Passage("a.txt", "The Bullet Kin carries a magnum and has 15 health.")]
    question = "What does the Bullet Kin carry?"
    assert m.grounding("The Bullet Kin carries a magnum [1].", question, shown, "en") == 1.0
    # tokens shotgun, and, rifle, magnum: "and" and "magnum" were shown, the others not
    made_up = m.grounding("A shotgun and rifle magnum", question, shown, "en")
    assert made_up == pytest.approx(2 / 4)
    assert m.grounding("What does the Bullet Kin carry? [1]", question, shown, "en") is None
    zh = [Passage("b.txt", "昌昌是奇穆王国的首都。")]
    assert m.grounding("奇穆王国", "昌昌是什么王国的首都？", zh, "zh") == 1.0
    assert m.grounding("印加", "昌昌是什么王国的首都？", zh, "zh") == 0.0


def test_mean_and_percentile() -> None:
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None
    assert m.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert m.percentile([10.0] * 3 + [100.0], 95) == pytest.approx(86.5)
    assert m.percentile([], 50) is None
