"""Loading feature-table definitions: what a definitions file may not declare."""

import pytest

from featurestore.definitions import load_definitions
from featurestore.core.errors import BadInputError

TWO_TABLES = """
from featurestore.definitions import Field
from tests.featurestore.sample_tables import user_table

FEATURE_TABLES = [
    user_table("activity_a"),
    user_table("activity_b", primary_keys=[Field("user_id", "{key_type}", "User name")]),
]
"""


def test_tables_sharing_a_key_name_share_its_type(tmp_path):
    definitions = tmp_path / "defs.py"
    definitions.write_text(TWO_TABLES.format(key_type="bigint"))
    assert sorted(load_definitions(str(definitions))) == ["activity_a", "activity_b"]

    definitions.write_text(TWO_TABLES.format(key_type="string"))
    with pytest.raises(BadInputError, match="key 'user_id' is bigint in table 'activity_a' but string in table "
                                            "'activity_b'"):
        load_definitions(str(definitions))


def test_a_table_declared_twice_is_refused(tmp_path):
    definitions = tmp_path / "defs.py"
    definitions.write_text(TWO_TABLES.format(key_type="bigint").replace('"activity_b"', '"activity_a"'))
    with pytest.raises(BadInputError, match="table 'activity_a' is declared twice"):
        load_definitions(str(definitions))


def test_a_refused_column_names_the_definitions_file(tmp_path):
    definitions = tmp_path / "defs.py"
    definitions.write_text(TWO_TABLES.format(key_type="long"))
    with pytest.raises(BadInputError, match=f"definitions '{definitions}': column 'user_id': unsupported type 'long'"):
        load_definitions(str(definitions))


def test_a_ttl_under_one_second_is_refused():
    from datetime import timedelta

    from tests.featurestore.sample_tables import user_table

    assert user_table(ttl=timedelta(seconds=1)).ttl == timedelta(seconds=1)
    for ttl in (timedelta(milliseconds=500), timedelta(0), timedelta(seconds=-5)):
        with pytest.raises(BadInputError, match="'user_activity': ttl must be at least one second"):
            user_table(ttl=ttl)


def test_a_configuration_written_before_the_move_still_loads_the_demo_tables(caplog):
    """Before the three-package layout the demo's configuration said ``definitions: demo.tables``."""
    from jobs.demo.feature_tables import FEATURE_TABLES

    with caplog.at_level("WARNING", logger="featurestore.definitions"):
        tables = load_definitions("demo.tables")
    assert sorted(tables) == sorted(t.name for t in FEATURE_TABLES)
    assert "'demo.tables' is now 'jobs.demo.feature_tables'" in caplog.text


def test_an_unknown_definitions_module_is_not_found():
    from featurestore.core.errors import NotFoundError

    with pytest.raises(NotFoundError, match="definitions module 'no_such_pkg.tables' cannot be imported"):
        load_definitions("no_such_pkg.tables")
