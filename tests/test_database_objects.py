"""The PostgreSQL-only triggers and indexes after migrating are exactly those docs/database.md
lists, with the same definitions, so the document cannot drift from the migrations.

"PostgreSQL-only" means made by a migration's own SQL, not by Django from the models: an index
on a project table whose name Django would not create for the current models must be in the
document, and every documented one must exist as documented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection

DOC = Path(__file__).resolve().parent.parent / "docs" / "database.md"
PROJECT_APPS = ("accounts", "devices", "keyvault", "readrights", "kamkeys")
TRIGGER_DEF = re.compile(
    r"CREATE (?:CONSTRAINT )?TRIGGER \S+ (BEFORE|AFTER|INSTEAD OF) (.+?) ON \S+ .*?"
    r"FOR EACH (ROW|STATEMENT)"
)


def _doc_rows(name: str, width: int) -> set[tuple[str, ...]]:
    """The first ``width`` cells of each row of the Markdown table between <!-- name --> and
    <!-- /name -->, without backticks; header and separator rows left out."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name} -->(.*?)<!-- /{name} -->", text, re.S)
    assert match, f"docs/database.md has no <!-- {name} --> block"
    rows = [line.strip() for line in match.group(1).splitlines() if line.strip().startswith("|")]
    cells = [[cell.strip().replace("`", "") for cell in row.strip("|").split("|")] for row in rows]
    return {tuple(row[:width]) for row in cells[2:]}


def _project_tables() -> set[str]:
    return {
        model._meta.db_table
        for app in PROJECT_APPS
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
    }


def _query(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _django_index_names() -> set[str]:
    """Every index Django itself would create for the project's models on PostgreSQL: those
    in its CREATE TABLE / CREATE INDEX SQL, the primary keys and the unique columns."""
    models = [
        model
        for app in PROJECT_APPS
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
    ]
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for model in models:
            if not model._meta.auto_created:  # create_model makes the M2M tables itself
                editor.create_model(model)
    sql = "\n".join(editor.collected_sql)
    names = set(re.findall(r'CREATE (?:UNIQUE )?INDEX "([^"]+)"', sql))
    names |= set(re.findall(r'CONSTRAINT "([^"]+)" (?:UNIQUE|PRIMARY KEY)', sql))
    for model in models:
        table = model._meta.db_table
        names.add(f"{table}_pkey")
        names |= {
            f"{table}_{field.column}_key"
            for field in model._meta.local_fields
            if field.unique and not field.primary_key
        }
    return names


def present_triggers() -> set[tuple[str, str, str, str, str]]:
    """(table, trigger, timing and events, level, function) of the user-defined triggers."""
    rows = _query(
        "SELECT c.relname, t.tgname, p.proname, pg_get_triggerdef(t.oid) "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
    )
    found = set()
    for table, name, function, definition in rows:
        match = TRIGGER_DEF.match(definition)
        assert match, definition
        timing, events, level = match.groups()
        found.add((table, name, f"{timing} {events}", level.lower(), function))
    return found


def present_postgresql_only_indexes() -> set[tuple[str, str, str]]:
    """(table, index, definition after the table name) of the project's indexes that Django
    would not create from the models."""
    django_made = _django_index_names()
    rows = _query(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename = ANY(%s)",
        [sorted(_project_tables())],
    )
    return {
        (table, name, re.sub(r"^.*? ON \S+ ", "", definition))
        for table, name, definition in rows
        if name not in django_made
    }


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_triggers_after_migrating_are_the_documented_ones(postgres):
    documented = _doc_rows("postgresql-triggers", 5)
    present = present_triggers()
    assert present - documented == set(), "in the database but not in docs/database.md"
    assert documented - present == set(), "in docs/database.md but not in the database"


@pytest.mark.django_db
def test_the_postgresql_only_indexes_after_migrating_are_the_documented_ones(postgres):
    documented = _doc_rows("postgresql-indexes", 3)
    present = present_postgresql_only_indexes()
    assert present - documented == set(), "in the database but not in docs/database.md"
    assert documented - present == set(), "in docs/database.md but not in the database"


@pytest.mark.django_db
def test_every_trigger_function_in_the_database_is_used_by_a_trigger(postgres):
    """A migration that replaces a trigger also drops the function it no longer uses."""
    functions = {
        name
        for (name,) in _query(
            "SELECT p.proname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
            "WHERE l.lanname = 'plpgsql' AND p.pronamespace = current_schema()::regnamespace"
        )
    }
    used = {function for *_rest, function in present_triggers()}
    assert functions - used == set()


@pytest.mark.django_db
def test_the_index_check_tells_django_indexes_from_migration_sql(postgres):
    """The check itself: Django's own indexes are recognised, the migrations' are not."""
    django_made = _django_index_names()
    assert {
        "devices_device_serial_unique",
        "devices_device_pkey",
        "accounts_user_email_key",
        "readrights_live_by_grantee",
        "accounts_user_email_ci_unique",
    } <= django_made
    assert not {"devices_type", "devices_serial_lc_trgm", "devices_owner_serial_cov"} & django_made


@pytest.mark.django_db
def test_every_trigger_function_pins_its_search_path(postgres):
    """pg_restore empties search_path; a function that names tables without a schema works only
    with its own. A later CREATE OR REPLACE FUNCTION without SET search_path drops it again."""
    unpinned = {
        name
        for name, config in _query(
            "SELECT DISTINCT p.proname, p.proconfig FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND p.pronamespace = current_schema()::regnamespace"
        )
        if not any(setting.startswith("search_path=") for setting in config or [])
    }
    assert unpinned == set()


@pytest.mark.django_db
def test_triggers_check_references_in_a_session_with_an_empty_search_path(postgres):
    """As during a data-only pg_restore: a write with schema-qualified names still passes the
    owner check (and keeps the counts) when the owner exists, and is refused for the right
    reason when it does not."""
    from django.db import DatabaseError, transaction

    from devices.models import Device
    from tests.factories import DeviceFactory, OrganizationFactory

    owner = OrganizationFactory()
    device = DeviceFactory(owner=None)
    schema = _query("SELECT current_schema()")[0][0]
    move = f'UPDATE "{schema}".devices_device SET owner_id = %s WHERE id = %s'  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL search_path = ''")
        cursor.execute(move, [owner.pk, device.pk])
        cursor.execute("SET LOCAL search_path TO DEFAULT")
    assert Device.objects.get(pk=device.pk).owner_id == owner.pk
    with pytest.raises(DatabaseError) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL search_path = ''")
            cursor.execute(move, [owner.pk + 1000, device.pk])
    assert "relation" not in str(refused.value)
    assert Device.objects.get(pk=device.pk).owner_id == owner.pk


@pytest.mark.django_db
def test_the_audit_events_device_ids_are_compressed_with_lz4(postgres):
    """docs/database.md, Column compression: a large download's audit event is written faster."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'keyvault_auditevent'::regclass AND attname = 'object_ids'"
        )
        (method,) = cursor.fetchone()
    assert method == "l"
