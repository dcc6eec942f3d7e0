"""The plugin's GraphQL documents and our fake Stash schema must agree with real Stash.

Stash rejects a whole request over one unknown field, and a fake server that accepts what
the real one rejects would hide such bugs. So: every document the plugin sends validates
against Stash's real schema (read from ../shared/stash-schema, never copied here) and
against our test schema, and everything our test schema declares exists in the real one
with the same types.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    parse,
    validate,
)

from ai_tagger.stash.queries import ALL

REAL_SCHEMA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "stash-schema"
TEST_SCHEMA_FILE = Path(__file__).resolve().parent / "servers" / "stash_schema.graphql"


@lru_cache(maxsize=1)
def real_schema() -> GraphQLSchema:
    """Stash's own schema: schema.graphql plus types/*.graphql, concatenated."""
    if not (REAL_SCHEMA_DIR / "schema.graphql").is_file():
        pytest.skip(f"Stash's real schema is not available at {REAL_SCHEMA_DIR}")
    parts = [REAL_SCHEMA_DIR / "schema.graphql", *sorted((REAL_SCHEMA_DIR / "types").glob("*.graphql"))]
    return build_schema("\n".join(p.read_text(encoding="utf-8") for p in parts))


@lru_cache(maxsize=1)
def fake_schema() -> GraphQLSchema:
    """The subset our fake server executes (tests/servers/stash_schema.graphql)."""
    return build_schema(TEST_SCHEMA_FILE.read_text(encoding="utf-8"))


def validation_errors(schema: GraphQLSchema, document: str) -> list[str]:
    return [e.message for e in validate(schema, parse(document))]


def declared_types(schema: GraphQLSchema) -> list[GraphQLNamedType]:
    return [t for name, t in sorted(schema.type_map.items()) if not name.startswith("__")]


def kind_of(named: GraphQLNamedType) -> str:
    return type(named).__name__


def type_mismatches(ours: GraphQLNamedType, real: GraphQLNamedType) -> list[str]:
    """Differences that would let the fake accept something real Stash rejects (or vice versa)."""
    name = ours.name
    if kind_of(ours) != kind_of(real):
        return [f"{name}: ours is {kind_of(ours)}, Stash's is {kind_of(real)}"]
    problems: list[str] = []
    if isinstance(ours, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
        for field_name, field in ours.fields.items():
            real_field = real.fields.get(field_name)
            if real_field is None:
                problems.append(f"{name}.{field_name}: not in Stash's schema")
                continue
            if str(field.type) != str(real_field.type):
                problems.append(f"{name}.{field_name}: ours {field.type}, Stash's {real_field.type}")
            for arg_name, arg in getattr(field, "args", {}).items():
                real_arg = real_field.args.get(arg_name)
                if real_arg is None:
                    problems.append(f"{name}.{field_name}({arg_name}): not in Stash's schema")
                elif str(arg.type) != str(real_arg.type):
                    problems.append(f"{name}.{field_name}({arg_name}): ours {arg.type}, Stash's {real_arg.type}")
        if isinstance(ours, (GraphQLObjectType, GraphQLInterfaceType)):
            real_ifaces = {i.name for i in real.interfaces}
            for iface in ours.interfaces:
                if iface.name not in real_ifaces:
                    problems.append(f"{name}: Stash's type does not implement {iface.name}")
    elif isinstance(ours, GraphQLEnumType):
        extra = set(ours.values) - set(real.values)
        if extra:
            problems.append(f"{name}: values not in Stash's enum: {sorted(extra)}")
    elif isinstance(ours, GraphQLUnionType):
        extra = {t.name for t in ours.types} - {t.name for t in real.types}
        if extra:
            problems.append(f"{name}: members not in Stash's union: {sorted(extra)}")
    return problems


@pytest.mark.parametrize("name", sorted(ALL))
def test_plugin_document_is_valid_against_real_stash_schema(name: str) -> None:
    assert validation_errors(real_schema(), ALL[name]) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_plugin_document_is_executable_by_fake_stash_schema(name: str) -> None:
    assert validation_errors(fake_schema(), ALL[name]) == []


def test_plugin_sends_some_documents() -> None:
    assert len(ALL) >= 5, "ai_tagger.stash.queries.ALL lost its documents"


def test_fake_schema_declares_only_what_real_stash_has() -> None:
    real = real_schema()
    problems: list[str] = []
    for ours in declared_types(fake_schema()):
        real_type = real.type_map.get(ours.name)
        if real_type is None:
            problems.append(f"{ours.name}: not in Stash's schema")
        else:
            problems.extend(type_mismatches(ours, real_type))
    assert problems == []


def test_fake_schema_root_types_match_real_stash() -> None:
    ours, real = fake_schema(), real_schema()
    assert ours.query_type.name == real.query_type.name
    assert ours.mutation_type.name == real.mutation_type.name


def test_conformance_check_catches_a_wrong_field_type() -> None:
    """Guards the guard: a made-up mismatch must be reported."""
    wrong = build_schema("type Tag { id: ID! name: String scene_count(depth: String): Int! } type Query { t: Tag }")
    problems = type_mismatches(wrong.type_map["Tag"], real_schema().type_map["Tag"])
    assert any("Tag.name" in p for p in problems)
    assert any("scene_count(depth)" in p for p in problems)


def review_page_document() -> str:
    """The one document the review page (ai_tagger/ui/review.js) sends: its string pieces joined."""
    source = (Path(__file__).resolve().parents[1] / "ai_tagger" / "ui" / "review.js").read_text(encoding="utf-8")
    declared = re.search(r"const OPERATION =((?:\s*\"[^\"]*\"\s*\+?)+);", source)
    assert declared, "review.js declares its GraphQL document as const OPERATION"
    return "".join(re.findall(r"\"([^\"]*)\"", declared[1]))


def test_the_review_page_document_is_valid_for_real_stash_and_the_fake():
    document = review_page_document()
    assert "runPluginOperation" in document
    assert validation_errors(real_schema(), document) == []
    assert validation_errors(fake_schema(), document) == []
