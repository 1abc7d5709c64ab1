"""The one file layer every job uses: the same answers on a local disk and on a real S3 endpoint (moto)."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest

from gliner_ray import storage

LAYOUT = ["a.jsonl", "sub/b.jsonl", "sub/deep/c.txt", "_SUCCESS", "_tmp/x.jsonl", "sub/.hidden.jsonl"]


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    """A folder holding LAYOUT, given as an absolute local path or an s3:// URI."""
    if request.param == "local":
        base = str(tmp_path / "data")
    else:
        base = f"s3://{request.getfixturevalue('s3_bucket')}/data"
    fs, path = storage.resolve(base)
    for name in LAYOUT:
        storage.write_bytes(fs, f"{path}/{name}", name.encode())
    return base


def names(root: str, infos) -> list[str]:
    _, base = storage.resolve(root)
    return [info.path[len(base) + 1:] for info in infos]


def test_find_files_directory_file_and_glob_skip_hidden_names(root):
    fs, base, infos = storage.find_files(root)
    assert names(root, infos) == ["a.jsonl", "sub/b.jsonl", "sub/deep/c.txt"]
    assert [fs.open_input_stream(i.path).read() for i in infos] == [b"a.jsonl", b"sub/b.jsonl", b"sub/deep/c.txt"]

    _, _, infos = storage.find_files(storage.join(root, "sub", "b.jsonl"))  # one file, even a hidden-looking one
    assert names(root, infos) == ["sub/b.jsonl"]
    _, _, infos = storage.find_files(storage.join(root, "_SUCCESS"))
    assert names(root, infos) == ["_SUCCESS"]

    _, _, infos = storage.find_files(storage.join(root, "*.jsonl"))  # "*" crosses directories, as documented
    assert names(root, infos) == ["a.jsonl", "sub/b.jsonl"]
    _, _, infos = storage.find_files(storage.join(root, "sub", "*", "*.txt"))
    assert names(root, infos) == ["sub/deep/c.txt"]

    fs, _, infos = storage.find_files(storage.join(root, "missing"))
    assert infos == []


def test_write_bytes_replaces_whole_files_and_leaves_no_temporaries(root):
    fs, path = storage.resolve(root)
    storage.write_bytes(fs, f"{path}/new/report.json", b"first")
    storage.write_bytes(fs, f"{path}/new/report.json", b"second")
    with fs.open_input_stream(f"{path}/new/report.json") as f:
        assert f.read() == b"second"
    listing = fs.get_file_info(pafs.FileSelector(f"{path}/new"))
    assert [info.base_name for info in listing] == ["report.json"]

    storage.delete(fs, f"{path}/new")
    storage.delete(fs, f"{path}/new")  # missing: fine
    assert fs.get_file_info(f"{path}/new/report.json").type == pafs.FileType.NotFound


def test_resolve_local_paths_relative_and_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert storage.resolve("out/x")[1] == str(tmp_path / "out" / "x")
    assert storage.resolve("~/x")[1] == str(tmp_path / "home" / "x")
    fs, path = storage.resolve(str(tmp_path))
    assert storage.display(fs, path) == str(tmp_path)
    assert storage.join("s3://b/p/", "run", "x") == "s3://b/p/run/x"
