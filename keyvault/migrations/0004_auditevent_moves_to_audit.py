# AuditEvent moved to the audit app (issue 14). Only Django's state changes: the table
# keyvault_auditevent, its rows, indexes and constraints stay as they are (audit 0001 takes it over).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
        ('keyvault', '0003_fewer_write_costs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='AuditEvent')],
            database_operations=[],
        ),
    ]
