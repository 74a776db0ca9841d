from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from devices.selection import end_selection

        def _end_selection(
            sender: object, request: object = None, user: object = None, **_: object
        ) -> None:
            end_selection(request, user)  # type: ignore[arg-type]

        user_logged_out.connect(_end_selection, dispatch_uid="devices.end_selection", weak=False)
