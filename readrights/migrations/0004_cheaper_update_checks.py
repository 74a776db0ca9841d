"""Revoking 100,000 rights updates 100,000 rows but never their device: check the users a
statement names (a handful of distinct ids) and the device only of rows whose device changes."""

from django.db import migrations

FORWARD_SQL = """
CREATE OR REPLACE FUNCTION readrights_check_right_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT grantee_id, granted_by_id, revoked_by_id
                            FROM new_rows) n
             WHERE NOT EXISTS (SELECT 1 FROM accounts_user u WHERE u.id = n.grantee_id)
                OR (n.granted_by_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM accounts_user u WHERE u.id = n.granted_by_id))
                OR (n.revoked_by_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM accounts_user u WHERE u.id = n.revoked_by_id)))
  THEN
    RAISE EXCEPTION 'read right refers to a user that does not exist'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION readrights_check_right_device() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM devices_device d WHERE d.id = NEW.device_id) THEN
    RAISE EXCEPTION 'read right refers to a device that does not exist'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS readrights_readright_refs_update ON readrights_readright;
CREATE TRIGGER readrights_readright_refs_update AFTER UPDATE ON readrights_readright
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION readrights_check_right_users();
CREATE TRIGGER readrights_readright_device_update BEFORE UPDATE OF device_id
  ON readrights_readright FOR EACH ROW
  WHEN (OLD.device_id IS DISTINCT FROM NEW.device_id)
  EXECUTE FUNCTION readrights_check_right_device();
"""

BACKWARD_SQL = """
DROP TRIGGER IF EXISTS readrights_readright_device_update ON readrights_readright;
DROP TRIGGER IF EXISTS readrights_readright_refs_update ON readrights_readright;
CREATE TRIGGER readrights_readright_refs_update AFTER UPDATE ON readrights_readright
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION readrights_check_rights();
DROP FUNCTION IF EXISTS readrights_check_right_device();
DROP FUNCTION IF EXISTS readrights_check_right_users();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD_SQL, None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD_SQL, None)


class Migration(migrations.Migration):
    dependencies = [("readrights", "0003_bulk_friendly_references")]

    operations = [migrations.RunPython(forward, backward)]
