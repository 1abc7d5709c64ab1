"""Word splitters chosen by a checkpoint's ``words_splitter_type``: offsets that slice the text exactly, unspaced
scripts split into words, a missing splitter package named with its extra, and a Chinese document end to end."""

import json
import shutil
import sys

import pytest

from gliner_ray import GLiNER
from gliner_ray.checkpoint import CONFIG_FILE
from gliner_ray.text import WORD_SPLITTERS, split_universal, split_words, word_splitter

MIXED = "北京大学的张伟在2024年访问了東京タワー。 Hello world-wide,  한국어 문장\tok ภาษาไทย 🙂 e-mail!"
CHINESE = (
    "北京大学的张伟教授昨天在上海会见了阿里巴巴集团的代表。双方讨论了人工智能在医疗领域的应用，"
    "并计划明年在深圳建立联合实验室。会后，张伟乘坐高铁返回北京。"
)


@pytest.mark.parametrize("name", sorted(WORD_SPLITTERS))
def test_offsets_slice_the_text_exactly(name):
    split = word_splitter(name)
    for text in [MIXED, CHINESE, "", "   ", "plain English, with (punctuation)."]:
        words = split(text)
        assert all(text[start:end] == word for word, start, end in zip(*words))
        assert words.starts == sorted(words.starts) and all(not w.isspace() for w in words.words)
        assert "".join(words.words) == "".join(text.split())  # nothing but whitespace is left out


def test_universal_splits_unspaced_scripts_and_keeps_spaced_words():
    words = split_universal(MIXED).words
    assert words[:5] == ["北", "京", "大", "学", "的"] and "2024" in words
    assert {"タ", "ワ", "ー", "Hello", "world-wide", "한국어", "문장", "ok", "ภ"} <= set(words)
    assert split_words(MIXED).words[0] == "北京大学的张伟在2024年访问了東京タワー"  # the whitespace splitter's one "word"
    assert split_universal("plain English, e-mail.") == split_words("plain English, e-mail.")


def test_jieba_gives_chinese_words():
    words = word_splitter("jieba")(CHINESE).words
    assert len(words) < len(split_universal(CHINESE).words) / 1.4
    assert {"北京大学", "上海", "人工智能"} <= set(words)


def test_a_missing_splitter_package_names_the_extra(monkeypatch, tiny_gliner_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "jieba", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "gliner-ray\[chinese\]"'):
        word_splitter("jieba")
    path = with_splitter(tiny_gliner_dir, tmp_path, "jieba")
    with pytest.raises(ImportError, match=r"jieba.*gliner-ray\[chinese\]"):
        GLiNER.from_pretrained(path)


def with_splitter(checkpoint_dir, tmp_path, splitter_type):
    path = tmp_path / splitter_type
    shutil.copytree(checkpoint_dir, path)
    config = json.loads((path / CONFIG_FILE).read_text())
    config["words_splitter_type"] = splitter_type
    (path / CONFIG_FILE).write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("splitter_type", ["jieba", "universal"])
def test_a_chinese_document_through_the_checkpoints_splitter(tiny_gliner_dir, tmp_path, splitter_type):
    model = GLiNER.from_pretrained(with_splitter(tiny_gliner_dir, tmp_path, splitter_type), device="cpu")
    labels = ["人物", "地点", "组织"]
    entities = model.predict([CHINESE], labels, threshold=0.3, flat_ner=False)[0]
    words = word_splitter(splitter_type)(CHINESE)
    assert len(entities) > 5
    for e in entities:
        assert CHINESE[e["start"] : e["end"]] == e["text"]
        assert e["start"] in words.starts and e["end"] in words.ends  # entities are runs of the splitter's words
    spans = model.predict_words([words.words], labels, threshold=0.3, flat_ner=False)[0]
    assert [(words.starts[s.start], words.ends[s.end], s.label) for s in spans] == [
        (e["start"], e["end"], e["label"]) for e in entities
    ]
    whitespace = GLiNER.from_pretrained(tiny_gliner_dir, device="cpu")
    assert len(whitespace.split_words(CHINESE).words) == 10  # what it was before: clauses and their punctuation
