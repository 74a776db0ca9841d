"""Every trigger function names its tables without a schema. ``pg_restore`` (and any session
that empties ``search_path``) would make such a trigger fail with "relation … does not exist";
pin each function's ``search_path`` to the schema it was created in, so the checks keep working
whatever path the writing session has.

Done here, after the last migration that (re)creates a trigger function in devices, keyvault and
readrights; ``tests/test_database_objects.py`` fails if a later ``CREATE OR REPLACE FUNCTION``
drops the setting again."""

from django.db import migrations

PIN_SEARCH_PATH = """
DO $$
DECLARE fn regprocedure;
BEGIN
  FOR fn IN
    SELECT DISTINCT p.oid::regprocedure FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE NOT t.tgisinternal AND p.pronamespace = current_schema()::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I', fn, current_schema());
  END LOOP;
END $$;
"""

UNPIN_SEARCH_PATH = """
DO $$
DECLARE fn regprocedure;
BEGIN
  FOR fn IN
    SELECT DISTINCT p.oid::regprocedure FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
    WHERE NOT t.tgisinternal AND p.pronamespace = current_schema()::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s RESET search_path', fn);
  END LOOP;
END $$;
"""


def pin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PIN_SEARCH_PATH, None)  # no parameters: % is SQL


def unpin(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNPIN_SEARCH_PATH, None)


class Migration(migrations.Migration):
    dependencies = [
        ("readrights", "0004_cheaper_update_checks"),
        ("devices", "0010_device_selection"),
        ("keyvault", "0004_auditevent_moves_to_audit"),
    ]

    operations = [migrations.RunPython(pin, unpin)]
