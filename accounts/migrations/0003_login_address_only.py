"""One address per account (issue 12 §3).

Until now "Email addresses" let anyone attach extra addresses to their account, verified or not;
such a row could make an address look taken, receive its password reset, or — once confirmed by
a deceived owner — become the squatter's login. An account now has exactly one address, its
login (``User.email``), and only a verified one identifies anybody.

1. Every address row that is not its owner's login is deleted (unverified ones identify nobody;
   verified extra ones could still be made the login). The row of the login itself is kept and
   marked primary.
2. An account without any address row was made by staff in the admin (or ``createsuperuser``):
   every self-service way in writes a verified row. Staff chose that address, so it is recorded
   as verified, as the admin now does for new accounts; otherwise "Forgot password" — the way
   those accounts set their first password — would find nobody.
"""

from django.db import migrations
from django.db.models import Exists, F, OuterRef
from django.db.models.functions import Lower


def remove_secondary_addresses(apps, schema_editor) -> None:  # noqa: ANN001
    EmailAddress = apps.get_model("account", "EmailAddress")
    rows = EmailAddress.objects.alias(address=Lower("email"), login=Lower("user__email"))
    rows.exclude(address=F("login")).delete()
    logins = EmailAddress.objects.alias(address=Lower("email"), login=Lower("user__email"))
    ids = list(logins.filter(address=F("login"), primary=False).values_list("pk", flat=True))
    EmailAddress.objects.filter(pk__in=ids).update(primary=True)


def record_staff_made_logins(apps, schema_editor) -> None:  # noqa: ANN001
    EmailAddress = apps.get_model("account", "EmailAddress")
    User = apps.get_model("accounts", "User")
    without_rows = User.objects.exclude(email="").filter(
        ~Exists(EmailAddress.objects.filter(user_id=OuterRef("pk")))
    )
    EmailAddress.objects.bulk_create(
        [
            EmailAddress(user_id=user.pk, email=user.email.lower(), verified=True, primary=True)
            for user in without_rows.only("pk", "email")
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_one_pending_access_request"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [
        migrations.RunPython(remove_secondary_addresses, migrations.RunPython.noop),
        migrations.RunPython(record_staff_made_logins, migrations.RunPython.noop),
    ]
