import pytest

from gliner_ray.text import Window, build_prompt, clean_labels, plan_windows, sentence_ends, split_words


def test_split_words_offsets_point_into_the_text():
    text = "Dr. Jean-Luc Picard (USS_Enterprise) met  Ünal at 9:30 — co-operation!"
    words = split_words(text)
    assert words.words == [
        "Dr", ".", "Jean-Luc", "Picard", "(", "USS_Enterprise", ")", "met", "Ünal", "at", "9", ":", "30", "—",
        "co-operation", "!",
    ]
    for word, start, end in zip(*words):
        assert text[start:end] == word


def test_split_words_empty_and_blank():
    assert split_words("") == ([], [], [])
    assert split_words(" \n\t ") == ([], [], [])


def test_clean_labels_dedupes_and_refuses_bad_lists():
    assert clean_labels(["person", "city", "person"]) == ["person", "city"]
    with pytest.raises(ValueError, match="empty"):
        clean_labels([])
    with pytest.raises(ValueError, match="not a non-empty string"):
        clean_labels(["person", ""])
    with pytest.raises(ValueError, match="list of strings"):
        clean_labels("person")


def test_build_prompt():
    assert build_prompt(["a", "b c"], "<<ENT>>", "<<SEP>>") == ["<<ENT>>", "a", "<<ENT>>", "b c", "<<SEP>>"]


def check_cover(windows: list[Window], n: int, max_words: int, max_span: int) -> None:
    """Own regions partition [0, n); every span of up to max_span words starting in a window's own region lies
    inside that window."""
    assert windows[0].own_start == 0 and windows[-1].own_end == n
    for a, b in zip(windows, windows[1:]):
        assert a.own_end == b.own_start
    for w in windows:
        assert w.end - w.start <= max_words
        assert w.start <= w.own_start <= w.own_end <= w.end
        for start in range(w.own_start, w.own_end):
            assert min(start + max_span, n) <= w.end


def test_short_text_is_one_window():
    assert plan_windows([1] * 10, max_words=384, max_tokens=500, overlap=24) == [Window(0, 10, 0, 10)]
    assert plan_windows([], max_words=384, max_tokens=500, overlap=24) == []


@pytest.mark.parametrize("n", [385, 1000, 5003])
def test_long_text_windows_cover_everything(n):
    windows = plan_windows([1] * n, max_words=384, max_tokens=10_000, overlap=24)
    assert len(windows) > 1
    check_cover(windows, n, 384, 12)


def test_token_budget_limits_windows():
    counts = [3] * 1000  # every word is three sub-tokens
    windows = plan_windows(counts, max_words=384, max_tokens=300, overlap=24)
    assert all(sum(counts[w.start : w.end]) <= 300 for w in windows)
    check_cover(windows, 1000, 100, 12)


def test_a_huge_word_still_gets_a_window():
    counts = [1] * 50 + [10_000] + [1] * 50
    windows = plan_windows(counts, max_words=384, max_tokens=100, overlap=24)
    assert any(w.start <= 50 < w.end for w in windows)
    assert windows[0].own_start == 0 and windows[-1].own_end == len(counts)


def test_windows_prefer_sentence_ends():
    words = (["w"] * 9 + ["."]) * 100  # a sentence ends every 10 words
    windows = plan_windows([1] * len(words), max_words=384, max_tokens=10_000, overlap=24,
                           sentence_end=sentence_ends(words))
    assert all(words[w.end - 1] == "." for w in windows)
    check_cover(windows, len(words), 384, 12)
