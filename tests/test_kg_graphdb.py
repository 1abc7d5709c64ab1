"""The kg output loaded into LadybugDB (``--graphdb``) and queried in Cypher: an entity's neighbours by weight,
typed paths of length 2, every alias of an entity, the mention links; and the error naming the extra."""

from __future__ import annotations

import sys

import pytest
from test_kg import IBM, MENTIONS, RELATION_ROWS, write_extraction_output

from gliner_ray.cli import main
from gliner_ray.kg.graphdb import import_ladybug


@pytest.fixture(scope="module")
def database(ray_cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("graphdb")
    write_extraction_output(root / "extracted", MENTIONS, relations=RELATION_ROWS)
    assert main(["kg", "--mentions", str(root / "extracted"), "--output", str(root / "graph"), "--min-score", "0.5",
                 "--graphdb", str(root / "db")]) == 0
    ladybug = import_ladybug()
    return ladybug.Connection(ladybug.Database(str(root / "db")))


def query(connection, cypher: str, **parameters) -> list[list]:
    return connection.execute(cypher, parameters).get_all()


def test_neighbours_by_weight(database):
    rows = query(database, "MATCH (e:Entity {entity_id: $id})-[r:CO_OCCURS_WITH]-(n:Entity) "
                           "RETURN n.name, n.label, r.weight ORDER BY r.weight DESC, n.label, n.name", id=IBM)
    assert rows == [["Apple", "organization", 2], ["Tim Cook", "person", 2], ["Apple", "product", 2]]


def test_typed_paths_of_length_two(database):
    rows = query(database, "MATCH (a:Entity)-[r:RELATED]->(b:Entity)-[s:RELATED]->(c:Entity) "
                           "RETURN a.name, a.label, r.relation, b.name, s.relation, c.name ORDER BY a.name")
    assert rows == [["Apple", "product", "made by", "IBM", "competes with", "Apple"]]


def test_every_alias_and_mention_of_an_entity(database):
    aliases = query(database, "MATCH (a:Alias)-[:ALIAS_OF]->(e:Entity {name: 'IBM'}) "
                              "RETURN a.surface, a.rule, a.evidence ORDER BY a.surface")
    assert aliases == [["IBM", "normalized", 2], ["ibm.", "normalized", 1], ["ＩＢＭ", "normalized", 1]]
    mentions = query(database, "MATCH (d:Document)-[m:MENTIONS]->(e:Entity {entity_id: $id}) "
                               "RETURN d.doc_id, m.start_char, m.span ORDER BY d.doc_id, m.start_char", id=IBM)
    assert mentions == [["d1", 0, "IBM"], ["d2", 0, "IBM "], ["d3", 0, "ＩＢＭ"], ["d3", 16, "ibm."]]


def test_missing_extra_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ladybug", None)
    assert main(["kg", "--mentions", str(tmp_path), "--output", str(tmp_path / "g"), "--graphdb",
                 str(tmp_path / "db")]) == 2
    error = capsys.readouterr().err.strip()
    assert "gliner-ray[graph]" in error and "\n" not in error and not (tmp_path / "g").exists()


def test_a_graph_without_resolution_loads_too(ray_cluster, tmp_path):
    from gliner_ray.kg import build_graph
    from gliner_ray.kg.graphdb import load_graph

    write_extraction_output(tmp_path / "extracted", MENTIONS)
    build_graph(str(tmp_path / "extracted"), str(tmp_path / "graph"), resolution="none")
    counts = load_graph(str(tmp_path / "graph"), str(tmp_path / "db"))
    assert counts["entities"] == 5 and counts["mentions"] == len(MENTIONS) and counts["aliases"] == 0
    with pytest.raises(FileExistsError, match="--overwrite"):
        load_graph(str(tmp_path / "graph"), str(tmp_path / "db"))
    assert load_graph(str(tmp_path / "graph"), str(tmp_path / "db"), overwrite=True) == counts
