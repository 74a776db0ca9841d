# AuditEvent moved here from keyvault (issue 14) without moving data: the model takes over the
# table keyvault_auditevent as it is (keyvault 0001 created it; keyvault 0004 drops it from
# keyvault's state). No SQL runs. The content type is renamed, so the permissions granted on
# the audit log and the admin history keep pointing at it.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def rename_content_type(apps, schema_editor, old='keyvault', new='audit'):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=new, model='auditevent').exists():
        ContentType.objects.using(db).filter(app_label=old, model='auditevent').update(
            app_label=new
        )


def restore_content_type(apps, schema_editor):
    rename_content_type(apps, schema_editor, old='audit', new='keyvault')


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('keyvault', '0003_fewer_write_costs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('actor_label', models.CharField(help_text="The actor's email at the time, or 'cli' / 'system'.", max_length=254)),
                        ('action', models.CharField(choices=[('download', 'download'), ('export', 'export'), ('import', 'import'), ('rotate', 'rotate'), ('unwrap_failed', 'unwrap_failed'), ('device.register', 'device.register'), ('device.remove', 'device.remove'), ('device.registration_end', 'device.registration_end'), ('transfer', 'transfer'), ('assign', 'assign'), ('revoke', 'revoke'), ('invite', 'invite'), ('accept', 'accept'), ('grant_super_user', 'grant_super_user'), ('revoke_super_user', 'revoke_super_user')], db_index=True, max_length=40)),
                        ('outcome', models.CharField(default='ok', max_length=20)),
                        ('object_type', models.CharField(blank=True, max_length=40)),
                        ('object_ids', models.JSONField(blank=True, default=list)),
                        ('count', models.PositiveIntegerField(default=0)),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('ip', models.GenericIPAddressField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'keyvault_auditevent',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['actor', 'action', 'created_at'], name='keyvault_audit_actor_action')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(rename_content_type, restore_content_type, elidable=False),
    ]
