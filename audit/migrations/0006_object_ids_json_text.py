"""The audit event's object_ids in PostgreSQL's ``json`` type instead of ``jsonb``.

A download's event holds up to 100,000 device ids and is written before the file's first byte:
building ``jsonb`` from them took ~45 ms of that wait, checking ``json`` text ~5 ms
(audit.fields.WrittenJSONField). Changing the type rewrites the table, and the rewritten column
forgets its compression: lz4 (0004) is set again. On SQLite both are text: nothing changes.
"""

import audit.fields
from django.db import migrations

SET_LZ4 = """
DO $$
BEGIN
    ALTER TABLE keyvault_auditevent ALTER COLUMN object_ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END $$;
"""


def keep_lz4(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SET_LZ4)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_staff_change_action")]

    operations = [
        # Each way, the column is rewritten by the type change, then given lz4 again.
        migrations.RunPython(migrations.RunPython.noop, keep_lz4),
        migrations.AlterField(
            model_name="auditevent",
            name="object_ids",
            field=audit.fields.WrittenJSONField(blank=True, default=list),
        ),
        migrations.RunPython(keep_lz4, migrations.RunPython.noop),
    ]
