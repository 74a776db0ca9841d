from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.models import Membership
        from accounts.selectors import forget_roles

        user_field = Membership._meta.get_field("user")

        def membership_changed(sender: type, instance: Membership, **kwargs: object) -> None:
            if user_field.is_cached(instance):
                forget_roles(instance.user)

        post_save.connect(membership_changed, sender=Membership, weak=False)
        post_delete.connect(membership_changed, sender=Membership, weak=False)
