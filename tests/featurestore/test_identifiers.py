"""Names that reach SQL or paths must be plain identifiers."""

import pytest

from featurestore.definitions import FeatureTable, Field
from featurestore.core.errors import BadInputError
from featurestore.core.identifiers import quote_identifier, quote_path, validate_identifier

HOSTILE = [
    "a'b", 'a"b', "a`b", "t; DROP TABLE x", "a b", "../etc", "a/b", "a\\b", "café", "", "1abc",
    "x" * 200, None, 42,
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name):
    with pytest.raises(BadInputError, match="invalid table"):
        validate_identifier(name, "table name")


@pytest.mark.parametrize("name", ["customer_features", "_x", "T2"])
def test_plain_names_pass_and_quote(name):
    assert quote_identifier(name) == f"`{name}`"


def test_path_with_backtick_is_refused():
    with pytest.raises(BadInputError):
        quote_path("/tmp/a`; DROP")


@pytest.mark.parametrize("name", ["bad name", "x`y", "a;b"])
def test_definitions_refuse_hostile_table_and_column_names(name):
    with pytest.raises(BadInputError):
        FeatureTable(name=name, primary_keys=[Field("id", "bigint")], timestamp_key="ts", features=[])
    with pytest.raises(BadInputError):
        Field(name, "double")


def test_unsupported_type_is_named():
    with pytest.raises(BadInputError, match="'f'.*'decimal"):
        Field("f", "decimal(10,2)")
